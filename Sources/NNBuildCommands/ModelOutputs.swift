#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

/// A model's outputs by name, in its output order (`config.output_layers`): how `infer` writes
/// them, how `compare` matches them against expected arrays, and how `eval` picks one.
enum ModelOutputs {
    /// "'class_head' (None, 3), 'value_head' (None, 1)": the model's outputs, for messages.
    static func describe(_ model: Model) -> String {
        model.outputs.map { "'\($0.name)' \(describeShape($0.shape))" }.joined(separator: ", ")
    }

    /// Writes every output into `sink`: an `.npz` (one array per output, in output order, named
    /// by output, streamed member by member) when its name ends in `.npz`, a `.npy` when `format`
    /// is npy (a model of one output), else a JSON object keyed by output name.
    static func write(_ outputs: [NamedArray], to sink: OutputSink, format: OutputFormat, model: Model) throws {
        try checkTarget(sink.name, format: format, model: model)
        if sink.name.hasSuffix(".npz") {
            var writer = NpzWriter(descriptor: sink.descriptor, source: sink.name)
            for output in outputs { try writer.add(name: output.name, array: output.array) }
            try writer.finish()
        } else if format == .npy, let only = outputs.first {
            try Npy.encode(only.array).withUnsafeBytes { try sink.write($0) }
        } else {
            try writeJSON(outputs) { try sink.write($0) }
        }
    }

    /// Fails, before anything runs, when the output cannot hold the model's outputs: a `.npy` holds one.
    static func checkTarget(_ name: String, format: OutputFormat, model: Model) throws {
        guard !name.hasSuffix(".npz"), format == .npy, model.outputs.count != 1 else { return }
        throw NNError(.input, name, "a .npy file holds one array, and the model has \(model.outputs.count) outputs (\(describe(model))); write them to an .npz (--output NAME.npz) or as JSON")
    }

    /// `{"name": [[...]], ...}`, one output per member, in output order, handed to `emit` in
    /// pieces as `JSONArray.write` makes them.
    static func writeJSON(_ outputs: [NamedArray], to emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        func put(_ text: String) throws { try Array(text.utf8).withUnsafeBytes(emit) }
        for (index, output) in outputs.enumerated() {
            try put((index == 0 ? "{" : ",\n") + JSONWriter.string(.string(output.name)) + ": ")
            try JSONArray.write(output.array, to: emit)
        }
        try put(outputs.isEmpty ? "{}\n" : "}\n")
    }

    /// The output `name` names, or the only one; a model of several outputs needs a name.
    static func select(_ outputs: [NamedArray], name: String?, model: Model) throws -> NamedArray {
        let option = "--output-name"
        if let name {
            guard let found = outputs.first(where: { $0.name == name }) else {
                throw NNError(.input, "\(option) \(name)", "the model has no output named '\(name)'; its outputs are \(describe(model))")
            }
            return found
        }
        guard outputs.count == 1, let only = outputs.first else {
            throw NNError(.input, option, "the model has \(outputs.count) outputs (\(describe(model))); name the one to use with \(option) NAME")
        }
        return only
    }

    /// The expected arrays for `outputs`, by name: an `.npz` with one array per output, or for a
    /// model of one output a `.npy` or JSON array.
    static func expected(_ path: String, for outputs: [NamedArray], model: Model) throws -> [NamedArray] {
        if !ModelInputs.isNpz(path) {
            guard outputs.count == 1, let only = outputs.first else {
                throw NNError(.input, path, "the model has \(outputs.count) outputs (\(describe(model))); give the expected outputs as an .npz with one array per output name")
            }
            return [NamedArray(name: only.name, array: try InputFile.read(path: path))]
        }
        let arrays = try Npz.read(path: path, limit: model.settings.memoryLimit)
        if let stray = arrays.first(where: { array in !outputs.contains { $0.name == array.name } }) {
            throw NNError(.input, path, "holds the array '\(stray.name)', which names no output of the model; its outputs are \(describe(model))")
        }
        return try outputs.map { output in
            guard let found = arrays.first(where: { $0.name == output.name }) else {
                throw NNError(.input, path, "holds no array '\(output.name)'; expected one array per output: \(describe(model))")
            }
            return found
        }
    }

    /// Compares each output with its expected array; the text and JSON reports name each output.
    static func compare(_ outputs: [NamedArray], expected: [NamedArray], source: String, tolerance: Double) throws -> (text: String, json: String, passed: Bool) {
        var texts: [String] = []
        var jsons: [String] = []
        var passed = true
        for (got, want) in zip(outputs, expected) {
            guard got.array.shape == want.array.shape else {
                throw NNError(.input, "\(source): array '\(want.name)'", "holds shape \(want.array.shape), the model's output '\(got.name)' has \(got.array.shape)")
            }
            let report = Comparison(got: got.array.values, want: want.array.values, shape: got.array.shape, tolerance: tolerance)
            passed = passed && report.passed
            texts.append("output '\(got.name)':\n" + report.text.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            jsons.append(JSONWriter.string(.string(got.name)) + ": " + report.json)
        }
        texts.append(passed ? "PASS" : "FAIL: an output's max relative difference exceeds the tolerance")
        let json = "{\"outputs\": {" + jsons.joined(separator: ", ") + "}, \"passed\": \(passed)}"
        return (texts.joined(separator: "\n"), json, passed)
    }
}

extension Infer {
    /// `infer` for a model of several inputs or outputs, or named or `.npz` inputs and outputs.
    func inferGraph(_ built: Model, names: [String]?, into sink: OutputSink) throws {
        try ModelOutputs.checkTarget(sink.name, format: outputFormat, model: built)
        let outputs = try ModelInputs.read(inputs, for: built).predict(built, batchSize: batchSize, threads: runtime.count)
        guard topK != nil || names != nil else { return try ModelOutputs.write(outputs, to: sink, format: outputFormat, model: built) }
        guard outputs.count == 1, let scored = outputs.first else {
            throw NNError(.input, topK != nil ? "--top-k" : "--class-names", "scores the classes of one output, and the model has \(outputs.count) outputs (\(ModelOutputs.describe(built))); write them with --output NAME.npz instead")
        }
        let report = try ClassNames.topK(scored.array, k: topK ?? 1, names: names)
        try Array((report + "\n").utf8).withUnsafeBytes { try sink.write($0) }
    }
}

extension Compare {
    /// `compare` for a model of several inputs or outputs, or `.npz` inputs or expected outputs;
    /// true when an output differs past the tolerance.
    func compareGraph(_ built: Model) throws -> Bool {
        let given = try ModelInputs.read([input], for: built)
        let outputs = try given.predict(built, batchSize: batchSize, threads: runtime.count)
        let want = try ModelOutputs.expected(expected, for: outputs, model: built)
        let report = try ModelOutputs.compare(outputs, expected: want, source: expected, tolerance: tolerance)
        print(json ? report.json : report.text)
        return !report.passed
    }
}

extension Eval {
    /// The output `eval` scores: `--output-name`'s, or the only one, for any model and input.
    func scoredOutput(_ built: Model) throws -> Tensor {
        guard ModelInputs.needed(built, values: [input]) || outputName != nil else {
            return try Batching.predict(built, try BatchSource.open(input, for: built), batchSize: batchSize, threads: runtime.count, label: "eval")
        }
        if built.outputs.count > 1, outputName == nil {
            throw NNError(.input, "--output-name", "the model has \(built.outputs.count) outputs (\(ModelOutputs.describe(built))); name the one to score with --output-name NAME")
        }
        let outputs = try ModelInputs.read([input], for: built).predict(built, batchSize: batchSize, threads: runtime.count, label: "eval")
        let scored = try ModelOutputs.select(outputs, name: outputName, model: built)
        return Tensor(shape: scored.array.shape, data: scored.array.values)
    }
}
