import Foundation
import XCTest
import Builtins
import LayerRegistry

/// `predict` is safe from many threads: 8 threads × 50 calls on several fixtures at once, each
/// with its own thread count in `ExecutionSettings`, all give the bits of a single-threaded run.
/// `swift test --sanitize=thread --filter ConcurrentPredictTests` runs it under ThreadSanitizer.
final class ConcurrentPredictTests: XCTestCase {
    struct Case: @unchecked Sendable {
        let name: String
        let model: Model
        let input: Tensor
        let want: [UInt32]
    }

    /// Fixtures covering the threaded kernels: a CNN (implicit GEMM, Winograd, Dense packed on
    /// demand), recurrent stacks (Bidirectional halves side by side, fused Embedding tables),
    /// attention (unpacked products), normalization.
    static let names = ["cifar_cnn", "conv2d_winograd", "bidi_lstm_stack", "gru_reset_after_true", "masked_bidi_lstm",
                        "text_cnn", "batchnorm", "dense_embedding_lora"]

    static func cases() throws -> [Case] {
        try names.compactMap { name in
            let dir = Fixtures.root.appendingPathComponent(name)
            let description = try ModelDescription.load(path: dir.appendingPathComponent("model.json").path)
            let weights = try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path)
            guard let model = try? Model.build(description, registry: .withBuiltins(), weights: weights) else { return nil }
            let inputPath = dir.appendingPathComponent("input.npy").path
            let input = try model.batch(from: try Npy.read(FileBytes.read(path: inputPath), source: inputPath), source: inputPath)
            let want = try model.predict(input, settings: ExecutionSettings(threads: 1)).data.map(\.bitPattern)
            return Case(name: name, model: model, input: input, want: want)
        }
    }

    func testManyThreadsPredictingAtOnceGiveTheSingleThreadedBits() throws {
        let cases = try Self.cases()
        XCTAssertEqual(cases.map(\.name), Self.names, "every fixture named must build")
        let callers = 8, calls = 50
        let failures = Failures()
        let all = cases
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for call in 0..<calls {
                let item = all[(caller + call) % all.count]
                // Every mode a caller may pick: one thread, several inside products, the batch split
                // into slices, and a single row (its first call races with the others').
                let threads = 1 + (caller + call) % 3
                do {
                    let got: [UInt32]
                    switch call % 3 {
                    case 0: got = try item.model.predict(item.input, settings: ExecutionSettings(threads: threads)).data.map(\.bitPattern)
                    case 1: got = try item.model.predict(item.input, threads: threads).data.map(\.bitPattern)
                    default:
                        let row = Tensor(shape: [1] + item.input.shape.dropFirst(), data: Array(item.input.data.prefix(item.input.sampleSize)),
                                         mask: item.input.mask.map { Array($0.prefix(item.input.shape[1])) })
                        let size = item.want.count / item.input.batch
                        let one = try item.model.predict(row, settings: ExecutionSettings(threads: threads)).data.map(\.bitPattern)
                        got = one + item.want.dropFirst(size)
                    }
                    if got != item.want { failures.add("\(item.name): caller \(caller) call \(call) (\(threads) threads) differs from the single-threaded run") }
                } catch {
                    failures.add("\(item.name): caller \(caller) call \(call): \(error)")
                }
            }
        }
        XCTAssertEqual(failures.all, [], "\(failures.all.count) calls differ")
    }
}

/// Failures collected from concurrent callers.
private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ text: String) { lock.withLock { if items.count < 20 { items.append(text) } } }
    var all: [String] { lock.withLock { items } }
}
