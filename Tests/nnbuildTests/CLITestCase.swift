import Foundation
import XCTest
import ModelSpec

/// A temporary folder holding a tiny 2 → 2 softmax model, and a way to run the built binary on it,
/// for every CLI test class (`CLITests` included).
class CLITestCase: XCTestCase {
    struct Run {
        var status: Int32
        var signaled: Bool
        var stdout: Data
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // logits = x · [[1, -1], [2, 0]] + [0, 1], then softmax.
        try write("model.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 2]}}, {"class_name": "Dense", "config": {"name": "out", "units": 2, "activation": "softmax"}}]}}"#)
        try writeBlob("weights.safetensors", [("sequential/out/kernel", [2, 2], [1, -1, 2, 0]), ("sequential/out/bias", [2], [0, 1])])
        try write("x.json", "[[1, 0], [0, 1]]")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Skips a test of resident memory where it cannot be measured: without Linux's /proc
    /// accounting, or under a sanitizer (whose shadow memory and allocator dwarf what is measured).
    func requireMeasurableResidentMemory() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/proc/self/status"), "needs Linux's accounting of resident memory")
        try XCTSkipIf(CLITests.underSanitizer, "resident memory is not measurable under a sanitizer")
    }

    func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: dir.appendingPathComponent(name))
    }

    func contents(_ name: String) -> String? {
        (try? Data(contentsOf: dir.appendingPathComponent(name))).map { String(decoding: $0, as: UTF8.self) }
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
        try Data(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + data).write(to: dir.appendingPathComponent(name))
    }

    /// The model's arguments: `infer SPEC WEIGHTS` and so on.
    func model(_ command: String) -> [String] { [command, path("model.json"), path("weights.safetensors")] }

    @discardableResult
    func run(_ arguments: [String], stdin: Data? = nil, shell: String? = nil) throws -> Run {
        let process = Process()
        if let shell {
            if shell.contains("ulimit -v"), CLITests.underSanitizer {
                throw XCTSkip("an address-space limit (ulimit -v) cannot hold a sanitizer's shadow memory")
            }
            // Run under /bin/sh so a test can set limits (ulimit) first; "$@" are the arguments.
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", shell + " && exec \"$0\" \"$@\"", CLITests.binary.path] + arguments
        } else {
            process.executableURL = CLITests.binary
            process.arguments = arguments
        }
        process.currentDirectoryURL = dir
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        // Both pipes are drained at once, so a large output cannot block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let stderr = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { stderr.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
                   stdout: stdout, stderr: String(decoding: stderr.data, as: UTF8.self))
    }

    /// Runs a shell command in the test folder, returning its exit status.
    @discardableResult
    func shell(_ command: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.currentDirectoryURL = dir
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
