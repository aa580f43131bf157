import Foundation
import XCTest
import ModelSpec

/// Issue 13, "Shell use": `-` for standard input and output, machine-readable top-k, JSON that
/// every parser accepts, --version, and a suggestion for a mistyped subcommand.
final class ShellUseTests: CLITestCase {
    /// The model without its softmax: a regression-like output, which may be any number.
    func writeLinearModel() throws {
        try write("linear.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 2]}}, {"class_name": "Dense", "config": {"name": "out", "units": 2}}]}}"#)
    }

    func testDashIsStandardInputAndOutput() throws {
        let json = try run(model("infer") + ["--input", "-", "--output", "-"], stdin: Data("[[1, 0]]".utf8))
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertEqual(try JSONArray.read(try JSONParser.parse(json.text, source: "out"), source: "out").shape, [1, 2])
        let npyInput = Npy.encode(NumericArray(shape: [2, 2], values: [1, 0, 0, 1]))
        for arguments in [["--output", "-.npy"], ["--format", "npy"], ["--output", "-", "--format", "npy"]] {
            let result = try run(model("infer") + ["--input", "-"] + arguments, stdin: Data(npyInput))
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
            let output = try Npy.read(Array(result.stdout), source: "stdout")
            XCTAssertEqual(output.shape, [2, 2], "\(arguments)")
            XCTAssertEqual(Double(output.values[0]), 1 / (1 + Foundation.exp(-1.0)), accuracy: 1e-6)
        }
        XCTAssertNil(contents("-"))
        XCTAssertNil(contents("-.npy"))
    }

    func testTopKIsJSONWrittenToTheOutput() throws {
        try write("classes.txt", "negative\npositive\n")
        let result = try run(model("infer") + ["--input", "x.json", "--top-k", "2", "--class-names", "classes.txt", "--output", "top.json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.text, "")
        let parsed = try JSONSerialization.jsonObject(with: Data((contents("top.json") ?? "").utf8)) as? [[[String: Any]]]
        let rows = try XCTUnwrap(parsed)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[0].map { $0["class"] as? String }, ["negative", "positive"])
        XCTAssertEqual(rows[0].map { $0["index"] as? Int }, [0, 1])
        XCTAssertEqual(rows[0][0]["score"] as? Double ?? 0, 1 / (1 + Foundation.exp(-1.0)), accuracy: 1e-6)
        XCTAssertEqual(rows[1].map { $0["class"] as? String }, ["negative", "positive"])
        // A .npy output cannot hold it: a usage error.
        XCTAssertEqual(try run(model("infer") + ["--input", "x.json", "--top-k", "1", "--output", "top.npy"]).status, 64)
    }

    func testTopKIsRefusedWhenTheOutputIsNotAProbabilityDistribution() throws {
        try writeLinearModel()
        let result = try run(["infer", path("linear.json"), path("weights.safetensors"), "--input", "x.json", "--top-k", "2"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error[input]: --top-k: needs probabilities (a softmax or sigmoid output), row 1 holds 2.0, outside [0, 1]\n")
        XCTAssertEqual(result.text, "")
    }

    /// JSON has no NaN or infinity: they are written as null, which every JSON parser accepts.
    func testNaNAndInfinityAreWrittenAsNullInJSON() throws {
        try writeLinearModel()
        let result = try run(["infer", path("linear.json"), path("weights.safetensors")], stdin: Data(#"[["NaN", 0], [3e38, 3e38]]"#.utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try JSONSerialization.jsonObject(with: result.stdout) as? [[Any]]
        XCTAssertEqual(rows?.count, 2, result.text)
        XCTAssertTrue(rows?[0][0] is NSNull, result.text)
        XCTAssertTrue(rows?[1][0] is NSNull, result.text)
        XCTAssertEqual((rows?[1][1] as? NSNumber)?.doubleValue ?? 0, -3e38 + 1, accuracy: 1e32)
    }

    func testVersionNamesThePluginABIVersion() throws {
        let result = try run(["--version"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.text.hasPrefix("nnbuild "), result.text)
        XCTAssertTrue(result.text.contains("(layer plugin ABI version "), result.text)
    }

    func testAMistypedSubcommandGetsASuggestion() throws {
        for arguments in [["infrr", "model.json"], ["--plugin", "x.so", "valdiate"]] {
            let result = try run(arguments)
            XCTAssertEqual(result.status, 64)
            let expected = arguments.contains("infrr") ? "infer" : "validate"
            XCTAssertTrue(result.stderr.hasPrefix("Error: unknown subcommand '\(arguments.contains("infrr") ? "infrr" : "valdiate")'. Did you mean '\(expected)'?"), result.stderr)
        }
        XCTAssertFalse(try run(["zzzzzz"]).stderr.contains("Did you mean"))
    }
}
