import Foundation
import XCTest

/// Every numeric argument of every subcommand is bounded: a value outside is a usage error (64)
/// naming the bound, never a trap or a silently dropped element.
final class ArgumentTests: CLITestCase {
    func testNumericArgumentsOutsideTheirBoundsAreUsageErrors() throws {
        let fast = ["--seconds", "0.05"]
        let cases: [([String], String)] = [
            (model("bench") + ["--seconds", "1e20"], "--seconds must be above 0.0 and at most 86400.0, found 1e+20"),
            (model("bench") + ["--seconds", "nan"], "--seconds must be above 0.0 and at most 86400.0, found nan"),
            (model("bench") + ["--batch", "4611686018427387904"] + fast, "--batch must be between 1 and 1048576, found 4611686018427387904"),
            (model("bench") + ["--batch", "1,abc"] + fast, "--batch takes integers separated by commas; element 2 of '1,abc' is 'abc', not an integer"),
            (model("bench") + ["--batch", "1,,x,4"] + fast, "--batch takes integers separated by commas; element 2 of '1,,x,4' is '', not an integer"),
            (model("bench") + ["--batch", "1", "--threads", "5000"] + fast, "--threads must be between 1 and 1024, found 5000"),
            (model("infer") + ["--batch-size", "9223372036854775807"], "--batch-size must be between 1 and 1048576, found 9223372036854775807"),
            (model("infer") + ["--top-k", "4611686018427387904"], "--top-k must be between 1 and 1048576, found 4611686018427387904"),
            (model("compare") + ["-i", "x.json", "-e", "x.json", "--tolerance=inf"], "--tolerance must be at least 0.0 and at most 1e+30, found inf"),
            (model("compare") + ["-i", "x.json", "-e", "x.json", "--batch-size", "0"], "--batch-size must be between 1 and 1048576, found 0"),
            (model("eval") + ["-i", "x.json", "-l", "x.json", "--digits", "100000000"], "--digits must be between 0 and 17, found 100000000"),
        ]
        for (arguments, message) in cases {
            let result = try run(arguments, stdin: Data("[[1, 0]]".utf8))
            XCTAssertFalse(result.signaled, "\(arguments)")
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("Error: " + message), "\(arguments): \(result.stderr)")
        }
    }

    func testBoundsThemselvesAreAccepted() throws {
        let result = try run(model("bench") + ["--batch", " 1, 2 ", "--seconds", "0.05", "--threads", "1", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
    }
}
