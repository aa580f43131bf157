import ArgumentParser
import CommandSupport
import LayerRegistry
import ModelSpec

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a model and print its summary; list every problem found.",
        discussion: "Exit code 0 when the model builds (with its weights, when given), 1 otherwise."
    )

    @OptionGroup var model: ModelArguments

    @Argument(help: "The safetensors weight blob; when given, every weight is checked by name and shape.")
    var weights: String?

    func run() throws {
        try reportingErrors {
            let built = try model.load(weights: weights)
            // A .keras or .h5 model file holds its weights, which loading binds and checks.
            print(Summary.text(for: built, weightsChecked: weights != nil || ModelFile.isModelFile(path: model.spec)))
        }
    }
}

/// A table like Keras's `model.summary()`: a Sequential model's one row per layer, a Functional
/// model's with the "Connected to" column and its named inputs and outputs.
enum Summary {
    static func text(for model: Model, weightsChecked: Bool) -> String {
        let functional = model.description.graph.className != "Sequential"
        var rows: [[String]]
        var header = ["Layer (type)", "Output Shape", "Param #"]
        if functional {
            header.append("Connected to")
            rows = functionalRows(model)
        } else {
            rows = model.nodes.map { node in
                ["\(node.spec.name) (\(node.spec.className))", describeShape(node.outputShape) + (node.carriesMask ? " masked" : ""),
                 grouped(node.parameterCount)]
            }
        }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            let text = cells.enumerated().map { i, cell in i == 2 ? String(repeating: " ", count: widths[i] - cell.count) + cell : cell.padded(to: widths[i]) }
                .joined(separator: "   ")
            return functional ? String(text.reversed().drop { $0 == " " }.reversed()) : text
        }
        let rule = String(repeating: "─", count: widths.reduce(3 * (widths.count - 1), +))
        let title = functional ? "\(model.description.format.rawValue) spec, \(model.description.graph.className)"
                               : "\(model.description.format.rawValue) spec, input \(describeShape(model.inputShape)) \(model.description.inputDType)"
        var out = ["Model: \"\(model.description.name)\" (\(title))", rule, line(header), rule]
        out += rows.map(line)
        out.append(rule)
        if functional {
            out.append("Inputs: " + model.inputs.map { "\($0.name) \(describeShape($0.shape)) \($0.dtype)" }.joined(separator: ", "))
            out.append("Outputs: " + model.outputs.map { "\($0.name) \(describeShape($0.shape))" }.joined(separator: ", "))
        }
        out.append("Total params: \(grouped(model.parameterCount))")
        out.append(weightsChecked ? "Weights: every tensor found with the expected shape, none unused." : "Weights: not checked (no weight file given).")
        // nnbuild computes in float32; a 16-bit policy makes Keras round every layer's arithmetic.
        let reduced = model.nodes.filter { ["mixed_float16", "mixed_bfloat16", "float16", "bfloat16"].contains($0.spec.dtypePolicy ?? "") }
        if let policy = reduced.first?.spec.dtypePolicy {
            out.append("note: \(reduced.count) layer(s) \(listed(reduced.map(\.spec.name))) use dtype policy \(policy); nnbuild computes in float32, Keras in 16-bit floats, so results differ by that rounding (about 1e-3).")
        }
        // Calls saved with training=True: Keras's predict overrides it, as nnbuild does; called
        // directly (`model(x)`) Keras would run them as in training (dropout, augmentation).
        let training = trainingCalls(model.description.graph)
        if !training.isEmpty {
            out.append("note: \(training.count) call(s) \(listed(training)) were saved with training=True; nnbuild runs them at inference, as Keras's predict() does (training=False replaces it); calling the Keras model directly without training= would run them as in training.")
        }
        // TensorFlow's CPU path for channels-first 3-D convolutions with "same" padding (NCDHW,
        // through XLA) gives other values than the same layer channels-last or on JAX (KERAS_NOTES.md).
        let volumes = model.nodes.filter { node in
            ["Conv3D", "Convolution3D", "Conv3DTranspose", "Convolution3DTranspose"].contains(node.spec.className)
                && node.spec.config["data_format"] == .string("channels_first") && node.spec.config["padding"] == .string("same")
        }
        if !volumes.isEmpty {
            out.append("note: \(volumes.count) layer(s) \(listed(volumes.map(\.spec.name))) are 3-D convolutions with data_format channels_first and padding same; Keras's TensorFlow backend on CPU computes these differently from the same layer channels_last (and from Keras on JAX); nnbuild gives the channels_last layer's values, as JAX does.")
        }
        // Keras floors MelSpectrogram's decibels at the loudest value of the whole batch (KERAS_NOTES.md).
        let mels = model.nodes.filter { $0.spec.className == "MelSpectrogram" && $0.spec.config["power_to_db"] != .bool(false) }
        if !mels.isEmpty {
            out.append("note: \(mels.count) MelSpectrogram layer(s) \(listed(mels.map(\.spec.name))) floor each sample's decibels at its own loudest value less top_db; Keras floors at the loudest of the whole batch it is given, so there a quiet sample's result depends on the samples batched with it (nnbuild gives what Keras gives the sample alone).")
        }
        let fused = model.steps.filter { $0.nodes.count > 1 }.map { step in step.nodes.map { model.nodes[$0].spec.name }.joined(separator: " + ") }
        if !fused.isEmpty {
            out.append("Runs fused, each group as one pass with the same results: \(fused.joined(separator: ", ")).")
        }
        if model.nodes.contains(where: \.carriesMask) {
            out.append("masked: the layer's output carries a sequence mask (padding steps are skipped downstream).")
        }
        return out.joined(separator: "\n")
    }

    /// A note's names: `('a', 'b', 'c', ...)`, the first three.
    static func listed(_ names: [String]) -> String {
        "(" + names.prefix(3).map { "'\($0)'" }.joined(separator: ", ") + (names.count > 3 ? ", ..." : "") + ")"
    }

    /// The layers, nested models' included, with a call whose `training` is true or a tensor.
    static func trainingCalls(_ graph: GraphSpec) -> [String] {
        graph.layers.flatMap { layer -> [String] in
            let own: [String] = layer.nodes.contains { node in
                switch node.kwarg("training") {
                case nil, .value(.null)?, .value(.bool(false))?: return false
                default: return true
                }
            } ? [layer.name] : []
            if case let .model(inner) = layer.kind { return own + trainingCalls(inner) }
            return own
        }
    }

    static func grouped(_ number: Int) -> String {
        let digits = String(number)
        var out = ""
        for (i, c) in digits.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }

    /// One row per layer of the document's graph, as Keras prints a Functional model: a shared
    /// layer once, with every call's inputs (`conv2d[0][0]`), a nested model as one row holding
    /// its parameters.
    static func functionalRows(_ model: Model) -> [[String]] {
        let graph = model.description.graph
        var parameters: [String: Int] = [:]
        for node in model.nodes { parameters[node.scope.first ?? node.spec.name, default: 0] += node.parameterCount }
        return graph.layers.compactMap { layer in
            let calls = layer.nodes.filter { model.callOutputs[$0.key] != nil }
            guard let first = calls.first, let outputs = model.callOutputs[first.key] else { return nil }
            let shapes = outputs.map { describeShape(model.valueShapes[$0]) + (model.valueMasks[$0] ? " masked" : "") }
            let sources = calls.flatMap { call in call.inputs.map { "\($0.ref.layer)[\($0.ref.node)][\($0.ref.index)]" } }
            return ["\(layer.name) (\(layer.spec.className))", shapes.joined(separator: ", "), grouped(parameters[layer.name] ?? 0),
                    sources.isEmpty ? "-" : sources.joined(separator: ", ")]
        }
    }
}
