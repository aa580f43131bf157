import Foundation
import XCTest
import Builtins
import LayerRegistry

/// The generic `RNN` layer with SimpleRNNCell, LSTMCell, GRUCell and StackedRNNCells: Keras
/// fixtures for each cell and config branch, the same numbers as the dedicated layers, the
/// stacked cell against a hand-composed run, and the refusals.
final class GenericRNNTests: XCTestCase {
    /// Sequential cases made by tools/make_fixtures.py (section "issue 15: recurrent").
    func testEveryGenericRNNFixtureMatchesKeras() {
        for name in ["generic_rnn_simple_gru_cells", "generic_rnn_lstm_cell", "generic_rnn_stacked_cells", "generic_rnn_masked",
                     "generic_rnn_masked_seq_out", "generic_rnn_bidirectional"] {
            assertMatchesKeras(name)
        }
    }

    /// The Functional case made by tools/make_graph_fixtures.py: return_state of a stack (the
    /// LSTMCell's h and c, then the GRUCell's h), a stacked decoder's nested initial_state, and a
    /// masked RNN(LSTMCell) with return_state going backwards.
    func testGenericRNNStatesMatchKerasOnEveryOutput() throws {
        let name = "generic_rnn_states"
        let entry: GraphFixtureTests.Manifest.Case, model: Model, results: [String: Tensor]
        do {
            (entry, model, results) = try GraphFixtureTests.run(name)
        } catch {
            return XCTFail("\(name): \(error.nnProblems.joined(separator: "\n"))")
        }
        XCTAssertEqual(model.outputs.map(\.name), entry.outputs.map(\.name))
        for port in entry.outputs {
            let expected = try GraphFixtureTests.array(name, port.file)
            let got = try XCTUnwrap(results[port.name], "no output '\(port.name)'")
            XCTAssertEqual(got.shape, expected.shape, "output \(port.name)")
            assertClose(got.data, expected.values.map { Float($0) }, "output \(port.name)")
        }
    }

    /// RNN(LSTMCell) is the LSTM layer: same config, same weights under the cell's name, same output.
    func testRNNOfACellGivesWhatTheLayerGives() throws {
        let kernel = (0..<24).map { Float($0 % 7) * 0.1 - 0.3 }, recurrent = (0..<16).map { Float($0 % 5) * 0.1 - 0.2 }
        let bias = (0..<8).map { Float($0) * 0.05 }
        let x: [Float] = (0..<18).map { Float($0 % 4) * 0.25 - 0.4 }
        let layer = try HandBuilt.model(input: [3, 3], layers: [#"{"class_name": "LSTM", "config": {"name": "lstm", "units": 2, "go_backwards": true, "return_sequences": true}}"#],
                                        weights: ["lstm/kernel": ([3, 8], kernel), "lstm/recurrent_kernel": ([2, 8], recurrent), "lstm/bias": ([8], bias)])
        let generic = try HandBuilt.model(input: [3, 3], layers: [#"{"class_name": "RNN", "config": {"name": "rnn", "go_backwards": true, "return_sequences": true, "cell": {"class_name": "LSTMCell", "config": {"name": "lstm_cell", "units": 2}}}}"#],
                                          weights: ["rnn/lstm_cell/kernel": ([3, 8], kernel), "rnn/lstm_cell/recurrent_kernel": ([2, 8], recurrent),
                                                    "rnn/lstm_cell/bias": ([8], bias)])
        let expected = try HandBuilt.run(layer, shape: [2, 3, 3], x)
        let got = try HandBuilt.run(generic, shape: [2, 3, 3], x)
        XCTAssertEqual(got.shape, expected.shape)
        assertClose(got.data, expected.data)
    }

    /// A stack of two SimpleRNNCells (2 then 1 unit, linear, no bias) worked by hand: the second
    /// cell reads the first cell's output of the same step.
    func testStackedCellsFeedEachOtherWithinAStep() throws {
        let cells = #"[{"class_name": "SimpleRNNCell", "config": {"name": "a", "units": 2, "activation": "linear", "use_bias": false}}, {"class_name": "SimpleRNNCell", "config": {"name": "b", "units": 1, "activation": "linear", "use_bias": false}}]"#
        let model = try HandBuilt.model(input: [2, 1], layers: [#"{"class_name": "RNN", "config": {"name": "rnn", "return_sequences": true, "cell": {"class_name": "StackedRNNCells", "config": {"name": "stack", "cells": \#(cells)}}}}"#],
                                        weights: ["rnn/stack/a/kernel": ([1, 2], [1, 2]), "rnn/stack/a/recurrent_kernel": ([2, 2], [1, 0, 0, 1]),
                                                  "rnn/stack/b/kernel": ([2, 1], [1, 1]), "rnn/stack/b/recurrent_kernel": ([1, 1], [10])])
        // x = 1, 3. Step 1: a = (1, 2), b = 1 + 2 = 3. Step 2: a = (1 + 3, 2 + 6) = (4, 8), b = 12 + 10·3 = 42.
        let output = try HandBuilt.run(model, shape: [1, 2, 1], [1, 3])
        XCTAssertEqual(output.shape, [1, 2, 1])
        assertClose(output.data, [3, 42])
    }

    func testACellThatIsNotACellIsRefusedNamingTheKey() {
        let message = HandBuilt.buildError(input: [3, 2], layers: [#"{"class_name": "RNN", "config": {"name": "rnn", "cell": {"class_name": "Dense", "config": {"name": "dense", "units": 2}}}}"#])
        XCTAssertNotNil(message)
        XCTAssertTrue(message?.contains("'cell' must be a recurrent cell") == true, message ?? "")
        XCTAssertTrue(message?.contains("found Dense 'dense'") == true, message ?? "")
    }

    func testAnEmptyStackIsRefused() {
        let message = HandBuilt.buildError(input: [3, 2], layers: [#"{"class_name": "RNN", "config": {"name": "rnn", "cell": {"class_name": "StackedRNNCells", "config": {"cells": []}}}}"#])
        XCTAssertTrue(message?.contains("'cells' must hold at least one cell, found an empty list") == true, message ?? "no error")
    }

    func testReversedStateOrderIsRefused() {
        let message = HandBuilt.buildError(input: [3, 2], layers: [#"{"class_name": "RNN", "config": {"name": "rnn", "cell": {"class_name": "StackedRNNCells", "config": {"reverse_state_order": true, "cells": [{"class_name": "GRUCell", "config": {"units": 2}}]}}}}"#])
        XCTAssertTrue(message?.contains("reverse_state_order=true (old Keras 2) is not supported") == true, message ?? "no error")
    }

    func testStatefulIsRefused() {
        let message = HandBuilt.buildError(input: [3, 2], layers: [#"{"class_name": "RNN", "config": {"name": "rnn", "stateful": true, "cell": {"class_name": "GRUCell", "config": {"units": 2}}}}"#])
        XCTAssertTrue(message?.contains("stateful=true is not supported") == true, message ?? "no error")
    }

    /// `nnbuild layers` lists what each factory reads.
    func testTheNewTypesShowTheirConfigKeys() throws {
        let registry = LayerRegistry.withBuiltins()
        let rnn = try XCTUnwrap(registry.describe("RNN")).keys.map(\.name)
        for key in ["return_sequences", "return_state", "go_backwards", "zero_output_for_mask", "unroll", "cell"] {
            XCTAssertTrue(rnn.contains(key), "RNN: \(key) in \(rnn)")
        }
        XCTAssertTrue(try XCTUnwrap(registry.describe("StackedRNNCells")).keys.map(\.name).contains("cells"))
        let gru = try XCTUnwrap(registry.describe("GRUCell")).keys.map(\.name)
        for key in ["units", "activation", "recurrent_activation", "use_bias", "reset_after"] {
            XCTAssertTrue(gru.contains(key), "GRUCell: \(key) in \(gru)")
        }
    }
}
