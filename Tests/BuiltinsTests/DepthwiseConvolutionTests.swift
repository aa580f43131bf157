import XCTest
@testable import Builtins
import LayerRegistry

/// Random windows (1-D or 2-D, strides, dilation, padding) for comparing kernels with their twins.
func randomWindows(_ generator: inout some RandomNumberGenerator, rank: Int) -> VolumeGeometry? {
    var axes: [WindowAxis] = []
    let padding: WindowPadding = Bool.random(using: &generator) ? .same : .valid
    for _ in 0..<rank {
        let size = Int.random(in: 1...4, using: &generator)
        let stride = Int.random(in: 1...3, using: &generator), dilation = Int.random(in: 1...2, using: &generator)
        guard let axis = WindowAxis.place(input: Int.random(in: 1...9, using: &generator), size: size, stride: stride,
                                          dilation: dilation, padding: padding) else { return nil }
        axes.append(axis)
    }
    return VolumeGeometry(axes)
}

func randomFloats(_ count: Int, _ generator: inout some RandomNumberGenerator) -> [Float] {
    (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
}

final class DepthwiseConvolutionTests: XCTestCase {
    func testDepthwiseKernelMatchesNaiveTwinOnRandomShapes() {
        var generator = SystemRandomNumberGenerator()
        var checked = 0
        while checked < 60 {
            guard let g = randomWindows(&generator, rank: Int.random(in: 1...3)) else { continue }
            let channels = Int.random(in: 1...5), multiplier = Int.random(in: 1...3), batch = Int.random(in: 1...2)
            let width = channels * multiplier
            let x = randomFloats(batch * g.inputPixels * channels, &generator)
            let w = randomFloats(g.taps * width, &generator)
            let bias = Bool.random() ? randomFloats(width, &generator) : nil
            let expected = naiveDepthwiseConvolve(x, batch: batch, w, bias, geometry: g, channels: channels, multiplier: multiplier)
            var got = [Float](repeating: .nan, count: expected.count)
            x.withUnsafeBufferPointer { xs in w.withUnsafeBufferPointer { ws in got.withUnsafeMutableBufferPointer { ys in
                let b = bias?.withUnsafeBufferPointer { $0 }
                depthwiseConvolve(xs, batch: batch, ws, b, into: ys, geometry: g, channels: channels, multiplier: multiplier,
                                  splitWork: checked % 2 == 0 ? 0 : Gemm.threadedWork)
            }}}
            assertClose(got, expected, accuracy: 1e-5)
            checked += 1
        }
    }

    func testDepthwiseMultiplierOrdersOutputsByChannelThenMultiplier() throws {
        // One pixel, channels [1, 10], multiplier 2, a 1×1 kernel [[2, 3], [5, 7]]: outputs c·M + m.
        let layer = #"{"class_name": "DepthwiseConv2D", "config": {"name": "dw", "kernel_size": 1, "depth_multiplier": 2, "use_bias": false}}"#
        let model = try HandBuilt.model(input: [1, 1, 2], layers: [layer], weights: ["dw/kernel": ([1, 1, 2, 2], [2, 3, 5, 7])])
        let out = try HandBuilt.run(model, shape: [1, 1, 1, 2], [1, 10])
        XCTAssertEqual(out.data, [2, 3, 50, 70])
    }

    func testConfigErrorsNameTheKey() throws {
        let cases: [(String, String, String, String)] = [
            ("DepthwiseConv2D", #""kernel_size": 3, "depth_multiplier": 0"#, "config.depth_multiplier", "must be a positive"),
            ("DepthwiseConv2D", #""kernel_size": 3, "padding": "causal""#, "config.padding", #"must be one of "valid", "same""#),
            ("DepthwiseConv2D", #""kernel_size": 6"#, "config.kernel_size", "the kernel spans 6 rows but the input has 5"),
            ("DepthwiseConv2D", #""kernel_size": 1, "depth_multiplier": 268435456"#, "config.depth_multiplier", "more than the limit of 2^31"),
            ("SeparableConv2D", #""filters": 2, "kernel_size": 1, "depth_multiplier": 268435456"#, "config.depth_multiplier", "the depthwise result"),
            ("SeparableConv2D", #""kernel_size": 3"#, "config.filters", "missing required key 'filters'"),
            ("SeparableConv2D", #""filters": 2, "kernel_size": 3, "data_format": "channels_middle""#, "config.data_format", "found \"channels_middle\""),
        ]
        for (className, config, location, text) in cases {
            let layer = #"{"class_name": "\#(className)", "config": {"name": "conv", \#(config)}}"#
            let message = try XCTUnwrap(HandBuilt.buildError(input: [5, 5, 2], layers: [layer]), config)
            XCTAssertTrue(message.contains(location), "\(config): \(message)")
            XCTAssertTrue(message.contains(text), "\(config): \(message)")
        }
    }

    func testKerasDepthwiseAndSeparable() {
        for name in ["depthwise2d_multiplier", "depthwise2d_same_strides", "depthwise2d_dilation", "depthwise2d_strided_dilation",
                     "depthwise1d", "depthwise1d_dilation", "separable2d", "separable2d_dilation", "separable2d_strided_dilation", "separable1d", "separable1d_strides"] {
            assertMatchesKeras(name)
        }
    }
}
