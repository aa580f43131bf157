#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Builtins
import LayerRegistry
import ModelSpec

/// A model's input, held whole (JSON, standard input) or mapped (a `.npy` file, converted a batch
/// of rows at a time), so a large `.npy` input never sits in memory whole.
enum BatchSource {
    case tensor(Tensor)
    case npy(NpyFile)

    /// `path` nil or `-` is standard input; a path ending in `.npy` is mapped; anything else is read.
    static func open(_ path: String?, for model: Model) throws -> BatchSource {
        if let path, path != "-", path.hasSuffix(".npy") {
            let file = try NpyFile(path: path)
            // A single sample without the batch axis is one row: small, so read whole.
            guard file.shape.count == model.inputShape.count + 1 else {
                return .tensor(try model.batch(from: try file.all(), source: path))
            }
            try model.checkShape([file.rowCount] + file.rowShape, source: path)
            return .npy(file)
        }
        let name = path == "-" ? nil : path
        return .tensor(try model.batch(from: try InputFile.read(path: name, strings: model.inputs.first?.takesStrings ?? false), source: name ?? "<stdin>"))
    }

    var rows: Int {
        switch self {
        case let .tensor(tensor): return tensor.batch
        case let .npy(file): return file.rowCount
        }
    }

    /// The rows in `range` as a batch for `model`.
    func batch(_ range: Range<Int>, for model: Model) throws -> Tensor {
        switch self {
        case let .tensor(tensor):
            return tensor.rows(range)
        case let .npy(file):
            return try model.batch(from: try file.array(range), source: "\(file.source) (rows \(range.lowerBound)..<\(range.upperBound))")
        }
    }
}

/// Runs a model over an input in chunks of `batchSize` rows, with progress on standard error when
/// it is a terminal (and quiet otherwise).
enum Batching {
    /// Hands each chunk's output to `emit` as soon as it is made, in row order.
    static func run(_ model: Model, _ source: BatchSource, batchSize: Int, threads: Int, label: String = "inference",
                    emit: (Tensor) throws -> Void) throws {
        let rows = source.rows
        let progress = rows > batchSize ? Progress(total: rows, label: label) : nil
        var start = 0
        while start < rows {
            let end = min(start + batchSize, rows)
            try emit(try model.predict(try source.batch(start..<end, for: model), threads: threads))
            start = end
            progress?.update(done: end)
        }
        progress?.finish()
    }

    /// The whole output, gathered.
    static func predict(_ model: Model, _ source: BatchSource, batchSize: Int, threads: Int, label: String = "inference") throws -> Tensor {
        var output: [Float] = []
        var outputShape: [Int] = []
        // A batch that is the whole input is the output as it is (no second copy of a large one).
        var whole: Tensor?
        try run(model, source, batchSize: batchSize, threads: threads, label: label) { result in
            if outputShape.isEmpty, result.batch == source.rows {
                whole = result
                return
            }
            if outputShape.isEmpty {
                outputShape = result.shape
                outputShape[0] = 0
                output.reserveCapacity(source.rows * result.sampleSize)
            }
            output += result.data
            outputShape[0] += result.batch
        }
        return whole ?? Tensor(shape: outputShape, data: output)
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
        fputs(line, stderr)
    }

    func finish() {
        guard enabled else { return }
        fputs("\n", stderr)
    }
}
