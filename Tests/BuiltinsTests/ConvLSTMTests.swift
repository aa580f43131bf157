import Foundation
import XCTest
@testable import Builtins
import LayerRegistry

/// ConvLSTM1D and ConvLSTM2D: Keras fixtures for padding, strides, dilation, go_backwards,
/// return_sequences, return_state and initial_state; a 1×1 ConvLSTM against the LSTM it equals;
/// and the refusals.
final class ConvLSTMTests: XCTestCase {
    func testEveryConvLSTMFixtureMatchesKeras() {
        for name in ["conv_lstm2d_same_strides", "conv_lstm2d_dilation", "conv_lstm1d", "conv_lstm3d", "conv_lstm_bidirectional"] {
            assertMatchesKeras(name)
        }
    }

    func testConvLSTMStatesMatchKerasOnEveryOutput() throws {
        let name = "conv_lstm_states"
        let entry: GraphFixtureTests.Manifest.Case, results: [String: Tensor]
        do {
            (entry, _, results) = try GraphFixtureTests.run(name)
        } catch {
            return XCTFail("\(name): \(error.nnProblems.joined(separator: "\n"))")
        }
        for port in entry.outputs {
            let expected = try GraphFixtureTests.array(name, port.file)
            let got = try XCTUnwrap(results[port.name], "no output '\(port.name)'")
            XCTAssertEqual(got.shape, expected.shape, "output \(port.name)")
            assertClose(got.data, expected.values.map { Float($0) }, "output \(port.name)")
        }
    }

    /// A ConvLSTM1D with a 1-tap kernel over an image one column wide is an LSTM: the same weights
    /// give the same sequence (here with a mask-free go_backwards run of return_sequences).
    func testAOneByOneConvLSTMIsAnLSTM() throws {
        let kernel = (0..<24).map { Float($0 % 7) * 0.1 - 0.3 }, recurrent = (0..<16).map { Float($0 % 5) * 0.1 - 0.2 }
        let bias = (0..<8).map { Float($0) * 0.05 }
        let x: [Float] = (0..<18).map { Float($0 % 4) * 0.25 - 0.4 }
        let lstm = try HandBuilt.model(input: [3, 3], layers: [#"{"class_name": "LSTM", "config": {"name": "lstm", "units": 2, "go_backwards": true, "return_sequences": true}}"#],
                                       weights: ["lstm/kernel": ([3, 8], kernel), "lstm/recurrent_kernel": ([2, 8], recurrent), "lstm/bias": ([8], bias)])
        let conv = try HandBuilt.model(input: [3, 1, 3], layers: [#"{"class_name": "ConvLSTM1D", "config": {"name": "conv", "filters": 2, "kernel_size": 1, "go_backwards": true, "return_sequences": true}}"#],
                                       weights: ["conv/kernel": ([1, 3, 8], kernel), "conv/recurrent_kernel": ([1, 2, 8], recurrent), "conv/bias": ([8], bias)])
        let expected = try HandBuilt.run(lstm, shape: [2, 3, 3], x)
        let got = try HandBuilt.run(conv, shape: [2, 3, 1, 3], x)
        XCTAssertEqual(got.shape, [2, 3, 1, 2])
        assertClose(got.data, expected.data)
    }

    func testUnsupportedConfigsAreRefusedNamingTheKey() {
        let unknownImage = HandBuilt.buildError(input: [3, nil, 4, 2], layers: [#"{"class_name": "ConvLSTM2D", "config": {"filters": 2, "kernel_size": 3}}"#])
        XCTAssertTrue(unknownImage?.contains("image axes of the input must be known") == true, unknownImage ?? "no error")
        let tooBig = HandBuilt.buildError(input: [3, 2, 2, 2], layers: [#"{"class_name": "ConvLSTM2D", "config": {"filters": 2, "kernel_size": 3}}"#])
        XCTAssertTrue(tooBig?.contains("the kernel spans 3 cells") == true, tooBig ?? "no error")
        let both = HandBuilt.buildError(input: [3, 8, 2], layers: [#"{"class_name": "ConvLSTM1D", "config": {"filters": 2, "kernel_size": 2, "strides": 2, "dilation_rate": 2}}"#])
        XCTAssertTrue(both?.contains("dilation_rate") == true, both ?? "no error")
        let first = HandBuilt.buildError(input: [3, 8, 2], layers: [#"{"class_name": "ConvLSTM1D", "config": {"filters": 2, "kernel_size": 2, "data_format": "channels_middle"}}"#])
        XCTAssertTrue(first?.contains("must be one of \"channels_last\", \"channels_first\", found \"channels_middle\"") == true, first ?? "no error")
    }

    /// `nnbuild layers` lists every key, even where no probe input has the rank of a ConvLSTM3D's.
    func testEveryConvLSTMShowsItsConfigKeys() throws {
        for name in ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"] {
            let keys = try XCTUnwrap(LayerRegistry.withBuiltins().describe(name)).keys.map(\.name)
            for key in ["filters", "kernel_size", "strides", "padding", "dilation_rate", "recurrent_activation", "return_sequences", "return_state", "go_backwards"] {
                XCTAssertTrue(keys.contains(key), "\(name): \(key) in \(keys)")
            }
        }
    }

    /// The 3-D convolution of ConvLSTM3D (sums of 2-D ones over depth taps) against its naive twin,
    /// with padding, strides and dilation along every axis.
    func testDepthPlaneConvolutionMatchesTheNaiveTwin() throws {
        let cases: [(input: [Int], kernel: [Int], stride: [Int], dilation: [Int], padding: WindowPadding)] = [
            ([4, 5, 3], [3, 2, 2], [1, 1, 1], [1, 1, 1], .same),
            ([5, 4, 4], [2, 3, 1], [2, 1, 2], [1, 1, 1], .valid),
            ([6, 3, 5], [2, 2, 3], [1, 1, 1], [2, 1, 2], .same),
        ]
        for (index, c) in cases.enumerated() {
            let axes = try (0..<3).map { try XCTUnwrap(WindowAxis.place(input: c.input[$0], size: c.kernel[$0], stride: c.stride[$0], dilation: c.dilation[$0], padding: c.padding)) }
            let channels = 2, filters = 3, images = 2
            let plane = ConvolutionGeometry(rows: axes[1], columns: axes[2], channels: channels, filters: filters, groups: 1)
            let x = (0..<(images * c.input.reduce(1, *) * channels)).map { Float(($0 * 37) % 23) / 11 - 1 }
            let w = (0..<(c.kernel.reduce(1, *) * channels * filters)).map { Float(($0 * 29) % 17) / 8 - 1 }
            let b: [Float] = [0.5, -0.25, 0.125]
            let expected = naiveConvolve3D(x, images: images, w, b, depth: axes[0], plane: plane)
            var got = [Float](repeating: .nan, count: expected.count)
            x.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    b.withUnsafeBufferPointer { bp in
                        got.withUnsafeMutableBufferPointer { out in
                            convolveDepthwisePlanes(xp.baseAddress!, images: images, wp, bp, into: out.baseAddress!, depth: axes[0], plane: plane)
                        }
                    }
                }
            }
            assertClose(got, expected, tolerance: 1e-4, "case \(index)")
        }
    }
}
