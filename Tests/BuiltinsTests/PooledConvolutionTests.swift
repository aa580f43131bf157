import XCTest
@testable import Builtins
import LayerRegistry

/// A Conv2D (with the BatchNormalization and activation it took over) takes over the max pooling
/// after it when the pooling windows do not overlap along rows (`PooledConvolution`); the fused
/// model must give the layers' own bits, on one thread and on two, at batch 1 and batch 3.
final class PooledConvolutionTests: XCTestCase {
    func layers(convolution: String, pooling: String) -> [String] {
        [#"{"class_name": "Conv2D", "config": {"name": "c", "filters": 32, "kernel_size": 3, \#(convolution)}}"#,
         #"{"class_name": "BatchNormalization", "config": {"name": "b"}}"#,
         #"{"class_name": "ReLU", "config": {"name": "r"}}"#,
         #"{"class_name": "MaxPooling2D", "config": {"name": "p", \#(pooling)}}"#,
         #"{"class_name": "Flatten", "config": {"name": "f"}}"#]
    }

    func weights(channels: Int) -> [String: ([Int], [Float])] {
        var random = SplitMix(seed: 61)
        var weights: [String: ([Int], [Float])] = [:]
        weights["c/kernel"] = ([3, 3, channels, 32], random.floats(9 * channels * 32))
        weights["c/bias"] = ([32], random.floats(32))
        weights["b/gamma"] = ([32], random.floats(32).map { 1 + $0 / 2 })
        weights["b/beta"] = ([32], random.floats(32))
        weights["b/moving_mean"] = ([32], random.floats(32))
        weights["b/moving_variance"] = ([32], random.floats(32).map { 1 + abs($0) })
        return weights
    }

    /// Builds the model of `layers` fused and apart on an input of `size` × `channels` and checks
    /// that the convolution took over the pooling and that the fused model gives the layers'
    /// own bits (NaN included), on one thread and two, at batch 1 and 3. With `nans`, some
    /// inputs are NaN.
    func assertFusedMatchesApart(_ layers: [String], size: [Int], channels: Int, seed: UInt64, nans: Bool,
                                 _ context: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let input: [Int?] = [size[0], size[1], channels]
        let fused = try HandBuilt.model(input: input, layers: layers, weights: weights(channels: channels))
        let apart = try HandBuilt.model(input: input, layers: layers, weights: weights(channels: channels), fuse: false)
        XCTAssertEqual(fused.steps.map(\.nodes), [[0], [1, 2, 3, 4], [5]], context, file: file, line: line)
        for batch in [1, 3] {
            var random = SplitMix(seed: seed + UInt64(batch))
            var data = random.floats(batch * size[0] * size[1] * channels)
            if nans { for index in stride(from: 5, to: data.count, by: 997) { data[index] = .nan } }
            let x = Tensor(shape: [batch, size[0], size[1], channels], data: data)
            let want = try apart.predict(x, threads: 1)
            for threads in [1, 2] {
                let got = try fused.predict(x, threads: threads)
                let label = "\(context), batch \(batch), \(threads) threads"
                XCTAssertEqual(got.shape, want.shape, label, file: file, line: line)
                XCTAssertEqual(got.data.map(\.bitPattern), want.data.map(\.bitPattern), label, file: file, line: line)
            }
        }
    }

    /// The pooling configs that fuse: 2×2 "valid" (odd sizes drop a row and a column), a window
    /// narrower than its stride, "same" padding, and a strided convolution before.
    func testAConvolutionTakesOverTheMaxPoolingAfterIt() throws {
        let cases: [(String, String)] = [(#""padding": "same""#, #""pool_size": 2"#),
                                         (#""padding": "valid""#, #""pool_size": [2, 1], "strides": [3, 2]"#),
                                         (#""padding": "same""#, #""pool_size": 3, "strides": 3, "padding": "same""#),
                                         (#""padding": "same", "strides": 2"#, #""pool_size": 2, "padding": "same""#)]
        for (convolution, pooling) in cases {
            try assertFusedMatchesApart(layers(convolution: convolution, pooling: pooling), size: [21, 19], channels: 8, seed: 62,
                                        nans: false, pooling)
        }
    }

    /// A 3×3 convolution that runs as Winograd (16 channels or more on the AVX2 and AVX-512
    /// paths) pools each 2×2 tile in the kernel's store under a 2×2 pooling at stride 2: the same
    /// bits as the layers apart, for "valid" and "same" pooling of odd and even sizes, NaN inputs
    /// included (the pooling passes over NaN), on one thread and two, at batch 1 and 3.
    func testAWinogradConvolutionPoolsItsTiles() throws {
        let cases: [(String, String)] = [(#""padding": "same""#, #""pool_size": 2"#),
                                         (#""padding": "same""#, #""pool_size": [2, 2], "strides": 2, "padding": "same""#),
                                         (#""padding": "valid""#, #""pool_size": 2, "padding": "same""#),
                                         (#""padding": "valid""#, #""pool_size": 2"#)]
        for size in [[21, 19], [12, 10]] {
            for (convolution, pooling) in cases {
                try assertFusedMatchesApart(layers(convolution: convolution, pooling: pooling), size: size, channels: 16, seed: 70,
                                            nans: true, "\(size), \(convolution), \(pooling)")
            }
        }
    }

    /// Windows that overlap along rows would have two parts compute the same convolution rows:
    /// that pooling runs apart.
    func testOverlappingWindowsRunApart() throws {
        let layers = layers(convolution: #""padding": "same""#, pooling: #""pool_size": 3, "strides": 2"#)
        let model = try HandBuilt.model(input: [9, 9, 8], layers: layers, weights: weights(channels: 8))
        XCTAssertEqual(model.steps.map(\.nodes), [[0], [1, 2, 3], [4], [5]])
    }
}
