import CKernels
import XCTest
@testable import Builtins
import LayerRegistry

final class PoolingTests: XCTestCase {
    private let grid: [Float] = (1...16).map(Float.init)

    private func pool2D(_ className: String, _ options: String, input: [Float]? = nil) throws -> Tensor {
        let layer = #"{"class_name": "\#(className)", "config": {"name": "pool", \#(options)}}"#
        let model = try HandBuilt.model(input: [4, 4, 1], layers: [layer])
        return try HandBuilt.run(model, shape: [1, 4, 4, 1], input ?? grid)
    }

    // MARK: - Hand-computed values (x = 1…16 as a 4×4 image)

    func testMaxPoolingDefaultsToTwoByTwoWithStridesOfThePoolSize() throws {
        let y = try pool2D("MaxPooling2D", #""strides": null"#)
        XCTAssertEqual(y.shape, [1, 2, 2, 1])
        assertClose(y.data, [6, 8, 14, 16])
    }

    func testSamePaddedMaxIgnoresPaddedCells() throws {
        // ceil(4/2) = 2 outputs; padding (2-1)·2 + 3 - 4 = 1, after. All-negative input: a padded
        // zero would win if padding took part.
        let y = try pool2D("MaxPooling2D", #""pool_size": 3, "strides": 2, "padding": "same""#, input: grid.map { -$0 })
        assertClose(y.data, [-1, -3, -9, -11])
    }

    func testSamePaddedAverageDividesByRealCells() throws {
        let y = try pool2D("AveragePooling2D", #""pool_size": [3, 3], "strides": [2, 2], "padding": "same""#)
        // Windows rows 0-2 × cols 0-2 (9 cells), rows 0-2 × cols 2-3 (6), rows 2-3 × cols 0-2 (6), rows 2-3 × cols 2-3 (4).
        assertClose(y.data, [6, 7.5, 12, 13.5])
    }

    func testValidAverageWithRectangularWindowAndStrides() throws {
        let y = try pool2D("AveragePooling2D", #""pool_size": [2, 3], "strides": [2, 1]"#)
        XCTAssertEqual(y.shape, [1, 2, 2, 1])
        assertClose(y.data, [4, 5, 12, 13])
    }

    func testPooling1DOnRunTimeLength() throws {
        let layer = #"{"class_name": "MaxPooling1D", "config": {"name": "pool", "pool_size": 3, "strides": 2, "padding": "same"}}"#
        let model = try HandBuilt.model(input: [nil, 2], layers: [layer])
        XCTAssertEqual(model.outputShape, [nil, 2])
        let y = try HandBuilt.run(model, shape: [1, 5, 2], [1, -1, 5, -5, 2, -2, 4, -4, 3, -3])
        // Outputs at steps 0, 2, 4 over windows [-1…1], [1…3], [3…5], padded steps left out.
        XCTAssertEqual(y.shape, [1, 3, 2])
        assertClose(y.data, [5, -1, 5, -2, 4, -3])
        let average = #"{"class_name": "AveragePooling1D", "config": {"name": "pool", "pool_size": 2, "strides": 1}}"#
        let averaged = try HandBuilt.run(try HandBuilt.model(input: [nil, 1], layers: [average]), shape: [1, 4, 1], [1, 2, 4, 8])
        assertClose(averaged.data, [1.5, 3, 6])
    }

    func testKeras2PoolLengthAndStrideKeys() throws {
        let layer = #"{"class_name": "AveragePooling1D", "config": {"name": "pool", "pool_length": 3, "stride": 1}}"#
        let y = try HandBuilt.run(try HandBuilt.model(input: [5, 1], layers: [layer]), shape: [1, 5, 1], [1, 2, 3, 4, 5])
        assertClose(y.data, [2, 3, 4])
    }

    func testGlobalPooling2DWithAndWithoutKeepdims() throws {
        let average = try HandBuilt.model(input: [2, 2, 2], layers: [#"{"class_name": "GlobalAveragePooling2D", "config": {"name": "pool"}}"#])
        let y = try HandBuilt.run(average, shape: [1, 2, 2, 2], [1, 10, 2, 20, 3, 30, 4, 40])
        XCTAssertEqual(y.shape, [1, 2])
        assertClose(y.data, [2.5, 25])
        let maximum = try HandBuilt.model(input: [2, 2, 2], layers: [#"{"class_name": "GlobalMaxPooling2D", "config": {"name": "pool", "keepdims": true}}"#])
        XCTAssertEqual(maximum.outputShape, [1, 1, 2])
        let z = try HandBuilt.run(maximum, shape: [1, 2, 2, 2], [-1, -10, -2, -20, -3, -30, -4, -40])
        XCTAssertEqual(z.shape, [1, 1, 1, 2])
        assertClose(z.data, [-1, -10])
    }

    // MARK: - Masks (Keras 3: checked with Embedding(mask_zero=True) in front)

    private func layer(_ className: String, input: [Int?] = [3, 1]) throws -> any Layer {
        let model = try HandBuilt.model(input: input, layers: [#"{"class_name": "\#(className)", "config": {"name": "pool"}}"#])
        return try XCTUnwrap(model.nodes.last?.layer as? any Layer)
    }

    func testGlobalAveragePooling1DAveragesUnmaskedStepsAndGivesNaNForAnEmptyRow() throws {
        let masked = Tensor(shape: [3, 3, 1], data: [1, 2, 9, 4, 5, 6, 7, 8, 9],
                            mask: [true, true, false, false, true, true, false, false, false])
        let y = try layer("GlobalAveragePooling1D").apply(masked)
        assertClose(y.data, [1.5, 5.5, .nan])
        XCTAssertNil(y.mask, "Keras's GlobalAveragePooling1D.compute_mask returns None")
    }

    func testGlobalMaxPooling1DIgnoresTheMask() throws {
        let masked = Tensor(shape: [1, 3, 1], data: [1, 2, 9], mask: [true, true, false])
        let y = try layer("GlobalMaxPooling1D").apply(masked)
        assertClose(y.data, [9])
    }

    func testPooling1DLayersDropTheMask() throws {
        for className in ["MaxPooling1D", "AveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling1D"] {
            XCTAssertEqual(try layer(className, input: [4, 1]).maskBehavior, .drops, className)
        }
        let masked = Tensor(shape: [1, 4, 1], data: [1, 2, 3, 4], mask: [true, true, false, false])
        XCTAssertNil(try layer("MaxPooling1D", input: [4, 1]).apply(masked).mask)
    }

    // MARK: - Errors

    /// The max-pooling kernels (8 lanes on AVX2; 64, 32 and 16 on AVX-512) against a direct loop,
    /// on channel counts below, at and past each of those widths, with padding, strides and NaN
    /// cells.
    func testMaxPoolingMatchesADirectLoopOnRandomShapes() {
        var random = SplitMix(seed: 3)
        for trial in 0..<80 {
            let channels = trial % 2 == 0 ? Int.random(in: 1...19, using: &random) : Int.random(in: 20...100, using: &random), batch = Int.random(in: 1...2, using: &random)
            let height = Int.random(in: 1...7, using: &random), width = Int.random(in: 1...7, using: &random)
            let size = Int.random(in: 1...3, using: &random), stride = Int.random(in: 1...3, using: &random)
            let padding: WindowPadding = Bool.random(using: &random) ? .same : .valid
            guard let rows = WindowAxis.place(input: height, size: size, stride: stride, padding: padding),
                  let columns = WindowAxis.place(input: width, size: size, stride: stride, padding: padding) else { continue }
            let g = PoolingGeometry(rows: rows, columns: columns, channels: channels)
            var x = random.floats(batch * g.inputCount)
            if trial % 5 == 0 { x[0] = .nan }
            var got = [Float](repeating: 0, count: batch * g.outputCount)
            x.withUnsafeBufferPointer { input in got.withUnsafeMutableBufferPointer { maxPool2D(input, batch: batch, into: $0, geometry: g) } }
            var want = [Float](repeating: -.infinity, count: got.count)
            for image in 0..<batch {
                for r in 0..<rows.output {
                    for c in 0..<columns.output {
                        for channel in 0..<channels {
                            var best = -Float.infinity
                            for i in 0..<size {
                                for j in 0..<size {
                                    let ir = r * stride - rows.padBefore + i, ic = c * stride - columns.padBefore + j
                                    guard ir >= 0, ir < height, ic >= 0, ic < width else { continue }
                                    let v = x[((image * height + ir) * width + ic) * channels + channel]
                                    if v > best { best = v }  // NaN cells are passed over
                                }
                            }
                            want[((image * rows.output + r) * columns.output + c) * channels + channel] = best
                        }
                    }
                }
            }
            XCTAssertEqual(got, want, "trial \(trial): \(g)")
        }
    }

    /// A pooling large enough to split its output rows across two threads gives the same bits as
    /// on one.
    func testALargeMaxPoolingGivesTheSameBitsOnTwoThreads() throws {
        let model = try HandBuilt.model(input: [96, 96, 64], layers: [
            #"{"class_name": "MaxPooling2D", "config": {"name": "pool", "pool_size": 3, "strides": 2, "padding": "same"}}"#])
        var random = SplitMix(seed: 11)
        let x = Tensor(shape: [1, 96, 96, 64], data: random.floats(96 * 96 * 64))
        let one = try model.predict(x, threads: 1), two = try model.predict(x, threads: 2)
        XCTAssertEqual(one.shape, [1, 48, 48, 64])
        XCTAssertEqual(one.data, two.data)
        // The first output cell is the max of rows and columns 0...2 ("same" pads 96 by one
        // cell after the last row and column, none before).
        for channel in [0, 17, 63] {
            var best = -Float.infinity
            for r in 0..<3 {
                for c in 0..<3 { best = max(best, x.data[(r * 96 + c) * 64 + channel]) }
            }
            XCTAssertEqual(one.data[channel], best)
        }
    }

    func testConfigAndShapeErrors() throws {
        let cases: [(String, [Int?], String, String)] = [
            (#""class_name": "MaxPooling2D", "config": {"name": "pool", "pool_size": 5}"#, [4, 4, 1], "config.pool_size",
             "the pooling window spans 5 rows but the input has 4 with padding \"valid\""),
            (#""class_name": "MaxPooling2D", "config": {"name": "pool", "data_format": "channels_middle"}"#, [4, 4, 1], "config.data_format",
             "found \"channels_middle\""),
            (#""class_name": "AveragePooling2D", "config": {"name": "pool", "strides": 0}"#, [4, 4, 1], "config.strides",
             "must hold positive integers"),
            (#""class_name": "MaxPooling1D", "config": {"name": "pool", "padding": "causal"}"#, [4, 1], "config.padding",
             #"must be one of "valid", "same", found "causal""#),
            (#""class_name": "MaxPooling2D", "config": {"name": "pool"}"#, [16], "layers[1]",
             "expects input of shape (batch, height, width, channels), found (None, 16)"),
            (#""class_name": "GlobalAveragePooling1D", "config": {"name": "pool"}"#, [4, 4, 1], "layers[1]",
             "expects input of shape (batch, steps, channels), found (None, 4, 4, 1)"),
        ]
        for (layer, input, location, text) in cases {
            let message = try XCTUnwrap(HandBuilt.buildError(input: input, layers: ["{\(layer)}"]), layer)
            XCTAssertTrue(message.contains(location), "\(layer): \(message)")
            XCTAssertTrue(message.contains(text), "\(layer): \(message)")
        }
        let model = try HandBuilt.model(input: [nil, 1], layers: [#"{"class_name": "MaxPooling1D", "config": {"name": "pool", "pool_size": 3}}"#])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 2, 1], [1, 2])) { error in
            XCTAssertTrue("\(error)".contains("the pooling window spans 3 steps but the input has 2"), "\(error)")
        }
    }

    // MARK: - Keras fixtures

    func testKerasMaxPooling2D() { assertMatchesKeras("maxpool2d") }
    func testKerasAveragePooling2D() { assertMatchesKeras("avgpool2d") }
    func testKerasPooling1D() { assertMatchesKeras("pool1d") }
    func testKerasGlobalAveragePooling2D() { assertMatchesKeras("global_avg_pool2d") }
    func testKerasGlobalPooling2D() { assertMatchesKeras("global_pool2d") }
    func testKerasGlobalPooling1D() { assertMatchesKeras("global_pool1d") }

    func testMoreKerasCases() throws {
        try assertMatchesKerasWherePresent([
            "maxpool2d_default", "maxpool2d_same_strides", "maxpool2d_same_even", "maxpool2d_valid_odd",
            "avgpool2d_same_strides", "avgpool2d_same_even", "avgpool2d_valid", "maxpool1d_default", "maxpool1d_same",
            "avgpool1d_same", "avgpool1d_unknown_length", "global_avgpool2d", "global_maxpool2d_keepdims",
            "global_avgpool1d_keepdims", "global_maxpool1d",
        ])
    }

    // MARK: - 3-D pooling and run-time spatial sizes (issue 15)

    func testKeras3DPooling() {
        for name in ["maxpool3d_default", "maxpool3d_same_strides", "avgpool3d_same", "avgpool3d_valid",
                     "global_maxpool3d_keepdims", "global_avgpool3d"] {
            assertMatchesKeras(name)
        }
    }

    func testKerasPoolingOnRunTimeSpatialSizes() {
        for name in ["pool2d_unknown_size", "pool2d_unknown_size_keepdims", "pool3d_unknown_size"] {
            assertMatchesKeras(name)
        }
    }

    /// One model built for (None, None, 1) runs on images of two sizes; each output is the pooling
    /// of that image, and a "valid" window wider than the run-time image is refused by name.
    func testPooling2DOnRunTimeHeightAndWidth() throws {
        let layer = #"{"class_name": "MaxPooling2D", "config": {"name": "pool", "pool_size": 2}}"#
        let model = try HandBuilt.model(input: [nil, nil, 1], layers: [layer])
        XCTAssertEqual(model.outputShape, [nil, nil, 1])
        let small = try HandBuilt.run(model, shape: [1, 2, 2, 1], [1, 4, 3, 2])
        XCTAssertEqual(small.shape, [1, 1, 1, 1])
        XCTAssertEqual(small.data, [4])
        let large = try HandBuilt.run(model, shape: [1, 4, 4, 1], grid)
        XCTAssertEqual(large.shape, [1, 2, 2, 1])
        XCTAssertEqual(large.data, [6, 8, 14, 16])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 1, 4, 1], [1, 2, 3, 4])) { error in
            XCTAssertTrue("\(error)".contains("the pooling window spans 2 rows but the input has 1"), "\(error)")
        }
    }

    /// The 3-D window kernel against a direct loop over every (slice, row, column) tap, with
    /// padding and strides, for max and mean.
    func testPooling3DMatchesADirectLoopOnRandomShapes() {
        var random = SplitMix(seed: 7)
        for trial in 0..<40 {
            let channels = Int.random(in: 1...10, using: &random)
            let sizes = (0..<3).map { _ in Int.random(in: 1...5, using: &random) }
            let pool = (0..<3).map { _ in Int.random(in: 1...3, using: &random) }
            let stride = (0..<3).map { _ in Int.random(in: 1...3, using: &random) }
            let padding: WindowPadding = Bool.random(using: &random) ? .same : .valid
            let axes = (0..<3).compactMap { WindowAxis.place(input: sizes[$0], size: pool[$0], stride: stride[$0], padding: padding) }
            guard axes.count == 3 else { continue }
            let g = PoolingGeometry(depth: axes[0], rows: axes[1], columns: axes[2], channels: channels)
            let x = random.floats(2 * g.inputCount)
            for average in [false, true] {
                var got = [Float](repeating: 0, count: 2 * g.outputCount)
                x.withUnsafeBufferPointer { input in
                    got.withUnsafeMutableBufferPointer {
                        if average { averagePool2D(input, batch: 2, into: $0, geometry: g) } else { maxPool2D(input, batch: 2, into: $0, geometry: g) }
                    }
                }
                var want: [Float] = []
                for image in 0..<2 {
                    for d in 0..<axes[0].output {
                        for r in 0..<axes[1].output {
                            for c in 0..<axes[2].output {
                                for channel in 0..<channels {
                                    var cells: [Float] = []
                                    for i in 0..<pool[0] {
                                        for j in 0..<pool[1] {
                                            for k in 0..<pool[2] {
                                                let id = d * stride[0] - axes[0].padBefore + i
                                                let ir = r * stride[1] - axes[1].padBefore + j
                                                let ic = c * stride[2] - axes[2].padBefore + k
                                                guard id >= 0, id < sizes[0], ir >= 0, ir < sizes[1], ic >= 0, ic < sizes[2] else { continue }
                                                cells.append(x[(((image * sizes[0] + id) * sizes[1] + ir) * sizes[2] + ic) * channels + channel])
                                            }
                                        }
                                    }
                                    want.append(average ? cells.reduce(0, +) / Float(cells.count) : cells.max() ?? -.infinity)
                                }
                            }
                        }
                    }
                }
                assertClose(got, want, accuracy: 1e-6)
                XCTAssertEqual(got.count, want.count, "trial \(trial) average \(average): \(g)")
            }
        }
    }

    /// nnb_global_average on every kernel path this CPU has gives, bit for bit, each channel's
    /// double sum in step order divided by the steps counted, with and without a mask, for
    /// channel counts with tails past 4 and 8.
    func testGlobalAverageIsEachChannelsOrderedSumOnEveryPath() {
        var generator = SystemRandomNumberGenerator()
        let paths = KernelPath.allCases.filter { $0 <= Gemm.cpuKernelPath }
        for channels in [1, 3, 4, 7, 8, 13, 1280] {
            for masked in [false, true] {
                let batch = 2, steps = 9
                let x = randomFloats(batch * steps * channels, &generator).map { $0 * 100 }
                var flags = (0..<(batch * steps)).map { _ in Bool.random(using: &generator) }
                flags[0] = true
                var want = [Float](repeating: 0, count: batch * channels)
                for image in 0..<batch {
                    let kept = (0..<steps).filter { !masked || flags[image * steps + $0] }
                    for c in 0..<channels {
                        var sum = 0.0
                        for step in kept { sum += Double(x[(image * steps + step) * channels + c]) }
                        want[image * channels + c] = Float(sum / Double(kept.count))
                    }
                }
                for path in paths {
                    var got = [Float](repeating: .nan, count: batch * channels)
                    var sums = [Double](repeating: 0, count: channels)
                    let status = x.withUnsafeBufferPointer { xs in
                        got.withUnsafeMutableBufferPointer { ys in
                            flags.withUnsafeBufferPointer { f in
                                f.withMemoryRebound(to: UInt8.self) { bytes in
                                    nnb_global_average(xs.baseAddress, Int(batch), Int(steps), Int(channels), masked ? bytes.baseAddress : nil,
                                                       ys.baseAddress, &sums, Int32(path.rawValue))
                                }
                            }
                        }
                    }
                    XCTAssertEqual(status, 0)
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(path), \(channels) channels, masked \(masked)")
                }
            }
        }
    }
}
