import Foundation
import XCTest
import ModelSpec

/// The bundled example models in specs/, trained in Keras by tools/make_examples.py: each must
/// reproduce Keras's predictions, and `nnbuild eval` must reproduce scikit-learn's report.
final class ExamplesTests: XCTestCase {
    static let specs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("specs")

    func nnbuild(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    func file(_ example: String, _ name: String) -> String { ExamplesTests.specs.appendingPathComponent(example).appendingPathComponent(name).path }

    func testEveryExampleMatchesKeras() throws {
        let examples = try FileManager.default.contentsOfDirectory(atPath: ExamplesTests.specs.path).sorted()
        XCTAssertEqual(examples, ["cifar10_cnn", "sine_gru", "tabular_mlp", "text_bilstm", "text_simplernn"])
        for example in examples {
            let (status, stdout, stderr) = try nnbuild(["compare", file(example, "model.json"), file(example, "weights.safetensors"),
                                                        "--input", file(example, "input.npy"), "--expected", file(example, "expected.npy"), "--json"])
            XCTAssertEqual(status, 0, "\(example): \(stdout) \(stderr)")
        }
    }

    /// The classic Keras CIFAR-10 CNN (float16 weights) runs from its Keras JSON and matches Keras.
    func testCifarCNNMatchesKeras() throws {
        let (status, stdout, _) = try nnbuild(["compare", file("cifar10_cnn", "model.json"), file("cifar10_cnn", "weights.safetensors"),
                                               "--input", file("cifar10_cnn", "input.npy"), "--expected", file("cifar10_cnn", "expected.npy")])
        XCTAssertEqual(status, 0, stdout)
        XCTAssertTrue(stdout.contains("argmax agreement: 4/4 rows"), stdout)
    }

    func testEvalMatchesScikitLearn() throws {
        for example in ["text_simplernn", "text_bilstm", "tabular_mlp", "cifar10_cnn"] {
            let (status, stdout, stderr) = try nnbuild(["eval", file(example, "model.json"), file(example, "weights.safetensors"),
                                                        "--input", file(example, "eval_input.npy"), "--labels", file(example, "eval_labels.npy"),
                                                        "--class-names", file(example, "classes.txt"), "--json"])
            XCTAssertEqual(status, 0, stderr)
            let ours = try JSONParser.parse(stdout, source: "eval")
            let sklearn = try JSONParser.parse(try FileBytes.read(path: file(example, "sklearn_report.json")), source: "sklearn")
            guard case let .object(members) = sklearn else { return XCTFail("not an object") }
            for (key, expected) in members {
                compare(ours[key], expected, path: "\(example).\(key)")
            }
        }
    }

    func compare(_ got: JSONValue?, _ want: JSONValue, path: String) {
        func number(_ value: JSONValue?) -> Double? {
            switch value {
            case let .int(n)?: return Double(n)
            case let .double(n)?: return n
            default: return nil
            }
        }
        switch want {
        case .object(let members):
            for (key, value) in members { compare(got?[key], value, path: "\(path).\(key)") }
        case .array(let items):
            guard case let .array(ours)? = got, ours.count == items.count else { return XCTFail("\(path): \(String(describing: got))") }
            for (index, item) in items.enumerated() { compare(ours[index], item, path: "\(path)[\(index)]") }
        default:
            guard let a = number(got), let b = number(want) else { return XCTFail("\(path): \(String(describing: got)) vs \(want)") }
            XCTAssertEqual(a, b, accuracy: 1e-12, path)
        }
    }

    /// A text model takes token ids from a JSON array and from an int32 .npy alike.
    func testTextModelTakesJSONAndInt32Npy() throws {
        let spec = file("text_bilstm", "model.json"), weights = file("text_bilstm", "weights.safetensors")
        let fromJSON = try nnbuild(["infer", spec, weights, "--input", file("text_bilstm", "input.json")])
        let fromNpy = try nnbuild(["infer", spec, weights, "--input", file("text_bilstm", "input.npy")])
        XCTAssertEqual(fromJSON.0, 0, fromJSON.2)
        XCTAssertEqual(fromNpy.0, 0, fromNpy.2)
        XCTAssertEqual(fromJSON.1, fromNpy.1)
        let input = try Npy.read(FileBytes.read(path: file("text_bilstm", "input.npy")), source: "input")
        XCTAssertEqual(input.dtype, "int32")
        let top = try nnbuild(["infer", spec, weights, "--input", file("text_bilstm", "input.json"), "--top-k", "1", "--class-names", file("text_bilstm", "classes.txt")])
        XCTAssertTrue(top.1.hasPrefix(#"[[{"class": "positive", "index": 2, "score": "#), top.1)
    }

    func testTokenIdOutOfRangeNamesRowAndPosition() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ids-\(UUID().uuidString).json")
        try Data("[[3, 4, 5, 999, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]".utf8).write(to: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (status, _, stderr) = try nnbuild(["infer", file("text_bilstm", "model.json"), file("text_bilstm", "weights.safetensors"), "--input", dir.path])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(stderr.contains("token id 999 at batch row 0, position 3 is outside the embedding's range [0, 47)"), stderr)
    }

    func testValidateShowsSequenceShapesAndMasks() throws {
        let (status, stdout, _) = try nnbuild(["validate", file("text_bilstm", "model.json"), file("text_bilstm", "weights.safetensors")])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(stdout.contains("embedding (Embedding)           (None, 24, 16) masked       752"), stdout)
        XCTAssertTrue(stdout.contains("bidirectional (Bidirectional)   (None, 48)                7,872"), stdout)
        XCTAssertTrue(stdout.contains("Total params: 8,771"), stdout)
    }

    /// Two threads give the single-threaded result within float rounding.
    func testThreadCountDoesNotChangeResults() throws {
        let arguments = ["infer", file("cifar10_cnn", "model.json"), file("cifar10_cnn", "weights.safetensors"), "--input", file("cifar10_cnn", "eval_input.npy")]
        let one = try nnbuild(arguments + ["--threads", "1"]), two = try nnbuild(arguments + ["--threads", "2"])
        XCTAssertEqual(one.0, 0, one.2)
        let a = try JSONArray.read(try JSONParser.parse(one.1, source: "1"), source: "1")
        let b = try JSONArray.read(try JSONParser.parse(two.1, source: "2"), source: "2")
        XCTAssertEqual(a.shape, b.shape)
        for (x, y) in zip(a.values, b.values) { XCTAssertEqual(x, y, accuracy: 1e-6 * (1 + abs(y))) }
    }
}
