import Foundation
import XCTest
@testable import ModelSpec

/// The command line on models of several inputs and outputs (Tests/GraphFixtures, made by real
/// Keras 3): inputs by name or in one .npz, outputs as an .npz or a JSON object keyed by name,
/// compare against an .npz, eval of one named output, bench on random inputs, and every refusal.
final class MultiIOTests: XCTestCase {
    static let graphFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("GraphFixtures").path

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-multiio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func fixture(_ name: String, _ file: String) -> String { "\(MultiIOTests.graphFixtures)/\(name)/\(file)" }

    /// `nnbuild COMMAND SPEC WEIGHTS ARGS...` on the graph fixture `name`.
    func run(_ command: String, _ name: String, _ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = [command, fixture(name, "model.json"), fixture(name, "weights.safetensors")] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    func npy(_ path: String) throws -> NumericArray { try Npy.read(try FileBytes.read(path: path), source: path) }

    /// Writes `arrays` as an .npz at `name` in the test's folder.
    func writeNpz(_ name: String, _ arrays: [(String, NumericArray)]) throws -> String {
        let file = path(name)
        let descriptor = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(descriptor) }
        var writer = NpzWriter(descriptor: descriptor, source: file)
        for (name, array) in arrays { try writer.add(name: name, array: array) }
        try writer.finish()
        return file
    }

    func assertClose(_ got: [Float], _ want: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        let worst = zip(got, want).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-5, what, file: file, line: line)
    }

    /// The numbers of a JSON object's member, flattened.
    func jsonMember(_ text: String, _ key: String) throws -> [Float] {
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
        func flatten(_ value: Any) -> [Float] {
            if let items = value as? [Any] { return items.flatMap(flatten) }
            return [(value as? NSNumber)?.floatValue ?? .nan]
        }
        return flatten(try XCTUnwrap(object[key], "no member '\(key)' in \(text)"))
    }

    var twoInputs: [String] {
        ["--input", "image=" + fixture("two_input_image_tabular", "input_image.npy"),
         "--input", "tabular=" + fixture("two_input_image_tabular", "input_tabular.npy")]
    }

    func twoInputNpz(extra: [(String, NumericArray)] = []) throws -> String {
        try writeNpz("inputs.npz", [("image", try npy(fixture("two_input_image_tabular", "input_image.npy"))),
                                    ("tabular", try npy(fixture("two_input_image_tabular", "input_tabular.npy")))] + extra)
    }

    // MARK: infer

    func testInferTakesEachInputByName() throws {
        let result = try run("infer", "two_input_image_tabular", twoInputs)
        XCTAssertEqual(result.status, 0, result.stderr)
        assertClose(try jsonMember(result.stdout, "head"), try npy(fixture("two_input_image_tabular", "output_head.npy")).values, "head")
    }

    func testInferTakesInputsFromOneNpz() throws {
        let result = try run("infer", "two_input_image_tabular", ["--input", try twoInputNpz(), "--output", path("out.npz")])
        XCTAssertEqual(result.status, 0, result.stderr)
        let outputs = try Npz.read(path: path("out.npz"))
        XCTAssertEqual(outputs.map(\.name), ["head"])
        assertClose(outputs.first?.array.values ?? [], try npy(fixture("two_input_image_tabular", "output_head.npy")).values, "head")
    }

    func testInferWritesOutputsToNpzInOutputOrder() throws {
        let result = try run("infer", "two_output", ["--input", fixture("two_output", "input_features.npy"), "--output", path("out.npz")])
        XCTAssertEqual(result.status, 0, result.stderr)
        let outputs = try Npz.read(path: path("out.npz"))
        XCTAssertEqual(outputs.map(\.name), ["class_head", "value_head"])
        XCTAssertEqual(outputs.map(\.array.shape), [[3, 3], [3, 1]])
        for output in outputs {
            assertClose(output.array.values, try npy(fixture("two_output", "output_\(output.name).npy")).values, output.name)
        }
    }

    func testInferWritesOutputsAsJSONObjectKeyedByName() throws {
        let result = try run("infer", "two_output", ["--input", fixture("two_output", "input_features.npy")])
        XCTAssertEqual(result.status, 0, result.stderr)
        for name in ["class_head", "value_head"] {
            assertClose(try jsonMember(result.stdout, name), try npy(fixture("two_output", "output_\(name).npy")).values, name)
        }
        let classAt = try XCTUnwrap(result.stdout.range(of: "\"class_head\"")), valueAt = try XCTUnwrap(result.stdout.range(of: "\"value_head\""))
        XCTAssertLessThan(classAt.lowerBound, valueAt.lowerBound, "outputs in the model's output order")
    }

    func testOneInputModelTakesItsInputByNameToo() throws {
        let plain = try run("infer", "residual_cnn", ["--input", fixture("residual_cnn", "input_image.npy")])
        let named = try run("infer", "residual_cnn", ["--input", "image=" + fixture("residual_cnn", "input_image.npy"), "--output", path("out.npz")])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(named.status, 0, named.stderr)
        XCTAssertFalse(plain.stdout.hasPrefix("{"), "a one-output model still writes a plain array: \(plain.stdout.prefix(40))")
        let outputs = try Npz.read(path: path("out.npz"))
        XCTAssertEqual(outputs.map(\.name), ["logits"])
        assertClose(outputs.first?.array.values ?? [], try npy(fixture("residual_cnn", "output_logits.npy")).values, "logits")
    }

    // MARK: compare, eval, bench

    func testCompareMatchesEachOutputOfAnNpzByName() throws {
        let want = [("class_head", try npy(fixture("two_output", "output_class_head.npy"))),
                    ("value_head", try npy(fixture("two_output", "output_value_head.npy")))]
        let good = try writeNpz("expected.npz", want)
        let pass = try run("compare", "two_output", ["--input", fixture("two_output", "input_features.npy"), "--expected", good])
        XCTAssertEqual(pass.status, 0, pass.stderr)
        XCTAssertTrue(pass.stdout.contains("output 'class_head':") && pass.stdout.contains("output 'value_head':"), pass.stdout)
        var off = want
        off[1].1.values[0] += 0.5
        let bad = try writeNpz("off.npz", off)
        let fail = try run("compare", "two_output", ["--input", fixture("two_output", "input_features.npy"), "--expected", bad, "--json"])
        XCTAssertEqual(fail.status, 2, fail.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(fail.stdout.utf8)) as? [String: Any])
        let outputs = try XCTUnwrap(report["outputs"] as? [String: [String: Any]])
        XCTAssertEqual(outputs["class_head"]?["passed"] as? Bool, true)
        XCTAssertEqual(outputs["value_head"]?["passed"] as? Bool, false)
        XCTAssertEqual(report["passed"] as? Bool, false)
    }

    func testCompareTakesAnNpzOfInputs() throws {
        let result = try run("compare", "two_input_image_tabular", ["--input", try twoInputNpz(), "--expected", fixture("two_input_image_tabular", "output_head.npy")])
        XCTAssertEqual(result.status, 0, result.stderr + result.stdout)
    }

    func testEvalScoresTheNamedOutput() throws {
        // Keras's own class predictions of the fixture, as labels: accuracy 1.
        let classes = try npy(fixture("two_output", "output_class_head.npy"))
        let labels = (0..<3).map { row in Float((0..<3).max { classes.values[row * 3 + $0] < classes.values[row * 3 + $1] } ?? 0) }
        let file = path("labels.npy")
        try Data(Npy.encode(NumericArray(shape: [3], values: labels))).write(to: URL(fileURLWithPath: file))
        let scored = try run("eval", "two_output", ["--input", fixture("two_output", "input_features.npy"), "--labels", file, "--output-name", "class_head", "--json"])
        XCTAssertEqual(scored.status, 0, scored.stderr)
        XCTAssertTrue(scored.stdout.contains("\"accuracy\": 1.0"), scored.stdout)
        let unnamed = try run("eval", "two_output", ["--input", fixture("two_output", "input_features.npy"), "--labels", file])
        XCTAssertEqual(unnamed.status, 1)
        XCTAssertEqual(unnamed.stderr, "error[input]: --output-name: the model has 2 outputs ('class_head' (None, 3), 'value_head' (None, 1)); name the one to score with --output-name NAME\n")
        let unknown = try run("eval", "two_output", ["--input", fixture("two_output", "input_features.npy"), "--labels", file, "--output-name", "class"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertEqual(unknown.stderr, "error[input]: --output-name class: the model has no output named 'class'; its outputs are 'class_head' (None, 3), 'value_head' (None, 1)\n")
    }

    func testBenchMakesARandomBatchForEveryInput() throws {
        let result = try run("bench", "two_input_image_tabular", ["--json", "--seconds", "0.05", "--batch", "1,3"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]], result.stdout)
        XCTAssertEqual(rows.compactMap { $0["batch"] as? Int }, [1, 3])
        XCTAssertTrue(rows.allSatisfy { ($0["samples_per_s"] as? Double ?? 0) > 0 }, result.stdout)
    }

    // MARK: refusals

    func refused(_ command: String, _ name: String, _ arguments: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try run(command, name, arguments)
        XCTAssertEqual(result.status, 1, result.stderr, file: file, line: line)
        XCTAssertEqual(result.stderr, message + "\n", file: file, line: line)
    }

    func testEveryWrongInputIsRefusedNamingWhatWasExpected() throws {
        let image = fixture("two_input_image_tabular", "input_image.npy"), tabular = fixture("two_input_image_tabular", "input_tabular.npy")
        let inputs = "'image' (None, 5, 5, 2), 'tabular' (None, 4)"
        try refused("infer", "two_input_image_tabular", ["--input", "image=" + image],
                    "error[input]: input: no array given for input 'tabular' (None, 4); give --input NAME=PATH for each input (\(inputs)) or one .npz holding an array per input name")
        try refused("infer", "two_input_image_tabular", ["--input", "picture=" + image, "--input", "tabular=" + tabular],
                    "error[input]: --input picture=\(image): 'picture' names no input of the model; its inputs are \(inputs)")
        try refused("infer", "two_input_image_tabular", ["--input", image],
                    "error[input]: \(image): the model has 2 inputs (\(inputs)); give --input NAME=PATH for each, or one .npz holding an array per input name")
        try refused("infer", "two_input_image_tabular", ["--input", "image=" + image, "--input", "tabular=" + tabular, "--input", "image=" + image],
                    "error[input]: \(image): input 'image' is given twice (also by \(image)); give each input once")
        let stray = try twoInputNpz(extra: [("labels", NumericArray(shape: [3], values: [0, 1, 2]))])
        try refused("infer", "two_input_image_tabular", ["--input", stray],
                    "error[input]: \(stray): holds the array 'labels', which names no input of the model; its inputs are \(inputs)")
        let short = try writeNpz("short.npz", [("image", try npy(image)), ("tabular", NumericArray(shape: [2, 4], values: [Float](repeating: 0, count: 8)))])
        try refused("infer", "two_input_image_tabular", ["--input", short],
                    "error[input]: input: the inputs hold different numbers of rows ('image': 3, 'tabular': 2); every input needs the same number")
        try refused("infer", "two_input_image_tabular", [],
                    "error[input]: <stdin>: the model has 2 inputs (\(inputs)); give --input NAME=PATH for each, or one .npz holding an array per input name")
    }

    // MARK: string inputs

    /// `structured_strings` (keras.io's structured-data classifier): `thal` a string, `sex` an
    /// integer, `age` a float feature; `NAME=PATH` for each, `thal` from `thalPath`.
    func structuredInputs(thal thalPath: String? = nil) -> [String] {
        ["thal", "sex", "age"].flatMap { name -> [String] in
            let file = name == "thal" ? thalPath : nil
            return ["--input", "\(name)=" + (file ?? fixture("structured_strings", "input_\(name).npy"))]
        }
    }

    /// A string input takes numpy's str arrays (`<U`, as the fixture saved them, and as nnbuild
    /// writes them), byte strings (`|S`, UTF-8) and JSON nested arrays of strings, whole or a
    /// batch at a time; every form gives Keras's outputs.
    func testAStringInputTakesNpyOfStrOrBytesAndJSONStrings() throws {
        let expected = try npy(fixture("structured_strings", "output_output.npy")).values
        let thal = try npy(fixture("structured_strings", "input_thal.npy"))
        XCTAssertEqual(thal.strings, ["fixed", "normal", "reversible", "1", "normal"])
        let json = path("thal.json")
        try Data(#"[["fixed"], ["normal"], ["reversible"], ["1"], ["normal"]]"#.utf8).write(to: URL(fileURLWithPath: json))
        let rewritten = path("thal.npy")
        try Data(Npy.encode(thal)).write(to: URL(fileURLWithPath: rewritten))
        var bytes = NpyHeader.header(descr: "|S10", shape: [5, 1])
        for word in thal.strings ?? [] { bytes += Array(word.utf8) + [UInt8](repeating: 0, count: 10 - word.utf8.count) }
        let byteStrings = path("thal_bytes.npy")
        try Data(bytes).write(to: URL(fileURLWithPath: byteStrings))
        for (form, file, extra) in [("the fixture's <U10", fixture("structured_strings", "input_thal.npy"), [String]()),
                                    ("JSON strings", json, []), ("nnbuild's own <U", rewritten, ["--batch-size", "2"]),
                                    ("|S10 bytes", byteStrings, ["--batch-size", "3"])] {
            let result = try run("infer", "structured_strings", structuredInputs(thal: file) + extra)
            XCTAssertEqual(result.status, 0, "\(form): \(result.stderr)")
            assertClose(try jsonMember(result.stdout, "output"), expected, form)
        }
    }

    /// Numbers where a model takes strings, strings where it takes numbers, and text that is not
    /// Unicode are refused by name.
    func testStringsAndNumbersInTheWrongPlaceAreRefused() throws {
        let numbers = fixture("structured_strings", "input_age.npy")
        try refused("infer", "structured_strings", structuredInputs(thal: numbers),
                    "error[input]: \(numbers) (input 'thal'): the model's input 'thal' takes strings, found a float32 array; give a .npy of strings (numpy dtype str) or JSON nested arrays of strings")
        let strings = fixture("structured_strings", "input_thal.npy")
        try refused("infer", "structured_strings", ["--input", "thal=" + strings, "--input", "sex=" + strings, "--input", "age=" + numbers],
                    "error[input]: \(strings) (input 'sex'): the model's input 'sex' takes int64 numbers, found an array of strings")
        let json = path("numbers.json")
        try Data("[[1], [2], [3], [4], [5]]".utf8).write(to: URL(fileURLWithPath: json))
        try refused("infer", "structured_strings", structuredInputs(thal: json),
                    "error[input]: \(json): $[0][0]: expected a string, found an integer (the model's input takes strings; the array must be rectangular, of shape [5, 1])")
        var bytes = NpyHeader.header(descr: "|S2", shape: [5, 1])
        bytes += [0x61, 0x62, 0xC3, 0x28] + [UInt8](repeating: 0x61, count: 6)
        let invalid = path("invalid.npy")
        try Data(bytes).write(to: URL(fileURLWithPath: invalid))
        try refused("infer", "structured_strings", structuredInputs(thal: invalid),
                    "error[input]: \(invalid): string element 1 is not valid UTF-8 (at byte 0); nnbuild reads |S arrays as UTF-8 text")
    }

    func testAnInputGivenByNameIsNeverOverwritten() throws {
        let tabular = path("tabular.npy")
        try FileManager.default.copyItem(atPath: fixture("two_input_image_tabular", "input_tabular.npy"), toPath: tabular)
        let before = try Data(contentsOf: URL(fileURLWithPath: tabular))
        try refused("infer", "two_input_image_tabular", ["--input", "image=" + fixture("two_input_image_tabular", "input_image.npy"), "--input", "tabular=" + tabular, "--output", tabular],
                    "error[io]: \(tabular): --output names the input file '\(tabular)', which this command reads; choose another output path")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tabular)), before)
    }

    func testTopKScoresTheOneOutputOfATwoInputModel() throws {
        let result = try run("infer", "two_input_image_tabular", twoInputs + ["--top-k", "1"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix("[[{\"class\": \"0\", \"index\": 0, \"score\": 0.84417"), result.stdout)
    }

    func testAnNpzMayInflateToAtMostTheMemoryLimit() throws {
        let rows = 300_000 / 4 + 1 // 1.2 MB of tabular rows, past --max-memory 1M
        let big = try writeNpz("big.npz", [("image", NumericArray(shape: [1, 5, 5, 2], values: [Float](repeating: 0, count: 50))),
                                           ("tabular", NumericArray(shape: [rows, 4], values: [Float](repeating: 0, count: rows * 4)))])
        try refused("infer", "two_input_image_tabular", ["--input", big, "--max-memory", "1M"],
                    "error[input]: \(big): the arrays declare more than 1048576 bytes together; at most 1048576 are accepted here")
    }

    func testOutputsThatCannotBeWrittenAsAskedAreRefusedBeforeRunning() throws {
        let features = fixture("two_output", "input_features.npy")
        let outputs = "'class_head' (None, 3), 'value_head' (None, 1)"
        try refused("infer", "two_output", ["--input", features, "--output", path("out.npy")],
                    "error[input]: \(path("out.npy")): a .npy file holds one array, and the model has 2 outputs (\(outputs)); write them to an .npz (--output NAME.npz) or as JSON")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out.npy")))
        try refused("infer", "two_output", ["--input", features, "--top-k", "1"],
                    "error[input]: --top-k: scores the classes of one output, and the model has 2 outputs (\(outputs)); write them with --output NAME.npz instead")
        let missing = try writeNpz("expected.npz", [("class_head", try npy(fixture("two_output", "output_class_head.npy")))])
        try refused("compare", "two_output", ["--input", features, "--expected", missing],
                    "error[input]: \(missing): holds no array 'value_head'; expected one array per output: \(outputs)")
        try refused("compare", "two_output", ["--input", features, "--expected", fixture("two_output", "output_class_head.npy")],
                    "error[input]: \(fixture("two_output", "output_class_head.npy")): the model has 2 outputs (\(outputs)); give the expected outputs as an .npz with one array per output name")
    }
}
