import ArgumentParser
import CommandSupport
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry
import ModelSpec

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a classifier on labelled inputs: accuracy, per-class precision/recall/F1, confusion matrix.",
        discussion: """
        The predicted class of a row is the argmax of the model's output (a single sigmoid output: \
        class 1 when ≥ 0.5). The report is laid out like scikit-learn's classification_report; \
        --json prints scikit-learn's output_dict form plus "confusion_matrix" (rows: true class, \
        columns: predicted class) and "confusion_matrix_labels" (its classes, in order). Labels: \
        integer .npy, a JSON array, or one-hot rows.

        As scikit-learn's classification_report does, the report, its macro and weighted averages \
        and the confusion matrix cover the classes present in the labels or the predictions; \
        --all-classes covers every output class of the model, with zeros for the absent ones.
        """
    )

    @OptionGroup var model: ModelArguments

    @Argument(help: "The weights beside a spec: a safetensors blob keyed by Keras variable paths, or a Keras .weights.h5 file. Not given with a .keras or .h5 model file.")
    var weights: String?

    @Option(name: .shortAndLong, help: "Input batch (.npy or JSON); for a model of several inputs, an .npz holding an array per input name.")
    var input: String

    @Option(help: "The output to score, by name (required when the model has several outputs).")
    var outputName: String?

    @Option(name: .shortAndLong, help: "True class of each row: integer .npy, JSON array, or one-hot rows.")
    var labels: String

    @Option(help: "Class names, one per line or a JSON array of strings.")
    var classNames: String?

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Flag(help: "Report every output class, absent ones as zeros, and average over all of them (scikit-learn: labels=range(classes)).")
    var allClasses = false

    @Option(help: "Digits after the decimal point in the text report.")
    var digits = 4

    @Option(help: "Rows run at once; larger inputs are split and show progress on a terminal.")
    var batchSize = 256

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        try model.validate(weights: weights)
        try ArgumentBounds.check(digits, "--digits", ArgumentBounds.digits)
        try ArgumentBounds.check(batchSize, "--batch-size", ArgumentBounds.rows)
    }

    func run() throws {
        try reportingErrors {
            let built = try model.load(weights: weights, required: true)
            let output = try scoredOutput(built)
            guard output.shape.count == 2 else {
                throw NNError(.input, model.spec, "eval needs a classifier with (batch, classes) output, the model gives \(describeShape([nil] + output.shape.dropFirst().map { $0 }))")
            }
            let classes = max(output.shape[1], 2)
            let predicted = (0..<output.shape[0]).map { row -> Int in
                ClassNames.ranked(output.data[(row * output.shape[1])..<((row + 1) * output.shape[1])])[0].0
            }
            let truth = try Labels.read(labels, rows: output.shape[0], classes: classes)
            let names = try classNames.map(ClassNames.read) ?? (0..<classes).map(String.init)
            guard names.count == classes else {
                throw NNError(.input, classNames ?? "", "\(names.count) class names given, the model has \(classes) classes")
            }
            let report = ClassificationReport(truth: truth, predicted: predicted, names: names, allClasses: allClasses)
            print(json ? report.json : report.text(digits: digits))
        }
    }
}

enum Labels {
    static func read(_ path: String, rows: Int, classes: Int) throws -> [Int] {
        let array = try InputFile.read(path: path)
        var labels: [Int]
        if array.shape.count == 2, array.shape[1] == classes {
            labels = (0..<array.shape[0]).map { argmax(array.values[($0 * classes)..<(($0 + 1) * classes)]) }
        } else if array.shape.count == 1 || (array.shape.count == 2 && array.shape[1] == 1) {
            labels = []
            for (index, value) in array.values.enumerated() {
                guard value.rounded() == value, value >= 0, value < Float(classes) else {
                    throw NNError(.input, "\(path): [\(index)]", "expected a class index in 0..<\(classes), found \(value)")
                }
                labels.append(Int(value))
            }
        } else {
            throw NNError(.input, path, "expected \(rows) class indices or (\(rows), \(classes)) one-hot rows, found shape \(array.shape)")
        }
        guard labels.count == rows else {
            throw NNError(.input, path, "holds \(labels.count) labels, the input has \(rows) rows")
        }
        return labels
    }
}

/// Per-class precision, recall, F1 and support, as scikit-learn's `classification_report` computes
/// them (a 0/0 is 0). Every part of the report covers one set of classes: those present in the
/// labels or the predictions (scikit-learn's default, `unique_labels(y_true, y_pred)`), or with
/// `allClasses` every output class (scikit-learn's `labels=range(classes)`).
struct ClassificationReport {
    struct Row {
        var name: String
        var precision: Double
        var recall: Double
        var f1: Double
        var support: Int
    }

    /// Output classes left out because neither the labels nor the predictions hold them.
    let absent: [String]
    let rows: [Row]
    let accuracy: Double
    let total: Int
    let macro: Row
    let weighted: Row
    let confusion: [[Int]]

    init(truth: [Int], predicted: [Int], names: [String], allClasses: Bool = false) {
        let present = Set(truth).union(predicted)
        // The class indices the report covers, ascending; `rows` and `confusion` follow them.
        let labels = allClasses ? Array(names.indices) : names.indices.filter(present.contains)
        absent = allClasses ? [] : names.indices.filter { !present.contains($0) }.map { names[$0] }
        // Every truth and prediction is among `labels`, so each pair lands in the matrix.
        let position = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        var confusion = Array(repeating: Array(repeating: 0, count: labels.count), count: labels.count)
        for (t, p) in zip(truth, predicted) {
            if let row = position[t], let column = position[p] { confusion[row][column] += 1 }
        }
        self.confusion = confusion
        func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
        let rows: [Row] = labels.indices.map { c in
            let hit = confusion[c][c]
            let predictedCount = confusion.reduce(0) { $0 + $1[c] }
            let support = confusion[c].reduce(0, +)
            let precision = ratio(hit, predictedCount)
            let recall = ratio(hit, support)
            let f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
            return Row(name: names[labels[c]], precision: precision, recall: recall, f1: f1, support: support)
        }
        self.rows = rows
        let total = truth.count
        self.total = total
        accuracy = ratio(zip(truth, predicted).filter { $0 == $1 }.count, total)
        let n = Double(max(rows.count, 1))
        macro = Row(name: "macro avg", precision: rows.map(\.precision).reduce(0, +) / n,
                    recall: rows.map(\.recall).reduce(0, +) / n, f1: rows.map(\.f1).reduce(0, +) / n, support: total)
        let weight = { (value: KeyPath<Row, Double>) in
            total == 0 ? 0 : rows.map { $0[keyPath: value] * Double($0.support) }.reduce(0, +) / Double(total)
        }
        weighted = Row(name: "weighted avg", precision: weight(\.precision), recall: weight(\.recall), f1: weight(\.f1), support: total)
    }

    /// The longest class name a confusion matrix column shows; a longer one is cut with "…".
    static let columnNameLimit = 10

    /// scikit-learn's classification_report layout, then the confusion matrix with both its rows
    /// and its columns named.
    func text(digits: Int) -> String {
        let width = max(rows.map(\.name.count).max() ?? 0, "weighted avg".count, digits)
        func number(_ value: Double) -> String { formatted("%.\(digits)f", value).leftPad(9) }
        func line(_ row: Row) -> String {
            row.name.leftPad(width) + "  " + [number(row.precision), number(row.recall), number(row.f1), String(row.support).leftPad(9)].joined(separator: " ")
        }
        var out = "".leftPad(width) + "  " + ["precision", "recall", "f1-score", "support"].map { $0.leftPad(9) }.joined(separator: " ") + "\n\n"
        out += rows.map(line).joined(separator: "\n") + "\n\n"
        out += "accuracy".leftPad(width) + "  " + ["".leftPad(9), "".leftPad(9), number(accuracy), String(total).leftPad(9)].joined(separator: " ") + "\n"
        out += line(macro) + "\n" + line(weighted) + "\n\n"
        if !absent.isEmpty {
            out += "not in the labels or the predictions, left out: \(absent.joined(separator: ", ")) (--all-classes keeps them)\n\n"
        }
        out += "confusion matrix (rows: true class, columns: predicted class)\n"
        let headers = rows.map { row in
            row.name.count <= Self.columnNameLimit ? row.name : String(row.name.prefix(Self.columnNameLimit - 1)) + "…"
        }
        // Each column as wide as its name or its largest count, whichever is wider.
        let widths = headers.indices.map { column in
            max(headers[column].count, confusion.map { String($0[column]).count }.max() ?? 1)
        }
        let nameWidth = rows.map(\.name.count).max() ?? 1
        func cells(_ texts: [String]) -> String { zip(texts, widths).map { $0.leftPad($1) }.joined(separator: " ") }
        out += String(repeating: " ", count: nameWidth) + "  " + cells(headers) + "\n"
        for (index, counts) in confusion.enumerated() {
            out += rows[index].name.leftPad(nameWidth) + "  " + cells(counts.map(String.init)) + "\n"
        }
        return out
    }

    /// scikit-learn's `output_dict=True` form, plus the confusion matrix and the classes it covers.
    var json: String {
        func entry(_ row: Row) -> JSONValue {
            .object([("precision", .double(row.precision)), ("recall", .double(row.recall)),
                     ("f1-score", .double(row.f1)), ("support", .int(Int64(row.support)))])
        }
        var members = rows.map { ($0.name, entry($0)) }
        members.append(("accuracy", .double(accuracy)))
        members.append(("macro avg", entry(macro)))
        members.append(("weighted avg", entry(weighted)))
        members.append(("confusion_matrix", .array(confusion.map { .array($0.map { .int(Int64($0)) }) })))
        members.append(("confusion_matrix_labels", .array(rows.map { .string($0.name) })))
        return JSONWriter.string(.object(members))
    }
}
