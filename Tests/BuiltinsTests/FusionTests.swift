import XCTest
@testable import Builtins
import LayerRegistry

/// A layer with a linear activation takes over the element-wise activation layer after it
/// (`FusesNext`); the fused model must compute what the layers compute one after the other.
final class FusionTests: XCTestCase {
    static let layers = [
        #"{"class_name": "Conv2D", "config": {"name": "c1", "filters": 3, "kernel_size": 3, "padding": "same"}}"#,
        #"{"class_name": "ReLU", "config": {"name": "r1"}}"#,
        // Already has an activation: the Activation layer after it stays a step of its own.
        #"{"class_name": "Conv2D", "config": {"name": "c2", "filters": 2, "kernel_size": 2, "activation": "tanh"}}"#,
        #"{"class_name": "Activation", "config": {"name": "a2", "activation": "relu"}}"#,
        #"{"class_name": "Flatten", "config": {"name": "f"}}"#,
        #"{"class_name": "Dense", "config": {"name": "d1", "units": 4}}"#,
        #"{"class_name": "LeakyReLU", "config": {"name": "l1", "negative_slope": 0.1}}"#,
        #"{"class_name": "Dense", "config": {"name": "d2", "units": 3}}"#,
        // Softmax works over an axis, not element by element: never fused.
        #"{"class_name": "Activation", "config": {"name": "s", "activation": "softmax"}}"#,
    ]

    func weights() -> [String: ([Int], [Float])] {
        var random = SplitMix(seed: 7)
        let shapes: [String: [Int]] = ["c1/kernel": [3, 3, 2, 3], "c1/bias": [3], "c2/kernel": [2, 2, 3, 2], "c2/bias": [2],
                                       "d1/kernel": [50, 4], "d1/bias": [4], "d2/kernel": [4, 3], "d2/bias": [3]]
        // Drawn in sorted order: a dictionary's own order differs from one instance to the next.
        var weights: [String: ([Int], [Float])] = [:]
        for name in shapes.keys.sorted() {
            guard let shape = shapes[name] else { continue }
            weights[name] = (shape, random.floats(shape.reduce(1, *)))
        }
        return weights
    }

    func testConvolutionAndDenseAbsorbTheActivationAfterThem() throws {
        let layers = Self.layers
        let fused = try HandBuilt.model(input: [6, 6, 2], layers: layers, weights: weights())
        let apart = try HandBuilt.model(input: [6, 6, 2], layers: layers, weights: weights(), fuse: false)
        // Node 0 is the InputLayer.
        XCTAssertEqual(fused.steps.map(\.nodes), [[0], [1, 2], [3], [4], [5], [6, 7], [8], [9]])
        XCTAssertEqual(apart.steps.count, apart.nodes.count)
        XCTAssertEqual(fused.nodes.count, apart.nodes.count, "the summary keeps every layer")
        var random = SplitMix(seed: 8)
        let x = Tensor(shape: [3, 6, 6, 2], data: random.floats(3 * 72))
        let want = try apart.predict(x), got = try fused.predict(x)
        XCTAssertEqual(got.shape, want.shape)
        assertClose(got.data, want.data, tolerance: 1e-6)
    }

    func testAConvolutionAbsorbsOnlyOneActivation() throws {
        let layers = [Self.layers[0], Self.layers[1], #"{"class_name": "ReLU", "config": {"name": "r2", "max_value": 6}}"#]
        let model = try HandBuilt.model(input: [4, 4, 2], layers: layers, weights: ["c1/kernel": ([3, 3, 2, 3], [Float](repeating: 0.1, count: 54)), "c1/bias": ([3], [0, 0, 0])])
        XCTAssertEqual(model.steps.map(\.nodes), [[0], [1, 2], [3]])
    }
}

/// An Embedding fuses with the recurrent layer after it: the layer looks its input projections up
/// in a table of E·W + b (made on the second call or for a large batch) instead of multiplying.
final class TokenFusionTests: XCTestCase {
    func model(_ recurrent: String, prefixes: [String], fuse: Bool) throws -> Model {
        let layers = [#"{"class_name": "Embedding", "config": {"name": "e", "input_dim": 40, "output_dim": 6, "mask_zero": true}}"#, recurrent,
                      #"{"class_name": "Dense", "config": {"name": "d", "units": 2}}"#]
        var random = SplitMix(seed: 21)
        let outputs = 5 * prefixes.count
        var weights: [String: ([Int], [Float])] = ["e/embeddings": ([40, 6], random.floats(240)),
                                                   "d/kernel": ([outputs, 2], random.floats(outputs * 2)), "d/bias": ([2], random.floats(2))]
        for prefix in prefixes {
            weights[prefix + "/kernel"] = ([6, 20], random.floats(120))
            weights[prefix + "/recurrent_kernel"] = ([5, 20], random.floats(100))
            weights[prefix + "/bias"] = ([20], random.floats(20))
        }
        return try HandBuilt.model(input: [nil], layers: layers, weights: weights, fuse: fuse)
    }

    func testFusedRecurrentLayersMatchTheUnfusedOnEveryPath() throws {
        let lstm = #"{"class_name": "LSTM", "config": {"name": "r", "units": 5}}"#
        let bidirectional = #"{"class_name": "Bidirectional", "config": {"name": "b", "layer": {"class_name": "LSTM", "config": {"name": "r", "units": 5, "return_sequences": false}}}}"#
        for (name, recurrent, prefixes) in [("LSTM", lstm, ["r"]), ("Bidirectional", bidirectional, ["b/forward_r", "b/backward_r"])] {
            let fused = try model(recurrent, prefixes: prefixes, fuse: true), apart = try model(recurrent, prefixes: prefixes, fuse: false)
            XCTAssertEqual(fused.steps.count, apart.steps.count - 1, "\(name): the Embedding fuses with the layer after it")
            // One short row first (its few projections computed directly), then the same row again
            // (now from the table), then a batch with padding and a fully padded row.
            let single = Tensor(shape: [1, 3], data: [5, 17, 39])
            let batch = Tensor(shape: [3, 4], data: [1, 2, 3, 0, 39, 0, 0, 0, 0, 0, 0, 0])
            for (label, input) in [("first call", single), ("second call", single), ("batch", batch)] {
                let got = try fused.predict(input), want = try apart.predict(input)
                assertClose(got.data, want.data, tolerance: 1e-6, "\(name), \(label)")
            }
            // An id out of range gives the Embedding's message either way.
            let bad = Tensor(shape: [1, 2], data: [3, 40])
            var messages: [String] = []
            for model in [fused, apart] {
                do {
                    _ = try model.predict(bad)
                    XCTFail("\(name): id 40 of 40 accepted")
                } catch {
                    messages.append("\(error)")
                }
            }
            XCTAssertEqual(messages.first, messages.last, name)
            XCTAssertEqual(messages.count, 2)
        }
    }
}

/// A convolution takes over the BatchNormalization, the residual Add and the activation after it
/// (`ConvolutionStore`, `ResidualConvolution`), through `Model.steps`'s one rule: a successor
/// whose only input not yet computed is the step's output, and which is its only reader. The
/// fused run must be bit-identical to the layers run one after the other.
final class StoreFusionTests: XCTestCase {
    typealias Call = FunctionalText.Call

    /// Random kernels and biases, and BatchNormalization weights with positive variances.
    static func weights(convolutions: [String: [Int]], biased: Set<String>, normalizations: [String: Int], seed: UInt64) -> [String: ([Int], [Float])] {
        var random = SplitMix(seed: seed)
        var weights: [String: ([Int], [Float])] = [:]
        for name in convolutions.keys.sorted() {
            guard let shape = convolutions[name] else { continue }
            weights[name + "/kernel"] = (shape, random.floats(shape.reduce(1, *)))
            if biased.contains(name), let filters = shape.last { weights[name + "/bias"] = ([filters], random.floats(filters)) }
        }
        for name in normalizations.keys.sorted() {
            guard let features = normalizations[name] else { continue }
            weights[name + "/gamma"] = ([features], random.floats(features))
            weights[name + "/beta"] = ([features], random.floats(features))
            weights[name + "/moving_mean"] = ([features], random.floats(features))
            weights[name + "/moving_variance"] = ([features], random.floats(features).map { abs($0) + 0.5 })
        }
        return weights
    }

    /// Two ResNet blocks (a projection shortcut and a 3-input Add, then an identity shortcut with
    /// the convolution first in its Add), a BatchNormalization read twice, and a convolution whose
    /// output is a model output.
    static let blocks: [Call] = [
        Call(name: "c1", className: "Conv2D", config: #""filters": 16, "kernel_size": 3, "padding": "same", "use_bias": false"#, reads: ["x"]),
        Call(name: "b1", className: "BatchNormalization", config: #""epsilon": 0.001"#, reads: ["c1"]),
        Call(name: "r1", className: "ReLU", config: "", reads: ["b1"]),
        Call(name: "sc", className: "Conv2D", config: #""filters": 16, "kernel_size": 1"#, reads: ["x"]),
        Call(name: "bsc", className: "BatchNormalization", config: "", reads: ["sc"]),
        Call(name: "c2", className: "Conv2D", config: #""filters": 16, "kernel_size": 3, "padding": "same", "use_bias": false"#, reads: ["r1"]),
        Call(name: "b2", className: "BatchNormalization", config: "", reads: ["c2"]),
        Call(name: "add1", className: "Add", config: "", reads: ["bsc", "b2", "x"]),
        Call(name: "o1", className: "Activation", config: #""activation": "relu""#, reads: ["add1"]),
        Call(name: "c3", className: "Conv2D", config: #""filters": 16, "kernel_size": 3, "padding": "same""#, reads: ["o1"]),
        Call(name: "b3", className: "BatchNormalization", config: #""scale": false"#, reads: ["c3"]),
        Call(name: "add2", className: "Add", config: "", reads: ["b3", "o1"]),
        Call(name: "o2", className: "ReLU", config: "", reads: ["add2"]),
        Call(name: "c4", className: "Conv2D", config: #""filters": 8, "kernel_size": 3, "strides": 2, "padding": "same", "use_bias": false"#, reads: ["o2"]),
        Call(name: "b4", className: "BatchNormalization", config: "", reads: ["c4"]),
        Call(name: "r4", className: "Activation", config: #""activation": "relu6""#, reads: ["b4"]),
        Call(name: "add3", className: "Add", config: "", reads: ["b4", "r4"]),
        Call(name: "c5", className: "Conv2D", config: #""filters": 4, "kernel_size": 1"#, reads: ["o2"]),
        Call(name: "b5", className: "BatchNormalization", config: "", reads: ["c5"]),
    ]

    func blocksModel(fuse: Bool) throws -> Model {
        let weights = Self.weights(convolutions: ["c1": [3, 3, 16, 16], "sc": [1, 1, 16, 16], "c2": [3, 3, 16, 16], "c3": [3, 3, 16, 16],
                                                  "c4": [3, 3, 16, 8], "c5": [1, 1, 16, 4]],
                                   biased: ["sc", "c3", "c5"], normalizations: ["b1": 16, "bsc": 16, "b2": 16, "b3": 16, "b4": 8, "b5": 4], seed: 31)
            .filter { $0.key != "b3/gamma" }
        return try FunctionalText.model(inputs: [("x", [8, 8, 16])], calls: Self.blocks, outputs: ["add3", "c5", "b5"], weights: weights, fuse: fuse)
    }

    func stepNames(_ model: Model) -> [String] {
        model.steps.map { step in step.nodes.map { model.nodes[$0].spec.name }.joined(separator: "+") }
    }

    func testResidualBlocksFuseIntoTheConvolutionsAndMatchTheLayersBitForBit() throws {
        let fused = try blocksModel(fuse: true), apart = try blocksModel(fuse: false)
        // c4+b4 and c5 both read o2, and c5 makes more (8×8×4 against 4×4×8): it runs first
        // (`Model.largestFirst`). c1+b1+r1 and sc+bsc make as much each: Keras's order.
        XCTAssertEqual(stepNames(fused), ["x", "c1+b1+r1", "sc+bsc", "c2+b2+add1+o1", "c3+b3+add2+o2", "c5", "c4+b4", "b5", "r4", "add3"])
        XCTAssertEqual(fused.steps[3].inputs.count, 3, "c2+b2+add1+o1 reads r1, then bsc and x")
        var random = SplitMix(seed: 32)
        for batch in [1, 3] {
            let x = Tensor(shape: [batch, 8, 8, 16], data: random.floats(batch * 8 * 8 * 16))
            let want = try apart.predict([x]), got = try fused.predict([x])
            XCTAssertEqual(got.map(\.shape), want.map(\.shape))
            for (index, (g, w)) in zip(got, want).enumerated() {
                XCTAssertEqual(g.data, w.data, "output \(index), batch \(batch) (kernel path \(Gemm.kernelPath))")
            }
        }
    }

    /// A 1-D and a 3-D convolution take over a BatchNormalization and an activation too.
    func testEveryConvolutionRankAbsorbsANormalizationThenAnActivation() throws {
        for (rank, input) in [(1, [10, 5] as [Int?]), (3, [4, 5, 6, 3] as [Int?])] {
            let kernel = Array(repeating: 3, count: rank) + [input.last! ?? 1, 6]
            let layers = [#"{"class_name": "Conv\#(rank)D", "config": {"name": "c", "filters": 6, "kernel_size": 3, "padding": "same"}}"#,
                          #"{"class_name": "BatchNormalization", "config": {"name": "b", "center": false}}"#,
                          #"{"class_name": "Activation", "config": {"name": "a", "activation": "tanh"}}"#]
            var weights = Self.weights(convolutions: ["c": kernel], biased: ["c"], normalizations: ["b": 6], seed: 40)
            weights["b/beta"] = nil
            let fused = try HandBuilt.model(input: input, layers: layers, weights: weights)
            let apart = try HandBuilt.model(input: input, layers: layers, weights: weights, fuse: false)
            XCTAssertEqual(fused.steps.map(\.nodes), [[0], [1, 2, 3]], "Conv\(rank)D")
            var random = SplitMix(seed: 41)
            let shape = [2] + input.compactMap { $0 }
            let x = Tensor(shape: shape, data: random.floats(shape.reduce(1, *)))
            XCTAssertEqual(try fused.predict(x).data, try apart.predict(x).data, "Conv\(rank)D")
        }
    }

    /// An Add whose other input carries a mask stays apart (the mask decides the sum's mask), and
    /// an addend that broadcasts at run time is summed apart by the Add itself.
    func testMaskedOrBroadcastAddendsAreLeftToTheAdd() throws {
        let masked = [Call(name: "e", className: "Embedding", config: #""input_dim": 10, "output_dim": 4, "mask_zero": true"#, reads: ["t"]),
                      Call(name: "c", className: "Conv1D", config: #""filters": 4, "kernel_size": 3, "padding": "same""#, reads: ["e"]),
                      Call(name: "b", className: "BatchNormalization", config: "", reads: ["c"]),
                      Call(name: "s", className: "Add", config: "", reads: ["b", "e"]),
                      Call(name: "r", className: "ReLU", config: "", reads: ["s"])]
        var weights = Self.weights(convolutions: ["c": [3, 4, 4]], biased: ["c"], normalizations: ["b": 4], seed: 50)
        var random = SplitMix(seed: 51)
        weights["e/embeddings"] = ([10, 4], random.floats(40))
        let fused = try FunctionalText.model(inputs: [("t", [6])], calls: masked, outputs: ["r"], weights: weights)
        let apart = try FunctionalText.model(inputs: [("t", [6])], calls: masked, outputs: ["r"], weights: weights, fuse: false)
        // (The Add then takes its ReLU over: a merge applies an element-wise activation in its own pass.)
        XCTAssertEqual(stepNames(fused), ["t", "e", "c+b", "s+r"])
        let tokens = Tensor(shape: [2, 6], data: [3, 1, 4, 0, 0, 0, 9, 2, 6, 5, 3, 0])
        XCTAssertEqual(try fused.predict([tokens])[0].data, try apart.predict([tokens])[0].data)

        let broadcast = [Call(name: "c", className: "Conv2D", config: #""filters": 3, "kernel_size": 1"#, reads: ["x"]),
                         Call(name: "s", className: "Add", config: "", reads: ["y", "c"]),
                         Call(name: "r", className: "ReLU", config: "", reads: ["s"])]
        let convolution = Self.weights(convolutions: ["c": [1, 1, 2, 3]], biased: ["c"], normalizations: [:], seed: 52)
        let inputs: [(String, [Int?])] = [("x", [4, 4, 2]), ("y", [1, 1, 3])]
        let sum = try FunctionalText.model(inputs: inputs, calls: broadcast, outputs: ["r"], weights: convolution)
        let sumApart = try FunctionalText.model(inputs: inputs, calls: broadcast, outputs: ["r"], weights: convolution, fuse: false)
        XCTAssertEqual(stepNames(sum), ["x", "y", "c+s+r"])
        let x = Tensor(shape: [2, 4, 4, 2], data: random.floats(64)), y = Tensor(shape: [2, 1, 1, 3], data: random.floats(6))
        XCTAssertEqual(try sum.predict([x, y])[0].data, try sumApart.predict([x, y])[0].data)
    }

    /// A ZeroPadding2D before a depthwise convolution (MobileNetV2's stride-2 blocks) runs inside
    /// it, the padding read in place, then the BatchNormalization and ReLU6: bit-identical to the
    /// same depthwise step run on the padded image, and within float rounding of the layers apart
    /// (the depthwise store folds the normalization). A cropping stays apart. Checked on odd,
    /// lopsided, "same" + dilated and strided paddings.
    func testAZeroPaddingRunsInsideTheDepthwiseConvolutionAfterIt() throws {
        let cases: [(sides: [Int], depthwise: String, multiplier: Int, kernel: [Int])] = [
            ([0, 1, 0, 1], #""kernel_size": 3, "strides": 2"#, 1, [3, 3]),
            ([2, 1, 1, 3], #""kernel_size": 3, "dilation_rate": 2, "padding": "same""#, 2, [3, 3]),
            ([1, 1, 1, 1], #""kernel_size": [2, 3], "strides": [1, 2]"#, 1, [2, 3]),
        ]
        for (index, test) in cases.enumerated() {
            let width = 20 * test.multiplier, s = test.sides
            let padding = "[[\(s[0]), \(s[1])], [\(s[2]), \(s[3])]]"
            let convolution = [#"{"class_name": "DepthwiseConv2D", "config": {"name": "d", \#(test.depthwise), "depth_multiplier": \#(test.multiplier)}}"#,
                               #"{"class_name": "BatchNormalization", "config": {"name": "b"}}"#,
                               #"{"class_name": "ReLU", "config": {"name": "r", "max_value": 6}}"#]
            let layers = [#"{"class_name": "ZeroPadding2D", "config": {"name": "p", "padding": \#(padding)}}"#] + convolution
            var random = SplitMix(seed: 70 + UInt64(index))
            let kernelShape = test.kernel + [20, test.multiplier]
            var weights = Self.weights(convolutions: [:], biased: [], normalizations: ["b": width], seed: 71)
            weights["d/kernel"] = (kernelShape, random.floats(kernelShape.reduce(1, *)))
            weights["d/bias"] = ([width], random.floats(width))
            let fused = try HandBuilt.model(input: [9, 10, 20], layers: layers, weights: weights)
            let apart = try HandBuilt.model(input: [9, 10, 20], layers: layers, weights: weights, fuse: false)
            let height = 9 + s[0] + s[1], wide = 10 + s[2] + s[3]
            let onPadded = try HandBuilt.model(input: [height, wide, 20], layers: convolution, weights: weights)
            XCTAssertEqual(fused.steps.map(\.nodes), [[0], [1, 2, 3, 4]], padding)
            for batch in [1, 3] {
                let x = Tensor(shape: [batch, 9, 10, 20], data: random.floats(batch * 1800))
                var padded = [Float](repeating: 0, count: batch * height * wide * 20)
                for n in 0..<batch { for i in 0..<9 { for j in 0..<10 { for c in 0..<20 {
                    padded[((n * height + i + s[0]) * wide + j + s[2]) * 20 + c] = x.data[((n * 9 + i) * 10 + j) * 20 + c]
                } } } }
                let got = try fused.predict(x)
                let want = try onPadded.predict(Tensor(shape: [batch, height, wide, 20], data: padded))
                XCTAssertEqual(got.shape, want.shape, padding)
                XCTAssertEqual(got.data, want.data, "padding \(padding), batch \(batch) (kernel path \(Gemm.kernelPath))")
                assertClose(got.data, try apart.predict(x).data, tolerance: 1e-5)
            }
        }
        let cropped = [#"{"class_name": "Cropping2D", "config": {"name": "p", "cropping": 1}}"#,
                       #"{"class_name": "DepthwiseConv2D", "config": {"name": "d", "kernel_size": 3}}"#]
        var random = SplitMix(seed: 75)
        let weights = ["d/kernel": ([3, 3, 4, 1], random.floats(36)), "d/bias": ([4], random.floats(4))]
        XCTAssertEqual(try HandBuilt.model(input: [6, 6, 4], layers: cropped, weights: weights).steps.map(\.nodes), [[0], [1], [2]])
    }

    /// A BatchNormalization that follows an activation, or is not over the last axis alone, stays
    /// apart; one over the channels after a linear convolution is taken over.
    func testANormalizationTheStoreCannotApplyStaysApart() throws {
        let layers = [#"{"class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": 1, "activation": "relu"}}"#,
                      #"{"class_name": "BatchNormalization", "config": {"name": "b"}}"#,
                      #"{"class_name": "Conv2D", "config": {"name": "d", "filters": 4, "kernel_size": 1}}"#,
                      #"{"class_name": "BatchNormalization", "config": {"name": "e", "axis": 1}}"#,
                      #"{"class_name": "Conv2D", "config": {"name": "f", "filters": 2, "kernel_size": 2}}"#,
                      #"{"class_name": "BatchNormalization", "config": {"name": "g"}}"#]
        let weights = Self.weights(convolutions: ["c": [1, 1, 3, 4], "d": [1, 1, 4, 4], "f": [2, 2, 4, 2]], biased: ["c", "d", "f"],
                                   normalizations: ["b": 4, "e": 5, "g": 2], seed: 60)
        let model = try HandBuilt.model(input: [5, 5, 3], layers: layers, weights: weights)
        XCTAssertEqual(model.steps.map(\.nodes), [[0], [1], [2], [3], [4], [5, 6]])
        let apart = try HandBuilt.model(input: [5, 5, 3], layers: layers, weights: weights, fuse: false)
        var random = SplitMix(seed: 61)
        let x = Tensor(shape: [2, 5, 5, 3], data: random.floats(150))
        XCTAssertEqual(try model.predict(x).data, try apart.predict(x).data)
    }

    /// Of two adjacent steps that read one value, the one that makes more runs first
    /// (`Model.largestFirst`), unless either reads a masked value (Keras's order decides what a
    /// reader sees there); the outputs are the same either way.
    func testTheLargerOfTwoReadersOfAValueRunsFirstUnlessMasksAreInvolved() throws {
        for masked in [false, true] {
            // Keras runs `a` first (its map_graph order), though `b` makes more.
            let calls: [Call] = [
                Call(name: "m", className: masked ? "Masking" : "Activation", config: masked ? "" : #""activation": "linear""#, reads: ["x"]),
                Call(name: "b", className: "Dense", config: #""units": 9"#, reads: ["m"]),
                Call(name: "a", className: "Dense", config: #""units": 2"#, reads: ["m"]),
            ]
            var random = SplitMix(seed: 85)
            let weights: [String: ([Int], [Float])] = ["a/kernel": ([3, 2], random.floats(6)), "a/bias": ([2], random.floats(2)),
                                                      "b/kernel": ([3, 9], random.floats(27)), "b/bias": ([9], random.floats(9))]
            let model = try FunctionalText.model(inputs: [("x", [5, 3])], calls: calls, outputs: ["b", "a"], weights: weights)
            XCTAssertEqual(stepNames(model), masked ? ["x", "m", "a", "b"] : ["x", "m", "b", "a"], "masked \(masked)")
            let x = Tensor(shape: [2, 5, 3], data: random.floats(30))
            let apart = try FunctionalText.model(inputs: [("x", [5, 3])], calls: calls, outputs: ["b", "a"], weights: weights, fuse: false)
            XCTAssertEqual(try model.predict([x]).map(\.data), try apart.predict([x]).map(\.data))
        }
    }

    /// A residual block whose shortcut nothing reads after the Add (`ReusesInputStorage`): the
    /// sum is written over the shortcut. The same bits as the layers apart, and a shortcut that
    /// something still reads (a later layer, a model output) keeps its values.
    static func residualModel(filters: Int, channels: Int, shortcutReadAgain: Bool, shortcutOutput: Bool, fuse: Bool) throws -> Model {
        var calls: [Call] = [
            Call(name: "sc", className: "Conv2D", config: #""filters": \#(filters), "kernel_size": 1"#, reads: ["x"]),
            Call(name: "c1", className: "Conv2D", config: #""filters": \#(channels), "kernel_size": 3, "padding": "same", "activation": "relu""#, reads: ["x"]),
            Call(name: "c2", className: "Conv2D", config: #""filters": \#(filters), "kernel_size": 1, "use_bias": false"#, reads: ["c1"]),
            Call(name: "b2", className: "BatchNormalization", config: "", reads: ["c2"]),
            Call(name: "add", className: "Add", config: "", reads: ["b2", "sc"]),
            Call(name: "out", className: "ReLU", config: "", reads: ["add"]),
        ]
        if shortcutReadAgain { calls.append(Call(name: "again", className: "Add", config: "", reads: ["out", "sc"])) }
        let weights = Self.weights(convolutions: ["sc": [1, 1, channels, filters], "c1": [3, 3, channels, channels], "c2": [1, 1, channels, filters]],
                                   biased: ["sc", "c1"], normalizations: ["b2": filters], seed: 81)
        let outputs = [shortcutReadAgain ? "again" : "out"] + (shortcutOutput ? ["sc"] : [])
        return try FunctionalText.model(inputs: [("x", [5, 4, channels])], calls: calls, outputs: outputs, weights: weights, fuse: fuse)
    }

    func testTheResidualSumIsWrittenOverAShortcutNothingReadsAfterIt() throws {
        var random = SplitMix(seed: 82)
        // 16 and 24 channels: k in one chunk; 512: two chunks (nnb_packed_k_chunk), where the
        // running sums would overwrite addends still unread, so the sum gets storage of its own.
        for (filters, channels) in [(16, 16), (24, 16), (512, 512)] {
            for (again, output) in [(false, false), (true, false), (false, true)] {
                let fused = try Self.residualModel(filters: filters, channels: channels, shortcutReadAgain: again, shortcutOutput: output, fuse: true)
                let apart = try Self.residualModel(filters: filters, channels: channels, shortcutReadAgain: again, shortcutOutput: output, fuse: false)
                XCTAssertEqual(stepNames(fused).filter { $0.contains("add") }, ["c2+b2+add+out"])
                for batch in [1, 3] {
                    let x = Tensor(shape: [batch, 5, 4, channels], data: random.floats(batch * 20 * channels))
                    let want = try apart.predict([x]), got = try fused.predict([x])
                    for (index, (g, w)) in zip(got, want).enumerated() {
                        XCTAssertEqual(g.data, w.data, "\(filters) filters, read again \(again), output \(output), batch \(batch), output \(index) (kernel path \(Gemm.kernelPath))")
                    }
                }
            }
        }
    }

    /// Called on a shortcut it may reuse, the fused block returns the shortcut's own storage,
    /// holding the sum; where k takes two chunks, or the shortcut may not be reused, new storage.
    func testTheSumTakesTheShortcutsStorageOnlyWhereTheKernelAllows() throws {
        guard Gemm.useAVX2Kernels else { throw XCTSkip("the portable path computes into new storage") }
        var random = SplitMix(seed: 83)
        for (filters, channels, inPlace) in [(16, 16, true), (512, 512, false)] {
            let model = try Self.residualModel(filters: filters, channels: channels, shortcutReadAgain: false, shortcutOutput: false, fuse: true)
            guard let step = model.steps.first(where: { $0.nodes.count == 4 }), let block = step.layer as? any ReusesInputStorage else {
                return XCTFail("no fused residual block")
            }
            let input = Tensor(shape: [1, 5, 4, channels], data: random.floats(20 * channels))
            let shortcut = Tensor(shape: [1, 5, 4, filters], data: random.floats(20 * filters))
            let want = try block.call([input, shortcut])[0]
            for reusable in [true, false] {
                // A copy of its own (Array(_:) of an array shares its storage).
                var inputs = [input, Tensor(shape: shortcut.shape, data: shortcut.data.map { $0 })]
                let before = inputs[1].data.withUnsafeBufferPointer { $0.baseAddress }
                let got = try block.call(owning: &inputs, reusable: [false, reusable])[0]
                XCTAssertEqual(got.data, want.data, "\(filters) filters, reusable \(reusable)")
                let after = got.data.withUnsafeBufferPointer { $0.baseAddress }
                XCTAssertEqual(before == after, inPlace && reusable, "\(filters) filters, reusable \(reusable)")
            }
        }
    }

    /// A zero padding before a "valid" max pooling (ResNet's pool1_pad, pool1_pool) runs inside
    /// it: the windows reach into the padding, whose zeros count, so negative inputs at the border
    /// give 0 there, as on the padded copy. Not before an average or a "same" pooling.
    func testAZeroPaddingRunsInsideTheMaxPoolingAfterIt() throws {
        let cases: [(sides: [Int], pooling: String)] = [
            ([1, 1, 1, 1], #""pool_size": 3, "strides": 2"#),
            ([0, 2, 1, 0], #""pool_size": [2, 3], "strides": [1, 2]"#),
            ([3, 3, 3, 3], #""pool_size": 2"#),
        ]
        var random = SplitMix(seed: 84)
        for test in cases {
            let s = test.sides, padding = "[[\(s[0]), \(s[1])], [\(s[2]), \(s[3])]]"
            let pool = #"{"class_name": "MaxPooling2D", "config": {"name": "m", \#(test.pooling)}}"#
            let layers = [#"{"class_name": "ZeroPadding2D", "config": {"name": "p", "padding": \#(padding)}}"#, pool]
            let fused = try HandBuilt.model(input: [7, 9, 5], layers: layers)
            let apart = try HandBuilt.model(input: [7, 9, 5], layers: layers, fuse: false)
            XCTAssertEqual(fused.steps.map(\.nodes), [[0], [1, 2]], padding)
            for batch in [1, 3] {
                // Mostly negative, so that the padding's zeros decide the border's maxima.
                var values = random.floats(batch * 7 * 9 * 5).map { $0 - 2 }
                values[0] = .nan
                values[values.count - 1] = -.infinity
                let x = Tensor(shape: [batch, 7, 9, 5], data: values)
                let got = try fused.predict(x), want = try apart.predict(x)
                XCTAssertEqual(got.shape, want.shape, padding)
                XCTAssertEqual(got.data.map(\.bitPattern), want.data.map(\.bitPattern), "padding \(padding), batch \(batch)")
            }
        }
        for pool in [#"{"class_name": "AveragePooling2D", "config": {"name": "m"}}"#,
                     #"{"class_name": "MaxPooling2D", "config": {"name": "m", "padding": "same"}}"#] {
            let layers = [#"{"class_name": "ZeroPadding2D", "config": {"name": "p", "padding": 1}}"#, pool]
            XCTAssertEqual(try HandBuilt.model(input: [6, 6, 4], layers: layers).steps.map(\.nodes), [[0], [1], [2]], pool)
        }
    }

}
