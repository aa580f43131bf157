import XCTest
@testable import Builtins
import LayerRegistry

final class Convolution3DTests: XCTestCase {
    func testDirectKernelMatchesNaiveTwinOnRandomShapes() {
        var generator = SystemRandomNumberGenerator()
        var checked = 0
        while checked < 60 {
            guard let g = randomWindows(&generator, rank: 3) else { continue }
            let groups = Int.random(in: 1...2)
            let channels = groups * Int.random(in: 1...3), filters = groups * Int.random(in: 1...3), batch = Int.random(in: 1...2)
            let x = randomFloats(batch * g.inputPixels * channels, &generator)
            let w = randomFloats(g.taps * channels / groups * filters, &generator)
            let bias = Bool.random() ? randomFloats(filters, &generator) : nil
            let expected = naiveDirectConvolve(x, batch: batch, w, bias, geometry: g, channels: channels, filters: filters, groups: groups)
            var got = [Float](repeating: .nan, count: expected.count)
            x.withUnsafeBufferPointer { xs in w.withUnsafeBufferPointer { ws in got.withUnsafeMutableBufferPointer { ys in
                directConvolve(xs, batch: batch, ws, bias?.withUnsafeBufferPointer { $0 }, into: ys, geometry: g, channels: channels,
                               filters: filters, groups: groups, splitWork: checked % 2 == 0 ? 0 : Gemm.threadedWork)
            }}}
            assertClose(got, expected, accuracy: 1e-5)
            checked += 1
        }
    }

    func testKerasConv3D() {
        for name in ["conv3d", "conv3d_dilation_groups"] { assertMatchesKeras(name) }
    }

    /// Fully convolutional models: the spatial sizes are known only at run time, and each call
    /// computes its own output size.
    func testKerasFullyConvolutional() {
        for name in ["fully_convolutional_2d", "fully_convolutional_1d", "fully_convolutional_3d"] { assertMatchesKeras(name) }
    }

    func testConv2DOnRunTimeSizesGivesEachCallItsOwnShape() throws {
        let layer = #"{"class_name": "Conv2D", "config": {"name": "conv", "filters": 1, "kernel_size": 2, "strides": 2, "padding": "same"}}"#
        let model = try HandBuilt.model(input: [nil, nil, 1], layers: [layer],
                                        weights: ["conv/kernel": ([2, 2, 1, 1], [1, 1, 1, 1]), "conv/bias": ([1], [0])])
        XCTAssertEqual(model.outputShape, [nil, nil, 1])
        let small = try HandBuilt.run(model, shape: [1, 2, 2, 1], [1, 2, 3, 4])
        XCTAssertEqual(small.shape, [1, 1, 1, 1])
        XCTAssertEqual(small.data, [10])
        let wide = try HandBuilt.run(model, shape: [1, 1, 5, 1], [1, 2, 3, 4, 5])
        XCTAssertEqual(wide.shape, [1, 1, 3, 1])
        XCTAssertEqual(wide.data, [3, 7, 5])
        let valid = #"{"class_name": "Conv2D", "config": {"name": "conv", "filters": 1, "kernel_size": 3}}"#
        let refusing = try HandBuilt.model(input: [nil, nil, 1], layers: [valid])
        XCTAssertThrowsError(try HandBuilt.run(refusing, shape: [1, 2, 4, 1], Array(repeating: 1, count: 8))) { error in
            XCTAssertTrue("\(error)".contains("the kernel spans 3 rows but the input has 2"), "\(error)")
        }
    }

    /// A 3×3 kernel with 16 channels and filters takes the Winograd path where AVX2 runs and
    /// AVX-512 does not (the packed implicit GEMM elsewhere): both built without knowing the image
    /// size.
    func testConv2DFastPathsOnRunTimeSizesMatchTheNaiveTwin() throws {
        var generator = SystemRandomNumberGenerator()
        let layer = #"{"class_name": "Conv2D", "config": {"name": "conv", "filters": 16, "kernel_size": 3, "padding": "same"}}"#
        let kernel = randomFloats(9 * 16 * 16, &generator), bias = randomFloats(16, &generator)
        let model = try HandBuilt.model(input: [nil, nil, 16], layers: [layer], weights: ["conv/kernel": ([3, 3, 16, 16], kernel), "conv/bias": ([16], bias)])
        for (height, width) in [(5, 7), (1, 1), (8, 3)] {
            let x = randomFloats(2 * height * width * 16, &generator)
            let got = try HandBuilt.run(model, shape: [2, height, width, 16], x)
            let rows = try XCTUnwrap(WindowAxis.place(input: height, size: 3, stride: 1, padding: .same))
            let columns = try XCTUnwrap(WindowAxis.place(input: width, size: 3, stride: 1, padding: .same))
            let g = ConvolutionGeometry(rows: rows, columns: columns, channels: 16, filters: 16, groups: 1)
            var expected = [Float](repeating: 0, count: 2 * height * width * 16)
            x.withUnsafeBufferPointer { xs in kernel.withUnsafeBufferPointer { ws in bias.withUnsafeBufferPointer { bs in
                expected.withUnsafeMutableBufferPointer { naiveConvolve2D(xs, batch: 2, ws, bs, into: $0, geometry: g) }
            }}}
            XCTAssertEqual(got.shape, [2, height, width, 16])
            assertClose(got.data, expected, accuracy: 1e-4)
        }
    }
}
