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
        without --output, JSON on standard output.
        """
    )

    @OptionGroup var model: ModelArguments

    @Argument(help: "The safetensors weight blob keyed by Keras variable paths.")
    var weights: String

    @Option(name: .shortAndLong, help: "Input batch: a .npy file or a JSON nested array (default: standard input).")
    var input: String?

    @Option(name: .shortAndLong, help: "Where to write the output: .npy when the name ends in .npy, else JSON (default: standard output).")
    var output: String?

    func run() throws {
        try reportingErrors {
            let built = try loadModel(spec: model.spec, weights: weights)
            let array = try InputFile.read(path: input)
            let batch = try built.batch(from: array, source: input ?? "<stdin>")
            let result = try built.predict(batch)
            try OutputFile.write(NumericArray(shape: result.shape, values: result.data), to: output)
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
        if Npy.isNpy(bytes) { return try Npy.read(bytes, source: source) }
        if path?.hasSuffix(".npy") == true { return try Npy.read(bytes, source: source) }
        do {
            return try JSONArray.read(try JSONParser.parse(bytes, source: source), source: source)
        } catch let error as NNError where error.kind == .json {
            throw NNError(.input, error.location, error.message + " (expected a .npy file or JSON nested arrays)")
        }
    }
}

enum OutputFile {
    /// Writes .npy or JSON; an existing file is replaced atomically (write, then rename).
    static func write(_ array: NumericArray, to path: String?) throws {
        guard let path else {
            print(JSONArray.text(array))
            return
        }
        let bytes = path.hasSuffix(".npy") ? Npy.encode(array) : Array((JSONArray.text(array) + "\n").utf8)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw NNError(.io, path, "cannot write the output: \(error.localizedDescription)")
        }
    }
}
