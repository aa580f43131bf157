import Foundation
import XCTest

/// JSON input is capped (parsing takes about 10× the text in memory); standard input is read with
/// a bound instead of to its end.
final class InputLimitTests: CLITestCase {
    func testJSONInputOverItsCapIsRefusedWithTheAlternative() throws {
        // A valid 2-column batch padded with whitespace past 64 MiB (a sparse write is not
        // possible for whitespace, so the file is written in 1 MiB blocks).
        _ = FileManager.default.createFile(atPath: path("big.json"), contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path("big.json")))
        try handle.write(contentsOf: Data("[[1, 0]]".utf8))
        let block = Data(repeating: 0x20, count: 1 << 20)
        for _ in 0..<65 { try handle.write(contentsOf: block) }
        try handle.close()
        let result = try run(model("infer") + ["--input", path("big.json")], shell: "ulimit -v 1500000")
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertFalse(result.signaled)
        XCTAssertTrue(result.stderr.contains("error[input]: \(path("big.json")): JSON input is"), result.stderr)
        XCTAssertTrue(result.stderr.contains("save larger batches as .npy"), result.stderr)
    }

    func testJSONInputUnderItsCapRuns() throws {
        let result = try run(model("infer") + ["--input", path("x.json")])
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    func testStandardInputOverTheCapIsRefused() throws {
        // 65 MiB of JSON-looking text through a pipe: refused, not read whole.
        var text = Data("[[1, 0]]".utf8)
        text.append(Data(repeating: 0x20, count: 65 << 20))
        let result = try run(model("infer") + ["--input", "-"], stdin: text)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("JSON input is"), result.stderr)
    }
}
