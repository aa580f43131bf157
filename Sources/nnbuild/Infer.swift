import ArgumentParser
import Foundation
import LayerRegistry

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on a batch of inputs.",
        discussion: """
        Input: a .npy file (float32, float64, int32 or int64, C order) or JSON nested arrays; without \
        --input, standard input is read (JSON, or .npy detected by its magic). A single sample without \
        a batch axis is accepted as a batch of one. Output: .npy when the path ends in .npy, else JSON; \
        without --output, JSON on standard output. With --top-k or --class-names, the classes and \
        probabilities of each row are printed instead.
        """
    )

    @OptionGroup var model: ModelArguments

    @Argument(help: "The safetensors weight blob keyed by Keras variable paths.")
    var weights: String

    @Option(name: .shortAndLong, help: "Input batch: a .npy file or a JSON nested array (default: standard input).")
    var input: String?

    @Option(name: .shortAndLong, help: "Where to write the output: .npy when the name ends in .npy, else JSON (default: standard output).")
    var output: String?

    @Option(name: .customLong("top-k"), help: "Print the K most probable classes of each row.")
    var topK: Int?

    @Option(help: "Class names, one per line or a JSON array of strings, for printing classes.")
    var classNames: String?

    @Option(help: "Rows run at once; larger inputs are split and show progress on a terminal.")
    var batchSize = 256

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        if let topK { try ArgumentBounds.check(topK, "--top-k", ArgumentBounds.topK) }
        try ArgumentBounds.check(batchSize, "--batch-size", ArgumentBounds.rows)
    }

    func run() throws {
        try reportingErrors {
            let target = try OutputTarget(output, reads: model.reads + [("weights", weights), ("input", input), ("class names", classNames)])
            runtime.apply()
            let built = try model.load(weights: weights)
            let names = try classNames.map(ClassNames.read)
            // Opened before the input is read, so an interrupted run is cleaned up the same way
            // at every stage, and a streamed output can be written batch by batch.
            let sink = try target.open()
            do {
                try infer(built, names: names, into: sink)
                try sink.commit()
            } catch {
                sink.discard()
                throw error
            }
        }
    }

    func infer(_ built: Model, names: [String]?, into sink: OutputSink) throws {
        let source = try BatchSource.open(input, for: built)
        if topK == nil, names == nil, sink.name.hasSuffix(".npy") {
            // Written batch by batch: the header's row count is the input's, the rest of the shape
            // is known from the first batch.
            var writer: NpyWriter?
            try Batching.run(built, source, batchSize: batchSize, threads: runtime.count) { result in
                if writer == nil {
                    writer = try NpyWriter(descriptor: sink.descriptor, source: sink.name, shape: [source.rows] + result.shape.dropFirst())
                }
                try result.data.withUnsafeBufferPointer { values in try writer?.append(values) }
            }
            try writer?.finish()
            return
        }
        let result = try Batching.predict(built, source, batchSize: batchSize, threads: runtime.count)
        let values = NumericArray(shape: result.shape, values: result.data)
        if topK != nil || names != nil {
            if output != nil { try OutputFile.write(values, to: sink) }
            print(try ClassNames.topKReport(values, k: topK ?? 1, names: names))
        } else {
            try OutputFile.write(values, to: sink)
        }
    }
}

enum InputFile {
    /// Reads an array from a path, or standard input when nil.
    static func read(path: String?) throws -> NumericArray {
        let source = path ?? "<stdin>"
        let bytes: [UInt8]
        if let path {
            bytes = try FileBytes.read(path: path)
        } else {
            bytes = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
        }
        if Npy.isNpy(bytes) || path?.hasSuffix(".npy") == true { return try Npy.read(bytes, source: source) }
        do {
            return try JSONArray.read(try JSONParser.parse(bytes, source: source), source: source)
        } catch let error as NNError where error.kind == .json {
            throw NNError(.input, error.location, error.message + " (expected a .npy file or JSON nested arrays)")
        }
    }
}

enum OutputFile {
    /// Writes .npy when the output's name ends in .npy, else JSON, through the output's rules.
    static func write(_ array: NumericArray, to sink: OutputSink) throws {
        let bytes = sink.name.hasSuffix(".npy") ? Npy.encode(array) : Array((JSONArray.text(array) + "\n").utf8)
        try bytes.withUnsafeBytes { try sink.write($0) }
    }
}

/// Class names for classifier output, and the per-row top-k report.
enum ClassNames {
    static func read(_ path: String) throws -> [String] {
        let bytes = try FileBytes.read(path: path)
        if let first = bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }), first == UInt8(ascii: "[") {
            guard case let .array(items) = try JSONParser.parse(bytes, source: path) else { return [] }
            return try items.enumerated().map { index, item in
                guard case let .string(name) = item else { throw NNError(.input, "\(path): [\(index)]", "expected a class name string, found \(item.brief())") }
                return name
            }
        }
        return String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Class index and probability pairs of one row, best first. A single sigmoid output is read
    /// as the probability of class 1.
    static func ranked(_ row: ArraySlice<Float>) -> [(Int, Float)] {
        if row.count == 1, let p = row.first { return [(1, p), (0, 1 - p)] }
        return row.enumerated().map { ($0.offset, $0.element) }.sorted { $0.1 > $1.1 }
    }

    static func topKReport(_ output: NumericArray, k: Int, names: [String]?) throws -> String {
        guard output.shape.count == 2 else {
            throw NNError(.input, "output", "--top-k and --class-names need a (batch, classes) output, the model gives \(output.shape)")
        }
        let classes = output.shape[1]
        if let names, names.count != max(classes, 2) {
            throw NNError(.input, "class names", "\(names.count) names given, the model has \(max(classes, 2)) classes")
        }
        var lines: [String] = []
        for row in 0..<output.shape[0] {
            let ranked = ranked(output.values[(row * classes)..<((row + 1) * classes)]).prefix(k)
            let items = ranked.map { index, p in
                "\(names?[index] ?? "class \(index)") \(String(format: "%.4f", p))"
            }
            lines.append("row \(row): " + items.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
