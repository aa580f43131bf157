import Foundation
import XCTest
import ModelSpec

/// Tests/Malformed: broken specs, weight blobs and inputs (made by tools/make_malformed.py), each
/// a realistic mistake or attack. Every one must end in a non-zero exit without a signal, with
/// each stderr line an `error[class]:` line, the expected class, and a message that says what.
final class MalformedTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Case: Decodable {
        var name: String
        var why: String
        var args: [String]
        var kind: String
        var fragment: String
    }

    /// Runs nnbuild from the repository root; the finished process and its standard error.
    static func run(_ arguments: [String]) throws -> (Process, String) {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = arguments
        process.currentDirectoryURL = root
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process, stderr)
    }

    func testEveryMalformedFileIsOneClearError() throws {
        let data = try Data(contentsOf: MalformedTests.root.appendingPathComponent("Tests/Malformed/cases.json"))
        let cases = try JSONDecoder().decode([Case].self, from: data)
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        var kinds = Set<String>()
        for item in cases {
            let (process, stderr) = try Self.run(item.args)
            XCTAssertEqual(process.terminationReason, .exit, "\(item.name) (\(item.why)) was killed by a signal")
            XCTAssertEqual(process.terminationStatus, 1, "\(item.name) (\(item.why)): \(stderr)")
            let lines = stderr.split(separator: "\n")
            XCTAssertFalse(lines.isEmpty, "\(item.name): no message")
            XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("error[") }, "\(item.name): \(stderr)")
            XCTAssertTrue(lines.contains { $0.hasPrefix("error[\(item.kind)]:") }, "\(item.name) (\(item.why)): expected class \(item.kind), got \(stderr)")
            XCTAssertTrue(stderr.contains(item.fragment), "\(item.name) (\(item.why)): expected '\(item.fragment)' in \(stderr)")
            kinds.insert(item.kind)
        }
        XCTAssertEqual(kinds, ["weights", "json", "spec", "unknownLayer", "layer", "input", "io", "plugin"])
    }

    struct GraphCase: Decodable {
        var name: String
        var file: String
        var why: String
        var kind: String
        var path: String
        var fragment: String
    }

    /// Tests/GraphMalformed: broken Functional graphs (unknown layers and calls, cycles, outputs no
    /// input reaches, unused inputs, duplicate names, nesting past the limits), each refused by
    /// `nnbuild validate` with one error naming the JSON path and the call.
    func testEveryBrokenGraphIsOneClearError() throws {
        let folder = MalformedTests.root.appendingPathComponent("Tests/GraphMalformed")
        let cases = try JSONDecoder().decode([GraphCase].self, from: Data(contentsOf: folder.appendingPathComponent("cases.json")))
        XCTAssertGreaterThanOrEqual(cases.count, 15)
        for item in cases {
            let (process, stderr) = try Self.run(["validate", "Tests/GraphMalformed/\(item.file)"])
            XCTAssertEqual(process.terminationReason, .exit, "\(item.name) (\(item.why)) was killed by a signal")
            XCTAssertEqual(process.terminationStatus, 1, "\(item.name) (\(item.why)): \(stderr)")
            let lines = stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(item.name): expected one error line, got \(stderr)")
            XCTAssertTrue(stderr.hasPrefix("error[\(item.kind)]: Tests/GraphMalformed/\(item.file)"), "\(item.name): \(stderr)")
            XCTAssertTrue(stderr.contains(item.path), "\(item.name) (\(item.why)): expected the path '\(item.path)' in \(stderr)")
            XCTAssertTrue(stderr.contains(item.fragment), "\(item.name) (\(item.why)): expected '\(item.fragment)' in \(stderr)")
        }
    }

    func testNoUserFileIsModified() throws {
        // Every case above read files under specs/ and Tests/Malformed; their bytes are unchanged.
        let spec = MalformedTests.root.appendingPathComponent("specs/tabular_mlp/weights.safetensors")
        let before = try Data(contentsOf: spec)
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["infer", "specs/tabular_mlp/model.json", "specs/tabular_mlp/weights.safetensors", "--input", "specs/tabular_mlp/input.npy"]
        process.currentDirectoryURL = MalformedTests.root
        process.standardOutput = Pipe()
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(try Data(contentsOf: spec), before)
    }
}
