import XCTest
@testable import Builtins
import LayerRegistry

final class TransposedConvolutionTests: XCTestCase {
    func testTransposedKernelMatchesNaiveScatterOnRandomShapes() {
        var generator = SystemRandomNumberGenerator()
        var checked = 0
        while checked < 60 {
            // The forward convolution from the layer's output to its input.
            guard let g = randomWindows(&generator, rank: Int.random(in: 1...3)) else { continue }
            let channels = Int.random(in: 1...4), filters = Int.random(in: 1...4), batch = Int.random(in: 1...2)
            let x = randomFloats(batch * g.outputPixels * channels, &generator)
            let w = randomFloats(g.taps * filters * channels, &generator)
            let bias = Bool.random() ? randomFloats(filters, &generator) : nil
            let expected = naiveTransposedConvolve(x, batch: batch, w, bias, geometry: g, channels: channels, filters: filters)
            let packed = w.withUnsafeBufferPointer { transposedKernelColumns($0, taps: g.taps, filters: filters, channels: channels) }
            var got = [Float](repeating: .nan, count: expected.count)
            x.withUnsafeBufferPointer { xs in packed.withUnsafeBufferPointer { ws in got.withUnsafeMutableBufferPointer { ys in
                transposedConvolve(xs, batch: batch, ws, bias?.withUnsafeBufferPointer { $0 }, into: ys, geometry: g, channels: channels,
                                   filters: filters, columnLimit: checked % 2 == 0 ? 1 : convolutionColumnLimit)
            }}}
            assertClose(got, expected, accuracy: 1e-5)
            checked += 1
        }
    }

    /// Output lengths from Keras's compute_conv_transpose_output_shape, checked by running Keras.
    func testOutputLengthsFollowKeras() throws {
        let cases: [(String, Int, [Int])] = [
            (#""kernel_size": 3, "strides": 2"#, 4, [9]),                                   // (4-1)·2 + 3
            (#""kernel_size": 2, "strides": 3"#, 4, [12]),                                  // max(k, s) = 3
            (#""kernel_size": 3, "strides": 2, "padding": "same""#, 4, [8]),                // 4·2
            (#""kernel_size": 4, "strides": 3, "padding": "same", "output_padding": 2"#, 4, [11]), // 9 + 0 + 2
            (#""kernel_size": 3, "dilation_rate": 2"#, 4, [8]),                             // span 5
        ]
        for (config, length, expected) in cases {
            let layer = #"{"class_name": "Conv1DTranspose", "config": {"name": "t", "filters": 1, \#(config)}}"#
            let model = try HandBuilt.model(input: [length, 1], layers: [layer])
            XCTAssertEqual(model.outputShape, expected + [1], config)
        }
    }

    func testConfigErrorsNameTheKey() throws {
        let cases: [(String, String, String)] = [
            (#""filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 2"#, "config.output_padding", "below 'strides'"),
            (#""filters": 2, "kernel_size": 3, "padding": "causal""#, "config.padding", #"must be one of "valid", "same""#),
            (#""filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2"#, "config.dilation_rate", "together with dilation_rate"),
            (#""filters": 2, "kernel_size": 1, "strides": 1048576"#, "config.filters", "more than the limit of 2^31"),
        ]
        for (config, location, text) in cases {
            let layer = #"{"class_name": "Conv2DTranspose", "config": {"name": "conv", \#(config)}}"#
            let message = try XCTUnwrap(HandBuilt.buildError(input: [5, 5, 2], layers: [layer]), config)
            XCTAssertTrue(message.contains(location), "\(config): \(message)")
            XCTAssertTrue(message.contains(text), "\(config): \(message)")
        }
    }

    func testKerasTransposed() {
        for name in ["conv2d_transpose", "conv2d_transpose_same", "conv2d_transpose_output_padding_same", "conv2d_transpose_output_padding_valid",
                     "conv2d_transpose_small_kernel", "conv2d_transpose_dilation", "conv1d_transpose", "conv1d_transpose_same",
                     "conv3d_transpose", "conv3d_transpose_valid"] {
            assertMatchesKeras(name)
        }
    }
}
