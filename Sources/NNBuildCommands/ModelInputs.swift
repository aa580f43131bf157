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

/// The batches a command feeds a model, one per model input in the model's input order (its
/// `config.input_layers`), assigned from the `--input` values by one rule:
///
/// - `NAME=PATH`, where NAME is one of the model's input names, gives that input;
/// - a path to an `.npz` (by its `.npz` name or its zip magic) gives every input its array named
///   alike; an array that names no input is refused;
/// - any other value is a path, accepted only for a model of one input (as before named inputs).
///
/// An `.npz`'s arrays together may inflate to at most the memory limit (`--max-memory`).
/// With no value (or `-`), standard input is read: an `.npz`, or `.npy` / JSON for a one-input model.
/// Each input must be given exactly once, and every input must hold the same number of rows.
struct ModelInputs {
    var batches: [Tensor]
    var rows: Int

    /// True when the plain single-tensor path cannot serve the command: a model of several inputs
    /// or outputs, an `.npz`, a named input, or more than one `--input`.
    static func needed(_ model: Model, values: [String], outputPath: String? = nil) -> Bool {
        model.inputs.count != 1 || model.outputs.count != 1 || values.count > 1 || outputPath?.hasSuffix(".npz") == true
            || values.contains { isNpz($0) || named($0, model) != nil }
    }

    static func isNpz(_ value: String) -> Bool { value.hasSuffix(".npz") }

    /// The files `--input` values read, for the output's check that it overwrites none of them.
    static func reads(_ values: [String]) -> [(role: String, path: String?)] {
        values.flatMap { value -> [(role: String, path: String?)] in
            guard let equals = value.firstIndex(of: "=") else { return [("input", value)] }
            return [("input", value), ("input", String(value[value.index(after: equals)...]))]
        }
    }

    /// The input a `NAME=PATH` value names, with its path; nil when the text before the first
    /// `=` names no input of the model.
    static func named(_ value: String, _ model: Model) -> (port: Model.Port, path: String)? {
        guard let equals = value.firstIndex(of: "=") else { return nil }
        let name = String(value[..<equals])
        guard let port = model.inputs.first(where: { $0.name == name }) else { return nil }
        return (port, String(value[value.index(after: equals)...]))
    }

    /// "'image' (None, 5, 5, 2), 'tabular' (None, 4)": the model's inputs, for messages.
    static func describe(_ ports: [Model.Port]) -> String {
        ports.map { "'\($0.name)' \(describeShape($0.shape))" }.joined(separator: ", ")
    }

    static func read(_ values: [String], for model: Model) throws -> ModelInputs {
        var given: [String: (array: NumericArray, source: String)] = [:]
        func give(_ name: String, _ array: NumericArray, source: String) throws {
            if let earlier = given[name] {
                throw NNError(.input, source, "input '\(name)' is given twice (also by \(earlier.source)); give each input once")
            }
            given[name] = (array, source)
        }
        func giveArchive(_ arrays: [NamedArray], source: String) throws {
            for named in arrays {
                guard model.inputs.contains(where: { $0.name == named.name }) else {
                    throw NNError(.input, source, "holds the array '\(named.name)', which names no input of the model; its inputs are \(describe(model.inputs))")
                }
                try give(named.name, named.array, source: "\(source): array '\(named.name)'")
            }
        }
        // Standard input: no value, or `-`.
        if values.isEmpty || values == ["-"] {
            let bytes = try FileBytes.readStandardInput()
            if Npz.isNpz(bytes) {
                try giveArchive(try Npz.read(bytes, source: "<stdin>", limit: model.settings.memoryLimit), source: "<stdin>")
            } else if model.inputs.count == 1, let port = model.inputs.first {
                try give(port.name, try ModelInputs.parse(bytes, source: "<stdin>", strings: port.takesStrings), source: "<stdin>")
            } else {
                throw NNError(.input, "<stdin>", "the model has \(model.inputs.count) inputs (\(describe(model.inputs))); give --input NAME=PATH for each, or one .npz holding an array per input name")
            }
        }
        for value in values where values != ["-"] {
            if let (port, path) = named(value, model) {
                if isNpz(path) {
                    throw NNError(.input, path, "--input \(port.name)=PATH takes a .npy or JSON array for input '\(port.name)', found an .npz; give the .npz as --input PATH")
                }
                try give(port.name, try InputFile.read(path: path, strings: port.takesStrings), source: path)
            } else if isNpz(value) {
                try giveArchive(try Npz.read(path: value, limit: model.settings.memoryLimit), source: value)
            } else if value.contains("="), model.inputs.count > 1 {
                let name = String(value[..<(value.firstIndex(of: "=") ?? value.endIndex)])
                throw NNError(.input, "--input \(value)", "'\(name)' names no input of the model; its inputs are \(describe(model.inputs))")
            } else if model.inputs.count == 1, let port = model.inputs.first {
                try give(port.name, try InputFile.read(path: value, strings: port.takesStrings), source: value)
            } else {
                throw NNError(.input, value, "the model has \(model.inputs.count) inputs (\(describe(model.inputs))); give --input NAME=PATH for each, or one .npz holding an array per input name")
            }
        }
        let missing = model.inputs.filter { given[$0.name] == nil }
        guard missing.isEmpty else {
            throw NNError(.input, "input", "no array given for \(missing.count == 1 ? "input" : "inputs") \(describe(missing)); give --input NAME=PATH for each input (\(describe(model.inputs))) or one .npz holding an array per input name")
        }
        var batches: [Tensor] = []
        for port in model.inputs {
            guard let (array, source) = given[port.name] else { continue }
            batches.append(try model.batch(from: array, source: model.inputs.count == 1 ? source : "\(source) (input '\(port.name)')", input: port.name))
        }
        let rows = batches.first?.batch ?? 0
        if batches.contains(where: { $0.batch != rows }) {
            throw NNError(.input, "input", "the inputs hold different numbers of rows (\(zip(model.inputs, batches).map { "'\($0.name)': \($1.batch)" }.joined(separator: ", "))); every input needs the same number")
        }
        return ModelInputs(batches: batches, rows: rows)
    }

    /// An `.npy` file or JSON nested arrays (of strings with `strings`) held in memory.
    static func parse(_ bytes: [UInt8], source: String, strings: Bool = false) throws -> NumericArray {
        if Npy.isNpy(bytes) { return try Npy.read(bytes, source: source) }
        do {
            return try JSONArray.read(try JSONParser.parse(bytes, source: source), source: source, strings: strings)
        } catch let error as NNError where error.kind == .json {
            throw NNError(.input, error.location, error.message + " (expected an .npz, a .npy file or JSON nested arrays)")
        }
    }

    /// Rows `range` of every input.
    func slice(_ range: Range<Int>) -> [Tensor] {
        batches.map { $0.rows(range) }
    }

    /// Runs the model in chunks of `batchSize` rows (progress on a terminal) and returns every
    /// output, gathered, in the model's output order.
    func predict(_ model: Model, batchSize: Int, threads: Int, label: String = "inference") throws -> [NamedArray] {
        var settings = model.settings
        settings.threads = threads
        // One batch: its outputs as they are (no second copy of a large one).
        if rows <= batchSize {
            let results = try model.predict(batches, settings: settings)
            return zip(model.outputs, results).map { NamedArray(name: $0.name, array: NumericArray(shape: $1.shape, values: $1.data)) }
        }
        var data = [[Float]](repeating: [], count: model.outputs.count)
        var shapes = [[Int]](repeating: [], count: model.outputs.count)
        let progress = rows > batchSize ? Progress(total: rows, label: label) : nil
        var start = 0
        while start < rows {
            let end = min(start + batchSize, rows)
            let results = try model.predict(slice(start..<end), settings: settings)
            for (index, result) in results.enumerated() where index < data.count {
                if shapes[index].isEmpty {
                    shapes[index] = [0] + result.shape.dropFirst()
                    data[index].reserveCapacity(rows * result.sampleSize)
                }
                data[index] += result.data
                shapes[index][0] += result.batch
            }
            start = end
            progress?.update(done: end)
        }
        progress?.finish()
        return zip(model.outputs, zip(shapes, data)).map { port, output in
            NamedArray(name: port.name, array: NumericArray(shape: output.0, values: output.1))
        }
    }
}

extension Model {
    /// The number of valid token ids of each input that an index-taking layer (an Embedding)
    /// reads directly, by input name; inputs read otherwise are absent.
    var indexLimits: [String: Int] {
        var limits: [String: Int] = [:]
        for port in inputs {
            // The input's value, and what an explicit InputLayer node passes it on as.
            var values: Set<Int> = [port.value]
            for node in nodes where node.spec.className == "InputLayer" && node.inputs.contains(port.value) {
                values.formUnion(node.outputs)
            }
            for node in nodes where !values.isDisjoint(with: node.inputs) {
                if let indexed = node.layer as? TakesIndices {
                    limits[port.name] = min(limits[port.name] ?? .max, indexed.indexLimit)
                }
            }
        }
        return limits
    }
}

extension ModelInputs {
    /// Every input's rows repeated to fill a batch of `size`.
    func tiled(to size: Int) -> [Tensor] {
        batches.map { Bench.tile($0, to: size) }
    }
}

extension Bench {
    /// A deterministic random batch of `size` for every model input: token ids in 1..<limit for an
    /// input an index-taking layer (Embedding) reads, words `w0`…`w999` for a string input, else
    /// N(0, 1); unknown sizes become 32.
    static func randomBatches(for model: Model, size: Int, seed: UInt64 = 42) -> [Tensor] {
        let limits = model.indexLimits
        return model.inputs.enumerated().map { index, port in
            let shape = [size] + port.shape.map { $0 ?? 32 }
            var generator = SplitMix(state: seed &+ UInt64(index))
            let count = shape.reduce(1, *)
            if port.takesStrings { return Tensor(shape: shape, strings: (0..<count).map { _ in "w\(generator.next() % 1000)" }) }
            let data: [Float]
            if let limit = limits[port.name] {
                data = (0..<count).map { _ in Float(1 + Int(generator.next() % UInt64(max(limit - 1, 1)))) }
            } else {
                data = (0..<count).map { _ in
                    let u1 = max(Double(generator.next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(generator.next() >> 11) / Double(1 << 53)
                    return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
                }
            }
            return Tensor(shape: shape, data: data)
        }
    }

    /// One run of the model on `batches`: split across threads for one input and one output,
    /// else the graph run with every input.
    static func run(_ model: Model, _ batches: [Tensor], threads: Int) throws {
        if batches.count == 1, model.outputs.count == 1, let batch = batches.first {
            _ = try model.predict(batch, threads: threads)
        } else {
            var settings = model.settings
            settings.threads = threads
            _ = try model.predict(batches, settings: settings)
        }
    }
}
