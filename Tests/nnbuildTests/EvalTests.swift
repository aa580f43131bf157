import Foundation
import XCTest
import ModelSpec

/// `nnbuild eval` against scikit-learn where the labels and predictions leave classes out, and the
/// confusion matrix's layout. The expected numbers are scikit-learn's, committed in
/// Fixtures/sklearn_absent_classes.json by Fixtures/make_sklearn_absent_classes.py.
final class EvalTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/sklearn_absent_classes.json")

    var dir: URL!
    var sklearn: JSONValue!
    var names: [String] = []

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        sklearn = try JSONParser.parse(try FileBytes.read(path: Self.fixture.path), source: "fixture")
        names = try strings(sklearn["names"])
        let truth = try integers(sklearn["y_true"]), predicted = try integers(sklearn["y_pred"])
        let classes = names.count
        // An identity Dense + softmax: the predicted class is the input row's argmax.
        let layers = #"[{"class_name": "InputLayer", "config": {"batch_shape": [null, \#(classes)]}}, "#
            + #"{"class_name": "Dense", "config": {"name": "out", "units": \#(classes), "activation": "softmax"}}]"#
        try Data(#"{"class_name": "Sequential", "config": {"layers": \#(layers)}}"#.utf8).write(to: URL(fileURLWithPath: path("model.json")))
        let identity = (0..<(classes * classes)).map { Float($0 / classes == $0 % classes ? 1 : 0) }
        try writeBlob("weights.safetensors", [("sequential/out/kernel", [classes, classes], identity),
                                              ("sequential/out/bias", [classes], Array(repeating: 0, count: classes))])
        let rows = predicted.map { p in (0..<classes).map { $0 == p ? 4.0 : 0.0 } }
        try Data(("[" + rows.map { "[" + $0.map { String($0) }.joined(separator: ", ") + "]" }.joined(separator: ", ") + "]").utf8)
            .write(to: URL(fileURLWithPath: path("input.json")))
        try Data(("[" + truth.map(String.init).joined(separator: ", ") + "]").utf8).write(to: URL(fileURLWithPath: path("labels.json")))
        try Data((names.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path("classes.txt")))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func strings(_ value: JSONValue?) throws -> [String] {
        guard case let .array(items)? = value else { throw NNError(.input, "fixture", "expected an array") }
        return items.compactMap { if case let .string(text) = $0 { return text } else { return nil } }
    }

    func integers(_ value: JSONValue?) throws -> [Int] {
        guard case let .array(items)? = value else { throw NNError(.input, "fixture", "expected an array") }
        return items.compactMap { if case let .int(n) = $0 { return Int(n) } else { return nil } }
    }

    func writeBlob(_ name: String, _ tensors: [(String, [Int], [Float])]) throws {
        var offset = 0
        var entries: [String] = []
        var data: [UInt8] = []
        for (tensor, shape, values) in tensors {
            entries.append("\"\(tensor)\": {\"dtype\": \"F32\", \"shape\": \(shape), \"data_offsets\": [\(offset), \(offset + values.count * 4)]}")
            offset += values.count * 4
            for value in values { data += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
        }
        let header = Array(("{" + entries.joined(separator: ", ") + "}").utf8)
        try Data(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + data).write(to: URL(fileURLWithPath: path(name)))
    }

    func eval(_ extra: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["eval", path("model.json"), path("weights.safetensors"), "--input", path("input.json"),
                             "--labels", path("labels.json"), "--class-names", path("classes.txt")] + extra
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    /// Every key of scikit-learn's report, and no other class, with the same numbers.
    func assertMatches(_ stdout: String, _ expected: JSONValue?, file: StaticString = #filePath, line: UInt = #line) throws {
        let ours = try JSONParser.parse(stdout, source: "eval")
        guard case let .object(want)? = expected, case let .object(got) = ours else { return XCTFail("not objects", file: file, line: line) }
        XCTAssertEqual(got.map(\.0).filter { $0 != "confusion_matrix_labels" }, want.map(\.0), "the same classes, in order", file: file, line: line)
        func number(_ value: JSONValue?) -> Double? {
            switch value {
            case let .int(n)?: return Double(n)
            case let .double(n)?: return n
            default: return nil
            }
        }
        func compare(_ a: JSONValue?, _ b: JSONValue, _ where: String) {
            switch b {
            case .object(let members):
                for (key, value) in members { compare(a?[key], value, "\(`where`).\(key)") }
            case .array(let items):
                guard case let .array(mine)? = a, mine.count == items.count else { return XCTFail("\(`where`): \(String(describing: a))", file: file, line: line) }
                for (index, item) in items.enumerated() { compare(mine[index], item, "\(`where`)[\(index)]") }
            default:
                guard let x = number(a), let y = number(b) else { return XCTFail("\(`where`): \(String(describing: a)) vs \(b)", file: file, line: line) }
                XCTAssertEqual(x, y, accuracy: 1e-12, `where`, file: file, line: line)
            }
        }
        compare(ours, .object(want), "report")
    }

    func testAveragesOverThePresentClassesAsScikitLearnDoes() throws {
        let result = try eval(["--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        try assertMatches(result.stdout, sklearn["report"])
        let ours = try JSONParser.parse(result.stdout, source: "eval")
        XCTAssertEqual(try strings(ours["confusion_matrix_labels"]), ["cat", "dog", "fish", "a rather long class name"])
    }

    func testAllClassesKeepsEveryOutputClassAsScikitLearnWithLabels() throws {
        let result = try eval(["--json", "--all-classes"])
        XCTAssertEqual(result.status, 0, result.stderr)
        try assertMatches(result.stdout, sklearn["report_all_classes"])
        let ours = try JSONParser.parse(result.stdout, source: "eval")
        XCTAssertEqual(try strings(ours["confusion_matrix_labels"]), names)
    }

    func testTextReportSaysWhichClassesItLeftOut() throws {
        let result = try eval([])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("not in the labels or the predictions, left out: bird (--all-classes keeps them)"), result.stdout)
        XCTAssertTrue(result.stdout.contains("   macro avg     0.6250    0.5000    0.5417        10"), result.stdout)
        let all = try eval(["--all-classes"])
        XCTAssertFalse(all.stdout.contains("left out"), all.stdout)
        XCTAssertTrue(all.stdout.contains("   macro avg     0.5000    0.4000    0.4333        10"), all.stdout)
    }

    func testConfusionMatrixNamesItsColumnsAsItsRows() throws {
        let result = try eval([])
        XCTAssertEqual(result.status, 0, result.stderr)
        let matrix = result.stdout.components(separatedBy: "confusion matrix (rows: true class, columns: predicted class)\n")
        XCTAssertEqual(matrix.count, 2, result.stdout)
        // Columns carry the class names, a long one cut to 10 characters; each column is as wide
        // as its name or its largest count.
        XCTAssertEqual(matrix.last, """
                                  cat dog fish a rather …
                             cat    3   1    0          0
                             dog    0   3    0          1
                            fish    1   0    1          0
        a rather long class name    0   0    0          0


        """, "the text report's closing line, then print's")
    }
}
