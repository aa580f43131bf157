import XCTest
@testable import Builtins
import LayerRegistry

/// `data_format: "channels_first"` layers (`ChannelsFirst`): each must give exactly what the
/// same layer gives channels-last on the transposed input, transposed back, alone and in the
/// runs a step fuses. The Keras fixtures `channels_first_cnn` and `channels_first_sequences`
/// check the values against Keras itself.
final class ChannelsFirstTests: XCTestCase {
    /// `layer` (JSON with `FORMAT` where the data format goes) on channels-first samples of
    /// `shape`, against its channels-last form on the transposed batch.
    private func assertMatchesChannelsLast(_ layer: String, shape: [Int], channelAxis: Int = 0, weights: [String: [Int]] = [:],
                                           file: StaticString = #filePath, line: UInt = #line) throws {
        var generator = SplitMix(seed: UInt64(shape.reduce(7, { $0 * 31 + $1 })))
        let values = weights.mapValues { ($0, generator.floats($0.reduce(1, *))) }
        let rank = shape.count
        let toLast = Array(0..<channelAxis) + Array((channelAxis + 1)..<rank) + [channelAxis]
        let first = try HandBuilt.model(input: shape, layers: [layer.replacingOccurrences(of: "FORMAT", with: "channels_first")], weights: values)
        let last = try HandBuilt.model(input: toLast.map { shape[$0] }, layers: [layer.replacingOccurrences(of: "FORMAT", with: "channels_last")],
                                       weights: values)
        let batch = 2
        let x = generator.floats(batch * shape.reduce(1, *))
        let got = try HandBuilt.run(first, shape: [batch] + shape, x)
        let moved = permuteAxesNaive(x, batch: batch, shape: shape, order: toLast)
        let reference = try HandBuilt.run(last, shape: [batch] + toLast.map { shape[$0] }, moved)
        let produced = Array(reference.shape.dropFirst())
        let outputAxis = channelAxis - (rank - produced.count)
        var expected = reference.data, expectedShape = reference.shape
        if produced.count >= 2, outputAxis >= 0 {
            let back = Array(0..<outputAxis) + [produced.count - 1] + Array(outputAxis..<(produced.count - 1))
            expected = permuteAxesNaive(reference.data, batch: batch, shape: produced, order: back)
            expectedShape = [batch] + back.map { produced[$0] }
        }
        XCTAssertEqual(got.shape, expectedShape, file: file, line: line)
        assertClose(got.data, expected, tolerance: 1e-5, layer, file: file, line: line)
    }

    func testConvolutionsMatchTheirChannelsLastForm() throws {
        try assertMatchesChannelsLast(#"{"class_name": "Conv3D", "config": {"name": "c", "filters": 4, "kernel_size": 2, "padding": "same", "data_format": "FORMAT"}}"#,
                                      shape: [2, 5, 6, 4], weights: ["c/kernel": [2, 2, 2, 2, 4], "c/bias": [4]])
        try assertMatchesChannelsLast(#"{"class_name": "Conv2D", "config": {"name": "c", "filters": 3, "kernel_size": 3, "strides": 2, "data_format": "FORMAT"}}"#,
                                      shape: [4, 9, 7], weights: ["c/kernel": [3, 3, 4, 3], "c/bias": [3]])
        try assertMatchesChannelsLast(#"{"class_name": "Conv1D", "config": {"name": "c", "filters": 3, "kernel_size": 2, "padding": "causal", "data_format": "FORMAT"}}"#,
                                      shape: [5, 8], weights: ["c/kernel": [2, 5, 3], "c/bias": [3]])
        try assertMatchesChannelsLast(#"{"class_name": "DepthwiseConv2D", "config": {"name": "c", "kernel_size": 3, "padding": "same", "data_format": "FORMAT"}}"#,
                                      shape: [3, 6, 5], weights: ["c/kernel": [3, 3, 3, 1], "c/bias": [3]])
        try assertMatchesChannelsLast(#"{"class_name": "Conv2DTranspose", "config": {"name": "c", "filters": 2, "kernel_size": 3, "strides": 2, "data_format": "FORMAT"}}"#,
                                      shape: [3, 4, 5], weights: ["c/kernel": [3, 3, 2, 3], "c/bias": [2]])
    }

    func testPoolingPaddingAndFlattenMatchTheirChannelsLastForm() throws {
        try assertMatchesChannelsLast(#"{"class_name": "MaxPooling3D", "config": {"name": "p", "pool_size": [1, 2, 2], "data_format": "FORMAT"}}"#, shape: [3, 4, 6, 4])
        try assertMatchesChannelsLast(#"{"class_name": "AveragePooling2D", "config": {"name": "p", "pool_size": 3, "strides": 2, "padding": "same", "data_format": "FORMAT"}}"#, shape: [2, 7, 6])
        try assertMatchesChannelsLast(#"{"class_name": "ZeroPadding3D", "config": {"name": "p", "padding": 1, "data_format": "FORMAT"}}"#, shape: [2, 3, 2, 4])
        try assertMatchesChannelsLast(#"{"class_name": "Cropping2D", "config": {"name": "p", "cropping": [[1, 0], [0, 2]], "data_format": "FORMAT"}}"#, shape: [2, 4, 5])
        try assertMatchesChannelsLast(#"{"class_name": "UpSampling2D", "config": {"name": "p", "size": [2, 3], "interpolation": "bilinear", "data_format": "FORMAT"}}"#, shape: [2, 3, 4])
        try assertMatchesChannelsLast(#"{"class_name": "Flatten", "config": {"name": "p", "data_format": "FORMAT"}}"#, shape: [3, 2, 4])
    }

    /// ConvLSTM's channels follow its time axis, and without return_sequences its output has no time axis.
    func testConvLSTMKeepsTheTimeAxisFirst() throws {
        let weights = ["c/cell/kernel": [3, 3, 2, 8], "c/cell/recurrent_kernel": [3, 3, 2, 8], "c/cell/bias": [8]]
        for sequences in [true, false] {
            try assertMatchesChannelsLast(#"{"class_name": "ConvLSTM2D", "config": {"name": "c", "filters": 2, "kernel_size": 3, "padding": "same", "return_sequences": \#(sequences), "data_format": "FORMAT"}}"#,
                                          shape: [3, 2, 4, 5], channelAxis: 1, weights: weights)
        }
    }

    /// Conv → BatchNormalization(axis=1) → ReLU → MaxPooling2D runs as one step: one transpose
    /// in and one out, the convolution taking over the normalization and activation.
    func testARunOfChannelsFirstLayersIsOneStep() throws {
        let layers = [
            #"{"class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": 3, "padding": "same", "data_format": "channels_first"}}"#,
            #"{"class_name": "BatchNormalization", "config": {"name": "n", "axis": 1}}"#,
            #"{"class_name": "ReLU", "config": {"name": "r"}}"#,
            #"{"class_name": "MaxPooling2D", "config": {"name": "p", "data_format": "channels_first"}}"#,
        ]
        var generator = SplitMix(seed: 11)
        var weights: [String: ([Int], [Float])] = ["c/kernel": ([3, 3, 2, 4], generator.floats(72)), "c/bias": ([4], generator.floats(4))]
        for name in ["gamma", "beta", "moving_mean"] { weights["n/\(name)"] = ([4], generator.floats(4)) }
        weights["n/moving_variance"] = ([4], generator.floats(4).map { abs($0) + 0.5 })
        let fused = try HandBuilt.model(input: [2, 6, 8], layers: layers, weights: weights)
        let apart = try HandBuilt.model(input: [2, 6, 8], layers: layers, weights: weights, fuse: false)
        XCTAssertEqual(fused.steps.map(\.nodes), [[0], [1, 2, 3, 4]])
        // One layer inside the transposes: the convolution took the normalization, the activation
        // and the pooling over (a LayerPair would run the normalization as a pass of its own).
        let inner = try XCTUnwrap(fused.steps[1].layer as? ChannelsFirst).layer
        XCTAssertFalse(inner is LayerPair, "\(type(of: inner))")
        let x = generator.floats(2 * 2 * 6 * 8)
        let got = try HandBuilt.run(fused, shape: [2, 2, 6, 8], x), want = try HandBuilt.run(apart, shape: [2, 2, 6, 8], x)
        XCTAssertEqual(got.shape, [2, 4, 3, 4])
        assertClose(got.data, want.data, tolerance: 1e-5)
    }

    /// An activation that the layer before it does not take over runs inside the run on the
    /// channels-last data, whatever shape it was built for.
    func testAnActivationBetweenLayersThatDoNotAbsorbIt() throws {
        let layers = [
            #"{"class_name": "Cropping2D", "config": {"name": "c", "cropping": [[1, 0], [0, 2]], "data_format": "channels_first"}}"#,
            #"{"class_name": "Activation", "config": {"name": "a", "activation": "tanh"}}"#,
            #"{"class_name": "UpSampling2D", "config": {"name": "u", "size": [1, 2], "data_format": "channels_first"}}"#,
        ]
        let fused = try HandBuilt.model(input: [3, 5, 7], layers: layers)
        let apart = try HandBuilt.model(input: [3, 5, 7], layers: layers, fuse: false)
        XCTAssertEqual(fused.steps.map(\.nodes), [[0], [1, 2, 3]])
        var generator = SplitMix(seed: 5)
        let x = generator.floats(2 * 3 * 5 * 7)
        let got = try HandBuilt.run(fused, shape: [2, 3, 5, 7], x), want = try HandBuilt.run(apart, shape: [2, 3, 5, 7], x)
        XCTAssertEqual(got.shape, [2, 3, 4, 10])
        XCTAssertEqual(got.data, want.data)
    }

    func testChannelsFirstInputErrorsNameTheChannelsFirstShape() throws {
        let layer = #"{"class_name": "Conv2D", "config": {"name": "c", "filters": 1, "kernel_size": 1, "data_format": "channels_first"}}"#
        let model = try HandBuilt.model(input: [3, 4, 4], layers: [layer])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 4, 4, 3], Array(repeating: 0, count: 48))) { error in
            XCTAssertTrue("\(error)".contains("(None, 3, 4, 4)"), "\(error)")
        }
    }
}
