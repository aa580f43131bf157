import XCTest
@testable import ModelSpec
import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class NpyTests: XCTestCase {
    func testRoundTrip() throws {
        let array = NumericArray(shape: [2, 3], values: [1, -2, 3.5, .infinity, 0, 7])
        let back = try Npy.read(Npy.encode(array), source: "t")
        XCTAssertEqual(back, array)
        XCTAssertEqual((Npy.encode(array).count - 6 * 4) % 64, 0, "the data starts 64-byte aligned, as numpy writes it")
    }

    /// Bytes numpy writes for `np.array([[1, 2], [3, 4]], dtype=np.int32)`.
    func testReadsNumpyInt32() throws {
        let header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }"
        let padded = header + String(repeating: " ", count: 128 - 10 - header.count - 1) + "\n"
        var bytes: [UInt8] = Npy.magic + [1, 0, UInt8(padded.count), 0] + Array(padded.utf8)
        for v: Int32 in [1, 2, 3, 4] { bytes += withUnsafeBytes(of: v.littleEndian, Array.init) }
        let array = try Npy.read(bytes, source: "t")
        XCTAssertEqual(array.shape, [2, 2])
        XCTAssertEqual(array.dtype, "int32")
        XCTAssertEqual(array.values, [1, 2, 3, 4])
    }

    func testRefusesTruncatedAndMalformedFiles() {
        var bytes = Npy.encode(NumericArray(shape: [4], values: [1, 2, 3, 4]))
        bytes.removeLast(3)
        XCTAssertThrowsError(try Npy.read(bytes, source: "x.npy")) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        XCTAssertThrowsError(try Npy.read(Npy.magic + [1, 0, 5, 0] + Array("{'a'}".utf8), source: "x.npy")) { XCTAssertTrue("\($0)".contains("malformed"), "\($0)") }
        XCTAssertThrowsError(try Npy.read(Array("hello world".utf8), source: "x.npy")) { XCTAssertTrue("\($0)".contains("not a .npy"), "\($0)") }
        let fortran = "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n"
        XCTAssertThrowsError(try Npy.read(Npy.magic + [1, 0, UInt8(fortran.count), 0] + Array(fortran.utf8) + [0, 0, 0, 0], source: "x.npy")) { XCTAssertTrue("\($0)".contains("Fortran"), "\($0)") }
        let objects = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n"
        XCTAssertThrowsError(try Npy.read(Npy.magic + [1, 0, UInt8(objects.count), 0] + Array(objects.utf8) + [0, 0, 0, 0, 0, 0, 0, 0], source: "x.npy")) { XCTAssertTrue("\($0)".contains("unsupported .npy dtype"), "\($0)") }
    }

    func testJSONArrays() throws {
        let array = try JSONArray.read(try JSONParser.parse("[[1, 2], [3, 4]]", source: "t"), source: "t")
        XCTAssertEqual(array.shape, [2, 2])
        XCTAssertEqual(array.dtype, "int64")
        XCTAssertThrowsError(try JSONArray.read(try JSONParser.parse("[[1, 2], [3]]", source: "t"), source: "t")) {
            XCTAssertTrue("\($0)".contains("rectangular"), "\($0)")
        }
        XCTAssertEqual(try JSONArray.read(try JSONParser.parse("[0.5, 1]", source: "t"), source: "t").dtype, "float64")
    }
}

/// The `.npy` header is a Python dict literal, parsed as such: keys checked, exact types, the
/// last of a repeated key wins (as numpy's `literal_eval` does), only space padding after it.
final class NpyHeaderTests: XCTestCase {
    /// A version 1 file whose header is exactly `header` (no padding added), then `data`.
    static func file(_ header: String, _ data: [UInt8] = [0, 0, 0xC0, 0x3F]) -> [UInt8] {
        let bytes = Array(header.utf8)
        return Npy.magic + [1, 0, UInt8(bytes.count & 0xFF), UInt8(bytes.count >> 8)] + bytes + data
    }

    func refused(_ header: String, _ data: [UInt8] = [0, 0, 0xC0, 0x3F], file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let array = try Npy.read(NpyHeaderTests.file(header, data), source: "x.npy")
            XCTFail("accepted as \(array)", file: file, line: line)
            return ""
        } catch let error as NNError {
            XCTAssertEqual(error.kind, .input, file: file, line: line)
            XCTAssertEqual(error.location, "x.npy", file: file, line: line)
            return error.message
        } catch {
            XCTFail("\(error)", file: file, line: line)
            return ""
        }
    }

    func testPythonLiteralSyntaxIsAccepted() throws {
        let onePointFive: [Float] = [1.5]
        for header in [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }          \n",
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1,)}\n",
            "{ 'shape' : ( 1 , ) ,\n\t'fortran_order':False,'descr':'<f4' }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1L,)}\n",
        ] {
            XCTAssertEqual(try Npy.read(NpyHeaderTests.file(header), source: "x").values, onePointFive, header)
        }
        let scalar = try Npy.read(NpyHeaderTests.file("{'descr': '<f4', 'fortran_order': False, 'shape': ()}\n"), source: "x")
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.values, onePointFive)
        let matrix = try Npy.read(NpyHeaderTests.file("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2,), }\n", [1, 2, 3, 4]), source: "x")
        XCTAssertEqual(matrix.shape, [2, 2])
        XCTAssertEqual(matrix.values, [1, 2, 3, 4])
    }

    func testARepeatedKeyTakesTheLastValueAsNumpyDoes() throws {
        // 0x3FC00000 is 1.5 as float32 and 1069547520 as int32.
        let array = try Npy.read(NpyHeaderTests.file("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'descr': '<f4'}\n"), source: "x")
        XCTAssertEqual(array.dtype, "float32")
        XCTAssertEqual(array.values, [1.5])
    }

    func testTypesAreExact() {
        XCTAssertEqual(refused("{'descr': '<f4', 'fortran_order': 'False', 'shape': (1,)}\n"),
                       "the .npy header's 'fortran_order' must be True or False, found the string 'False'")
        XCTAssertEqual(refused("{'descr': '<f4', 'fortran_order': False, 'shape': '(1,)'}\n"),
                       "the .npy header's 'shape' must be a tuple of sizes such as (2, 3), found the string '(1,)'")
        XCTAssertEqual(refused("{'descr': True, 'fortran_order': False, 'shape': (1,)}\n"),
                       "unsupported .npy dtype True; expected a string such as '<f4'")
        XCTAssertTrue(refused("{'descr': '<f4', 'fortran_order': False, 'shape': (1)}\n").contains("Python writes a 1-tuple as (3,)"))
        XCTAssertTrue(refused("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}\n").contains("expected a string, True, False or a tuple at offset 50, found '[1]}"))
        XCTAssertTrue(refused("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (1,)}\n").contains("expected a string, True, False or a tuple at offset 34"))
        XCTAssertTrue(refused("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}\n").contains("expected a non-negative size"))
        XCTAssertTrue(refused("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n").contains("expected a size below 2^63"))
        XCTAssertTrue(refused("{'descr': '<f4', 'fortran_order': True, 'shape': (1,)}\n").contains("Fortran order"))
    }

    func testKeysAreChecked() {
        XCTAssertEqual(refused("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': True}\n"),
                       "the .npy header has an unknown key 'extra'; expected exactly 'descr', 'fortran_order' and 'shape'")
        XCTAssertTrue(refused("{'descr': '<f4', 'shape': (1,)}\n").contains("the key 'fortran_order' is missing"))
        XCTAssertTrue(refused("{descr: '<f4', 'fortran_order': False, 'shape': (1,)}\n").contains("expected a quoted key or '}' at offset 1"))
        XCTAssertTrue(refused("{'descr': '<f4', 'fortran_order': False 'shape': (1,)}\n").contains("expected ',' or '}' after the value of 'fortran_order'"))
    }

    /// numpy pads with spaces and a final newline; NUL padding used to read as "Fortran order".
    func testPaddingIsOnlySpacesAndAFinalNewline() {
        XCTAssertEqual(refused("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\0\0\0\n"),
                       "the .npy header's padding holds byte 0x00 at offset 57; expected only spaces and a final newline")
        XCTAssertTrue(refused("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n \n").contains("holds byte 0x0A at offset 55"))
        XCTAssertTrue(refused("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x\n").contains("holds byte 0x78"))
    }

    func testDataMustMatchTheShapeExactly() {
        XCTAssertEqual(refused("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n"),
                       "shape [2] of float32 needs 8 bytes of data but the file holds 4 (truncated?)")
        XCTAssertEqual(refused("{'descr': '<f2', 'fortran_order': False, 'shape': (1,)}\n"),
                       "shape [1] of float16 needs 2 bytes of data but the file holds 4 (trailing bytes)")
        XCTAssertTrue(refused("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}\n").contains("holds too many elements"))
        XCTAssertEqual(refused("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9223372036854775807)}\n", []),
                       "the .npy shape [0, 9223372036854775807] holds too many elements; the largest accepted is 35184372088832")
    }
}

/// `NpyFile` reads rows of a mapped file; `NpyWriter` writes a file batch by batch.
final class NpyFileTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-npy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func save(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testRowsAndAllMatchNpyRead() throws {
        // int16, big-endian, shape (5, 3): every conversion path in one file.
        var bytes = NpyHeaderTests.file("{'descr': '>i2', 'fortran_order': False, 'shape': (5, 3), }\n", [])
        for value: Int16 in [1, -2, 3, 4, 5, 6, -7, 8, 9, 10, 11, 12, 13, 14, -15] { bytes += withUnsafeBytes(of: value.bigEndian, Array.init) }
        let path = try save(bytes, "a.npy")
        let file = try NpyFile(path: path)
        let whole = try Npy.read(bytes, source: path)
        XCTAssertEqual(file.shape, [5, 3])
        XCTAssertEqual(file.dtype, "int16")
        XCTAssertEqual(file.rowCount, 5)
        XCTAssertEqual(file.rowShape, [3])
        XCTAssertEqual(try file.all(), whole)
        XCTAssertEqual(try file.rows(1..<3), Array(whole.values[3..<9]))
        XCTAssertEqual(try file.rows(4..<5), [13, 14, -15])
        XCTAssertEqual(try file.rows(2..<2), [])
        XCTAssertThrowsError(try file.rows(4..<6)) { error in
            XCTAssertEqual(error as? NNError, NNError(.input, path, "rows 4..<6 are outside the file's 5 rows"))
        }
        let scalar = try NpyFile(path: try save(NpyHeaderTests.file("{'descr': '<f4', 'fortran_order': False, 'shape': ()}\n"), "s.npy"))
        XCTAssertEqual(scalar.rowCount, 1)
        XCTAssertEqual(scalar.rowShape, [])
        XCTAssertEqual(try scalar.all(), NumericArray(shape: [], values: [1.5]))
    }

    /// A large float32 file read in batches gives what reading it whole gives.
    func testBatchesOfALargeFile() throws {
        let array = NumericArray(shape: [3000, 7], values: (0..<21000).map { Float($0) / 3 })
        let file = try NpyFile(path: try save(Npy.encode(array), "big.npy"))
        var values: [Float] = []
        for start in stride(from: 0, to: 3000, by: 256) { values += try file.rows(start..<min(start + 256, 3000)) }
        XCTAssertEqual(values, array.values)
        XCTAssertEqual(try file.rows(0..<3000), array.values, "rows read again after their pages were released")
    }

    /// Resident memory in bytes, from /proc/self/statm (mapped file pages count while resident).
    static func residentBytes() throws -> Int {
        // Not FileBytes: /proc files report a size of 0.
        let fields = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Reading a 64 MB file batch by batch leaves its pages out of resident memory, so a large
    /// input costs one batch, not the file.
    func testReadingInBatchesKeepsTheFileOutOfMemory() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/proc/self/statm"), "needs /proc")
        // A sanitizer keeps freed memory in quarantine and adds shadow pages: resident memory
        // then measures the sanitizer (tools/sanitize.sh sets NNBUILD_SANITIZER).
        try XCTSkipIf(ProcessInfo.processInfo.environment["NNBUILD_SANITIZER"] != nil, "resident memory is not measurable under a sanitizer")
        let rows = 16_384, width = 1024
        let path = try save(NpyHeader.float32Header(shape: [rows, width]), "large.npy")
        // Real data, not a sparse file: holes may read as the shared zero page, never resident.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        let block = Data(Blob.floats(Array(repeating: 1, count: width)))
        for _ in 0..<rows { handle.write(block) }
        try handle.close()
        let file = try NpyFile(path: path)
        let before = try NpyFileTests.residentBytes()
        var sum: Float = 0
        for start in stride(from: 0, to: rows, by: 256) { sum += try file.rows(start..<(start + 256))[0] }
        let grown = try NpyFileTests.residentBytes() - before
        XCTAssertEqual(sum, Float(rows / 256))
        XCTAssertLessThan(grown, 16 << 20, "resident memory grew by \(grown >> 20) MB reading a 64 MB file in 1 MB batches")
    }

    func testBadFilesAreRefusedWhenOpened() throws {
        var bytes = Npy.encode(NumericArray(shape: [4, 2], values: Array(repeating: 1, count: 8)))
        bytes.removeLast(3)
        let truncated = try save(bytes, "t.npy")
        XCTAssertThrowsError(try NpyFile(path: truncated)) { error in
            XCTAssertEqual(error as? NNError, NNError(.input, truncated, "shape [4, 2] of float32 needs 32 bytes of data but the file holds 29 (truncated?)"))
        }
        let empty = try save([], "e.npy")
        XCTAssertThrowsError(try NpyFile(path: empty)) { XCTAssertTrue("\($0)".contains("not a .npy file"), "\($0)") }
        XCTAssertThrowsError(try NpyFile(path: directory.path)) { XCTAssertTrue("\($0)".contains("is a directory, expected a regular file"), "\($0)") }
    }

    func create(_ name: String) -> (Int32, String) {
        let path = directory.appendingPathComponent(name).path
        return (open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600), path)
    }

    func testWriterRoundTripsBatchByBatch() throws {
        let array = NumericArray(shape: [3, 2], values: [1, -2, .infinity, 0.25, 5, -0])
        let (descriptor, path) = create("out.npy")
        var writer = try NpyWriter(descriptor: descriptor, source: path, shape: array.shape)
        try array.values[0..<4].withUnsafeBufferPointer { try writer.append($0) }
        try array.values[4...].withUnsafeBufferPointer { try writer.append($0) }
        try writer.finish()
        close(descriptor)
        XCTAssertEqual(try FileBytes.read(path: path), Npy.encode(array), "the same bytes as Npy.encode")
        XCTAssertEqual(try NpyFile(path: path).all(), array)
    }

    func testWriterUsesVersion2ForAHugeHeader() throws {
        let shape = Array(repeating: 1, count: 25_000)
        let (descriptor, path) = create("wide.npy")
        var writer = try NpyWriter(descriptor: descriptor, source: path, shape: shape)
        try [Float(7)].withUnsafeBufferPointer { try writer.append($0) }
        try writer.finish()
        close(descriptor)
        let bytes = try FileBytes.read(path: path)
        XCTAssertEqual(bytes[6], 2)
        XCTAssertEqual(try Npy.read(bytes, source: path), NumericArray(shape: shape, values: [7]))
        XCTAssertEqual(bytes.count % 64, 4, "the data starts 64-byte aligned")
    }

    func testWriterCountsValuesAndReportsWriteErrors() throws {
        let (descriptor, path) = create("short.npy")
        defer { close(descriptor) }
        var writer = try NpyWriter(descriptor: descriptor, source: path, shape: [2, 2])
        try [Float(1), 2, 3].withUnsafeBufferPointer { try writer.append($0) }
        XCTAssertThrowsError(try writer.finish()) { error in
            XCTAssertEqual(error as? NNError, NNError(.io, path, "the .npy file of shape [2, 2] needs 4 values, but 3 were written"))
        }
        XCTAssertThrowsError(try [Float(1), 2].withUnsafeBufferPointer { try writer.append($0) }) { error in
            XCTAssertEqual(error as? NNError, NNError(.io, path, "cannot append 2 values: 3 of the 4 that shape [2, 2] holds are already written"))
        }
        XCTAssertThrowsError(try NpyWriter(descriptor: descriptor, source: path, shape: [-1])) { XCTAssertEqual(($0 as? NNError)?.kind, .io) }
        let readOnly = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(readOnly) }
        XCTAssertThrowsError(try NpyWriter(descriptor: readOnly, source: "r.npy", shape: [1])) { error in
            XCTAssertEqual(error as? NNError, NNError(.io, "r.npy", "cannot write the output (Bad file descriptor)"))
        }
        // /dev/full is only written to, never replaced: every write fails with ENOSPC.
        let full = open("/dev/full", O_WRONLY | O_CLOEXEC)
        guard full >= 0 else { return }
        defer { close(full) }
        XCTAssertThrowsError(try NpyWriter(descriptor: full, source: "/dev/full", shape: [1])) { error in
            XCTAssertEqual(error as? NNError, NNError(.io, "/dev/full", "cannot write the output (No space left on device)"))
        }
    }
}

/// JSON batches: memory is reserved only for numbers that are present.
final class JSONArrayTests: XCTestCase {
    /// `depth` nested arrays whose first element at each depth has `width` items; the other items
    /// are plain numbers, so the text is tiny while its first elements claim width^depth numbers.
    static func bomb(width: Int, depth: Int) -> String {
        var text = "0"
        for _ in 0..<depth { text = "[" + text + String(repeating: ",0", count: width - 1) + "]" }
        return text
    }

    func testFirstElementsClaimingTerabytesReserveNothing() throws {
        let array = try JSONArray.read(try JSONParser.parse("[[[1, 2.5]], [[\"NaN\", -3]]]", source: "t"), source: "t")
        XCTAssertEqual(array.shape, [2, 1, 2])
        XCTAssertEqual(array.dtype, "float64")
        XCTAssertEqual(array.values[0], 1)
        XCTAssertTrue(array.values[2].isNaN)
        XCTAssertEqual(try JSONArray.read(try JSONParser.parse("[[], []]", source: "t"), source: "t").shape, [2, 0])
        XCTAssertThrowsError(try JSONArray.read(try JSONParser.parse("[[1], [\"x\"]]", source: "t"), source: "t")) { error in
            XCTAssertEqual((error as? NNError)?.location, "t: $[1][0]")
        }

        // 235 bytes whose first elements claim 13^9 numbers are refused before anything is reserved.
        let text = JSONArrayTests.bomb(width: 13, depth: 9) // 13^9 ≈ 1.06e10 floats: 42 GB
        XCTAssertLessThan(text.utf8.count, 241)
        let value = try JSONParser.parse(text, source: "bomb.json")
        XCTAssertThrowsError(try JSONArray.read(value, source: "bomb.json")) { error in
            XCTAssertEqual(error as? NNError, NNError(.input, "bomb.json: $[0][0][0][0][0][0][0][1]", "expected an array of 13 items like its first sibling, found 0 (the array must be rectangular)"))
        }
    }

    /// A large array's text comes out in pieces of about 64 KB, together the same text as
    /// `text(_:)`'s: written as it is made, never held whole.
    func testLargeArraysAreWrittenInPieces() {
        let array = NumericArray(shape: [3, 40_000], values: (0..<120_000).map { Float($0 % 97) / 8 - 2 + ($0 == 5 ? .nan : 0) })
        var pieces: [[UInt8]] = []
        JSONArray.write(array) { pieces.append(Array($0)) }
        XCTAssertGreaterThan(pieces.count, 10)
        XCTAssertLessThan(pieces.dropLast().map(\.count).max() ?? 0, (1 << 16) + 64)
        let text = String(decoding: pieces.flatMap { $0 }, as: UTF8.self)
        XCTAssertEqual(text, JSONArray.text(array))
        XCTAssertTrue(text.hasPrefix("[[-2.0, -1.875, -1.75, -1.625, -1.5, null, -1.25"), String(text.prefix(60)))
        XCTAssertEqual(text.components(separatedBy: ",\n ").count, 3, "one row per line")
    }

    func testFirstElementsWhoseSizesOverflowAreRefused() throws {
        let text = JSONArrayTests.bomb(width: 3, depth: 60) // 3^60 > 2^63
        let value = try JSONParser.parse(text, source: "bomb.json")
        XCTAssertThrowsError(try JSONArray.read(value, source: "bomb.json")) { error in
            XCTAssertTrue("\(error)".contains("the array must be rectangular"), "\(error)")
        }
    }
}

