import ArgumentParser
import CommandSupport
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry
import ModelSpec

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Run a model and compare its output with expected values (e.g. Keras's predictions).",
        discussion: """
        Reports the max absolute and relative difference (|ours - expected| / (1 + |expected|)), the \
        worst position, and for classifiers how often the argmax agrees. Exit code 2 when the max \
        relative difference exceeds the tolerance.
        """
    )

    @OptionGroup var model: ModelArguments

    @Argument(help: "The weights beside a spec: a safetensors blob keyed by Keras variable paths, or a Keras .weights.h5 file. Not given with a .keras or .h5 model file.")
    var weights: String?

    @Option(name: .shortAndLong, help: "Input batch (.npy or JSON); for a model of several inputs, an .npz holding an array per input name.")
    var input: String

    @Option(name: .shortAndLong, help: "Expected output (.npy or JSON), e.g. Keras's model.predict; for a model of several outputs, an .npz holding an array per output name.")
    var expected: String

    @Option(help: "Largest accepted relative difference.")
    var tolerance = 1e-5

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "Rows run at once.")
    var batchSize = 256

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        try model.validate(weights: weights)
        try ArgumentBounds.check(tolerance, "--tolerance", ArgumentBounds.tolerance)
        try ArgumentBounds.check(batchSize, "--batch-size", ArgumentBounds.rows)
    }

    func run() throws {
        var exceeded = false
        try reportingErrors {
            let built = try model.load(weights: weights, required: true)
            if ModelInputs.needed(built, values: [input]) || ModelInputs.isNpz(expected) { exceeded = try compareGraph(built); return }
            let got = try Batching.predict(built, try BatchSource.open(input, for: built), batchSize: batchSize, threads: runtime.count)
            let want = try InputFile.read(path: expected)
            guard got.shape == want.shape else {
                throw NNError(.input, expected, "holds shape \(want.shape), the model gives \(got.shape)")
            }
            let report = Comparison(got: got.data, want: want.values, shape: got.shape, tolerance: tolerance)
            print(json ? report.json : report.text)
            exceeded = !report.passed
        }
        if exceeded { throw ExitCode(2) }
    }
}

/// Differences between two arrays of the same shape.
struct Comparison {
    var maxAbsolute = 0.0
    var maxRelative = 0.0
    var worstIndex = 0
    var argmaxAgreement: (Int, Int)?
    let shape: [Int]
    let tolerance: Double
    let count: Int

    init(got: [Float], want: [Float], shape: [Int], tolerance: Double) {
        self.shape = shape
        self.tolerance = tolerance
        count = got.count
        for index in 0..<got.count {
            let a = Double(got[index]), b = Double(want[index])
            var absolute = abs(a - b)
            if a.isNaN && b.isNaN || a == b { absolute = 0 } else if absolute.isNaN { absolute = .infinity }
            let relative = absolute == 0 ? 0 : absolute / (1 + abs(b))
            if relative > maxRelative || (relative.isNaN && !maxRelative.isNaN) {
                maxRelative = relative
                worstIndex = index
            }
            maxAbsolute = max(maxAbsolute, absolute)
        }
        if shape.count == 2, shape[1] > 1 {
            let classes = shape[1]
            var agree = 0
            for row in 0..<shape[0] {
                let slice = row * classes..<((row + 1) * classes)
                if argmax(got[slice]) == argmax(want[slice]) { agree += 1 }
            }
            argmaxAgreement = (agree, shape[0])
        }
    }

    var passed: Bool { maxRelative <= tolerance }

    /// The multi-index of the worst element, e.g. [2, 7].
    var worstPosition: [Int] {
        var rest = worstIndex
        var position: [Int] = []
        for size in shape.reversed() {
            position.insert(rest % max(size, 1), at: 0)
            rest /= max(size, 1)
        }
        return position
    }

    var text: String {
        var lines = [
            "compared \(count) values, shape \(shape)",
            "max absolute difference: \(formatted("%.3e", maxAbsolute))",
            "max relative difference: \(formatted("%.3e", maxRelative)) at \(worstPosition) (tolerance \(formatted("%.1e", tolerance)))",
        ]
        if let (agree, rows) = argmaxAgreement {
            lines.append("argmax agreement: \(agree)/\(rows) rows (\(formatted("%.2f", 100 * Double(agree) / Double(max(rows, 1))))%)")
        }
        lines.append(passed ? "PASS" : "FAIL: max relative difference exceeds the tolerance")
        return lines.joined(separator: "\n")
    }

    var json: String {
        var members: [(String, JSONValue)] = [
            ("shape", .array(shape.map { .int(Int64($0)) })),
            ("max_abs_diff", .double(maxAbsolute)),
            ("max_rel_diff", .double(maxRelative)),
            ("worst_position", .array(worstPosition.map { .int(Int64($0)) })),
            ("tolerance", .double(tolerance)),
            ("passed", .bool(passed)),
        ]
        if let (agree, rows) = argmaxAgreement {
            members.append(("argmax_agree", .int(Int64(agree))))
            members.append(("rows", .int(Int64(rows))))
        }
        return JSONWriter.string(.object(members))
    }
}

func argmax(_ values: ArraySlice<Float>) -> Int {
    var best = values.startIndex
    for index in values.indices where values[index] > values[best] { best = index }
    return best - values.startIndex
}
