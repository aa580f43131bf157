import ArgumentParser
import LayerRegistry

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a model and print its summary; list every problem found.",
        discussion: "Exit code 0 when the model builds (with its weights, when given), 1 otherwise."
    )

    @OptionGroup var model: ModelArguments

    @Argument(help: "The safetensors weight blob; when given, every weight is checked by name and shape.")
    var weights: String?

    func run() throws {
        try reportingErrors {
            let built = try model.load(weights: weights)
            print(Summary.text(for: built, weightsChecked: weights != nil))
        }
    }
}

/// A table like Keras's `model.summary()`.
enum Summary {
    static func text(for model: Model, weightsChecked: Bool) -> String {
        let rows = model.nodes.map { node in
            ["\(node.spec.name) (\(node.spec.className))", describeShape(node.outputShape) + (node.carriesMask ? " masked" : ""),
             grouped(node.parameterCount)]
        }
        let header = ["Layer (type)", "Output Shape", "Param #"]
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in i == 2 ? String(repeating: " ", count: widths[i] - cell.count) + cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "   ")
        }
        let rule = String(repeating: "─", count: widths.reduce(6, +))
        var out = ["Model: \"\(model.description.name)\" (\(model.description.format.rawValue) spec, input \(describeShape(model.inputShape)) \(model.description.inputDType))", rule, line(header), rule]
        out += rows.map(line)
        out.append(rule)
        out.append("Total params: \(grouped(model.parameterCount))")
        out.append(weightsChecked ? "Weights: every tensor found with the expected shape, none unused." : "Weights: not checked (no weight file given).")
        // nnbuild computes in float32; a 16-bit policy makes Keras round every layer's arithmetic.
        let reduced = model.nodes.filter { ["mixed_float16", "mixed_bfloat16", "float16", "bfloat16"].contains($0.spec.dtypePolicy ?? "") }
        if let policy = reduced.first?.spec.dtypePolicy {
            out.append("note: \(reduced.count) layer(s) (\(reduced.prefix(3).map { "'\($0.spec.name)'" }.joined(separator: ", "))\(reduced.count > 3 ? ", ..." : "")) use dtype policy \(policy); nnbuild computes in float32, Keras in 16-bit floats, so results differ by that rounding (about 1e-3).")
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

    static func grouped(_ number: Int) -> String {
        let digits = String(number)
        var out = ""
        for (i, c) in digits.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }
}
