import Foundation
import XCTest
import Builtins
import LayerRegistry

/// A row's result does not depend on its batch-mates: on every Keras fixture (Tests/Fixtures and
/// Tests/GraphFixtures), each row gives the same bits alone on a fresh model's first call, alone
/// on a later call, inside the whole batch, at another position in a reordered batch, and with
/// the batch split across threads. Run on whichever kernel path this process chose
/// (`NNBUILD_KERNELS=baseline swift test ...` checks the portable one).
final class BatchInvarianceTests: XCTestCase {
    /// One model run: named input batches in, one tensor per output out (outputs in model order).
    typealias Run = ([Tensor], ExecutionSettings?) throws -> [Tensor]

    /// Rows `indices` of `tensor`, in that order (its mask too).
    static func rows(_ tensor: Tensor, _ indices: [Int]) -> Tensor {
        Tensor.concatenating(indices.map { tensor.rows($0..<($0 + 1)) })
    }

    /// The bits of row `row` of each output, or nil for an output without one row per input row.
    static func bits(_ outputs: [Tensor], row: Int, rows: Int) -> [[UInt32]?] {
        outputs.map { output in
            guard output.shape.first == rows else { return nil }
            let size = output.sampleSize
            return output.data[(row * size)..<((row + 1) * size)].map(\.bitPattern)
        }
    }

    /// Checks every row of `inputs` on a freshly built model; returns false when the model has
    /// no batch to split (a single row).
    @discardableResult
    static func check(_ name: String, model: Model, inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        let rows = inputs.first?.batch ?? 0
        guard rows > 1 else { return false }
        let run: (([Tensor], ExecutionSettings?) throws -> [Tensor]) = { batches, settings in try model.predict(batches, settings: settings) }
        let all = Array(0..<rows)
        // First call of the model: row 0 alone (the path a first one-sample request takes).
        var alone = [[[UInt32]?]](repeating: [], count: rows)
        alone[0] = bits(try run(inputs.map { Self.rows($0, [0]) }, nil), row: 0, rows: 1)
        let whole = try run(inputs, nil)
        // The batch reversed and rotated: every row at another position (the middle one too).
        let reordered = all.reversed().map { ($0 + 1) % rows }
        let moved = try run(inputs.map { Self.rows($0, reordered) }, nil)
        let threaded = try run(inputs, ExecutionSettings(threads: 2))
        var sliced: [Tensor]?
        if model.inputs.count == 1, model.outputs.count == 1, let input = inputs.first {
            sliced = [try model.predict(input, threads: 3)]
        }
        for row in 0..<rows where row > 0 {
            alone[row] = bits(try run(inputs.map { Self.rows($0, [row]) }, nil), row: 0, rows: 1)
        }
        let again = bits(try run(inputs.map { Self.rows($0, [0]) }, nil), row: 0, rows: 1)
        XCTAssertEqual(again, alone[0], "\(name): row 0 alone on the first call and on a later one", file: file, line: line)
        for row in 0..<rows {
            let want = alone[row]
            let position = reordered.firstIndex(of: row) ?? 0
            for (label, got) in [("in the whole batch", bits(whole, row: row, rows: rows)),
                                 ("at position \(position) of a reordered batch", bits(moved, row: position, rows: rows)),
                                 ("in the batch on 2 threads", bits(threaded, row: row, rows: rows))]
                + (sliced.map { [("in the batch split across 3 threads", bits($0, row: row, rows: rows))] } ?? []) {
                for (output, (a, b)) in zip(want, got).enumerated() where a != nil || b != nil {
                    guard a != b, !Self.paddedAlike(a, b, model.outputs[output].shape) else { continue }
                    let first = Array(zip(a ?? [], b ?? [])).firstIndex { $0.0 != $0.1 } ?? 0
                    let values = (a?[safe: first]).map(Float.init(bitPattern:)).map { "\($0)" } ?? "-"
                    let others = (b?[safe: first]).map(Float.init(bitPattern:)).map { "\($0)" } ?? "-"
                    XCTFail("\(name): output \(output) row \(row) alone gives \(values) at \(first), \(label) \(others)", file: file, line: line)
                    return true
                }
            }
        }
        return true
    }

    /// Whether a row's values `a` and `b` differ only by zero padding at the end, for an output
    /// whose last axis is known only at run time: a TextVectorization without an
    /// output_sequence_length pads every row to the longest of its batch, as Keras does.
    static func paddedAlike(_ a: [UInt32]?, _ b: [UInt32]?, _ shape: [Int?]) -> Bool {
        guard shape.count == 1, shape.last == .some(nil), let a, let b else { return false }
        let (short, long) = a.count <= b.count ? (a, b) : (b, a)
        return Array(long.prefix(short.count)) == short && long.dropFirst(short.count).allSatisfy { $0 == 0 }
    }

    func testEveryFixtureRowIsBitIdenticalWhateverItsBatch() throws {
        var checked = 0, skipped: [String] = []
        for name in Fixtures.names {
            let dir = Fixtures.root.appendingPathComponent(name)
            let model: Model, input: Tensor
            do {
                let description = try ModelDescription.load(path: dir.appendingPathComponent("model.json").path)
                let weights = try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path)
                model = try Model.build(description, registry: .withBuiltins(), weights: weights)
                let inputPath = dir.appendingPathComponent("input.npy").path
                input = try model.batch(from: try Npy.read(FileBytes.read(path: inputPath), source: inputPath), source: inputPath)
            } catch {
                skipped.append(name)  // a fixture of a refused model: KerasFixtureTests covers it
                continue
            }
            if try Self.check(name, model: model, inputs: [input]) { checked += 1 } else { skipped.append(name) }
        }
        XCTAssertGreaterThan(checked, 150, "too few fixtures checked; skipped \(skipped)")
    }

    func testEveryGraphFixtureRowIsBitIdenticalWhateverItsBatch() throws {
        let manifest = try GraphFixtureTests.manifest()
        var checked = 0, skipped: [String] = []
        for (name, entry) in manifest.cases.sorted(by: { $0.key < $1.key }) {
            let model: Model
            var inputs: [Tensor] = []
            do {
                model = try GraphFixtureTests.model(name)
                for port in model.inputs {
                    guard let file = entry.inputs.first(where: { $0.name == port.name })?.file else { throw NNError(.input, name, "no input file") }
                    inputs.append(try model.batch(from: GraphFixtureTests.array(name, file), source: file, input: port.name))
                }
            } catch {
                skipped.append(name)
                continue
            }
            if try Self.check(name, model: model, inputs: inputs) { checked += 1 } else { skipped.append(name) }
        }
        XCTAssertGreaterThan(checked, 20, "too few graph fixtures checked; skipped \(skipped)")
    }
}

private extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
