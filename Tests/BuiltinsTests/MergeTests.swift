import Foundation
import XCTest
import Builtins
import LayerRegistry

/// Small Functional models written inline, in Keras 2's form (`inbound_nodes` as lists of
/// `[layer, node, tensor, {kwargs}]`).
enum FunctionalText {
    struct Call {
        var name: String
        var className: String
        var config: String
        var reads: [String]
    }

    static func json(inputs: [(String, [Int?])], calls: [Call], outputs: [String]) -> String {
        func shape(_ dims: [Int?]) -> String { "[" + ([nil] + dims).map { $0.map(String.init) ?? "null" }.joined(separator: ", ") + "]" }
        var layers = inputs.map { name, dims in
            #"{"class_name": "InputLayer", "name": "\#(name)", "config": {"name": "\#(name)", "batch_input_shape": \#(shape(dims))}, "inbound_nodes": []}"#
        }
        for call in calls {
            let reads = call.reads.map { #"["\#($0)", 0, 0, {}]"# }.joined(separator: ", ")
            let config = call.config.isEmpty ? #""name": "\#(call.name)""# : #""name": "\#(call.name)", \#(call.config)"#
            layers.append(#"{"class_name": "\#(call.className)", "name": "\#(call.name)", "config": {\#(config)}, "inbound_nodes": [[\#(reads)]]}"#)
        }
        let ins = inputs.map { #"["\#($0.0)", 0, 0]"# }.joined(separator: ", ")
        let outs = outputs.map { #"["\#($0)", 0, 0]"# }.joined(separator: ", ")
        return #"{"class_name": "Functional", "keras_version": "2.15.0", "config": {"name": "m", "layers": [\#(layers.joined(separator: ", "))], "input_layers": [\#(ins)], "output_layers": [\#(outs)]}}"#
    }

    static func model(inputs: [(String, [Int?])], calls: [Call], outputs: [String], weights: [String: ([Int], [Float])]? = nil,
                      fuse: Bool = true) throws -> Model {
        let description = try ModelDescription.parse(json(inputs: inputs, calls: calls, outputs: outputs), source: "m.json")
        let store = try weights.map { try WeightStore(bytes: HandBuilt.safetensors($0)) }
        return try Model.build(description, registry: .withBuiltins(), weights: store, fuse: fuse)
    }
}

/// Merge layers against numbers Keras 3.15 printed for the same graphs (Masking(0) makes the masks).
final class MergeTests: XCTestCase {
    typealias Call = FunctionalText.Call

    func testAddBroadcastsAndExpandsLowerRanksAsKerasDoes() throws {
        let model = try FunctionalText.model(inputs: [("a", [2, 3]), ("b", [1, 3]), ("c", [3])],
                                             calls: [Call(name: "sum", className: "Add", config: "", reads: ["a", "b", "c"])], outputs: ["sum"])
        XCTAssertEqual(model.outputs.first?.shape, [2, 3])
        let out = try model.predict([Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 6]), Tensor(shape: [1, 1, 3], data: [10, 20, 30]),
                                     Tensor(shape: [1, 3], data: [100, 200, 300])])
        XCTAssertEqual(out[0].data, [111, 222, 333, 114, 225, 336])
        let difference = try FunctionalText.model(inputs: [("a", [2, 3]), ("b", [2, 1])],
                                                  calls: [Call(name: "d", className: "Subtract", config: "", reads: ["a", "b"])], outputs: ["d"])
        XCTAssertEqual(try difference.predict([Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 6]), Tensor(shape: [1, 2, 1], data: [1, 2])])[0].data,
                       [0, 1, 2, 2, 3, 4])
    }

    func testIncompatibleShapesAndWrongInputCountsAreRefusedNamingTheCall() {
        XCTAssertThrowsError(try FunctionalText.model(inputs: [("a", [2, 3]), ("b", [4])],
                                                      calls: [Call(name: "sum", className: "Add", config: "", reads: ["a", "b"])], outputs: ["sum"])) { error in
            XCTAssertTrue("\(error)".contains("layer 'sum' (Add) called on ['a', 'b']: inputs have incompatible shapes"), "\(error)")
        }
        XCTAssertThrowsError(try FunctionalText.model(inputs: [("a", [3]), ("b", [3]), ("c", [3])],
                                                      calls: [Call(name: "d", className: "Subtract", config: "", reads: ["a", "b", "c"])], outputs: ["d"])) { error in
            XCTAssertTrue("\(error)".contains("takes exactly 2 inputs, called on 3"), "\(error)")
        }
    }

    /// Two masked sequences through a merge, then the merge and a masked average over time.
    func masked(_ className: String, config: String = "", maskSecond: Bool = true) throws -> (Model, [Tensor]) {
        var calls = [Call(name: "ma", className: "Masking", config: #""mask_value": 0.0"#, reads: ["a"])]
        if maskSecond { calls.append(Call(name: "mb", className: "Masking", config: #""mask_value": 0.0"#, reads: ["b"])) }
        calls.append(Call(name: "merge", className: className, config: config, reads: ["ma", maskSecond ? "mb" : "b"]))
        calls.append(Call(name: "pool", className: "GlobalAveragePooling1D", config: "", reads: ["merge"]))
        let model = try FunctionalText.model(inputs: [("a", [3, 2]), ("b", [3, 2])], calls: calls, outputs: ["merge", "pool"])
        let out = try model.predict([Tensor(shape: [1, 3, 2], data: [1, 2, 0, 0, 3, -1]), Tensor(shape: [1, 3, 2], data: [-2, 5, 4, 4, 0, 0])])
        return (model, out)
    }

    func testMasksCombineAsKerasComputeMaskSays() throws {
        let expected: [(String, [Float], [Float])] = [
            ("Multiply", [-2, 10, 4, 4, 3, -1], [1.6666666, 4.3333335]),
            ("Maximum", [1, 5, 4, 4, 3, -1], [2.6666667, 2.6666667]),
            ("Minimum", [-2, 2, 4, 4, 3, -1], [1.6666666, 1.6666666]),
            ("Average", [-0.5, 3.5, 2, 2, 1.5, -0.5], [1, 1.6666666]),
            ("Add", [-1, 7, 4, 4, 3, -1], [2, 3.3333333]),
        ]
        for (className, merged, pooled) in expected {
            let (model, out) = try masked(className)
            XCTAssertTrue(try XCTUnwrap(model.nodes.first { $0.spec.name == "merge" }).carriesMask, className)
            assertClose(out[0].data, merged, tolerance: 1e-6, className)
            assertClose(out[1].data, pooled, tolerance: 1e-6, className)
        }
        // Only one input masked: the merge keeps no mask, and Maximum takes the other side as it is.
        let (model, out) = try masked("Maximum", maskSecond: false)
        XCTAssertFalse(try XCTUnwrap(model.nodes.first { $0.spec.name == "merge" }).carriesMask)
        assertClose(out[0].data, [1, 5, 4, 4, 3, 0], tolerance: 1e-6)
        assertClose(out[1].data, [2.6666667, 3], tolerance: 1e-6)
    }

    func testConcatenateTreatsAnUnmaskedInputAsAllReal() throws {
        let (model, out) = try masked("Concatenate", maskSecond: false)
        XCTAssertTrue(try XCTUnwrap(model.nodes.first { $0.spec.name == "merge" }).carriesMask)
        assertClose(out[0].data, [1, 2, -2, 5, 0, 0, 4, 4, 3, -1, 0, 0], tolerance: 1e-6)
        assertClose(out[1].data, [1.3333334, 0.33333334, 0.6666667, 3], tolerance: 1e-6)
        // Along the steps axis the masks are joined.
        let (_, joined) = try masked("Concatenate", config: #""axis": 1"#)
        XCTAssertEqual(joined[0].shape, [1, 6, 2])
        assertClose(joined[1].data, [1.5, 2.5], tolerance: 1e-6)
    }

    func testDotContractsTheGivenAxesAndNormalizes() throws {
        let calls = [Call(name: "plain", className: "Dot", config: #""axes": [2, 1]"#, reads: ["p", "q"]),
                     Call(name: "unit", className: "Dot", config: #""axes": [-1, 1], "normalize": true"#, reads: ["p", "q"]),
                     Call(name: "flat", className: "Flatten", config: "", reads: ["p"]),
                     Call(name: "self_dot", className: "Dot", config: #""axes": -1"#, reads: ["flat", "flat"])]
        let model = try FunctionalText.model(inputs: [("p", [2, 3]), ("q", [3, 4])], calls: calls, outputs: ["plain", "unit", "self_dot"])
        XCTAssertEqual(model.outputs.map(\.shape), [[2, 4], [2, 4], [1]])
        let out = try model.predict([Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 6]),
                                     Tensor(shape: [1, 3, 4], data: [1, 0, 2, -1, 0, 1, 1, 2, 3, -2, 0, 1])])
        XCTAssertEqual(out[0].data, [10, -4, 4, 6, 22, -7, 13, 12])
        assertClose(out[1].data, [0.84515417, -0.4780914, 0.4780914, 0.6546536, 0.792825, -0.35675308, 0.66254133, 0.55829054], tolerance: 1e-6)
        XCTAssertEqual(out[2].data, [91])
        XCTAssertThrowsError(try FunctionalText.model(inputs: [("p", [2, 3]), ("q", [3, 4])],
                                                      calls: [Call(name: "d", className: "Dot", config: #""axes": 0"#, reads: ["p", "q"])], outputs: ["d"])) { error in
            XCTAssertTrue("\(error)".contains("'axes'"), "\(error)")
        }
    }

    /// A residual taken from a convolution's output before its ReLU: the convolution must not
    /// absorb the ReLU, or the Add would read the rectified values.
    func testAResidualTakenBeforeTheReLUKeepsTheConvolutionUnfused() throws {
        let calls = [Call(name: "conv", className: "Conv2D", config: #""filters": 2, "kernel_size": 1"#, reads: ["x"]),
                     Call(name: "relu", className: "ReLU", config: "", reads: ["conv"]),
                     Call(name: "sum", className: "Add", config: "", reads: ["conv", "relu"])]
        let weights: [String: ([Int], [Float])] = ["conv/kernel": ([1, 1, 1, 2], [1, -1]), "conv/bias": ([2], [0, 0])]
        let model = try FunctionalText.model(inputs: [("x", [1, 2, 1])], calls: calls, outputs: ["sum"], weights: weights)
        XCTAssertTrue(model.steps.allSatisfy { $0.nodes.count == 1 }, "\(model.steps.map(\.nodes))")
        // conv gives (x, −x); relu(conv) + conv = (2x, −x) for x > 0 and (x, −2x) for x < 0.
        let out = try model.predict(Tensor(shape: [1, 1, 2, 1], data: [3, -2]))
        XCTAssertEqual(out.data, [6, -3, -2, 4])
        // Without the residual, the same convolution absorbs the ReLU.
        let chain = try FunctionalText.model(inputs: [("x", [1, 2, 1])], calls: Array(calls.prefix(2)), outputs: ["relu"], weights: weights)
        XCTAssertEqual(chain.steps.map(\.nodes.count), [1, 2])
    }
}
