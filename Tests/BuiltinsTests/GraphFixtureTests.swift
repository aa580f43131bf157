import Foundation
import XCTest
import Builtins
import LayerRegistry

/// Functional-model fixtures made by tools/make_graph_fixtures.py from real Keras 3
/// (Tests/GraphFixtures/MANIFEST.json lists each case's named inputs and outputs): every case
/// whose layers nnbuild has matches Keras within 1e-5 on each output; the cases needing Keras 3
/// operations are refused, naming what is missing (the masked recurrent-state cases, whose masks
/// Keras writes as operations, run in RecurrentStateTests).
final class GraphFixtureTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("GraphFixtures")

    struct Manifest: Decodable {
        struct Port: Decodable { var name: String; var file: String; var shape: [Int] }
        struct Case: Decodable { var inputs: [Port]; var outputs: [Port]; var description: String }
        var cases: [String: Case]
    }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: root.appendingPathComponent("MANIFEST.json")))
    }

    static func model(_ name: String) throws -> Model {
        let dir = root.appendingPathComponent(name)
        let description = try ModelDescription.load(path: dir.appendingPathComponent("model.json").path)
        let weights = try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path)
        return try Model.build(description, registry: .withBuiltins(), weights: weights)
    }

    static func array(_ name: String, _ file: String) throws -> NumericArray {
        let path = root.appendingPathComponent(name).appendingPathComponent(file).path
        return try Npy.read(FileBytes.read(path: path), source: path)
    }

    static let supported = ["residual_cnn", "two_input_image_tabular", "two_output", "merge_layers", "sequential_in_functional",
                            "functional_in_sequential", "functional_in_functional", "keras2_functional", "keras2_nested_functional",
                            "seq2seq_lstm", "bidi_return_state", "bidi_initial_state", "masked_return_state", "seq2seq_gru",
                            "bidi_masked_sequences_states", "bidi_merge_none",
                            "keras3_ops", "keras3_more_ops", "masked_merges", "shared_embedding_lstm", "ops_drop_masks", "ops_attention", "keras3_split_tile_stats",
                            "unet_unknown_size",
                            "keras3_activation_ops", "keras3_onehot_take_cumsum"]

    /// Runs graph fixture `name` on its named inputs: its manifest entry and its outputs by name.
    static func run(_ name: String) throws -> (entry: Manifest.Case, model: Model, results: [String: Tensor]) {
        guard let entry = try manifest().cases[name] else { throw NNError(.input, name, "\(name) is not in the manifest") }
        let model = try model(name)
        var batches: [String: Tensor] = [:]
        for port in entry.inputs {
            batches[port.name] = try model.batch(from: array(name, port.file), source: port.file, input: port.name)
        }
        return (entry, model, try model.predict(batches))
    }

    /// Every output of fixture `name` within max |ours - keras| / (1 + |keras|) <= 1e-5.
    static func assertMatchesKeras(_ name: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let (entry, model, results) = try run(name)
            XCTAssertEqual(model.inputs.map(\.name), entry.inputs.map(\.name), name, file: file, line: line)
            XCTAssertEqual(model.outputs.map(\.name), entry.outputs.map(\.name), name, file: file, line: line)
            for port in entry.outputs {
                let expected = try array(name, port.file)
                guard let got = results[port.name] else { XCTFail("\(name): no output '\(port.name)'", file: file, line: line); continue }
                XCTAssertEqual(got.shape, expected.shape, "\(name) output \(port.name)", file: file, line: line)
                var worst = 0.0
                for (a, b) in zip(got.data, expected.values) {
                    let error = abs(Double(a) - Double(b)) / (1 + abs(Double(b)))
                    worst = error.isNaN ? .infinity : max(worst, error)
                }
                XCTAssertLessThanOrEqual(worst, 1e-5, "\(name) output \(port.name): max relative error \(worst)", file: file, line: line)
            }
        } catch {
            XCTFail("\(name): \(error.nnProblems.joined(separator: "\n"))", file: file, line: line)
        }
    }

    func testEverySupportedCaseMatchesKerasOnEveryOutput() {
        for name in Self.supported { Self.assertMatchesKeras(name) }
    }

    /// Every case of the manifest that nnbuild builds matches Keras on every output; a case it
    /// refuses must be refused by name (a layer or operation nnbuild lacks, or a config it does
    /// not take), never fail at run time. So a fixture added with a layer is checked against
    /// Keras from then on, on every kernel path test.sh runs this on.
    func testEveryCaseThatBuildsMatchesKeras() throws {
        var compared = 0, refused: [String] = []
        for name in try Self.manifest().cases.keys.sorted() {
            do {
                _ = try Self.model(name)
            } catch let error as NNError where [.unknownLayer, .layer, .spec].contains(error.kind) {
                refused.append(name)
                continue
            }
            Self.assertMatchesKeras(name)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 60, "refused: \(refused)")
        print("GraphFixtureTests: \(compared) cases compared with Keras; refused by name: \(refused.joined(separator: ", "))")
    }

    func testTheSharedNestedModelBindsItsWeightsOnce() throws {
        let model = try Self.model("functional_in_functional")
        // inner_dense (3×3 + 3) and head (6×2 + 2), however many times the inner model is called.
        XCTAssertEqual(model.parameterCount, 12 + 14)
        let calls = try XCTUnwrap(model.description.graph.layer(named: "inner_functional")).nodes.count
        XCTAssertGreaterThan(calls, 1)
        XCTAssertEqual(model.nodes.filter { $0.spec.name == "inner_dense" }.count, calls)
        XCTAssertEqual(model.nodes.filter { $0.spec.name == "inner_dense" }.map(\.parameterCount).sorted(), [Int](repeating: 0, count: calls - 1) + [12])
    }
}
