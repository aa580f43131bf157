import Foundation
import XCTest
@testable import Builtins
import LayerRegistry

/// The attention family against real Keras (Tests/GraphFixtures, made by
/// tools/make_graph_fixtures.py's "issue 15: attention" section), within 1e-5 on every output.
extension XCTestCase {
    /// Runs graph fixture `name` and compares every output with Keras's.
    func assertAttentionFixtureMatchesKeras(_ name: String, file: StaticString = #filePath, line: UInt = #line) {
        GraphFixtureTests.assertMatchesKeras(name, file: file, line: line)
    }

}

final class AttentionTests: XCTestCase {
    func testMultiHeadAttentionSelfWithScoresAndCausalMatchesKeras() { assertAttentionFixtureMatchesKeras("mha_self") }
    func testMultiHeadAttentionCrossByKeywordsWithAttentionMaskMatchesKeras() { assertAttentionFixtureMatchesKeras("mha_cross") }
    func testMultiHeadAttentionWithEmbeddingMasksMatchesKeras() { assertAttentionFixtureMatchesKeras("mha_masked") }
    func testMultiHeadAttentionOverSeveralAxesWithGateMatchesKeras() { assertAttentionFixtureMatchesKeras("mha_axes") }
    func testTransformerEncoderOnPaddedMaskedTokensMatchesKeras() { assertAttentionFixtureMatchesKeras("transformer_encoder") }

    /// The (sample, head) blocks run in parts across threads once they make 1 M multiply-adds
    /// (`runInParts`): the fixture's three rows repeated to 600 give the same bits on two threads
    /// as on one, and every row Keras's result.
    func testHeadsSplitAcrossThreadsGiveTheSameBits() throws {
        let name = "transformer_encoder", repeats = 200
        guard let entry = try GraphFixtureTests.manifest().cases[name] else { return XCTFail("\(name) is not in the manifest") }
        let model = try GraphFixtureTests.model(name)
        var batches: [String: Tensor] = [:]
        for port in entry.inputs {
            let rows = try model.batch(from: GraphFixtureTests.array(name, port.file), source: port.file, input: port.name)
            batches[port.name] = Tensor.concatenating(Array(repeating: rows, count: repeats))
        }
        let one = try Gemm.withThreads(1) { try model.predict(batches) }
        let two = try Gemm.withThreads(2) { try model.predict(batches) }
        for port in entry.outputs {
            let expected = try GraphFixtureTests.array(name, port.file).values
            let a = try XCTUnwrap(one[port.name]), b = try XCTUnwrap(two[port.name])
            XCTAssertEqual(a.data.map(\.bitPattern), b.data.map(\.bitPattern), "\(port.name) on two threads")
            XCTAssertEqual(a.data.count, expected.count * repeats, port.name)
            for (index, value) in a.data.enumerated() {
                let keras = Double(expected[index % expected.count])
                XCTAssertLessThanOrEqual(abs(Double(value) - keras) / (1 + abs(keras)), 1e-5, "\(port.name) element \(index)")
            }
        }
    }
}

final class DotAttentionTests: XCTestCase {
    func testAttentionAndAdditiveAttentionScoreModesMatchKeras() { assertAttentionFixtureMatchesKeras("attention_layers") }
    func testAttentionWithEmbeddingMasksMatchesKeras() { assertAttentionFixtureMatchesKeras("attention_masked") }
}

final class GroupedQueryAttentionTests: XCTestCase {
    func testGroupedQueryAttentionMatchesKeras() { assertAttentionFixtureMatchesKeras("grouped_query_attention") }
}

final class AttentionKernelTests: XCTestCase {
    /// The matrix-product score and combine kernels against Keras's einsum equations run naively,
    /// over one attention axis and over two with another axis left as a batch axis.
    func testScoreAndCombineKernelsMatchKerasEinsums() throws {
        for (shape, keyShape, axes) in [([2, 3, 2, 4], [2, 5, 2, 4], [1]), ([2, 3, 2, 2, 3], [2, 2, 2, 2, 3], [1, 2]), ([2, 3, 4, 2, 3], [2, 3, 5, 2, 3], [2])] {
            let equations = MultiHeadAttention.attentionEquations(rank: shape.count, axes: axes)
            let fail = { (message: String) in NNError(.layer, "test", message) }
            func ranks(_ equation: String) -> [Int] { equation.components(separatedBy: "->")[0].split(separator: ",").map(\.count) }
            let dot = try Einsum.parse(equations.dot, ranks: ranks(equations.dot), where: fail)
            let combine = try Einsum.parse(equations.combine, ranks: ranks(equations.combine), where: fail)
            func tensor(_ shape: [Int], _ seed: Int) -> Tensor {
                Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { Float((($0 + seed) * 7) % 13) / 6 - 1 })
            }
            let q = tensor(shape, 1), k = tensor(keyShape, 2), v = tensor(keyShape, 3)
            let scores = try attentionScores(q, k, attentionAxes: axes)
            let naiveScores = try dot.run([k, q])
            XCTAssertEqual(scores.shape, naiveScores.shape, "\(axes)")
            for (a, b) in zip(scores.data, naiveScores.data) { XCTAssertEqual(a, b, accuracy: 1e-4) }
            let out = try attentionCombine(naiveScores, v, attentionAxes: axes)
            let naiveOut = try combine.run([naiveScores, v])
            XCTAssertEqual(out.shape, naiveOut.shape, "\(axes)")
            for (a, b) in zip(out.data, naiveOut.data) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        }
    }
}

final class AttentionMemoryTests: XCTestCase {
    /// Over a sequence of 4096, the returned scores (2 heads × 4096 × 4096, 128 MiB) fit a limit of
    /// 256 MiB, but the scratch behind them (the scores while masked and normalized, the
    /// projections) does not: the build says so instead of allocating.
    func testLongSequenceScoresCountAgainstTheMemoryLimit() throws {
        let dir = GraphFixtureTests.root.appendingPathComponent("mha_self")
        let text = try String(contentsOf: dir.appendingPathComponent("model.json"), encoding: .utf8)
            .replacingOccurrences(of: "[null, 4, 6]", with: "[null, 4096, 6]")
        let weights = try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path)
        let description = try ModelDescription.parse(text, source: "long.json")
        XCTAssertThrowsError(try Model.build(description, registry: .withBuiltins(), weights: weights,
                                             settings: ExecutionSettings(memoryLimit: 256 << 20))) { error in
            let text = error.nnProblems.joined(separator: "\n")
            XCTAssertTrue(text.contains("mha") && text.contains("memory limit"), text)
        }
        XCTAssertNoThrow(try Model.build(description, registry: .withBuiltins(), weights: weights,
                                         settings: ExecutionSettings(memoryLimit: 4 << 30)))
    }
}

final class AttentionRefusalTests: XCTestCase {
    /// Builds graph fixture `name` with `edit` applied to its model.json text; returns the errors.
    func problems(_ name: String, _ edit: (String) -> String) -> String? {
        let dir = GraphFixtureTests.root.appendingPathComponent(name)
        do {
            let text = edit(try String(contentsOf: dir.appendingPathComponent("model.json"), encoding: .utf8))
            let weights = try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path)
            _ = try Model.build(try ModelDescription.parse(text, source: "edited.json"), registry: .withBuiltins(), weights: weights)
            return nil
        } catch {
            return error.nnProblems.joined(separator: "\n")
        }
    }

    func testBadConfigsAreRefusedNamingTheKey() {
        let cases: [(String, String, String, String)] = [
            ("mha_self", #""sliding_window": null"#, #""sliding_window": 2"#, "sliding_window"),
            ("mha_self", #""attention_axes": [1]"#, #""attention_axes": [3]"#, "attention_axes"),
            ("mha_self", #""num_heads": 2"#, #""num_heads": 0"#, "num_heads"),
            ("grouped_query_attention", #""num_query_heads": 4, "num_key_value_heads": 2"#, #""num_query_heads": 4, "num_key_value_heads": 3"#, "num_key_value_heads"),
            ("attention_layers", #""score_mode": "dot""#, #""score_mode": "general""#, "score_mode"),
        ]
        for (name, old, new, key) in cases {
            let found = problems(name) { text in
                guard let range = text.range(of: old) else { return "not found: \(old)" }
                return text.replacingCharacters(in: range, with: new)
            }
            XCTAssertTrue(found?.contains(key) == true, "\(name) with \(new): \(found ?? "built")")
        }
    }

    func testTheUneditedFixturesBuild() {
        for name in ["mha_self", "grouped_query_attention", "attention_layers"] { XCTAssertNil(problems(name) { $0 }, name) }
    }
}

final class AttentionAnyLengthTests: XCTestCase {
    func testAttentionOnSequencesOfRunTimeLengthMatchesKeras() { assertAttentionFixtureMatchesKeras("attention_any_length") }
}
