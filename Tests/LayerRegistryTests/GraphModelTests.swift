import XCTest
@testable import LayerRegistry

/// −x, fused into a `FusingScale` before it when it can be.
private struct Negate: Layer {
    let outputShape: [Int?]
    var maskBehavior: MaskBehavior { .propagates }
    func forward(_ input: Tensor) throws -> Tensor { Tensor(shape: input.shape, data: input.data.map { -$0 }) }
}

/// `Scale` that absorbs a `Negate` after it.
private struct FusingScale: FusesNext {
    let inner: Scale
    var negated = false
    var outputShape: [Int?] { inner.outputShape }
    var maskBehavior: MaskBehavior { .propagates }
    func forward(_ input: Tensor) throws -> Tensor {
        let scaled = try inner.forward(input)
        return negated ? Tensor(shape: scaled.shape, data: scaled.data.map { -$0 }) : scaled
    }
    func fusing(_ next: any Layer) -> (any Layer)? {
        guard !negated, next is Negate else { return nil }
        return FusingScale(inner: inner, negated: true)
    }
}

/// The sum of every input; masked when any input is.
private struct Sum: NodeLayer {
    let outputShapes: [[Int?]]
    func outputMasks(inputMasks: [Bool]) -> [Bool] { [inputMasks.contains(true)] }
    func call(_ inputs: [Tensor]) throws -> [Tensor] {
        var output = inputs[0]
        for input in inputs.dropFirst() { output.data = zip(output.data, input.data).map(+) }
        output.mask = inputs.compactMap(\.mask).first
        return [output]
    }
}

/// Outputs its input's mask as numbers (1 real, 0 padded), one per step.
private struct MaskProbe: Layer {
    let outputShape: [Int?]
    func forward(_ input: Tensor) throws -> Tensor {
        let steps = input.shape[1]
        return Tensor(shape: [input.batch, steps], data: (0..<(input.batch * steps)).map { input.isStepValid(row: $0 / steps, step: $0 % steps) ? 1 : 0 })
    }
}

/// Marks every step whose first feature is not 0 as real, as Masking does.
private struct MakeMask: Layer {
    let outputShape: [Int?]
    var maskBehavior: MaskBehavior { .produces }
    func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        let width = input.sampleSize / max(input.shape[1], 1)
        output.mask = (0..<(input.batch * input.shape[1])).map { input.data[$0 * width] != 0 }
        return output
    }
}

/// Keras 3 Functional JSON: calls as `{"args": [...], "kwargs": {...}}`.
enum Keras3Text {
    static func tensor(_ layer: String, node: Int = 0, index: Int = 0) -> String {
        #"{"class_name": "__keras_tensor__", "config": {"shape": null, "dtype": "float32", "keras_history": ["\#(layer)", \#(node), \#(index)]}}"#
    }

    /// `calls`: (layer name, class, config members, one `{"args", "kwargs"}` text per call).
    static func model(inputs: [(String, String)], layers: [(String, String, String, [String])], outputs: [String], name: String = "m") -> String {
        var items = inputs.map { #"{"class_name": "InputLayer", "name": "\#($0.0)", "config": {"name": "\#($0.0)", "batch_shape": \#($0.1)}, "inbound_nodes": []}"# }
        for (layer, className, config, calls) in layers {
            let members = config.isEmpty ? #""name": "\#(layer)""# : #""name": "\#(layer)", \#(config)"#
            items.append(#"{"class_name": "\#(className)", "name": "\#(layer)", "config": {\#(members)}, "inbound_nodes": [\#(calls.joined(separator: ", "))]}"#)
        }
        let ins = inputs.map { #"["\#($0.0)", 0, 0]"# }.joined(separator: ", ")
        return #"{"class_name": "Functional", "config": {"name": "\#(name)", "layers": [\#(items.joined(separator: ", "))], "input_layers": [\#(ins)], "output_layers": [\#(outputs.joined(separator: ", "))]}}"#
    }

    static func call(_ args: [String], kwargs: String = "") -> String { #"{"args": [\#(args.joined(separator: ", "))], "kwargs": {\#(kwargs)}}"# }
}

/// The engine on graphs of test layers: shared layers, nested models, the fusion rule, freeing,
/// masks and call arguments.
final class GraphModelTests: XCTestCase {
    var registry: LayerRegistry!

    override func setUp() {
        registry = LayerRegistry()
        registry.register("InputLayer") { context in Scale.passThrough(context) }
        registry.register("Scale", factory: Scale.factory)
        registry.register("FusingScale") { context in FusingScale(inner: try XCTUnwrap(Scale.factory(context) as? Scale)) }
        registry.register("Negate") { context in Negate(outputShape: context.inputShape) }
        registry.register("Sum") { context in Sum(outputShapes: [context.inputShape]) }
        registry.register("MaskProbe") { context in MaskProbe(outputShape: [context.inputShape.first ?? nil]) }
        registry.register("MakeMask") { context in MakeMask(outputShape: context.inputShape) }
    }

    func build(_ text: String, weights: WeightStore? = nil, fuse: Bool = true) throws -> Model {
        try Model.build(try GraphSpec.parse(text, source: "m.json"), registry: registry, weights: weights, fuse: fuse)
    }

    func testASharedLayerBindsItsWeightsOnceAndCountsThemOnce() throws {
        let t = Keras3Text.self
        let text = t.model(inputs: [("a", "[null, 2]"), ("b", "[null, 2]")],
                           layers: [("shared", "Scale", "", [t.call([t.tensor("a")]), t.call([t.tensor("b")])]),
                                    ("sum", "Sum", "", [t.call(["[" + t.tensor("shared") + ", " + t.tensor("shared", node: 1) + "]"])])],
                           outputs: [#"["sum", 0, 0]"#])
        let model = try build(text, weights: try blob([("shared/scale", [2, 3])]))
        XCTAssertEqual(model.nodes.filter { $0.spec.name == "shared" }.count, 2)
        XCTAssertEqual(model.parameterCount, 2)
        let out = try model.predict([Tensor(shape: [1, 2], data: [1, 1]), Tensor(shape: [1, 2], data: [10, 100])])
        XCTAssertEqual(out[0].data, [22, 303])
        XCTAssertEqual(model.nodes.last?.label, "layer 'sum' (Sum) called on ['shared', 'shared']")
    }

    func testNestedModelWeightsAreFoundUnderTheirPathOrWithout() throws {
        let t = Keras3Text.self
        let inner = #"{"class_name": "Sequential", "name": "inner", "config": {"name": "inner", "layers": [{"class_name": "InputLayer", "config": {"name": "inner_in", "batch_shape": [null, 2]}}, {"class_name": "Scale", "config": {"name": "s"}}]}, "inbound_nodes": [\#(t.call([t.tensor("x")]))]}"#
        let text = #"{"class_name": "Functional", "config": {"name": "outer", "layers": [{"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": [null, 2]}, "inbound_nodes": []}, \#(inner), {"class_name": "Scale", "name": "s_after", "config": {"name": "s_after"}, "inbound_nodes": [\#(t.call([t.tensor("inner")]))]}], "input_layers": [["x", 0, 0]], "output_layers": [["s_after", 0, 0]]}}"#
        // Keras 3 writes a Sequential's layers under its name, a Functional's without: both bind.
        for name in ["inner/s/scale", "s/scale"] {
            let model = try build(text, weights: try blob([(name, [2, 3]), ("s_after/scale", [10, 10])]))
            XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [1, 1])).data, [20, 30], name)
            XCTAssertEqual(model.nodes.first { $0.spec.name == "s" }?.scope, ["inner"])
        }
    }

    func testAFusedNodeNeverSwallowsAValueSomethingElseReads() throws {
        let t = Keras3Text.self
        // x → scale → negate → sum(scale, negate): the residual reads scale's output.
        let residual = t.model(inputs: [("x", "[null, 2]")],
                               layers: [("scale", "FusingScale", "", [t.call([t.tensor("x")])]),
                                        ("negate", "Negate", "", [t.call([t.tensor("scale")])]),
                                        ("sum", "Sum", "", [t.call(["[" + t.tensor("scale") + ", " + t.tensor("negate") + "]"])])],
                               outputs: [#"["sum", 0, 0]"#])
        let weights = { try blob([("scale/scale", [2, 3])]) }
        let model = try build(residual, weights: try weights())
        XCTAssertEqual(model.steps.map(\.nodes.count), [1, 1, 1, 1], "nothing fused")
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [1, 1])).data, [0, 0])
        // The same chain with negate its only reader fuses...
        let chain = t.model(inputs: [("x", "[null, 2]")],
                            layers: [("scale", "FusingScale", "", [t.call([t.tensor("x")])]), ("negate", "Negate", "", [t.call([t.tensor("scale")])])],
                            outputs: [#"["negate", 0, 0]"#])
        XCTAssertEqual(try build(chain, weights: try weights()).steps.map(\.nodes.count), [1, 2])
        // ...but not when scale's output is a model output too.
        let both = t.model(inputs: [("x", "[null, 2]")],
                           layers: [("scale", "FusingScale", "", [t.call([t.tensor("x")])]), ("negate", "Negate", "", [t.call([t.tensor("scale")])])],
                           outputs: [#"["scale", 0, 0]"#, #"["negate", 0, 0]"#])
        let outputs = try build(both, weights: try weights())
        XCTAssertEqual(outputs.steps.map(\.nodes.count), [1, 1, 1])
        XCTAssertEqual(try outputs.predict([Tensor(shape: [1, 2], data: [1, 1])]).map(\.data), [[2, 3], [-2, -3]])
    }

    func testEachValueIsFreedAfterItsLastReader() throws {
        let t = Keras3Text.self
        // x → a → b → c → d, and e = sum(a, d): a lives until e, every other value one step.
        let text = t.model(inputs: [("x", "[null, 2]")],
                           layers: [("a", "Negate", "", [t.call([t.tensor("x")])]), ("b", "Negate", "", [t.call([t.tensor("a")])]),
                                    ("c", "Negate", "", [t.call([t.tensor("b")])]), ("d", "Negate", "", [t.call([t.tensor("c")])]),
                                    ("e", "Sum", "", [t.call(["[" + t.tensor("a") + ", " + t.tensor("d") + "]"])])],
                           outputs: [#"["e", 0, 0]"#])
        let model = try build(text)
        var live: [Int] = []
        let out = try model.execute([Tensor(shape: [1, 2], data: [1, 2])], settings: nil, observe: { _, count in live.append(count) })
        XCTAssertEqual(out[0].data, [0, 0])
        // After: InputLayer x, a (x freed), b, c, d (a still held), e.
        XCTAssertEqual(live, [1, 1, 2, 2, 2, 1])
    }

    func testAnExplicitMaskWinsOverThePropagatedOne() throws {
        let t = Keras3Text.self
        let text = t.model(inputs: [("x", "[null, 3, 1]"), ("m", "[null, 3]")],
                           layers: [("masked", "MakeMask", "", [t.call([t.tensor("x")])]),
                                    ("propagated", "MaskProbe", "", [t.call([t.tensor("masked")], kwargs: #""mask": null, "training": false"#)]),
                                    ("explicit", "MaskProbe", "", [t.call([t.tensor("masked")], kwargs: #""mask": \#(t.tensor("m"))"#)])],
                           outputs: [#"["propagated", 0, 0]"#, #"["explicit", 0, 0]"#])
        let model = try build(text)
        let out = try model.predict([Tensor(shape: [1, 3, 1], data: [5, 0, 5]), Tensor(shape: [1, 3], data: [0, 1, 1])])
        XCTAssertEqual(out.map(\.data), [[1, 0, 1], [0, 1, 1]])
    }

    func testCallArgumentsReachTheFactoryAndUnreadOnesAreRefusedByName() throws {
        let t = Keras3Text.self
        func text(_ kwargs: String, state: Bool = true) -> String {
            t.model(inputs: [("x", "[null, 2]")] + (state ? [("h", "[null, 2]")] : []),
                    layers: [("layer", "Scale", "", [t.call([t.tensor("x")], kwargs: kwargs)])],
                    outputs: [#"["layer", 0, 0]"#])
        }
        let weights = { try blob([("layer/scale", [1, 1])]) }
        XCTAssertThrowsError(try build(text(#""initial_state": [\#(t.tensor("h"))]"#), weights: try weights())) { error in
            XCTAssertTrue("\(error)".contains("layer 'layer' (Scale) called on ['x', 'h']: call argument 'initial_state' is not supported by this layer"), "\(error)")
        }
        // A recorded training=True is replaced by predict's training=False, in Keras as here: it builds.
        XCTAssertNoThrow(try build(text(#""training": true"#, state: false), weights: try weights()))
        // A factory that reads the argument gets its tensors' positions among its inputs.
        registry.register("Scale") { context in
            XCTAssertEqual(context.inputIndices(ofKeywordArgument: "initial_state"), [1])
            XCTAssertEqual(context.inputShapes, [[2], [2]])
            XCTAssertEqual(context.kwargNames, ["initial_state"])
            return Sum(outputShapes: [context.inputShape])
        }
        let model = try build(text(#""initial_state": [\#(t.tensor("h"))]"#), weights: nil)
        XCTAssertEqual(try model.predict([Tensor(shape: [1, 2], data: [1, 2]), Tensor(shape: [1, 2], data: [10, 20])])[0].data, [11, 22])
    }

    func testNamedPredictAndSingleTensorPredictCheckTheirInputs() throws {
        let t = Keras3Text.self
        let text = t.model(inputs: [("a", "[null, 2]"), ("b", "[null, 2]")],
                           layers: [("sum", "Sum", "", [t.call(["[" + t.tensor("a") + ", " + t.tensor("b") + "]"])])], outputs: [#"["sum", 0, 0]"#])
        let model = try build(text)
        XCTAssertEqual(model.inputs.map(\.name), ["a", "b"])
        XCTAssertEqual(model.outputs.map(\.shape), [[2]])
        let named = try model.predict(["a": Tensor(shape: [1, 2], data: [1, 2]), "b": Tensor(shape: [1, 2], data: [3, 4])])
        XCTAssertEqual(named["sum"]?.data, [4, 6])
        XCTAssertThrowsError(try model.predict(["a": Tensor(shape: [1, 2], data: [1, 2])])) { error in
            XCTAssertTrue("\(error)".contains("no batch given for the model's input 'b'"), "\(error)")
        }
        XCTAssertThrowsError(try model.predict(Tensor(shape: [1, 2], data: [1, 2]))) { error in
            XCTAssertTrue("\(error)".contains("the model has 2 input(s)"), "\(error)")
        }
        XCTAssertThrowsError(try model.predict([Tensor(shape: [1, 2], data: [1, 2]), Tensor(shape: [2, 2], data: [1, 2, 3, 4])])) { error in
            XCTAssertTrue("\(error)".contains("different batch sizes"), "\(error)")
        }
    }

    func testReadingAnOutputALayerDoesNotHaveNamesBoth() throws {
        let t = Keras3Text.self
        let text = t.model(inputs: [("x", "[null, 2]")],
                           layers: [("neg", "Negate", "", [t.call([t.tensor("x")])]), ("sum", "Sum", "", [t.call([t.tensor("neg", index: 1)])])],
                           outputs: [#"["sum", 0, 0]"#])
        XCTAssertThrowsError(try build(text)) { error in
            XCTAssertTrue("\(error)".contains("layer 'sum' (Sum) reads output 1 of ['neg', 0, 1], but 'neg' call 0 has 1 output(s)"), "\(error)")
        }
    }

    func testTypedCallArgumentsReadNumbersAndFlagsAndNameWhatIsWrong() throws {
        let t = Keras3Text.self
        func text(_ args: [String], _ kwargs: String) -> String {
            t.model(inputs: [("x", "[null, 2]")], layers: [("op", "Probe", "", [t.call([t.tensor("x")] + args, kwargs: kwargs)])],
                    outputs: [#"["op", 0, 0]"#])
        }
        var seen: [String] = []
        registry.register("Probe") { context in
            let factor = try context.callArgumentNumber(1)
            let causal = try context.kwargBool("use_causal_mask", default: false)
            seen.append("\(factor.map { "\($0)" } ?? "none") \(causal)")
            return Negate(outputShape: context.inputShape)
        }
        _ = try build(text(["2.5"], #""use_causal_mask": true"#))
        _ = try build(text([], ""))
        XCTAssertEqual(seen, ["2.5 true", "none false"])
        XCTAssertThrowsError(try build(text(["\"two\""], ""))) { error in
            XCTAssertTrue("\(error)".contains("layer 'op' (Probe) called on ['x']: positional call argument 1 must be a number, found \"two\""), "\(error)")
        }
        XCTAssertThrowsError(try build(text([], #""use_causal_mask": 1"#))) { error in
            XCTAssertTrue("\(error)".contains("call argument 'use_causal_mask' must be true or false, found 1"), "\(error)")
        }
    }
}
