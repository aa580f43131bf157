import Foundation
import XCTest

/// Memory is bounded by what the model and input justify. Each case runs the real binary under a
/// hard address-space limit (`ulimit -v`), so a regression that allocates gigabytes fails the test
/// (an allocation failure kills the process) instead of swapping the machine.
final class MemoryLimitTests: XCTestCase {
    /// 1.5 GB of address space: a normal run of a bundled model fits easily (it fits in 600 MB).
    static let addressSpaceKB = 1_500_000

    var dir: URL!

    override func setUpWithError() throws {
        if CLITests.underSanitizer {
            throw XCTSkip("an address-space limit (ulimit -v) cannot hold a sanitizer's shadow memory")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-memory-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // A weight blob with no tensors, for models without weights.
        var empty = withUnsafeBytes(of: UInt64(2).littleEndian, Array.init)
        empty += Array("{}".utf8)
        try Data(empty).write(to: dir.appendingPathComponent("empty.safetensors"))
    }

    override func tearDownWithError() throws {
        // nil when setUp skipped the test before making the folder.
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    struct Run {
        var status: Int32
        var signaled: Bool
        var stderr: String
    }

    /// Runs `nnbuild arguments` under the address-space limit, from the repository root.
    func run(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let quoted = ([CLITests.binary.path] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        process.arguments = ["-c", "ulimit -v \(MemoryLimitTests.addressSpaceKB) && exec " + quoted.joined(separator: " ")]
        process.currentDirectoryURL = MalformedTests.root
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // sh execs nnbuild, so a signal shows as the shell's own status 128 + n only when sh reports it.
        return Run(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal || process.terminationStatus > 128,
                   stderr: stderr)
    }

    /// Writes a Sequential spec: an InputLayer of per-sample `input`, then `layer` (a JSON object).
    func spec(_ name: String, input: String, layer: String) throws -> String {
        let text = #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, \#(input)]}}, \#(layer)]}}"#
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    func write(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// Layers that multiply data without weights to justify it are refused by validate, with the
    /// figure they would need, and by infer before anything is allocated.
    func testLayersThatMultiplyDataAreRefusedWithTheFigure() throws {
        let cases: [(String, String, String, String, String)] = [
            ("repeat", "16", #"{"class_name": "RepeatVector", "config": {"name": "r", "n": 134217728}}"#, "[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]", "8.0 GiB"),
            ("upsample2d", "1, 1, 2", #"{"class_name": "UpSampling2D", "config": {"name": "u", "size": [32768, 32768]}}"#, "[[[[1, 2]]]]", "8.0 GiB"),
            ("upsample1d", "16, 1024", #"{"class_name": "UpSampling1D", "config": {"name": "u", "size": 65536}}"#, "", "4.0 GiB"),
            ("pad2d", "1, 1, 1", #"{"class_name": "ZeroPadding2D", "config": {"name": "z", "padding": 20000}}"#, "[[[[1]]]]", "6.0 GiB"),
            ("pad1d", "1, 512", #"{"class_name": "ZeroPadding1D", "config": {"name": "z", "padding": 1048576}}"#, "", "4.0 GiB"),
            ("conv", "1, 1, 1", #"{"class_name": "Conv2D", "config": {"name": "c", "filters": 1, "kernel_size": 3, "padding": "same", "dilation_rate": 1048576, "use_bias": false}}"#, "[[[[1]]]]", "16.0 TiB"),
        ]
        for (name, input, layer, sample, figure) in cases {
            let path = try spec("\(name).json", input: input, layer: layer)
            let validate = try run(["validate", path])
            XCTAssertFalse(validate.signaled, "\(name): killed: \(validate.stderr)")
            XCTAssertEqual(validate.status, 1, "\(name): \(validate.stderr)")
            XCTAssertTrue(validate.stderr.hasPrefix("error[layer]:") && validate.stderr.contains("one sample would need"), "\(name): \(validate.stderr)")
            XCTAssertTrue(validate.stderr.contains(figure) && validate.stderr.contains("more than the memory limit of 4.0 GiB"), "\(name): \(validate.stderr)")
            guard !sample.isEmpty else { continue }
            // The convolution's kernel is a zero placeholder without weights; infer needs a blob.
            var weights = dir.appendingPathComponent("empty.safetensors").path
            if name == "conv" {
                weights = try blob("conv.safetensors", name: "c/kernel", shape: [3, 3, 1, 1])
            }
            let infer = try run(["infer", path, weights, "--input", try write("\(name).input.json", sample)])
            XCTAssertFalse(infer.signaled, "\(name): killed: \(infer.stderr)")
            XCTAssertEqual(infer.status, 1, "\(name): \(infer.stderr)")
            XCTAssertTrue(infer.stderr.contains("one sample would need"), "\(name): \(infer.stderr)")
        }
    }

    /// --max-memory raises the limit: the 6 GiB padding builds with 8G, and is then refused for a
    /// batch at run time, where the address-space limit would otherwise kill the process.
    func testMaxMemoryRaisesOrLowersTheLimit() throws {
        let pad = try spec("pad.json", input: "1, 1, 1", layer: #"{"class_name": "ZeroPadding2D", "config": {"name": "z", "padding": 20000}}"#)
        XCTAssertEqual(try run(["validate", pad, "--max-memory", "8G"]).status, 0)
        let repeated = try spec("repeat.json", input: "16", layer: #"{"class_name": "RepeatVector", "config": {"name": "r", "n": 1048576}}"#)
        XCTAssertEqual(try run(["validate", repeated]).status, 0)
        let low = try run(["validate", repeated, "--max-memory", "16M"])
        XCTAssertEqual(low.status, 1, low.stderr)
        XCTAssertTrue(low.stderr.contains("one sample would need 64.0 MiB"), low.stderr)
        // 16 rows of 64 MiB each: refused per batch before the layer allocates 1 GiB.
        let rows = "[" + Array(repeating: "[" + (0..<16).map(String.init).joined(separator: ", ") + "]", count: 16).joined(separator: ", ") + "]"
        let batch = try run(["infer", repeated, dir.appendingPathComponent("empty.safetensors").path, "--input", try write("rows.json", rows),
                             "--max-memory", "512M", "--output", dir.appendingPathComponent("out.npy").path])
        XCTAssertFalse(batch.signaled, batch.stderr)
        XCTAssertEqual(batch.status, 1, batch.stderr)
        XCTAssertTrue(batch.stderr.contains("error[input]:") && batch.stderr.contains("would need 1.0 GiB"), batch.stderr)
        for bad in ["12", "1x", "-4G", "99999999999P", ""] {
            let usage = try run(["validate", repeated, "--max-memory", bad])
            XCTAssertEqual(usage.status, 64, "--max-memory \(bad): \(usage.stderr)")
            XCTAssertTrue(usage.stderr.contains("--max-memory"), usage.stderr)
        }
    }

    /// Tables built at load from a config alone are no larger than the weights they derive from:
    /// PReLU's index table (2 GiB of Int here) and BatchNormalization's folded arrays.
    func testNoTableLargerThanItsWeightsIsBuiltAtLoad() throws {
        // The control: a normal run fits under the test's address-space limit.
        let normal = try run(["infer", "specs/tabular_mlp/model.json", "specs/tabular_mlp/weights.safetensors", "--input", "specs/tabular_mlp/input.npy"])
        XCTAssertEqual(normal.status, 0, normal.stderr)
        let prelu = try spec("prelu.json", input: "16384, 16384", layer: #"{"class_name": "PReLU", "config": {"name": "p", "shared_axes": [1, 2]}}"#)
        let batchnorm = try spec("bn.json", input: "16384, 16384", layer: #"{"class_name": "BatchNormalization", "config": {"name": "b", "axis": [1, 2]}}"#)
        for path in [prelu, batchnorm] {
            let result = try run(["validate", path])
            XCTAssertFalse(result.signaled, "\(path): killed: \(result.stderr)")
            XCTAssertEqual(result.status, 0, "\(path): \(result.stderr)")
        }
    }

    /// A float32 safetensors blob holding one tensor of zeros.
    func blob(_ file: String, name: String, shape: [Int]) throws -> String {
        let count = shape.reduce(1, *)
        let header = Array(#"{"\#(name)": {"dtype": "F32", "shape": \#(shape), "data_offsets": [0, \#(count * 4)]}}"#.utf8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
        bytes += [UInt8](repeating: 0, count: count * 4)
        let url = dir.appendingPathComponent(file)
        try Data(bytes).write(to: url)
        return url.path
    }
}
