import ArgumentParser
import CommandSupport
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry
import ModelSpec

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Run a model on a batch of inputs.",
        discussion: """
        Input: a .npy file (float16/32/64, signed or unsigned 8- to 64-bit integers or bool, either \
        byte order, C order; read a batch of rows at a time) or JSON nested arrays (for an input of \
        dtype string: a .npy of numpy str or bytes, read as UTF-8, or JSON strings); without \
        --input, or with --input -, standard input is read (JSON, or .npy detected by its magic). A single sample without a batch axis is accepted as a \
        batch of one. Output: .npy when --format npy is given or the path ends in .npy, else JSON; \
        without --output, or with --output - (or -.npy), standard output. JSON has no NaN or \
        infinity: such values are written as null. With --top-k or --class-names the output is, per \
        row, a JSON array of the K best {"class": name, "index": i, "score": p}, best first; this \
        needs an output that is a probability distribution over one axis (softmax, or one sigmoid).

        A model of several inputs takes --input NAME=PATH for each, or one .npz holding an array \
        per input name. A model of several outputs writes an .npz (--output ending in .npz) or a \
        JSON object keyed by output name. Names: the dict key when Keras wrote a dict, else the \
        layer's name, with :k for its k-th output tensor when k > 0 (nnbuild validate lists them).

        Streaming (--stream): standard input is JSON Lines, each line one sample (an array), \
        {"instances": [row, ...]} (rows as arrays, or objects keyed by input name), or for a model \
        of several inputs one sample as an object keyed by input name. Each line gets one line \
        back, in order: the row's output array (an object keyed by output name for several \
        outputs), {"predictions": [...]} for an instances line, or {"error": "..."} for a bad \
        line, after which the stream goes on and the exit code is 1 (--fail-fast stops there \
        instead). Answers are written after every --batch-size rows and whenever input pauses. \
        A line holds at most 16 MiB.
        """
    )

    @OptionGroup var model: ModelArguments

    @Argument(help: "The weights beside a spec: a safetensors blob keyed by Keras variable paths, or a Keras .weights.h5 file. Not given with a .keras or .h5 model file.")
    var weights: String?

    @Option(name: [.customShort("i"), .customLong("input")],
            help: "Input batch: a .npy file or a JSON nested array; - or nothing is standard input. NAME=PATH for each input of a model of several, or one .npz.")
    var inputs: [String] = []

    /// The one input path of a one-input model.
    var input: String? { inputs.first }

    @Option(name: .shortAndLong, parsing: .unconditional, help: "Where to write the output: .npy when the name ends in .npy, else JSON; - or nothing is standard output.")
    var output: String?

    @Option(help: "The output's format, whatever its name: npy or json.")
    var format: OutputFormat?

    @Option(name: .customLong("top-k"), help: "Write the K most probable classes of each row, as JSON.")
    var topK: Int?

    @Option(help: "Class names, one per line or a JSON array of strings, for the classes written.")
    var classNames: String?

    @Option(help: "Rows run at once; larger inputs are split and show progress on a terminal.")
    var batchSize = 256

    @Flag(help: "Read JSON Lines from standard input and write one answer line per input line, in order (see Streaming in the help).")
    var stream = false

    @Flag(name: .customLong("fail-fast"), help: "With --stream, stop at the first bad line instead of answering it with an error line.")
    var failFast = false

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        if failFast, !stream { throw ValidationError("--fail-fast applies to --stream; add --stream") }
        if stream, let clash = [("--input", !inputs.isEmpty), ("--top-k", topK != nil), ("--class-names", classNames != nil), ("--format npy", outputFormat == .npy)].first(where: \.1) {
            throw ValidationError("--stream reads JSON Lines from standard input and writes JSON Lines; drop \(clash.0)")
        }
        try model.validate(weights: weights)
        if let topK { try ArgumentBounds.check(topK, "--top-k", ArgumentBounds.topK) }
        try ArgumentBounds.check(batchSize, "--batch-size", ArgumentBounds.rows)
        if topK != nil || classNames != nil, outputFormat == .npy {
            throw ValidationError("--top-k and --class-names write JSON; the output is .npy (drop --format npy or the .npy name)")
        }
    }

    /// --format, else the output's name.
    var outputFormat: OutputFormat { format ?? (output?.hasSuffix(".npy") == true ? .npy : .json) }

    func run() throws {
        try reportingErrors {
            let target = try OutputTarget(output, reads: model.reads + [("weights", weights), ("class names", classNames)] + ModelInputs.reads(inputs))
            let built = try model.load(weights: weights, required: true)
            let names = try classNames.map(ClassNames.read)
            // Opened before the input is read, so an interrupted run is cleaned up the same way
            // at every stage, and a streamed output can be written batch by batch.
            let sink = try target.open()
            do {
                if stream { return try streamLines(built, into: sink) }
                try infer(built, names: names, into: sink)
                try sink.commit()
            } catch {
                sink.discard()
                throw error
            }
        }
    }

    func infer(_ built: Model, names: [String]?, into sink: OutputSink) throws {
        if ModelInputs.needed(built, values: inputs, outputPath: output) { return try inferGraph(built, names: names, into: sink) }
        let source = try BatchSource.open(input, for: built)
        if topK != nil || names != nil {
            let result = try Batching.predict(built, source, batchSize: batchSize, threads: runtime.count)
            let report = try ClassNames.topK(NumericArray(shape: result.shape, values: result.data), k: topK ?? 1, names: names)
            try Array((report + "\n").utf8).withUnsafeBytes { try sink.write($0) }
        } else if outputFormat == .npy {
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
        } else {
            let result = try Batching.predict(built, source, batchSize: batchSize, threads: runtime.count)
            try JSONArray.write(NumericArray(shape: result.shape, values: result.data)) { try sink.write($0) }
            try Array("\n".utf8).withUnsafeBytes { try sink.write($0) }
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument {
    case json, npy
}

enum InputFile {
    /// Largest `.npy` read whole (standard input, or where a command needs every row at once).
    static let wholeNpyLimit = 1 << 30
    /// Largest JSON input. Parsing holds a tree of about 200 bytes per number (10× the text), so
    /// a 64 MiB document peaks near 700 MB; larger batches belong in `.npy`, which is read per batch.
    static let jsonLimit = 64 << 20

    /// Reads an array from a path, or standard input when nil; JSON as strings with `strings`
    /// (an input of dtype string), a `.npy` as its dtype says.
    static func read(path: String?, strings: Bool = false) throws -> NumericArray {
        let source = path ?? "<stdin>"
        let bytes: [UInt8]
        if let path {
            bytes = try FileBytes.read(path: path, limit: wholeNpyLimit)
        } else {
            bytes = try FileBytes.readStandardInput(limit: wholeNpyLimit)
        }
        if Npy.isNpy(bytes) || path?.hasSuffix(".npy") == true { return try Npy.read(bytes, source: source) }
        guard bytes.count <= jsonLimit else {
            throw NNError(.input, source, "JSON input is \(bytes.count) bytes; at most \(jsonLimit) (64 MiB) are accepted, since parsing JSON takes about 10× its size in memory; save larger batches as .npy (np.save), which is read a batch at a time")
        }
        do {
            return try JSONArray.read(try JSONParser.parse(bytes, source: source), source: source, strings: strings)
        } catch let error as NNError where error.kind == .json {
            throw NNError(.input, error.location, error.message + " (expected a .npy file or JSON nested arrays)")
        }
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
            .map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
    }

    /// Class index and probability pairs of one row, best first. A single sigmoid output is read
    /// as the probability of class 1.
    static func ranked(_ row: ArraySlice<Float>) -> [(Int, Float)] {
        if row.count == 1, let p = row.first { return [(1, p), (0, 1 - p)] }
        return row.enumerated().map { ($0.offset, $0.element) }.sorted { $0.1 > $1.1 }
    }

    /// Per row, the k best classes as JSON: `[{"class": name, "index": i, "score": p}, ...]`.
    /// The output must be a probability distribution over one axis: (batch, classes) rows of
    /// values in [0, 1] summing to 1, or one sigmoid probability per row.
    static func topK(_ output: NumericArray, k: Int, names: [String]?) throws -> String {
        guard output.shape.count == 2 else {
            throw NNError(.input, "--top-k", "needs a (batch, classes) output of probabilities, the model gives shape \(output.shape)")
        }
        let classes = output.shape[1]
        if let names, names.count != max(classes, 2) {
            throw NNError(.input, "class names", "\(names.count) names given, the model has \(max(classes, 2)) classes")
        }
        var rows: [JSONValue] = []
        for row in 0..<output.shape[0] {
            let values = output.values[(row * classes)..<((row + 1) * classes)]
            let sum = values.reduce(0, +)
            if let bad = values.first(where: { !($0 >= -1e-6 && $0 <= 1 + 1e-6) }) {
                throw NNError(.input, "--top-k", "needs probabilities (a softmax or sigmoid output), row \(row) holds \(bad), outside [0, 1]")
            }
            if classes > 1, abs(sum - 1) > 1e-3 {
                throw NNError(.input, "--top-k", "needs a probability distribution over one axis (a softmax output), row \(row) sums to \(sum), not 1")
            }
            rows.append(.array(ranked(values).prefix(k).map { index, p in
                .object([("class", .string(names?[index] ?? String(index))), ("index", .int(Int64(index))), ("score", .double(Double(p)))])
            }))
        }
        return rows.isEmpty ? "[]" : "[" + rows.map { JSONWriter.string($0) }.joined(separator: ",\n ") + "]"
    }
}
