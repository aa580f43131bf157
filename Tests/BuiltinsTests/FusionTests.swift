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
        XCTAssertEqual(fused.steps.map(\.nodes), [0..<1, 1..<3, 3..<4, 4..<5, 5..<6, 6..<8, 8..<9, 9..<10])
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
        XCTAssertEqual(model.steps.map(\.nodes), [0..<1, 1..<3, 3..<4])
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
