import XCTest
@testable import ModelSpec

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
