import Foundation
import XCTest
import ModelSpec

/// A `.npy` input is mapped and converted a batch at a time, and a `.npy` output is written a
/// batch at a time, so memory stays near the model's working set plus one batch.
final class StreamingTests: CLITestCase {
    /// A .npy header for float32 `shape`, padded as numpy pads it.
    func npyHeader(_ shape: [Int], descr: String = "<f4") -> Data {
        var text = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", "))\(shape.count == 1 ? "," : "")), }"
        while (10 + text.utf8.count + 1) % 64 != 0 { text += " " }
        text += "\n"
        return Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)] + Array(text.utf8))
    }

    func testALargeNpyInputRunsInBoundedMemory() throws {
        // A 256 → 1 Dense model and a 300 MB input of zeros (a sparse file: no disk is used).
        try write("wide.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 256]}}, {"class_name": "Dense", "config": {"name": "out", "units": 1}}]}}"#)
        try writeBlob("wide.safetensors", [("sequential/out/kernel", [256, 1], [Float](repeating: 1, count: 256)), ("sequential/out/bias", [1], [0.5])])
        let rows = 307_200
        let handle = try FileHandle(forWritingTo: { _ = FileManager.default.createFile(atPath: path("big.npy"), contents: nil); return URL(fileURLWithPath: path("big.npy")) }())
        let header = npyHeader([rows, 256])
        try handle.write(contentsOf: header)
        // Row 0 holds ones and the last row twos, so the output shows the batches kept their order.
        try handle.write(contentsOf: Data([Float](repeating: 1, count: 256).flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }))
        try handle.seek(toOffset: UInt64(header.count + (rows - 1) * 256 * 4))
        try handle.write(contentsOf: Data([Float](repeating: 2, count: 256).flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }))
        try handle.close()
        // With one thread the process needs about 150 MB of address space before any input; the
        // mapped file adds 300 MB. Holding the input whole (its bytes, then its floats) needs 750 MB+.
        let result = try run(["infer", path("wide.json"), path("wide.safetensors"), "--input", path("big.npy"), "--output", path("out.npy"),
                              "--threads", "1", "--batch-size", "4096"],
                             shell: "ulimit -v 600000 && OPENBLAS_NUM_THREADS=1 && export OPENBLAS_NUM_THREADS")
        XCTAssertEqual(result.status, 0, result.stderr)
        let output = try Npy.read(FileBytes.read(path: path("out.npy")), source: "out")
        XCTAssertEqual(output.shape, [rows, 1])
        XCTAssertEqual(output.values.first, 256.5)
        XCTAssertEqual(output.values.last, 512.5)
        XCTAssertTrue(output.values.dropFirst().dropLast().allSatisfy { $0 == 0.5 })
    }

    /// Issue 13 item 2: `--input` refused a .npy file over 1 GiB; a mapped file has no such cap.
    func testANpyInputOverOneGiBIsAccepted() throws {
        try write("wide.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 256]}}, {"class_name": "Dense", "config": {"name": "out", "units": 1}}]}}"#)
        try writeBlob("wide.safetensors", [("sequential/out/kernel", [256, 1], [Float](repeating: 1, count: 256)), ("sequential/out/bias", [1], [0.5])])
        // float64 rows of 2 KiB: 1 GiB and 2,000 rows more, a sparse file of zeros.
        let rows = (1 << 30) / 2048 + 2000
        _ = FileManager.default.createFile(atPath: path("huge.npy"), contents: npyHeader([rows, 256], descr: "<f8"))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path("huge.npy")))
        try handle.truncate(atOffset: try handle.seekToEnd() + UInt64(rows * 2048))
        try handle.close()
        let result = try run(["infer", path("wide.json"), path("wide.safetensors"), "--input", path("huge.npy"), "--output", path("out.npy"), "--batch-size", "8192"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try Npy.read(FileBytes.read(path: path("out.npy")), source: "out").shape, [rows, 1])
    }
}
