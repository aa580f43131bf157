import CKernels
import XCTest
@testable import Builtins
import LayerRegistry

/// A 1×1 convolution and the depthwise convolution that alone reads it (with their
/// normalizations, activations and a zero padding between them) run as one step
/// (`PointwiseDepthwise`), in bands of rows: the same bits as the layers apart, whatever the
/// band, the batch or the threads.
final class PointwiseDepthwiseTests: XCTestCase {
    struct Case {
        let input: [Int]
        let filters: Int
        /// The 1×1 convolution's own config besides its name, filters and kernel size.
        let convolution: String
        /// Layers between the convolution (named "c") and the depthwise convolution ("d").
        let between: [String]
        let depthwise: String
        let multiplier: Int
        let kernel: [Int]
        /// Layers after the depthwise convolution.
        let after: [String]
    }

    static let bn = #"{"class_name": "BatchNormalization", "config": {"name": "b"}}"#
    static let relu6 = #"{"class_name": "ReLU", "config": {"name": "r", "max_value": 6}}"#
    static let dbn = #"{"class_name": "BatchNormalization", "config": {"name": "e"}}"#
    static let drelu6 = #"{"class_name": "ReLU", "config": {"name": "s", "max_value": 6}}"#

    static let cases: [Case] = [
        // MobileNetV2's stride-1 block.
        Case(input: [20, 18, 24], filters: 48, convolution: #""use_bias": false"#, between: [bn, relu6],
             depthwise: #""kernel_size": 3, "padding": "same", "use_bias": false"#, multiplier: 1, kernel: [3, 3], after: [dbn, drelu6]),
        // Its stride-2 block, an odd height.
        Case(input: [21, 17, 24], filters: 40, convolution: #""use_bias": false"#,
             between: [bn, relu6, #"{"class_name": "ZeroPadding2D", "config": {"name": "p", "padding": [[0, 1], [0, 1]]}}"#],
             depthwise: #""kernel_size": 3, "strides": 2, "use_bias": false"#, multiplier: 1, kernel: [3, 3], after: [dbn, drelu6]),
        // Activations no store applies, a dilation and a depth multiplier.
        Case(input: [19, 16, 24], filters: 36, convolution: #""activation": "swish""#, between: [],
             depthwise: #""kernel_size": [3, 2], "dilation_rate": 2, "padding": "same", "activation": "tanh""#, multiplier: 2, kernel: [3, 2], after: []),
        // A padding past the kernel's reach (the first output rows read only zeros) and strides along rows only.
        Case(input: [18, 20, 24], filters: 44, convolution: "",
             between: [#"{"class_name": "ZeroPadding2D", "config": {"name": "p", "padding": [[4, 0], [1, 1]]}}"#],
             depthwise: #""kernel_size": 3, "strides": [2, 1]"#, multiplier: 1, kernel: [3, 3], after: [dbn]),
    ]

    /// The convolution and what it takes over; the padding, the depthwise convolution and what it takes over.
    func layers(_ test: Case) -> (first: [String], second: [String]) {
        let convolution = #"{"class_name": "Conv2D", "config": {"name": "c", "filters": \#(test.filters), "kernel_size": 1, \#(test.convolution.isEmpty ? "" : test.convolution + ",") "strides": 1}}"#
        let padding = test.between.filter { $0.contains("ZeroPadding2D") }
        let depthwise = #"{"class_name": "DepthwiseConv2D", "config": {"name": "d", "depth_multiplier": \#(test.multiplier), \#(test.depthwise)}}"#
        return ([convolution] + test.between.filter { !padding.contains($0) }, padding + [depthwise] + test.after)
    }

    /// The model of `layers` on `input` with the case's weights (those its layers read).
    func model(_ test: Case, _ layers: [String], input: [Int], fuse: Bool = true) throws -> Model {
        let (first, second) = self.layers(test)
        let channels = test.input[2], width = test.filters * test.multiplier
        func named(_ name: String, in layers: [String]) -> Bool { layers.contains { $0.contains(#""name": "\#(name)""#) } }
        var weights = StoreFusionTests.weights(convolutions: ["c": [1, 1, channels, test.filters]],
                                               biased: test.convolution.contains("use_bias") ? [] : ["c"],
                                               normalizations: ["b": test.filters, "e": width].filter { named($0.key, in: first + second) },
                                               seed: UInt64(test.filters))
        var random = SplitMix(seed: UInt64(test.input[0]))
        weights["d/kernel"] = (test.kernel + [test.filters, test.multiplier], random.floats(test.kernel.reduce(1, *) * width))
        if !test.depthwise.contains("use_bias") { weights["d/bias"] = ([width], random.floats(width)) }
        return try HandBuilt.model(input: input, layers: layers, weights: weights.filter { named(String($0.key.prefix(1)), in: layers) }, fuse: fuse)
    }

    func testTheExpansionAndTheDepthwiseConvolutionRunAsOneStepWithTheLayersBits() throws {
        for (index, test) in Self.cases.enumerated() {
            let (first, second) = layers(test)
            let fused = try model(test, first + second, input: test.input)
            // Each layer with what it takes over alone (a folded normalization rounds apart from
            // the layer's own), and every layer apart.
            let convolution = try model(test, first, input: test.input)
            let depthwise = try model(test, second, input: Array(test.input.prefix(2)) + [test.filters])
            let apart = try model(test, first + second, input: test.input, fuse: false)
            let layerCount = first.count + second.count
            // Only where the convolution runs on the packed kernel (not on the portable path).
            guard Gemm.useAVX2Kernels else {
                XCTAssertEqual(fused.steps.map(\.nodes), [[0], Array(1...first.count), Array(first.count + 1...layerCount)], "case \(index)")
                continue
            }
            XCTAssertEqual(fused.steps.map(\.nodes), [[0], Array(1...layerCount)], "case \(index)")
            guard var layer = fused.steps.last?.layer as? PointwiseDepthwise else { return XCTFail("case \(index): not fused") }
            XCTAssertNotNil(layer.depthwise)
            XCTAssertNil(layer.padding, "the depthwise convolution took the padding over")
            layer.smallestFusedImage = 0
            let rowBytes = test.input[1] * test.filters * MemoryLayout<Float>.size
            var random = SplitMix(seed: 90 + UInt64(index))
            for batch in [1, 3] {
                let x = Tensor(shape: [batch] + test.input, data: random.floats(batch * test.input.reduce(1, *)))
                let want = try depthwise.predict(convolution.predict(x))
                assertClose(want.data, try apart.predict(x).data, tolerance: 1e-5)
                XCTAssertNil(firstDifference(try fused.predict(x).data, want.data), "case \(index), batch \(batch), as built (kernel path \(Gemm.kernelPath))")
                // One output row a band, a few, and the whole image in one.
                for bandBytes in [1, 7 * rowBytes, Int.max / 2] {
                    layer.bandBytes = bandBytes
                    for threads in [1, 2] {
                        let got = try Gemm.withThreads(threads) { try layer.apply(x) }
                        XCTAssertEqual(got.shape, want.shape)
                        XCTAssertNil(firstDifference(got.data, want.data), "case \(index), batch \(batch), band \(bandBytes) B, \(threads) threads (kernel path \(Gemm.kernelPath))")
                    }
                }
            }
        }
    }

    /// A short image (MobileNetV2's 14×14 blocks) runs in bands on two threads, each buffer
    /// holding its own part's rows and those its windows reach, within the memory the step plans
    /// (the expanded image and the rows two parts expand again); cut between more threads than
    /// that allows, the layers run apart.
    func testAShortImageRunsInBandsOnTwoThreadsWithinItsPlan() throws {
        // 14 output rows at stride 1 (span 3) in two parts of 7: buffers of 9 rows, 4 beyond the
        // image's 14, inside the plan's 6; in seven parts of 2, buffers of 4 rows, 28 in all.
        XCTAssertEqual(PointwiseDepthwise.bufferRows(parts: [0..<7, 7..<14], bandRows: 14, stride: 1, span: 3, expandedRows: 14, imageRows: 14), 9)
        XCTAssertNil(PointwiseDepthwise.bufferRows(parts: (0..<7).map { ($0 * 2)..<($0 * 2 + 2) }, bandRows: 14, stride: 1, span: 3,
                                                   expandedRows: 14, imageRows: 14))
        // Stride 2 (MobileNetV2's 28 → 14 block): parts of 7 output rows read 15 of the 29 rows.
        XCTAssertEqual(PointwiseDepthwise.bufferRows(parts: [0..<7, 7..<14], bandRows: 14, stride: 2, span: 3, expandedRows: 29, imageRows: 29), 15)
        // A band smaller than the part bounds the buffer.
        XCTAssertEqual(PointwiseDepthwise.bufferRows(parts: [0..<7, 7..<14], bandRows: 2, stride: 1, span: 3, expandedRows: 14, imageRows: 14), 4)
        // Cut unevenly (the threads' speeds apart), the longer part's buffer would take two parts
        // past the plan: the step then cuts evenly (`inBands`), which fits.
        XCTAssertNil(PointwiseDepthwise.bufferRows(parts: [0..<10, 10..<14], bandRows: 14, stride: 1, span: 3, expandedRows: 14, imageRows: 14))
        let even = Gemm.withThreads(2) { PointwiseDepthwise.parts(images: 1, rows: 14, work: .max, byShares: false) }
        if nnb_pool_threads() > 1 { XCTAssertEqual(even, [0..<7, 7..<14]) }

        guard Gemm.useAVX2Kernels else { return }
        let test = Self.cases[0]
        let (first, second) = layers(test)
        let input = [14, 14, test.input[2]]
        let fused = try model(test, first + second, input: input)
        let convolution = try model(test, first, input: input)
        let depthwise = try model(test, second, input: [14, 14, test.filters])
        var layer = try XCTUnwrap(fused.steps.last?.layer as? PointwiseDepthwise)
        layer.smallestFusedImage = 0
        XCTAssertEqual(layer.workingSet(input: [1] + input).scratch, 14 * 14 * 48 + 2 * 3 * 14 * 48)
        var random = SplitMix(seed: 97)
        let x = Tensor(shape: [1] + input, data: random.floats(input.reduce(1, *)))
        let want = try depthwise.predict(convolution.predict(x))
        for threads in [1, 2] {
            XCTAssertNil(firstDifference(try Gemm.withThreads(threads) { try layer.apply(x) }.data, want.data), "\(threads) threads")
        }
    }

    /// Only a 1×1 convolution at stride 1 takes the depthwise convolution over; one that took a
    /// padding which a max pooling follows hands the padding to the pooling, which reads it in
    /// place after the convolution, in the same step (`LayerPair`).
    func testOnlyAPointwiseConvolutionTakesADepthwiseOneOver() throws {
        let depthwise = #"{"class_name": "DepthwiseConv2D", "config": {"name": "d", "kernel_size": 3}}"#
        var random = SplitMix(seed: 95)
        let all: [String: ([Int], [Float])] = ["c/kernel": ([1, 1, 4, 8], random.floats(32)), "c/bias": ([8], random.floats(8)),
                                                "k/kernel": ([3, 3, 4, 8], random.floats(288)), "k/bias": ([8], random.floats(8)),
                                                "d/kernel": ([3, 3, 8, 1], random.floats(72)), "d/bias": ([8], random.floats(8))]
        func weights(_ layers: [String]) -> [String: ([Int], [Float])] {
            all.filter { name, _ in layers.contains { $0.contains(#""name": "\#(name.prefix(1))""#) } }
        }
        let strided = [#"{"class_name": "Conv2D", "config": {"name": "c", "filters": 8, "kernel_size": 1, "strides": 2}}"#, depthwise]
        let wide = [#"{"class_name": "Conv2D", "config": {"name": "k", "filters": 8, "kernel_size": 3}}"#, depthwise]
        XCTAssertEqual(try HandBuilt.model(input: [12, 12, 4], layers: strided, weights: weights(strided)).steps.map(\.nodes), [[0], [1], [2]])
        XCTAssertEqual(try HandBuilt.model(input: [12, 12, 4], layers: wide, weights: weights(wide)).steps.map(\.nodes), [[0], [1], [2]])
        let pooled = [#"{"class_name": "Conv2D", "config": {"name": "c", "filters": 8, "kernel_size": 1}}"#,
                      #"{"class_name": "ZeroPadding2D", "config": {"name": "p", "padding": 1}}"#,
                      #"{"class_name": "MaxPooling2D", "config": {"name": "m", "pool_size": 2}}"#]
        let fused = try HandBuilt.model(input: [12, 12, 4], layers: pooled, weights: weights(pooled))
        XCTAssertEqual(fused.steps.map(\.nodes), Gemm.useAVX2Kernels ? [[0], [1, 2, 3]] : [[0], [1], [2, 3]])
        if Gemm.useAVX2Kernels {
            let pair = try XCTUnwrap(fused.steps.last?.layer as? LayerPair)
            XCTAssertNotNil((pair.second as? Pooling)?.zeroPadding, "the pooling reads the padding in place")
        }
        let apart = try HandBuilt.model(input: [12, 12, 4], layers: pooled, weights: weights(pooled), fuse: false)
        let x = Tensor(shape: [2, 12, 12, 4], data: random.floats(1152))
        XCTAssertEqual(try fused.predict(x).data, try apart.predict(x).data)
    }

    /// The first index where `got` and `want` differ in bits (or in count), nil when they agree.
    func firstDifference(_ got: [Float], _ want: [Float]) -> String? {
        guard got.count == want.count else { return "\(got.count) elements, expected \(want.count)" }
        guard let index = got.indices.first(where: { got[$0].bitPattern != want[$0].bitPattern }) else { return nil }
        return "[\(index)]: \(got[index]), expected \(want[index])"
    }
}
