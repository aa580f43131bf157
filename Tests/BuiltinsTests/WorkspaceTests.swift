import XCTest
@testable import Builtins
import LayerRegistry

/// The recurrent layers project their inputs a chunk of steps at a time into one reused buffer:
/// the chunking must never change a bit of any output, and a call's scratch must not grow with
/// the sequence's length.
final class WorkspaceTests: XCTestCase {
    var generator = SplitMix(seed: 18)

    /// A recurrent layer of `className` with random weights, reading `features` per step.
    func layer(_ className: String, gates: Int, biasShape: [Int], units: Int = 6, features: Int = 5, config: String = "") throws -> RecurrentLayer {
        let weights: [(String, [Int], [Float])] = [
            ("rnn/kernel", [features, gates * units], generator.floats(features * gates * units)),
            ("rnn/recurrent_kernel", [units, gates * units], generator.floats(units * gates * units).map { $0 * 0.5 }),
            ("rnn/bias", biasShape, generator.floats(biasShape.reduce(1, *)))]
        let model = try buildSingle(#"{"class_name": "\#(className)", "config": {"name": "rnn", "units": \#(units)\#(config)}}"#,
                                    input: [nil, features], weights: weights)
        guard let layer = model.nodes[1].layer as? RecurrentLayer else {
            throw XCTSkip("\(className) did not build as a RecurrentLayer")
        }
        return layer
    }

    /// Rows of real length `steps`, `steps` − 1, half, 1 and 0 (post-padded), and one with a hole
    /// in the middle.
    func mask(batch: Int, steps: Int) -> [Bool] {
        (0..<batch).flatMap { row -> [Bool] in
            (0..<steps).map { t in
                switch row % 6 {
                case 0: return true
                case 1: return t < steps - 1
                case 2: return t < steps / 2
                case 3: return t < 1
                case 4: return false
                default: return t % 3 != 1
                }
            }
        }
    }

    /// Every output and final state, run with the projections chunked (1, 7 and 64 steps) and all
    /// at once, at lengths on both sides of the chunk boundaries.
    func assertChunkingChangesNothing(_ layer: RecurrentLayer, features: Int = 5, file: StaticString = #filePath, line: UInt = #line) throws {
        for steps in [1, 63, 64, 65, 200] {
            for batch in [1, 3] {
                let x = generator.floats(batch * steps * features)
                for masked in [false, true] {
                    let input = Tensor(shape: [batch, steps, features], data: x, mask: masked ? mask(batch: batch, steps: steps) : nil)
                    let whole = try layer.run(input, initialStates: [], chunkSteps: steps)
                    for chunk in [1, 7, 64] {
                        let chunked = try layer.run(input, initialStates: [], chunkSteps: chunk)
                        let context = "steps \(steps), batch \(batch), chunk \(chunk), masked \(masked)"
                        XCTAssertEqual(chunked.output.data.map(\.bitPattern), whole.output.data.map(\.bitPattern), "output, \(context)", file: file, line: line)
                        XCTAssertEqual(chunked.states.map { $0.data.map(\.bitPattern) }, whole.states.map { $0.data.map(\.bitPattern) },
                                       "states, \(context)", file: file, line: line)
                    }
                }
            }
        }
    }

    func testChunkedProjectionsGiveTheSameBitsAsWholeSequence() throws {
        for config in [#", "return_sequences": true"#, #", "go_backwards": true, "return_sequences": true"#,
                       #", "go_backwards": true"#, #", "return_sequences": true, "zero_output_for_mask": true"#] {
            try assertChunkingChangesNothing(layer("LSTM", gates: 4, biasShape: [24], config: config))
            try assertChunkingChangesNothing(layer("GRU", gates: 3, biasShape: [2, 18], config: config))
            try assertChunkingChangesNothing(layer("SimpleRNN", gates: 1, biasShape: [6], config: config))
        }
        try assertChunkingChangesNothing(layer("GRU", gates: 3, biasShape: [18], config: #", "reset_after": false"#))
    }

    /// Token ids through a fused Embedding: both the direct path (embedding rows gathered per
    /// chunk, then projected) and the table of E·W + b (rows looked up per chunk).
    func testChunkedTokenProjectionsGiveTheSameBits() throws {
        let vocabulary = 1000, features = 5, units = 4
        let weights: [String: ([Int], [Float])] = [
            "embedding/embeddings": ([vocabulary, features], generator.floats(vocabulary * features)),
            "lstm/kernel": ([features, 4 * units], generator.floats(features * 4 * units)),
            "lstm/recurrent_kernel": ([units, 4 * units], generator.floats(units * 4 * units)),
            "lstm/bias": ([4 * units], generator.floats(4 * units))]
        // A layer's first call (under a quarter of the vocabulary in rows) projects directly,
        // gathering embedding rows chunk by chunk (7 steps); its second
        // makes the table, which every later call looks up.
        let ids = (0..<200).map { index in Float((index * 7 + 3) % vocabulary) }
        for (batch, steps) in [(1, 5), (1, 65), (3, 65)] {
            let model = try HandBuilt.model(input: [nil], layers: [
                #"{"class_name": "Embedding", "config": {"name": "embedding", "input_dim": \#(vocabulary), "output_dim": \#(features), "mask_zero": true}}"#,
                #"{"class_name": "LSTM", "config": {"name": "lstm", "units": \#(units), "return_sequences": true}}"#], weights: weights)
            let fused = model.steps.compactMap { ($0.layer as? TokenSequence)?.layer as? RecurrentLayer }
            guard let layer = fused.first, layer.tokens != nil else {
                return XCTFail("the Embedding was not fused into the LSTM")
            }
            let input = Tensor(shape: [batch, steps], data: Array(ids.prefix(batch * steps)), mask: ids.prefix(batch * steps).map { $0 != 0 })
            let direct = try layer.run(input, initialStates: [], chunkSteps: 7)
            let whole = try layer.run(input, initialStates: [], chunkSteps: steps)
            for (chunk, result) in [(7, direct), (1, try layer.run(input, initialStates: [], chunkSteps: 1)), (64, try layer.run(input, initialStates: [], chunkSteps: 64))] {
                XCTAssertEqual(result.output.data.map(\.bitPattern), whole.output.data.map(\.bitPattern), "batch \(batch), steps \(steps), chunk \(chunk)")
            }
        }
    }

    /// A recurrent layer's scratch (what the memory plan charges it, beyond its output) is one
    /// chunk of projections: the same at 256 steps as at 4096, where a whole-sequence projection
    /// at batch 64 would be 400 MB.
    func testRecurrentScratchDoesNotGrowWithTheSequence() throws {
        let gru = try layer("GRU", gates: 3, biasShape: [2, 18])
        let short = gru.workingSet(input: [64, 256, 5]), long = gru.workingSet(input: [64, 4096, 5])
        XCTAssertEqual(long.scratch, short.scratch)
        XCTAssertLessThanOrEqual(long.scratch, RecurrentLayer.projectionChunkFloats + 64 * 5 * 64 + 64 * 6 * 8)
    }
}
