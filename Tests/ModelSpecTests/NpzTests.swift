import Foundation
import XCTest
@testable import ModelSpec

/// `.npz` reading (files numpy wrote, and malformed zips from tools/make_npz_fixtures.py) and writing.
final class NpzTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("NpzFixtures").path

    func path(_ name: String) -> String { "\(NpzTests.fixtures)/\(name)" }

    func refusal(_ name: String, limit: Int = 1 << 30, file: StaticString = #filePath, line: UInt = #line) -> NNError? {
        do {
            let arrays = try Npz.read(path: path(name), limit: limit)
            XCTFail("\(name) was read as \(arrays.map(\.name))", file: file, line: line)
            return nil
        } catch let error as NNError {
            return error
        } catch {
            XCTFail("\(name): not an NNError: \(error)", file: file, line: line)
            return nil
        }
    }

    /// The arrays of tools/make_npz_fixtures.py's `arrays()`, as numpy wrote them.
    func checkNumpyArrays(_ arrays: [NamedArray], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(arrays.map(\.name), ["image", "tokens", "dense_1:1"], file: file, line: line)
        guard arrays.count == 3 else { return }
        XCTAssertEqual(arrays[0].array, NumericArray(shape: [2, 3], values: [0, 0.25, 0.5, 0.75, 1, 1.25], dtype: "float32"), file: file, line: line)
        XCTAssertEqual(arrays[1].array, NumericArray(shape: [2, 3], values: [1, 5, 0, 7, 2, 9], dtype: "int64"), file: file, line: line)
        XCTAssertEqual(arrays[2].array, NumericArray(shape: [2], values: [0.5, -1.25], dtype: "float64"), file: file, line: line)
    }

    func testReadsSavezInArchiveOrder() throws {
        checkNumpyArrays(try Npz.read(path: path("savez.npz")))
    }

    func testReadsSavezCompressed() throws {
        checkNumpyArrays(try Npz.read(path: path("savez_compressed.npz")))
    }

    func testPositionalArraysAreNamedAsNumpyNamesThem() throws {
        let arrays = try Npz.read(path: path("positional.npz"))
        XCTAssertEqual(arrays.map(\.name), ["arr_0", "arr_1"])
        XCTAssertEqual(arrays.map(\.array.shape), [[1, 2], [3]])
    }

    func testReadsZip64Records() throws {
        let arrays = try Npz.read(path: path("zip64.npz"))
        XCTAssertEqual(arrays.map(\.name), ["a", "b"])
        XCTAssertEqual(arrays.map(\.array.values), [[0, 1, 2, 3], [0, 1, 2, 3]])
    }

    func testMalformedArchivesAreRefusedByName() {
        let cases: [(String, String)] = [
            ("bad_truncated.npz", "no end-of-central-directory record"),
            ("bad_not_zip.npz", "not a zip archive"),
            ("bad_crc.npz", "member 'a.npy': CRC-32 is 0x"),
            ("bad_encrypted.npz", "member 'a.npy' is encrypted"),
            ("bad_method.npz", "uses compression method 12; expected 0 (stored) or 8 (deflate)"),
            ("bad_name_parent.npz", "the member name '../a.npy' is not a plain relative path"),
            ("bad_not_npy.npz", "member 'notes.txt' is not an array; an .npz holds only NAME.npy members"),
            ("bad_duplicate.npz", "member 'a.npy' appears twice"),
            ("bad_local_name.npz", "member 'a.npy': the local header names a different member"),
            ("bad_directory_offset.npz", "does not fit before its end record"),
            ("bomb_past_declared.npz", "inflates past its declared size of 1000 bytes"),
            ("bomb_ratio.npz", "more than deflate can express (1032:1); a zip bomb is refused"),
            ("bomb_overlap_nested.npz", "members 'a.npy' and 'b.npy' overlap in the archive"),
        ]
        for (name, message) in cases {
            guard let error = refusal(name) else { continue }
            XCTAssertEqual(error.kind, .input, name)
            XCTAssertTrue(error.location.hasPrefix(path(name)), "\(name): location \(error.location)")
            XCTAssertTrue(error.description.contains(message), "\(name): \(error.description)")
        }
    }

    func testDeclaredSizesAreBoundedBeforeInflating() {
        guard let error = refusal("savez_compressed.npz", limit: 200) else { return }
        XCTAssertTrue(error.message.contains("at most 200 are accepted here"), error.description)
    }

    func write(forceZip64: Bool) throws -> [NamedArray] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("npz-\(UUID().uuidString).npz").path
        defer { unlink(file) }
        let descriptor = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        var writer = NpzWriter(descriptor: descriptor, source: file, forceZip64: forceZip64)
        try writer.add(name: "class_head", array: NumericArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        try writer.add(name: "dense:1", array: NumericArray(shape: [2], values: [-0.5, .infinity]))
        try writer.finish()
        close(descriptor)
        return try Npz.read(path: file)
    }

    func testWrittenArchiveReadsBack() throws {
        for zip64 in [false, true] {
            let arrays = try write(forceZip64: zip64)
            XCTAssertEqual(arrays.map(\.name), ["class_head", "dense:1"])
            XCTAssertEqual(arrays.map(\.array.values), [[1, 2, 3, 4, 5, 6], [-0.5, .infinity]])
            XCTAssertEqual(arrays.map(\.array.shape), [[2, 3], [2]])
        }
    }

    func testWriterRefusesRepeatedAndUnsafeNames() throws {
        var writer = NpzWriter(descriptor: -1, source: "out.npz")
        XCTAssertThrowsError(try writer.add(name: "../x", array: NumericArray(shape: [1], values: [1]))) { error in
            XCTAssertTrue("\(error)".contains("expected a plain relative name"), "\(error)")
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("npz-\(UUID().uuidString).npz").path
        defer { unlink(file) }
        let descriptor = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(descriptor) }
        writer = NpzWriter(descriptor: descriptor, source: file)
        try writer.add(name: "x", array: NumericArray(shape: [1], values: [1]))
        XCTAssertThrowsError(try writer.add(name: "x", array: NumericArray(shape: [1], values: [2]))) { error in
            XCTAssertTrue("\(error)".contains("the array 'x' is written twice"), "\(error)")
        }
    }
}
