import Foundation
import Builtins
import LayerRegistry

/// Runs a model over a large input in chunks of `batchSize` rows, with progress on standard error
/// when it is a terminal (and quiet otherwise).
enum Batching {
    static func predict(_ model: Model, _ input: Tensor, batchSize: Int, threads: Int, label: String = "inference") throws -> Tensor {
        let rows = input.batch
        guard rows > batchSize else { return try model.predict(input, threads: threads) }
        let rowSize = input.sampleSize
        var output: [Float] = []
        var outputShape: [Int] = []
        let progress = Progress(total: rows, label: label)
        var start = 0
        while start < rows {
            let end = min(start + batchSize, rows)
            let chunk = Tensor(shape: [end - start] + input.shape.dropFirst(), data: Array(input.data[(start * rowSize)..<(end * rowSize)]))
            let result = try model.predict(chunk, threads: threads)
            if outputShape.isEmpty {
                outputShape = result.shape
                output.reserveCapacity(rows * result.sampleSize)
            }
            output += result.data
            start = end
            progress.update(done: end)
        }
        progress.finish()
        outputShape[0] = rows
        return Tensor(shape: outputShape, data: output)
    }
}

/// A one-line progress bar on standard error, drawn only when standard error is a terminal.
final class Progress {
    let total: Int
    let label: String
    let enabled: Bool
    let started = Date()
    private var lastDraw = Date.distantPast

    init(total: Int, label: String) {
        self.total = total
        self.label = label
        enabled = isatty(2) != 0
    }

    func update(done: Int) {
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
        lastDraw = Date()
        let fraction = Double(done) / Double(max(total, 1))
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = Date().timeIntervalSince(started)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = "\r\(label) \(bar) \(done)/\(total) (\(Int(rate)) samples/s)"
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
