import Foundation
import XCTest
import Builtins
import LayerRegistry

/// Recurrent layers in a graph: `return_state` (the output(s), then the final states in Keras's
/// order), `initial_state` (keyword or positional), Bidirectional's states and merge_mode None,
/// each output's mask, and the refusals.
final class RecurrentStateTests: XCTestCase {
    // MARK: Keras fixtures

    /// The Keras 3 cases made for recurrent states by tools/make_graph_fixtures.py.
    static let cases = ["masked_return_state", "seq2seq_gru", "bidi_masked_sequences_states", "bidi_initial_state", "bidi_merge_none"]

    /// Keras 3 writes an Embedding's mask into the graph as `ops.not_equal(tokens, 0)`. Where the
    /// registry has no such operation yet, the test supplies one (tensor ≠ constant, as 1 or 0),
    /// so these cases test the recurrent layers; once the operation is built in, it runs instead.
    struct NotEqual: NodeLayer {
        let constant: Float
        let outputShapes: [[Int?]]
        func call(_ inputs: [Tensor]) throws -> [Tensor] {
            [Tensor(shape: inputs[0].shape, data: inputs[0].data.map { $0 != constant ? 1 : 0 })]
        }
    }

    static func registry() -> LayerRegistry {
        let registry = LayerRegistry.withBuiltins()
        if !registry.contains(LayerRegistry.operationName("NotEqual")) {
            registry.register(LayerRegistry.operationName("NotEqual")) { context in
                guard case let .value(value)? = context.callArgument(1), case let .int(number) = value else {
                    throw context.error("the test's NotEqual compares with an integer constant")
                }
                return NotEqual(constant: Float(number), outputShapes: [context.inputShape])
            }
        }
        return registry
    }

    func testStateFixturesMatchKerasOnEveryOutput() throws {
        let manifest = try GraphFixtureTests.manifest()
        for name in Self.cases {
            let entry = try XCTUnwrap(manifest.cases[name], "\(name) is not in the manifest")
            let dir = GraphFixtureTests.root.appendingPathComponent(name)
            let model: Model
            do {
                model = try Model.build(try ModelDescription.load(path: dir.appendingPathComponent("model.json").path), registry: Self.registry(),
                                        weights: try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path))
            } catch {
                XCTFail("\(name): \(error.nnProblems.joined(separator: "\n"))")
                continue
            }
            XCTAssertEqual(model.outputs.map(\.name), entry.outputs.map(\.name), name)
            var batches: [String: Tensor] = [:]
            for port in entry.inputs {
                batches[port.name] = try model.batch(from: GraphFixtureTests.array(name, port.file), source: port.file, input: port.name)
            }
            let results = try model.predict(batches)
            for port in entry.outputs {
                let expected = try GraphFixtureTests.array(name, port.file)
                let got = try XCTUnwrap(results[port.name], "\(name): no output '\(port.name)'")
                XCTAssertEqual(got.shape, expected.shape, "\(name) output \(port.name)")
                var worst = 0.0
                for (a, b) in zip(got.data, expected.values) {
                    let error = abs(Double(a) - Double(b)) / (1 + abs(Double(b)))
                    worst = error.isNaN ? .infinity : max(worst, error)
                }
                XCTAssertLessThanOrEqual(worst, 1e-5, "\(name) output \(port.name): max relative error \(worst)")
            }
        }
    }

    // MARK: Hand-built graphs

    var generator = SplitMix(seed: 11)

    static func tensorJSON(_ layer: String, _ tensor: Int = 0, shape: [Int?]) -> String {
        let dims = "[null, " + shape.map { $0.map(String.init) ?? "null" }.joined(separator: ", ") + "]"
        return #"{"class_name": "__keras_tensor__", "config": {"shape": \#(dims), "dtype": "float32", "keras_history": ["\#(layer)", 0, \#(tensor)]}}"#
    }

    static func inputJSON(_ name: String, _ shape: [Int?]) -> String {
        let dims = "[null, " + shape.map { $0.map(String.init) ?? "null" }.joined(separator: ", ") + "]"
        return #"{"class_name": "InputLayer", "name": "\#(name)", "config": {"name": "\#(name)", "batch_shape": \#(dims), "dtype": "float32"}, "inbound_nodes": []}"#
    }

    /// A Keras 3 Functional model of `layers` (JSON objects), with weights `weights` (name, shape, values).
    static func build(_ layers: [String], inputs: [String], outputs: [(String, Int)], weights: [(String, [Int], [Float])],
                      registry: LayerRegistry = .withBuiltins()) throws -> Model {
        let json = #"{"class_name": "Functional", "config": {"name": "m", "layers": [\#(layers.joined(separator: ", "))], "#
            + #""input_layers": [\#(inputs.map { #"["\#($0)", 0, 0]"# }.joined(separator: ", "))], "#
            + #""output_layers": [\#(outputs.map { #"["\#($0.0)", 0, \#($0.1)]"# }.joined(separator: ", "))]}}"#
        var offset = 0, entries: [String] = [], data: [UInt8] = []
        for (name, dims, values) in weights {
            entries.append("\"\(name)\": {\"dtype\": \"F32\", \"shape\": \(dims), \"data_offsets\": [\(offset), \(offset + values.count * 4)]}")
            offset += values.count * 4
            for value in values { data += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
        }
        let header = Array(("{" + entries.joined(separator: ", ") + "}").utf8)
        let store = try WeightStore(bytes: withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + data)
        return try Model.build(try ModelDescription.parse(json, source: "test.json"), registry: registry, weights: store)
    }

    /// Random weights for a recurrent layer of `gates` gates under `prefix` (Keras 3 paths).
    func recurrentWeights(_ prefix: String, gates: Int, features: Int, units: Int, gruBias: Bool = false) -> [(String, [Int], [Float])] {
        [("\(prefix)/kernel", [features, gates * units], generator.floats(features * gates * units)),
         ("\(prefix)/recurrent_kernel", [units, gates * units], generator.floats(units * gates * units)),
         ("\(prefix)/bias", gruBias ? [2, gates * units] : [gates * units], generator.floats(gates * units * (gruBias ? 2 : 1)))]
    }

    func slice(_ tensor: Tensor, steps range: Range<Int>) -> Tensor {
        let steps = tensor.shape[1], width = tensor.shape[2]
        var data: [Float] = []
        for row in 0..<tensor.batch {
            data += tensor.data[((row * steps + range.lowerBound) * width)..<((row * steps + range.upperBound) * width)]
        }
        return Tensor(shape: [tensor.batch, range.count, width], data: data)
    }

    func testReturnStateGivesTheOutputThenTheStatesInKerasOrder() throws {
        for (className, gates, stateCount) in [("LSTM", 4, 2), ("GRU", 3, 1), ("SimpleRNN", 1, 1)] {
            for returnSequences in [false, true] {
                let config = #"{"name": "rnn", "units": 4, "return_state": true, "return_sequences": \#(returnSequences)}"#
                let layer = #"{"class_name": "\#(className)", "name": "rnn", "config": \#(config), "inbound_nodes": [{"args": [\#(Self.tensorJSON("x", shape: [5, 3]))], "kwargs": {}}]}"#
                let weights = recurrentWeights("rnn", gates: gates, features: 3, units: 4, gruBias: className == "GRU")
                let model = try Self.build([Self.inputJSON("x", [5, 3]), layer], inputs: ["x"], outputs: (0...stateCount).map { ("rnn", $0) }, weights: weights)
                let x = Tensor(shape: [2, 5, 3], data: generator.floats(30))
                let outputs = try model.predict([x])
                let label = "\(className) return_sequences \(returnSequences)"
                XCTAssertEqual(outputs.count, 1 + stateCount, label)
                XCTAssertEqual(outputs[0].shape, returnSequences ? [2, 5, 4] : [2, 4], label)
                for state in outputs.dropFirst() { XCTAssertEqual(state.shape, [2, 4], label) }
                // h is the output of the last step; LSTM's c follows it and differs.
                let lastStep = returnSequences ? (0..<2).flatMap { row in outputs[0].data[((row * 5 + 4) * 4)..<((row * 5 + 5) * 4)] } : outputs[0].data
                XCTAssertEqual(outputs[1].data, lastStep, label)
                if stateCount == 2 { XCTAssertNotEqual(outputs[2].data, outputs[1].data, label) }
                // The sequence output is what the layer gives without return_state.
                let naive = NaiveRecurrent.run(className == "LSTM" ? .lstm : className == "GRU" ? .gru(resetAfter: true) : .simple,
                                               x: x.data, batch: 2, steps: 5, features: 3, units: 4, kernel: weights[0].2,
                                               recurrentKernel: weights[1].2, bias: weights[2].2, returnSequences: returnSequences)
                assertClose(outputs[0].data, naive, accuracy: 1e-5)
            }
        }
    }

    func testTheFinalStateOfAPaddedRowIsTheStateAtItsLastRealStepAndOnlyTheSequenceKeepsTheMask() throws {
        let layer = #"{"class_name": "LSTM", "name": "rnn", "config": {"name": "rnn", "units": 4, "return_state": true, "return_sequences": true}, "inbound_nodes": [{"args": [\#(Self.tensorJSON("x", shape: [nil, 3]))], "kwargs": {}}]}"#
        let model = try Self.build([Self.inputJSON("x", [nil, 3]), layer], inputs: ["x"], outputs: [("rnn", 0), ("rnn", 1), ("rnn", 2)],
                                   weights: recurrentWeights("rnn", gates: 4, features: 3, units: 4))
        let node = try XCTUnwrap(model.nodes.first { $0.spec.name == "rnn" })
        XCTAssertEqual(node.layer.outputMasks(inputMasks: [true]), [true, false, false])
        let x = Tensor(shape: [1, 5, 3], data: generator.floats(15))
        let padded = try node.layer.call([Tensor(shape: x.shape, data: x.data, mask: [true, true, true, false, false])])
        let prefix = try node.layer.call([slice(x, steps: 0..<3)])
        XCTAssertEqual(padded[1].data, prefix[1].data, "h")
        XCTAssertEqual(padded[2].data, prefix[2].data, "c")
        XCTAssertEqual(padded[0].mask, [true, true, true, false, false])
        XCTAssertNil(padded[1].mask)
        XCTAssertNil(padded[2].mask)
    }

    /// Every cell, from random initial states, on rows that are whole, post-padded, pre-padded
    /// (the initial state carried through leading padding) and all padding, in both directions,
    /// matches the naive twin in its output and its final states.
    func testInitialAndFinalStatesMatchTheNaiveTwin() throws {
        let lengths: [(Int, Int)] = [(0, 6), (0, 3), (2, 6), (0, 0)]  // real steps from..<to
        let mask = lengths.flatMap { from, to in (0..<6).map { $0 >= from && $0 < to } }
        for (className, gates, kind) in [("LSTM", 4, NaiveRecurrent.Kind.lstm), ("GRU", 3, .gru(resetAfter: true)), ("SimpleRNN", 1, .simple)] {
            let stateCount = className == "LSTM" ? 2 : 1
            let weights = recurrentWeights("rnn", gates: gates, features: 3, units: 4, gruBias: className == "GRU")
            for returnSequences in [false, true] {
                for goBackwards in [false, true] {
                    let x = Self.tensorJSON("x", shape: [6, 3])
                    let states = (0..<stateCount).map { Self.tensorJSON("s\($0)", shape: [4]) }.joined(separator: ", ")
                    let config = #"{"name": "rnn", "units": 4, "return_state": true, "return_sequences": \#(returnSequences), "go_backwards": \#(goBackwards)}"#
                    let layer = #"{"class_name": "\#(className)", "name": "rnn", "config": \#(config), "inbound_nodes": [{"args": [\#(x)], "kwargs": {"initial_state": [\#(states)]}}]}"#
                    let model = try Self.build([Self.inputJSON("x", [6, 3])] + (0..<stateCount).map { Self.inputJSON("s\($0)", [4]) } + [layer],
                                               inputs: ["x"] + (0..<stateCount).map { "s\($0)" }, outputs: (0...stateCount).map { ("rnn", $0) }, weights: weights)
                    let node = try XCTUnwrap(model.nodes.first { $0.spec.name == "rnn" })
                    let input = Tensor(shape: [4, 6, 3], data: generator.floats(72), mask: mask)
                    let initial = (0..<stateCount).map { _ in Tensor(shape: [4, 4], data: generator.floats(16)) }
                    let got = try node.layer.call([input] + initial)
                    let want = NaiveRecurrent.runWithStates(kind, x: input.data, batch: 4, steps: 6, features: 3, units: 4, kernel: weights[0].2,
                                                            recurrentKernel: weights[1].2, bias: weights[2].2, mask: mask, goBackwards: goBackwards,
                                                            returnSequences: returnSequences, initialH: initial[0].data, initialC: initial.last?.data)
                    let label = "\(className) return_sequences \(returnSequences) go_backwards \(goBackwards)"
                    XCTAssertEqual(got.count, 1 + stateCount, label)
                    assertClose(got[0].data, want.output, accuracy: 1e-5)
                    assertClose(got[1].data, want.h, accuracy: 1e-5)
                    if stateCount == 2 { assertClose(got[2].data, want.c, accuracy: 1e-5) }
                    // The all-padding row ends where it started.
                    XCTAssertEqual(Array(got[1].data[12..<16]), Array(initial[0].data[12..<16]), label)
                }
            }
        }
    }

    /// An LSTM reading x, h0 and c0 as initial_state, written as Keras 3 writes a keyword call,
    /// as Keras 3 writes a positional one (`layer(x, [h0, c0])`), and as Keras 2 did (`[x, h0, c0]`).
    func stateReadingModels() throws -> [Model] {
        let x = Self.tensorJSON("x", shape: [nil, 3]), h = Self.tensorJSON("h0", shape: [4]), c = Self.tensorJSON("c0", shape: [4])
        let config = #"{"name": "rnn", "units": 4, "return_state": true}"#
        let calls = [#"[{"args": [\#(x)], "kwargs": {"initial_state": [\#(h), \#(c)]}}]"#,
                     #"[{"args": [\#(x), [\#(h), \#(c)]], "kwargs": {}}]"#,
                     #"[[["x", 0, 0, {}], ["h0", 0, 0, {}], ["c0", 0, 0, {}]]]"#]
        let weights = recurrentWeights("rnn", gates: 4, features: 3, units: 4)
        return try calls.map { call in
            try Self.build([Self.inputJSON("x", [nil, 3]), Self.inputJSON("h0", [4]), Self.inputJSON("c0", [4]),
                            #"{"class_name": "LSTM", "name": "rnn", "config": \#(config), "inbound_nodes": \#(call)}"#],
                           inputs: ["x", "h0", "c0"], outputs: [("rnn", 0), ("rnn", 1), ("rnn", 2)], weights: weights)
        }
    }

    func testInitialStateContinuesARunInEveryFormKerasWrites() throws {
        let x = Tensor(shape: [2, 5, 3], data: generator.floats(30))
        let zeros = Tensor(shape: [2, 4], data: [Float](repeating: 0, count: 8))
        var results: [[Float]] = []
        for model in try stateReadingModels() {
            let whole = try model.predict([x, zeros, zeros])
            let first = try model.predict([slice(x, steps: 0..<2), zeros, zeros])
            let rest = try model.predict([slice(x, steps: 2..<5), first[1], first[2]])
            // Running 2 steps, then 3 more from the states reached, is running all 5.
            assertClose(rest[1].data, whole[1].data, accuracy: 1e-6)
            assertClose(rest[2].data, whole[2].data, accuracy: 1e-6)
            XCTAssertNotEqual(rest[1].data, try model.predict([slice(x, steps: 2..<5), zeros, zeros])[1].data)
            results.append(rest[0].data)
        }
        XCTAssertEqual(results[1], results[0])
        XCTAssertEqual(results[2], results[0])
    }

    lazy var bidirectionalWeights = recurrentWeights("bidi/forward_lstm/lstm_cell", gates: 4, features: 2, units: 3)
        + recurrentWeights("bidi/backward_lstm/lstm_cell", gates: 4, features: 2, units: 3)

    /// A Bidirectional(LSTM(3, return_state)) on (5, 2), the same weights for every configuration.
    func bidirectional(merge: String, returnSequences: Bool, stateInputs: Bool = false) throws -> Model {
        let inner = #"{"class_name": "LSTM", "config": {"name": "lstm", "units": 3, "return_state": true, "return_sequences": \#(returnSequences)}}"#
        let x = Self.tensorJSON("x", shape: [5, 2])
        let kwargs = stateInputs ? #"{"initial_state": [\#((["fh", "fc", "bh", "bc"]).map { Self.tensorJSON($0, shape: [3]) }.joined(separator: ", "))]}"# : "{}"
        let layer = #"{"class_name": "Bidirectional", "name": "bidi", "config": {"name": "bidi", "merge_mode": \#(merge), "layer": \#(inner)}, "inbound_nodes": [{"args": [\#(x)], "kwargs": \#(kwargs)}]}"#
        let outputs = (merge == "null" ? 6 : 5)
        let stateNames = stateInputs ? ["fh", "fc", "bh", "bc"] : []
        return try Self.build([Self.inputJSON("x", [5, 2])] + stateNames.map { Self.inputJSON($0, [3]) } + [layer], inputs: ["x"] + stateNames,
                              outputs: (0..<outputs).map { ("bidi", $0) },
                              weights: bidirectionalWeights)
    }

    /// Rows of `a` and `b` side by side: a concatenation on the last axis.
    func interleave(_ a: [Float], _ b: [Float], width: Int) -> [Float] {
        var out: [Float] = []
        for row in 0..<(a.count / width) {
            out += a[(row * width)..<((row + 1) * width)]
            out += b[(row * width)..<((row + 1) * width)]
        }
        return out
    }

    func testANodeGivenInitialStatesOfAnotherBatchSizeRefusesThem() throws {
        let model = try stateReadingModels()[0]
        let x = Tensor(shape: [2, 5, 3], data: generator.floats(30))
        let three = Tensor(shape: [3, 4], data: [Float](repeating: 0, count: 12)), two = Tensor(shape: [2, 4], data: [Float](repeating: 0, count: 8))
        // The model refuses inputs of different batch sizes; the node itself checks too.
        let node = try XCTUnwrap(model.nodes.first { $0.spec.name == "rnn" })
        XCTAssertThrowsError(try node.layer.call([x, two, three])) { error in
            let text = error.nnProblems.joined(separator: "\n")
            XCTAssertTrue(text.contains("initial_state[1]: expected shape [2, 4] (the sequence's batch of 2, 4 units), found [3, 4]"), text)
        }
    }

    func testBidirectionalGivesItsOutputsThenForwardThenBackwardStates() throws {
        let x = Tensor(shape: [2, 5, 2], data: generator.floats(20))
        let concat = try bidirectional(merge: #""concat""#, returnSequences: false).predict([x])
        XCTAssertEqual(concat.map(\.shape), [[2, 6], [2, 3], [2, 3], [2, 3], [2, 3]])
        // Without return_sequences each half's output is its h: forward h, then backward h.
        XCTAssertEqual(concat[0].data, interleave(concat[1].data, concat[3].data, width: 3))
        let list = try bidirectional(merge: "null", returnSequences: false).predict([x])
        XCTAssertEqual(list.map(\.shape), [[2, 3], [2, 3], [2, 3], [2, 3], [2, 3], [2, 3]])
        XCTAssertEqual(list[0].data, list[2].data)
        XCTAssertEqual(list[1].data, list[4].data)
        XCTAssertEqual(Array(list[2...]).map(\.data), Array(concat[1...]).map(\.data))
        // Sequences: merge_mode None gives the backward sequence already turned back in time.
        let sequences = try bidirectional(merge: "null", returnSequences: true).predict([x])
        let merged = try bidirectional(merge: #""concat""#, returnSequences: true).predict([x])
        XCTAssertEqual(merged[0].data, interleave(sequences[0].data, sequences[1].data, width: 3))
    }

    func testBidirectionalInitialStateIsSplitForwardThenBackward() throws {
        let x = Tensor(shape: [1, 5, 2], data: generator.floats(10))
        let free = try bidirectional(merge: #""concat""#, returnSequences: false).predict([x])
        let model = try bidirectional(merge: #""concat""#, returnSequences: false, stateInputs: true)
        let zeros = Tensor(shape: [1, 3], data: [0, 0, 0])
        XCTAssertEqual(try model.predict([x, zeros, zeros, zeros, zeros]).map(\.data), free.map(\.data))
        // A state given to the backward half alone changes the backward states and nothing forward.
        let started = try model.predict([x, zeros, zeros, Tensor(shape: [1, 3], data: [0.5, -0.5, 0.25]), zeros])
        XCTAssertEqual(started[1].data, free[1].data)
        XCTAssertEqual(started[2].data, free[2].data)
        XCTAssertNotEqual(started[3].data, free[3].data)
    }

    // MARK: Refusals

    func assertRefused(_ build: () throws -> Model, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try build(), file: file, line: line) { error in
            let text = error.nnProblems.joined(separator: "\n")
            XCTAssertTrue(text.contains(fragment), "expected '\(fragment)' in \(text)", file: file, line: line)
        }
    }

    func lstmCall(config: String = "", args: String? = nil, kwargs: String = "{}", inputs: [(String, [Int?])] = [("x", [5, 3])]) throws -> Model {
        let layer = #"{"class_name": "LSTM", "name": "rnn", "config": {"name": "rnn", "units": 4\#(config)}, "inbound_nodes": [{"args": \#(args ?? "[" + Self.tensorJSON("x", shape: [5, 3]) + "]"), "kwargs": \#(kwargs)}]}"#
        return try Self.build(inputs.map { Self.inputJSON($0.0, $0.1) } + [layer], inputs: inputs.map(\.0), outputs: [("rnn", 0)],
                              weights: recurrentWeights("rnn", gates: 4, features: 3, units: 4))
    }

    func testUnsupportedOrMalformedStateCallsAreRefusedByName() throws {
        let h = Self.tensorJSON("h0", shape: [4]), wide = Self.tensorJSON("w0", shape: [5])
        let states: [(String, [Int?])] = [("x", [5, 3]), ("h0", [4]), ("w0", [5])]
        assertRefused({ try self.lstmCall(kwargs: #"{"initial_state": [\#(h)]}"#, inputs: states.dropLast()) },
                      "layer 'rnn' (LSTM) called on ['x', 'h0']: initial_state has 1 tensor; expected 2: h (None, 4), c (None, 4)")
        assertRefused({ try self.lstmCall(kwargs: #"{"initial_state": [\#(h), \#(wide)]}"#, inputs: states) },
                      "initial_state[1] (c) has shape (None, 5); expected (None, 4)")
        assertRefused({ try self.lstmCall(args: "[" + Self.tensorJSON("x", shape: [5, 3]) + ", " + h + "]", kwargs: #"{"initial_state": [\#(h), \#(h)]}"#, inputs: states.dropLast()) },
                      "initial_state is given both as a keyword argument and as 1 positional tensor after the sequence; give it once")
        assertRefused({ try self.lstmCall(kwargs: #"{"initial_state": [1.0, 2.0]}"#) }, "initial_state must be a list of tensors")
        assertRefused({ try self.lstmCall(config: #", "stateful": true"#) }, "config.stateful: layer 'rnn' (LSTM) called on ['x']: stateful=true is not supported")
        // A Sequential model passes one tensor on: several outputs are refused, naming the key.
        assertRefused({ try buildSingle(#"{"class_name": "GRU", "config": {"name": "g", "units": 2, "return_state": true}}"#, input: [3, 1]) },
                      "config.return_state: layer 'g' (GRU): return_state=true gives 2 tensors, which a Sequential model")
        assertRefused({ try buildSingle(#"{"class_name": "Bidirectional", "config": {"merge_mode": null, "layer": {"class_name": "GRU", "config": {"name": "g", "units": 2}}}}"#, input: [3, 1]) },
                      "config.merge_mode: layer 'bidirectional' (Bidirectional): merge_mode null gives 2 tensors, which a Sequential model")
        assertRefused({ try buildSingle(#"{"class_name": "Bidirectional", "config": {"merge_mode": "max", "layer": {"class_name": "GRU", "config": {"name": "g", "units": 2}}}}"#, input: [3, 1]) },
                      #"'merge_mode' must be one of "concat", "sum", "mul", "ave" or null, found "max""#)
        assertRefused({ try buildSingle(#"{"class_name": "Bidirectional", "config": {"layer": {"class_name": "GRU", "config": {"name": "g", "units": 2, "return_state": true}}, "backward_layer": {"class_name": "GRU", "config": {"name": "b", "units": 2, "go_backwards": true}}}}"#, input: [3, 1]) },
                      "the forward and backward layers must agree on return_state")
    }
}
