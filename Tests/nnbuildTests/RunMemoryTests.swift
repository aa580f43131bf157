import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What the command line's memory costs beyond the model: `bench` holds one loaded model at a
/// time, and repeated calls reuse the memory of the outputs before them (`Allocator`).
final class RunMemoryTests: CLITestCase {
    /// `bench` loads the model five times to time it; its peak RSS holds the packed weights about
    /// once (it held two models while the next one packed: twice).
    func testBenchHoldsOneLoadedModel() throws {
        try requireMeasurableResidentMemory()
        // Twelve 1×1 convolutions of 1024 → 1024 channels: 48 MB of weights, packed at load in
        // pieces of 4 MB, read on a 2×2 image.
        let layers = 12, channels = 1024
        let weights = layers * channels * channels * 4
        let convolution = #"{"class_name": "Conv2D", "config": {"name": "c%d", "filters": \#(channels), "kernel_size": 1, "use_bias": false}}"#
        let specs = (0..<layers).map { String(format: convolution, $0) }.joined(separator: ", ")
        try write("big.json", #"{"class_name": "Sequential", "config": {"name": "sequential", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 2, 2, \#(channels)]}}, \#(specs)]}}"#)
        try writeLargeBlob("big.safetensors", (0..<layers).map { ("sequential/c\($0)/kernel", [1, 1, channels, channels]) })
        let baseline = try benchPeakMB(model("bench"))
        let peak = try benchPeakMB(["bench", path("big.json"), path("big.safetensors")])
        let extra = (peak - baseline) * 1_048_576
        XCTAssertLessThan(extra, 1.5 * Double(weights),
                          "bench of \(weights >> 20) MB of weights peaked \(Int(peak - baseline)) MB above a tiny model's \(Int(baseline)) MB")
    }

    /// Calls whose outputs exceed glibc's largest mapping threshold (32 MB) reuse the memory of the
    /// call before, rather than mapping fresh pages and faulting each one in on every call: eight
    /// calls of 64 MB outputs fault in not much more than one call's pages.
    func testRepeatedLargeOutputsReuseTheirMemory() throws {
        try XCTSkipIf(CLITests.underSanitizer, "a sanitizer's allocator is not glibc's")
        // UpSampling2D by 32 of 8×8×16: 4 MB a row, 64 MB a call of 16 rows.
        try write("up.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 8, 8, 16]}}, {"class_name": "UpSampling2D", "config": {"name": "u", "size": [32, 32]}}]}}"#)
        var empty = withUnsafeBytes(of: UInt64(2).littleEndian, Array.init)
        empty += Array("{}".utf8)
        try Data(empty).write(to: dir.appendingPathComponent("empty.safetensors"))
        let rows = 128, batch = 16
        let row = "[" + [String](repeating: "[" + [String](repeating: "[" + [String](repeating: "0.5", count: 16).joined(separator: ",") + "]", count: 8).joined(separator: ",") + "]", count: 8).joined(separator: ",") + "]"
        try write("rows.json", "[" + [String](repeating: row, count: rows).joined(separator: ",") + "]")
        let (status, faults) = try Self.minorFaults(["infer", path("up.json"), path("empty.safetensors"), "-i", path("rows.json"),
                                                     "--batch-size", "\(batch)", "--format", "npy"])
        XCTAssertEqual(status, 0)
        let callPages = batch * 256 * 256 * 16 * 4 / Int(sysconf(Int32(_SC_PAGESIZE)))
        XCTAssertLessThan(faults, 3 * callPages, "\(rows / batch) calls of \(callPages) pages of output faulted \(faults) pages")
    }

    /// Writes a safetensors blob of F32 tensors of `shape` holding 0.001, a tensor at a time, so
    /// that this process stays small.
    func writeLargeBlob(_ name: String, _ tensors: [(String, [Int])]) throws {
        var offset = 0
        var entries: [String] = []
        for (tensor, shape) in tensors {
            let bytes = shape.reduce(4, *)
            entries.append("\"\(tensor)\": {\"dtype\": \"F32\", \"shape\": \(shape), \"data_offsets\": [\(offset), \(offset + bytes)]}")
            offset += bytes
        }
        var header = Array(("{" + entries.joined(separator: ", ") + "}").utf8)
        // Padded with spaces to 8 bytes, as safetensors writes it, so the values are aligned and
        // read in place (unaligned ones are copied).
        header += [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
        let url = dir.appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: url.path, contents: nil), let handle = FileHandle(forWritingAtPath: url.path) else {
            throw CocoaError(.fileWriteUnknown)
        }
        defer { try? handle.close() }
        handle.write(Data(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header))
        for (_, shape) in tensors {
            let values = [Float](repeating: 0.001, count: shape.reduce(1, *))
            values.withUnsafeBytes { handle.write(Data($0)) }
        }
    }

    /// The peak RSS `bench --json` reports (its own VmHWM, so nothing of this process's memory
    /// counts, as it would in the child's rusage), in MB.
    func benchPeakMB(_ arguments: [String]) throws -> Double {
        let result = try run(arguments + ["--batch", "1", "--seconds", "0.05", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        guard let rows = try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]],
              let peak = rows.first?["peak_rss_mb"] as? Double else {
            XCTFail("bench printed \(result.text)")
            return 0
        }
        return peak
    }

    /// Runs nnbuild with `arguments`, output discarded: its exit status and minor page faults.
    static func minorFaults(_ arguments: [String]) throws -> (Int32, Int) {
        let argv = ([CLITests.binary.path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        guard posix_spawn(&pid, CLITests.binary.path, &actions, nil, argv, environ) == 0 else {
            throw CocoaError(.executableLoad)
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0, errno == EINTR {}
        return (status, usage.ru_minflt)
    }
}
