import CKernels
import Foundation
import XCTest
import Builtins
import LayerRegistry

final class RecurrentTests: XCTestCase {
    var generator = SplitMix(seed: 7)

    func random(_ count: Int, scale: Float = 0.6) -> [Float] {
        (0..<count).map { _ in Float.random(in: -scale...scale, using: &generator) }
    }

    /// Builds one recurrent layer with random weights and compares it with the naive twin.
    func check(_ className: String, _ kind: NaiveRecurrent.Kind, config: String = "", units: Int = 5, features: Int = 3, steps: Int = 6,
               batch: Int = 4, mask: [Bool]? = nil, useBias: Bool = true, returnSequences: Bool = false, goBackwards: Bool = false,
               zeroOutputForMask: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        let gates: Int
        var biasShape: [Int]
        switch kind {
        case .simple: gates = 1; biasShape = [units]
        case .lstm: gates = 4; biasShape = [4 * units]
        case let .gru(resetAfter): gates = 3; biasShape = resetAfter ? [2, 3 * units] : [3 * units]
        }
        let kernel = random(features * gates * units), recurrent = random(units * gates * units)
        let bias = useBias ? random(biasShape.reduce(1, *)) : nil
        var weights: [(String, [Int], [Float])] = [("rnn/kernel", [features, gates * units], kernel), ("rnn/recurrent_kernel", [units, gates * units], recurrent)]
        if let bias { weights.append(("rnn/bias", biasShape, bias)) }
        let options = #""units": \#(units), "use_bias": \#(useBias), "return_sequences": \#(returnSequences), "go_backwards": \#(goBackwards), "zero_output_for_mask": \#(zeroOutputForMask)"#
        let model = try buildSingle(#"{"class_name": "\#(className)", "config": {"name": "rnn", \#(options)\#(config)}}"#, input: [steps, features], weights: weights)
        let x = random(batch * steps * features, scale: 1.5)
        let output = try model.nodes[1].layer.apply(Tensor(shape: [batch, steps, features], data: x, mask: mask))
        let expected = NaiveRecurrent.run(kind, x: x, batch: batch, steps: steps, features: features, units: units, kernel: kernel,
                                          recurrentKernel: recurrent, bias: bias, mask: mask, goBackwards: goBackwards,
                                          returnSequences: returnSequences, zeroOutputForMask: zeroOutputForMask)
        XCTAssertEqual(output.shape, returnSequences ? [batch, steps, units] : [batch, units], file: file, line: line)
        assertClose(output.data, expected, accuracy: 1e-5, file: file, line: line)
        XCTAssertEqual(output.mask == nil, !(returnSequences && mask != nil), "mask propagates only with return_sequences", file: file, line: line)
    }

    /// Post-padded rows of real lengths 6, 3, 1 and 0 (all padding).
    let padded: [Bool] = [6, 3, 1, 0].flatMap { length in (0..<6).map { $0 < length } }

    func testFastCellsMatchTheNaiveTwin() throws {
        let kinds: [(String, NaiveRecurrent.Kind)] = [("SimpleRNN", .simple), ("LSTM", .lstm), ("GRU", .gru(resetAfter: true))]
        for (name, kind) in kinds {
            for returnSequences in [false, true] {
                for goBackwards in [false, true] {
                    try check(name, kind, returnSequences: returnSequences, goBackwards: goBackwards)
                    try check(name, kind, mask: padded, returnSequences: returnSequences, goBackwards: goBackwards)
                    try check(name, kind, mask: padded, returnSequences: returnSequences, goBackwards: goBackwards, zeroOutputForMask: true)
                }
            }
            try check(name, kind, useBias: false)
        }
    }

    func testGRUResetBeforeTheRecurrentProduct() throws {
        try check("GRU", .gru(resetAfter: false), config: #", "reset_after": false"#)
        try check("GRU", .gru(resetAfter: false), config: #", "reset_after": false"#, mask: padded, returnSequences: true, goBackwards: true)
        try check("GRU", .gru(resetAfter: false), config: #", "reset_after": false"#, useBias: false)
    }

    func testAllPaddingRowGivesTheInitialState() throws {
        let model = try buildSingle(#"{"class_name": "SimpleRNN", "config": {"units": 2}}"#, input: [3, 1])
        let output = try model.nodes[1].layer.apply(Tensor(shape: [1, 3, 1], data: [5, 5, 5], mask: [false, false, false]))
        XCTAssertEqual(output.data, [0, 0])
    }

    func testUnsupportedOptionsAreRefusedClearly() {
        for (key, message) in [("return_state", "return_state=true gives 3 tensors, which a Sequential model or a wrapper layer cannot pass on"), ("stateful", "stateful=true is not supported yet")] {
            XCTAssertThrowsError(try buildSingle(#"{"class_name": "LSTM", "config": {"units": 2, "\#(key)": true}}"#, input: [3, 1])) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "LSTM", "config": {"units": 2}}"#, input: [3])) { error in
            XCTAssertTrue("\(error)".contains("expects input of shape (batch, steps, features)"), "\(error)")
        }
    }

    /// A user's recurrent layer: the running sum of the first feature over unmasked steps.
    struct RunningSum: RecurrentSequenceLayer {
        let returnSequences: Bool
        let goBackwards: Bool
        let outputShape: [Int?]
        var maskBehavior: MaskBehavior { returnSequences ? .propagates : .drops }

        func forward(_ input: Tensor) throws -> Tensor {
            let steps = input.shape[1], features = input.shape[2]
            var out: [Float] = []
            var finals: [Float] = []
            for b in 0..<input.batch {
                var sum: Float = 0
                for position in 0..<steps {
                    let t = goBackwards ? steps - 1 - position : position
                    if input.isStepValid(row: b, step: t) { sum += input.data[(b * steps + t) * features] }
                    out.append(sum)
                }
                finals.append(sum)
            }
            return returnSequences ? Tensor(shape: [input.batch, steps, 1], data: out) : Tensor(shape: [input.batch, 1], data: finals)
        }

        static func factory(_ context: LayerContext) throws -> any Layer {
            let sequences = try context.bool("return_sequences", default: false)
            return RunningSum(returnSequences: sequences, goBackwards: try context.bool("go_backwards", default: false),
                              outputShape: sequences ? [context.inputShape[0], 1] : [1])
        }
    }

    func testBidirectionalWrapsAUserRegisteredLayer() throws {
        let registry = LayerRegistry.withBuiltins()
        registry.register("RunningSum", factory: RunningSum.factory)
        let spec = try ModelDescription.parse(#"""
        {"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 3, 1]}},
          {"class_name": "Bidirectional", "config": {"merge_mode": "concat", "layer": {"class_name": "RunningSum", "config": {"name": "sum", "return_sequences": true}}}}]}}
        """#)
        let model = try Model.build(spec, registry: registry)
        XCTAssertEqual(model.outputShape, [3, 2])
        // Forward running sums of [1, 2, 4]: 1, 3, 7; backward (run on 4, 2, 1, then reversed back): 7, 6, 4.
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 3, 1], data: [1, 2, 4])).data, [1, 7, 3, 6, 7, 4])
    }

    func testBidirectionalMergeModesAndKeras2DerivedBackwardLayer() throws {
        let registry = LayerRegistry.withBuiltins()
        registry.register("RunningSum", factory: RunningSum.factory)
        for (mode, expected) in [("sum", [Float(8), 9, 11]), ("mul", [7, 18, 28]), ("ave", [4, 4.5, 5.5])] {
            let spec = try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 3, 1]}}, {"class_name": "Bidirectional", "config": {"merge_mode": "\#(mode)", "layer": {"class_name": "RunningSum", "config": {"return_sequences": true}}}}]}}"#)
            let output = try Model.build(spec, registry: registry).predict(Tensor(shape: [1, 3, 1], data: [1, 2, 4]))
            XCTAssertEqual(output.data, expected, mode)
        }
    }

    func testEveryRecurrentFixtureMatchesKeras() {
        for name in ["simple_rnn_stack", "simple_rnn_options", "bidi_simple_rnn", "lstm_seq_stack", "lstm_options", "bidi_lstm_stack",
                     "gru_reset_after_true", "gru_reset_after_false", "gru_options", "bidi_gru_sum", "bidi_merge_modes", "masked_lstm",
                     "masked_bidi_lstm", "masked_gru", "masked_simple_rnn_pool", "masked_dense_seq", "masking_layer", "repeat_vector",
                     "masked_rnn_zero_output_last", "masked_gru_backwards_zero_output_last", "rmsnorm_drops_mask"] {
            assertMatchesKeras(name)
        }
    }

    /// Keras's Bidirectional forces zero_output_for_mask to return_sequences on both halves, so a
    /// hand-written false changes nothing: the Keras-made spec edited to say false still matches.
    func testBidirectionalForcesZeroOutputForMask() throws {
        let dir = Fixtures.root.appendingPathComponent("masked_bidi_seq_out")
        let text = try String(contentsOf: dir.appendingPathComponent("model.json"), encoding: .utf8)
        XCTAssertTrue(text.contains(#""zero_output_for_mask": true"#))
        let edited = text.replacingOccurrences(of: #""zero_output_for_mask": true"#, with: #""zero_output_for_mask": false"#)
        let model = try Model.build(try ModelDescription.parse(edited, source: "edited.json"), registry: .withBuiltins(),
                                    weights: try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path))
        let inputPath = dir.appendingPathComponent("input.npy").path, expectedPath = dir.appendingPathComponent("expected.npy").path
        let got = try model.predict(try model.batch(from: try Npy.read(FileBytes.read(path: inputPath), source: inputPath), source: inputPath))
        let expected = try Npy.read(FileBytes.read(path: expectedPath), source: expectedPath)
        assertClose(got.data, expected.values, accuracy: 1e-5)
    }
}

/// A recurrence's steps cut by units across threads (`SplitStepCell`, `runSteps`).
final class SplitStepTests: XCTestCase {
    var generator = SplitMix(seed: 29)

    func random(_ count: Int, scale: Float = 0.3) -> [Float] {
        (0..<count).map { _ in Float.random(in: -scale...scale, using: &generator) }
    }

    /// A GRU, an LSTM and a SimpleRNN of 128 units (two parts of 64 on two threads) give the same
    /// bits on two threads as on one, and Keras's result: with and without a mask, bias, return_sequences and
    /// go_backwards, at batch 1 and 2.
    func testRecurrentStepsCutByUnitsGiveTheSameBits() throws {
        for (className, kind, gates) in [("GRU", NaiveRecurrent.Kind.gru(resetAfter: true), 3), ("LSTM", .lstm, 4), ("SimpleRNN", .simple, 1)] {
            try checkSplit(className, kind, gates: gates)
        }
    }

    func checkSplit(_ className: String, _ kind: NaiveRecurrent.Kind, gates: Int) throws {
        let units = 128, features = 8, steps = 12
        for (batch, masked, useBias, returnSequences, goBackwards) in [(1, false, true, false, false), (1, false, true, true, true),
                                                                       (2, true, true, true, false), (2, true, false, false, true)] {
            let kernel = random(features * gates * units), recurrent = random(units * gates * units)
            let biasShape = gates == 3 ? [2, 3 * units] : [gates * units]
            let bias = useBias ? random(biasShape.reduce(1, *)) : nil
            var weights: [(String, [Int], [Float])] = [("rnn/kernel", [features, gates * units], kernel), ("rnn/recurrent_kernel", [units, gates * units], recurrent)]
            if let bias { weights.append(("rnn/bias", biasShape, bias)) }
            let options = #""units": \#(units), "use_bias": \#(useBias), "return_sequences": \#(returnSequences), "go_backwards": \#(goBackwards)"#
            let model = try buildSingle(#"{"class_name": "\#(className)", "config": {"name": "rnn", \#(options)}}"#, input: [steps, features], weights: weights)
            let mask: [Bool]? = masked ? (0..<batch * steps).map { $0 % steps < steps - 3 * ($0 / steps + 1) } : nil
            let x = random(batch * steps * features, scale: 1.5)
            let input = Tensor(shape: [batch, steps, features], data: x, mask: mask)
            let one = try Gemm.withThreads(1) { try model.nodes[1].layer.apply(input) }
            let label = "\(className): batch \(batch), mask \(masked), bias \(useBias), sequences \(returnSequences), backwards \(goBackwards)"
            // The first call on two threads runs the parts alone (timed), the second as a team
            // (not yet timed), later ones whichever was faster.
            var two = one
            for call in 0..<4 {
                two = try Gemm.withThreads(2) { try model.nodes[1].layer.apply(input) }
                XCTAssertEqual(one.data.map(\.bitPattern), two.data.map(\.bitPattern), "\(label), call \(call)")
            }
            let expected = NaiveRecurrent.run(kind, x: x, batch: batch, steps: steps, features: features, units: units,
                                              kernel: kernel, recurrentKernel: recurrent, bias: bias, mask: mask, goBackwards: goBackwards,
                                              returnSequences: returnSequences, zeroOutputForMask: false)
            assertClose(two.data, expected, accuracy: 1e-5)
        }
    }

    /// runSteps: each step's parts see the previous step's end, every part runs once per step, and
    /// on a machine of two cores or more a worker takes parts (within a few seconds of tries; a
    /// machine so busy that the pool backs off all that time skips).
    func testRunStepsOrdersStepsAndSharesParts() throws {
        let parts = 4, steps = 300
        var joined = false
        let deadline = Date().addingTimeInterval(3)
        repeat {
            let state = UnsafeMutablePointer<Int>.allocate(capacity: parts), next = UnsafeMutablePointer<Int>.allocate(capacity: parts)
            defer { state.deallocate(); next.deallocate() }
            state.initialize(repeating: 1, count: parts)
            next.initialize(repeating: 0, count: parts)
            let shared = UncheckedInts(state: state, next: next)
            var ends = 0
            let followed = Gemm.withThreads(2) {
                runSteps(steps, parts: parts, { step, part in
                    // Every part reads the whole state of the step before.
                    var sum = 0
                    for i in 0..<parts { sum &+= shared.state[i] }
                    shared.next[part] = sum &+ part &+ step
                }, end: { step in
                    XCTAssertEqual(step, ends)
                    ends += 1
                    shared.state.update(from: shared.next, count: parts)
                })
            }
            XCTAssertEqual(ends, steps)
            var want = [Int](repeating: 1, count: parts)
            for step in 0..<steps {
                let sum = want.reduce(0, &+)
                want = (0..<parts).map { sum &+ $0 &+ step }
            }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: state, count: parts)), want)
            XCTAssertLessThanOrEqual(followed, steps * parts)
            joined = joined || followed > 0
        } while !joined && Date() < deadline && nnb_pool_threads() > 1
        if nnb_pool_threads() > 1, !joined {
            if nnb_pool_backing_off() != 0 { throw XCTSkip("the pool backed off for the whole time: the machine is busy") }
            XCTFail("no worker took a part in 3 s")
        }
    }
}

private struct UncheckedInts: @unchecked Sendable {
    let state: UnsafeMutablePointer<Int>, next: UnsafeMutablePointer<Int>
}
