import Foundation
import XCTest
@testable import ModelSpec

/// GraphSpec against the Functional fixtures Keras 3 wrote (Tests/GraphFixtures, made by
/// tools/make_graph_fixtures.py), every Sequential fixture lowered to a chain, and the broken
/// graphs of Tests/GraphMalformed.
final class GraphSpecTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func fixture(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> GraphSpec {
        let path = GraphSpecTests.root.appendingPathComponent("Tests/GraphFixtures/\(name)/model.json").path
        do {
            return try GraphSpec.load(path: path)
        } catch {
            XCTFail("\(name): \(error)", file: file, line: line)
            throw error
        }
    }

    /// Every call the outputs need appears once, after every call it reads.
    func assertTopological(_ graph: GraphSpec, file: StaticString = #filePath, line: UInt = #line) {
        var position: [NodeKey: Int] = [:]
        for (index, key) in graph.order.enumerated() {
            XCTAssertNil(position[key], "\(key) appears twice in the order", file: file, line: line)
            position[key] = index
        }
        for key in graph.order {
            guard let node = graph.node(key) else { return XCTFail("\(key) is in the order but not in the graph", file: file, line: line) }
            for tensor in node.inputs {
                guard let producer = position[tensor.ref.nodeKey], let consumer = position[key] else {
                    return XCTFail("\(key) reads \(tensor.ref), which is not ordered", file: file, line: line)
                }
                XCTAssertLessThan(producer, consumer, "\(key) reads \(tensor.ref) before it is made", file: file, line: line)
            }
        }
        for output in graph.outputs {
            XCTAssertNotNil(position[output.nodeKey], "output \(output) is not ordered", file: file, line: line)
        }
    }

    func tensorRefs(_ argument: CallArgument?) -> [TensorRef] {
        argument?.tensors.map(\.ref) ?? []
    }

    func ref(_ layer: String, _ node: Int = 0, _ index: Int = 0) -> TensorRef {
        TensorRef(layer: layer, node: node, index: index)
    }

    // MARK: Keras fixtures

    struct Manifest: Decodable {
        struct End: Decodable { var name: String }
        struct Case: Decodable { var inputs: [End]; var outputs: [End] }
        var cases: [String: Case]
    }

    func testEveryFixtureParsesWithItsNamesAndATopologicalOrder() throws {
        let data = try Data(contentsOf: GraphSpecTests.root.appendingPathComponent("Tests/GraphFixtures/MANIFEST.json"))
        let manifest = try JSONDecoder().decode(Manifest.self, from: data)
        XCTAssertGreaterThanOrEqual(manifest.cases.count, 12)
        for (name, entry) in manifest.cases.sorted(by: { $0.key < $1.key }) {
            let graph = try fixture(name)
            XCTAssertEqual(graph.inputNames, entry.inputs.map(\.name), name)
            XCTAssertEqual(graph.outputNames, entry.outputs.map(\.name), name)
            XCTAssertEqual(graph.inputs.count, graph.inputNames.count, name)
            assertTopological(graph)
        }
    }

    func testResidualBlocksAddAfterBothBranches() throws {
        let graph = try fixture("residual_cnn")
        XCTAssertEqual(graph.className, "Functional")
        XCTAssertEqual(graph.format, .keras3)
        XCTAssertEqual(graph.inputs, [ref("image")])
        XCTAssertEqual(graph.outputs, [ref("logits")])
        XCTAssertEqual(graph.order.map(\.layer), ["image", "b1_conv1", "b1_project", "b1_bn1", "b1_relu1", "b1_conv2", "b1_add",
                                                   "b1_bn_out", "b1_relu_out", "b2_conv1", "b2_relu1", "b2_conv2", "b2_add",
                                                   "b2_bn_out", "b2_relu_out", "gap", "logits"])
        let add = try XCTUnwrap(graph.layer(named: "b2_add"))
        XCTAssertEqual(add.nodes.count, 1)
        XCTAssertEqual(tensorRefs(add.nodes[0].args.first), [ref("b1_relu_out"), ref("b2_conv2")])
        XCTAssertEqual(add.nodes[0].path, "config.layers[12].inbound_nodes[0]")
        XCTAssertEqual(add.nodes[0].inputs.first?.shape, [nil, 6, 6, 4])
        XCTAssertEqual(add.label, "layer 'b2_add' (Add)")
    }

    func testTwoInputsKeepTheirDictKeysAndTwoOutputsTheirLayerNames() throws {
        let two = try fixture("two_input_image_tabular")
        XCTAssertEqual(two.inputNames, ["image", "tabular"])
        XCTAssertEqual(tensorRefs(two.layer(named: "join")?.nodes[0].args.first), [ref("pool"), ref("table_dense")])
        let heads = try fixture("two_output")
        XCTAssertEqual(heads.outputNames, ["class_head", "value_head"])
        XCTAssertEqual(heads.order.map(\.layer), ["features", "trunk", "class_head", "value_head"])
    }

    func testSharedLayersHaveOneCallPerUse() throws {
        let graph = try fixture("shared_embedding_lstm")
        XCTAssertEqual(graph.layer(named: "shared_embedding")?.nodes.count, 2)
        let lstm = try XCTUnwrap(graph.layer(named: "shared_lstm"))
        XCTAssertEqual(lstm.nodes.count, 2)
        XCTAssertEqual(tensorRefs(lstm.nodes[1].args.first), [ref("shared_embedding", 1)])
        // Keras 3 writes the mask Embedding(mask_zero) makes as an explicit NotEqual op, passed as `mask`.
        XCTAssertEqual(tensorRefs(lstm.nodes[1].kwarg("mask")), [ref("not_equal_1")])
        XCTAssertEqual(lstm.nodes[1].kwarg("training"), .value(.bool(false)))
        XCTAssertEqual(graph.layer(named: "not_equal_1")?.operationModule, "keras.src.ops.numpy")
        XCTAssertEqual(tensorRefs(graph.layer(named: "cosine")?.nodes[0].args.first), [ref("shared_lstm", 0), ref("shared_lstm", 1)])
        XCTAssertTrue(graph.order.contains(NodeKey(layer: "shared_lstm", node: 1)))
    }

    func testKeras2FormGivesTheSameGraph() throws {
        let graph = try fixture("keras2_functional")
        XCTAssertEqual(graph.format, .keras2)
        XCTAssertEqual(graph.kerasVersion, "2.15.0")
        XCTAssertEqual(graph.inputNames, ["left", "right"])
        XCTAssertEqual(graph.layer(named: "shared_lstm")?.nodes.count, 2)
        let lstm = try XCTUnwrap(graph.layer(named: "shared_lstm"))
        XCTAssertEqual(lstm.nodes[1].args.count, 1)
        XCTAssertEqual(tensorRefs(lstm.nodes[1].args[0]), [ref("shared_embedding", 1)])
        XCTAssertEqual(lstm.nodes[1].path, "config.layers[3].inbound_nodes[1]")
        let dot = try XCTUnwrap(graph.layer(named: "cosine")?.nodes.first)
        guard case let .list(items)? = dot.args.first else { return XCTFail("Dot should take one list of tensors, got \(dot.args)") }
        XCTAssertEqual(items.flatMap(\.tensors).map(\.ref), [ref("shared_lstm", 0), ref("shared_lstm", 1)])
        XCTAssertEqual(graph.order.map(\.description), ["'left' call 0", "'right' call 0", "'shared_embedding' call 0", "'shared_embedding' call 1",
                                                          "'shared_lstm' call 0", "'shared_lstm' call 1", "'cosine' call 0"])
    }

    /// Keras 2's TFOpLambda and SlicingOpLambda layers become the Keras 3 operations they equal,
    /// their arguments in that operation's order and their settings in its config; a function not
    /// listed, a keyword the operation does not take, a fixed one at another value and a missing
    /// argument are refused with the layer's path.
    func testKerasTwoFunctionsBecomeOperations() throws {
        func model(_ lambdas: String) -> String {
            #"{"class_name": "Functional", "config": {"name": "m", "layers": [{"class_name": "InputLayer", "config": {"batch_input_shape": [null, 3], "name": "x"}, "name": "x", "inbound_nodes": []}, "#
                + lambdas + #"], "input_layers": [["x", 0, 0]], "output_layers": [["last", 0, 0]]}, "keras_version": "2.20.1", "backend": "tensorflow"}"#
        }
        func lambda(_ name: String, _ function: String, _ call: String, className: String = "TFOpLambda") -> String {
            #"{"class_name": "\#(className)", "config": {"name": "\#(name)", "function": "\#(function)"}, "name": "\#(name)", "inbound_nodes": [\#(call)]}"#
        }
        let graph = try GraphSpec.parse(model([lambda("plus", "__operators__.add", #"["x", 0, 0, {"y": 3.0, "name": null}]"#),
                                               lambda("minus", "math.subtract", #"["_CONSTANT_VALUE", -1, 1.0, {"y": ["plus", 0, 0], "name": null}]"#),
                                               lambda("last", "nn.relu6", #"["minus", 0, 0, {}]"#)].joined(separator: ", ")))
        let plus = try XCTUnwrap(graph.layer(named: "plus"))
        XCTAssertEqual(plus.spec.className, "Add")
        XCTAssertEqual(plus.operationModule, "keras.src.ops.numpy")
        XCTAssertEqual(tensorRefs(plus.nodes[0].args[0]), [ref("x")])
        XCTAssertEqual(plus.nodes[0].args[1], .value(.double(3.0)))
        XCTAssertTrue(plus.nodes[0].kwargs.isEmpty)
        let minus = try XCTUnwrap(graph.layer(named: "minus"))
        XCTAssertEqual(minus.spec.className, "Subtract")
        XCTAssertEqual(minus.nodes[0].args[0], .value(.double(1.0)))
        XCTAssertEqual(tensorRefs(minus.nodes[0].args[1]), [ref("plus")])
        XCTAssertEqual(graph.layer(named: "last")?.spec.className, "Relu6")
        XCTAssertEqual(graph.layer(named: "last")?.operationModule, "keras.src.ops.nn")
        XCTAssertEqual(graph.order.map(\.layer), ["x", "plus", "minus", "last"])

        // Settings move into the config under the operation's names; a list of tensors is one argument; a slice is an index.
        let shaped = try GraphSpec.parse(model([lambda("mean", "math.reduce_mean", #"["x", 0, 0, {"axis": 1, "keepdims": true}]"#),
                                                lambda("both", "concat", #"[["x", 0, 0, {"axis": -1}], ["mean", 0, 0, {"axis": -1}]]"#),
                                                lambda("last", "__operators__.getitem",
                                                       #"["both", 0, 0, {"slice_spec": [{"start": null, "stop": null, "step": null}, -1]}]"#,
                                                       className: "SlicingOpLambda")].joined(separator: ", ")))
        let mean = try XCTUnwrap(shaped.layer(named: "mean"))
        XCTAssertEqual(mean.spec.className, "Mean")
        XCTAssertEqual(mean.spec.config["axis"], .int(1))
        XCTAssertEqual(mean.spec.config["keepdims"], .bool(true))
        XCTAssertEqual(mean.nodes[0].args.count, 1)
        let both = try XCTUnwrap(shaped.layer(named: "both"))
        XCTAssertEqual(both.spec.className, "Concatenate")
        XCTAssertEqual(both.spec.config["axis"], .int(-1))
        XCTAssertEqual(tensorRefs(both.nodes[0].args[0]), [ref("x"), ref("mean")])
        let item = try XCTUnwrap(shaped.layer(named: "last")?.nodes.first)
        guard case let .list(index)? = item.args.last, index.count == 2, case let .value(slice) = index[0] else {
            return XCTFail("GetItem's index should be a list of two, got \(item.args)")
        }
        XCTAssertEqual(slice["class_name"], .string("__slice__"))
        XCTAssertEqual(index[1], .value(.int(-1)))

        // tf.split's sizes become Keras 3's cut points.
        let split = try GraphSpec.parse(model(lambda("last", "split", #"["x", 0, 0, {"num_or_size_splits": [2, 3, 1], "axis": -1}]"#)))
        XCTAssertEqual(split.layer(named: "last")?.spec.config["indices_or_sections"], .array([.int(2), .int(5)]))

        // Where TensorFlow's default differs from Keras 3's, the config says TensorFlow's: tf.nn.gelu
        // is exact unless told, tf.math.cumsum runs along axis 0 (the batch axis, then refused by
        // the operation); a call that gives the setting keeps its own.
        let gelu = try GraphSpec.parse(model(lambda("last", "nn.gelu", #"["x", 0, 0, {}]"#)))
        XCTAssertEqual(gelu.layer(named: "last")?.spec.className, "Gelu")
        XCTAssertEqual(gelu.layer(named: "last")?.spec.config["approximate"], .bool(false))
        let tanhGelu = try GraphSpec.parse(model(lambda("last", "nn.gelu", #"["x", 0, 0, {"approximate": true}]"#)))
        XCTAssertEqual(tanhGelu.layer(named: "last")?.spec.config["approximate"], .bool(true))
        let cumsum = try GraphSpec.parse(model(lambda("last", "math.cumsum", #"["x", 0, 0, {}]"#)))
        XCTAssertEqual(cumsum.layer(named: "last")?.spec.config["axis"], .int(0))
        let chosen = try GraphSpec.parse(model(lambda("last", "where", #"["x", 0, 0, {"x": ["x", 0, 0], "y": 0.5}]"#)))
        let choice = try XCTUnwrap(chosen.layer(named: "last"))
        XCTAssertEqual(choice.spec.className, "Where")
        XCTAssertEqual(choice.nodes[0].args.count, 3)
        XCTAssertEqual(choice.nodes[0].args[2], .value(.double(0.5)))
        let product = try GraphSpec.parse(model(lambda("last", "linalg.matmul", #"["x", 0, 0, {"b": ["x", 0, 0], "transpose_b": true}]"#)))
        XCTAssertEqual(product.layer(named: "last")?.spec.config["transpose_b"], .bool(true))
        // tf.math.l2_normalize's epsilon bounds Σ x², Keras 3's Normalize the norm: its square root.
        let unit = try GraphSpec.parse(model(lambda("last", "math.l2_normalize", #"["x", 0, 0, {"axis": -1, "epsilon": 0.25}]"#)))
        XCTAssertEqual(unit.layer(named: "last")?.spec.className, "Normalize")
        XCTAssertEqual(unit.layer(named: "last")?.spec.config["epsilon"], .double(0.5))
        XCTAssertEqual(try GraphSpec.parse(model(lambda("last", "math.l2_normalize", #"["x", 0, 0, {}]"#))).layer(named: "last")?.spec.config["axis"], .null)
        let clipped = try GraphSpec.parse(model(lambda("last", "clip_by_value", #"["x", 0, 0, {"clip_value_min": -1.0, "clip_value_max": 2.0}]"#)))
        XCTAssertEqual(clipped.layer(named: "last")?.spec.config["x_min"], .double(-1.0))
        XCTAssertEqual(clipped.layer(named: "last")?.spec.config["x_max"], .double(2.0))

        for (lambdas, fragment) in [
            (lambda("last", "image.adjust_contrast", #"["x", 0, 0, {"contrast_factor": 2}]"#), "applies tf.image.adjust_contrast, which nnbuild does not run from a Keras 2 model"),
            (lambda("last", "split", #"["x", 0, 0, {"num_or_size_splits": [-1, 2]}]"#), "is called with num_or_size_splits="),
            (lambda("last", "math.multiply", #"["x", 0, 0, {"slice_spec": []}]"#, className: "SlicingOpLambda"), "applies tf.math.multiply"),
            (lambda("last", "math.reduce_mean", #"["x", 0, 0, {"axis": 1, "z": 1}]"#), "is called with 'z', which nnbuild does not take"),
            (lambda("last", "compat.v1.transpose", #"["x", 0, 0, {"perm": [0, 1], "conjugate": true}]"#), "nnbuild takes it only at false"),
            (lambda("last", "math.multiply", #"["x", 0, 0, {"name": null}]"#), "needs its argument 'y'"),
            (lambda("last", "concat", #"["x", 0, 0, {"axis": 1}]"#), "takes a list of tensors, called on one"),
            (lambda("last", "math.cumsum", #"["x", 0, 0, {"axis": 1, "reverse": true}]"#), "nnbuild takes it only at false"),
            (lambda("last", "where", #"["x", 0, 0, {"name": null}]"#), "needs its argument 'x'"),
        ] {
            XCTAssertThrowsError(try GraphSpec.parse(model(lambdas))) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
                XCTAssertTrue("\(error)".contains("config.layers[1]"), "\(error)")
            }
        }
    }

    func testNestedSequentialStaysANestedGraph() throws {
        let graph = try fixture("sequential_in_functional")
        let inner = try XCTUnwrap(graph.layer(named: "inner_sequential"))
        let model = try XCTUnwrap(inner.model)
        XCTAssertEqual(model.className, "Sequential")
        XCTAssertEqual(model.path, "config.layers[2]")
        XCTAssertEqual(model.layers.map(\.name), ["inner_input", "inner_dense1", "inner_relu", "inner_dense2"])
        XCTAssertEqual(model.layers[3].spec.path, "config.layers[2].config.layers[3]")
        XCTAssertEqual(model.order.map(\.layer), ["inner_input", "inner_dense1", "inner_relu", "inner_dense2"])
        XCTAssertEqual(tensorRefs(inner.nodes[0].args.first), [ref("before")])
        XCTAssertEqual(inner.label, "model 'inner_sequential' (Sequential)")
    }

    func testSequentialWithANestedFunctionalLowersToAChain() throws {
        let graph = try fixture("functional_in_sequential")
        XCTAssertEqual(graph.className, "Sequential")
        XCTAssertEqual(graph.inputNames, ["seq_input"])
        XCTAssertEqual(graph.outputNames, ["last"])
        XCTAssertEqual(graph.order.map(\.layer), ["seq_input", "first", "inner_functional", "last"])
        XCTAssertEqual(tensorRefs(graph.layer(named: "last")?.nodes[0].args.first), [ref("inner_functional")])
        let inner = try XCTUnwrap(graph.layer(named: "inner_functional")?.model)
        XCTAssertEqual(inner.className, "Functional")
        XCTAssertEqual(tensorRefs(inner.layer(named: "inner_add")?.nodes[0].args.first), [ref("inner_in"), ref("inner_dense")])
    }

    /// Keras 3 numbers a nested Functional's calls from 0 in call arguments but from 1 in
    /// output_layers; tf-keras from 1 in both. GraphSpec counts from 0 everywhere.
    func testNestedFunctionalCallsAreCountedFromZeroInEveryDialect() throws {
        for name in ["functional_in_functional", "keras2_nested_functional"] {
            let graph = try fixture(name)
            let inner = try XCTUnwrap(graph.layer(named: "inner_functional"), name)
            XCTAssertEqual(inner.nodes.count, 3, name)
            XCTAssertEqual(inner.model?.className, "Functional", name)
            XCTAssertEqual(tensorRefs(graph.layer(named: "join")?.nodes[0].args.first), [ref("inner_functional", 0), ref("inner_functional", 1)], name)
            XCTAssertEqual(graph.outputs, [ref("head"), ref("inner_functional", 2)], name)
            XCTAssertEqual(graph.outputNames, ["head", "inner_functional"], name)
            XCTAssertEqual(graph.order.map(\.description), ["'a' call 0", "'b' call 0", "'inner_functional' call 0", "'inner_functional' call 1",
                                                              "'inner_functional' call 2", "'join' call 0", "'head' call 0"], name)
        }
    }

    func testEveryMergeLayer() throws {
        let graph = try fixture("merge_layers")
        XCTAssertEqual(graph.outputNames, ["add", "subtract", "multiply", "average", "maximum", "minimum", "concat_last",
                                           "concat_axis1", "concat_axis2", "dot_axes2", "dot_axes11", "dot_normalized"])
        XCTAssertEqual(tensorRefs(graph.layer(named: "add")?.nodes[0].args.first), [ref("a"), ref("b"), ref("c")])
        XCTAssertEqual(graph.layer(named: "dot_axes11")?.spec.config["axes"], .array([.int(1), .int(1)]))
        XCTAssertEqual(graph.layer(named: "add")?.operationModule, nil)
    }

    func testKeras3OpsAreMarkedApartFromLayersOfTheSameClassName() throws {
        let graph = try fixture("keras3_ops")
        let opAdd = try XCTUnwrap(graph.layer(named: "add"))
        let layerAdd = try XCTUnwrap(graph.layer(named: "layer_add"))
        XCTAssertEqual(opAdd.spec.className, "Add")
        XCTAssertEqual(layerAdd.spec.className, "Add")
        XCTAssertEqual(opAdd.operationModule, "keras.src.ops.numpy")
        XCTAssertNil(layerAdd.operationModule)
        XCTAssertEqual(opAdd.label, "operation 'add' (Add from keras.src.ops.numpy)")
        XCTAssertEqual(tensorRefs(opAdd.nodes[0].args[0]) + tensorRefs(opAdd.nodes[0].args[1]), [ref("proj"), ref("y")])
        let multiply = try XCTUnwrap(graph.layer(named: "multiply")?.nodes.first)
        XCTAssertEqual(multiply.args.count, 2)
        XCTAssertEqual(multiply.args[1], .value(.double(2.0)))
        XCTAssertEqual(graph.layer(named: "mean")?.spec.config["axis"], .int(1))
        let getItem = try XCTUnwrap(graph.layer(named: "get_item")?.nodes.first)
        guard case let .list(index)? = getItem.args.last else { return XCTFail("GetItem's index should be a list, got \(getItem.args)") }
        XCTAssertEqual(index.count, 3)
        XCTAssertEqual(index[1], .value(.int(-1)))
        guard case let .value(slice) = index[0] else { return XCTFail("a slice should stay a value, got \(index[0])") }
        XCTAssertEqual(slice["class_name"], .string("__slice__"))
        XCTAssertEqual(tensorRefs(graph.layer(named: "concatenate")?.nodes[0].args.first), [ref("mean"), ref("get_item")])
        XCTAssertEqual(graph.layer(named: "tanh")?.operationModule, "keras.src.ops.numpy")
    }

    func testMasksOfMergesArriveAsMaskArguments() throws {
        let graph = try fixture("masked_merges")
        XCTAssertEqual(tensorRefs(graph.layer(named: "pool")?.nodes[0].kwarg("mask")), [ref("logical_or")])
        XCTAssertEqual(tensorRefs(graph.layer(named: "lstm_after_concat")?.nodes[0].kwarg("mask")), [ref("any")])
        XCTAssertEqual(graph.layer(named: "any")?.operationModule, "keras.src.ops.numpy")
    }

    func testRecurrentStatesAreOutputsAndInitialStateArguments() throws {
        let graph = try fixture("seq2seq_lstm")
        let decoder = try XCTUnwrap(graph.layer(named: "decoder")?.nodes.first)
        XCTAssertEqual(tensorRefs(decoder.args.first), [ref("decoder_input")])
        XCTAssertEqual(tensorRefs(decoder.kwarg("initial_state")), [ref("encoder", 0, 1), ref("encoder", 0, 2)])
        XCTAssertEqual(decoder.inputs.map(\.ref), [ref("decoder_input"), ref("encoder", 0, 1), ref("encoder", 0, 2)])
        let states = try fixture("bidi_return_state")
        XCTAssertEqual(states.outputNames, ["bidi", "bidi:1", "bidi:2", "bidi:3", "bidi:4", "head"])
        XCTAssertEqual(states.outputs[3], ref("bidi", 0, 3))
        XCTAssertEqual(tensorRefs(states.layer(named: "states")?.nodes[0].args.first), [ref("bidi", 0, 1), ref("bidi", 0, 3)])
    }

    // MARK: Sequential as a graph

    /// Every Sequential fixture reads as a chain over the same layers ModelDescription reads.
    func testEverySequentialFixtureLowersToAChain() throws {
        let folder = GraphSpecTests.root.appendingPathComponent("Tests/Fixtures")
        let cases = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        var checked = 0
        for name in cases {
            let path = folder.appendingPathComponent("\(name)/model.json").path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let description = try ModelDescription.load(path: path)
            let graph = try GraphSpec.load(path: path)
            var names = description.layers.map(\.name)
            if description.layers.first?.className != "InputLayer" { names.insert("\(names[0])_input", at: 0) }
            XCTAssertEqual(graph.layers.map(\.name), names, name)
            XCTAssertEqual(graph.order.map(\.layer), names, name)
            XCTAssertEqual(graph.format, description.format, name)
            XCTAssertEqual(graph.outputs, [ref(names[names.count - 1])], name)
            XCTAssertEqual(graph.layers[0].spec.className, "InputLayer", name)
            assertTopological(graph)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 50)
    }

    func testSequentialWithoutInputLayerGetsOneCarryingTheShape() throws {
        let graph = try GraphSpec.parse(#"""
        {"class_name": "Sequential", "config": {"layers": [
          {"class_name": "Dense", "config": {"units": 4, "batch_input_shape": [null, 6]}}, {"class_name": "Dense", "config": {"units": 2}}]}}
        """#)
        XCTAssertEqual(graph.layers.map(\.name), ["dense_input", "dense", "dense_1"])
        XCTAssertEqual(graph.layers[0].spec.config["batch_shape"], .array([.null, .int(6)]))
        XCTAssertEqual(graph.inputNames, ["dense_input"])
        XCTAssertEqual(graph.outputNames, ["dense_1"])
        XCTAssertEqual(tensorRefs(graph.layers[2].nodes[0].args.first), [ref("dense")])
    }

    /// The chain a Sequential lowers to refers to a nested Functional's first call as call 0,
    /// in every dialect, even as the model's output.
    func testSequentialEndingInANestedFunctional() throws {
        let inner = #"{"class_name": "Functional", "config": {"name": "inner", "layers": [{"class_name": "InputLayer", "name": "i", "config": {"name": "i", "batch_input_shape": [null, 3]}, "inbound_nodes": []}, {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2}, "inbound_nodes": [[["i", 0, 0, {}]]]}], "input_layers": [["i", 0, 0]], "output_layers": [["d", 0, 0]]}}"#
        for header in [#""module": "keras", "#, #""keras_version": "2.15.0", "#] {
            let graph = try GraphSpec.parse(#"{"# + header + #""class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"name": "x", "batch_input_shape": [null, 3]}}, {"class_name": "Dense", "config": {"name": "first", "units": 3}}, "# + inner + "]}}")
            XCTAssertEqual(graph.outputs, [ref("inner")], header)
            XCTAssertEqual(tensorRefs(graph.layer(named: "inner")?.nodes[0].args.first), [ref("first")], header)
            XCTAssertEqual(graph.order.map(\.layer), ["x", "first", "inner"], header)
        }
    }

    // MARK: Hand-written graphs

    let twoNamedEnds = #"""
    {"class_name": "Functional", "config": {"name": "m", "layers": [
      {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_shape": [null, 3]}, "inbound_nodes": []},
      {"class_name": "LSTM", "name": "rnn", "config": {"name": "rnn", "units": 2, "return_state": true},
       "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 3], "dtype": "float32", "keras_history": ["in", 0, 0]}}], "kwargs": {}}]}],
      "input_layers": {"tokens": ["in", 0, 0]},
      "output_layers": [["rnn", 0, 0], ["rnn", 0, 2]]}}
    """#

    func testDictKeysNameInputsAndTensorIndicesNameOutputs() throws {
        let graph = try GraphSpec.parse(twoNamedEnds)
        XCTAssertEqual(graph.inputNames, ["tokens"])
        XCTAssertEqual(graph.outputNames, ["rnn", "rnn:2"])
        XCTAssertEqual(graph.outputs, [ref("rnn"), ref("rnn", 0, 2)])
    }

    func testCallsNoOutputNeedsAreLeftOutOfTheOrder() throws {
        let graph = try GraphSpec.parse(#"""
        {"class_name": "Functional", "config": {"name": "m", "layers": [
          {"class_name": "InputLayer", "config": {"name": "in"}, "inbound_nodes": []},
          {"class_name": "Dense", "config": {"name": "used"}, "inbound_nodes": [[["in", 0, 0, {}]]]},
          {"class_name": "Dense", "config": {"name": "dead"}, "inbound_nodes": [[["in", 0, 0, {}]]]}],
          "input_layers": [["in", 0, 0]], "output_layers": [["used", 0, 0]]}}
        """#)
        XCTAssertEqual(graph.order.map(\.layer), ["in", "used"])
        XCTAssertEqual(graph.layers.count, 3)
        XCTAssertEqual(graph.format, .handwritten)
    }

    // MARK: Broken graphs

    struct MalformedCase: Decodable {
        var name: String
        var file: String
        var why: String
        var path: String
        var fragment: String
    }

    func testEveryBrokenGraphIsRefusedWithItsPathAndMessage() throws {
        let folder = GraphSpecTests.root.appendingPathComponent("Tests/GraphMalformed")
        let cases = try JSONDecoder().decode([MalformedCase].self, from: Data(contentsOf: folder.appendingPathComponent("cases.json")))
        XCTAssertGreaterThanOrEqual(cases.count, 15)
        for item in cases {
            let path = folder.appendingPathComponent(item.file).path
            XCTAssertThrowsError(try GraphSpec.load(path: path), "\(item.name) (\(item.why)) was accepted") { error in
                guard let error = error as? NNError else { return XCTFail("\(item.name): not an NNError: \(error)") }
                XCTAssertEqual(error.kind, .spec, "\(item.name): \(error)")
                XCTAssertEqual(error.location, "\(path): \(item.path)", "\(item.name): \(error)")
                XCTAssertTrue(error.message.contains(item.fragment), "\(item.name): expected '\(item.fragment)' in: \(error.message)")
            }
        }
    }

    func testNotAModel() {
        XCTAssertThrowsError(try GraphSpec.parse(#"{"class_name": "Dense", "config": {}}"#)) { error in
            XCTAssertEqual("\(error)", #"<spec>: class_name: expected "Sequential", "Functional" or "Model", found "Dense""#)
        }
        XCTAssertThrowsError(try GraphSpec.parse(#"[1]"#)) { error in
            XCTAssertEqual("\(error)", "<spec>: expected a JSON object describing a model, found an array")
        }
    }
}
