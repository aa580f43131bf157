import XCTest
@testable import ModelSpec

/// Builds safetensors blobs for tests: an 8-byte little-endian header length, the JSON header,
/// then the data.
enum Blob {
    static func make(header: String, data: [UInt8]) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        let out: [UInt8] = (0..<8).map { UInt8((UInt64(headerBytes.count) >> (8 * UInt64($0))) & 0xFF) }
        return out + headerBytes + data
    }

    static func floats(_ values: [Float]) -> [UInt8] {
        values.flatMap { value -> [UInt8] in
            let bits = value.bitPattern
            return (0..<4).map { UInt8((bits >> (8 * UInt32($0))) & 0xFF) }
        }
    }

    /// A valid blob of float32 tensors laid out in order.
    static func f32(_ tensors: [(String, [Int], [Float])]) -> [UInt8] {
        var offset = 0
        var entries: [String] = []
        var data: [UInt8] = []
        for (name, shape, values) in tensors {
            let bytes = floats(values)
            entries.append("\"\(name)\": {\"dtype\": \"F32\", \"shape\": \(shape), \"data_offsets\": [\(offset), \(offset + bytes.count)]}")
            offset += bytes.count
            data += bytes
        }
        return make(header: "{" + entries.joined(separator: ", ") + "}", data: data)
    }
}

final class WeightStoreTests: XCTestCase {
    func testReadsFloat32InPlaceWhenAligned() throws {
        // A header of 8 bytes keeps the data 16-byte aligned inside the 64-byte aligned buffer.
        let header = #"{"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "__metadata__": {"format": "pt"}}"#
        let padded = header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        let store = try WeightStore(bytes: Blob.make(header: padded, data: Blob.floats([1, 2, 3, 4])))
        let entry = try XCTUnwrap(store.entry(named: "w"))
        XCTAssertEqual(entry.shape, [2, 2])
        XCTAssertEqual(store.metadata["format"], "pt")
        let values = store.floats(entry)
        XCTAssertEqual(values.array, [1, 2, 3, 4])
        XCTAssertTrue(values.isMapped, "aligned float32 data must not be copied")
    }

    func testConvertsHalfBFloatAndDouble() throws {
        // 1.0 and -2.0 in F16 (0x3C00, 0xC000) and BF16 (0x3F80, 0xC000); 0.5 as F64.
        let header = #"{"h": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}, "b": {"dtype": "BF16", "shape": [2], "data_offsets": [4, 8]}, "d": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]}}"#
        let data: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x80, 0x3F, 0x00, 0xC0] + [0, 0, 0, 0, 0, 0, 0xE0, 0x3F]
        let store = try WeightStore(bytes: Blob.make(header: header, data: data))
        XCTAssertEqual(store.floats(store.entry(named: "h")!).array, [1, -2])
        XCTAssertEqual(store.floats(store.entry(named: "b")!).array, [1, -2])
        XCTAssertEqual(store.floats(store.entry(named: "d")!).array, [0.5])
    }

    func testHalfPrecisionSpecialValues() {
        XCTAssertEqual(WeightStore.halfToFloat(0x0001), Float(5.960464477539063e-08))
        XCTAssertEqual(WeightStore.halfToFloat(0x7C00), .infinity)
        XCTAssertTrue(WeightStore.halfToFloat(0x7E00).isNaN)
        XCTAssertEqual(WeightStore.halfToFloat(0x7BFF), 65504)
    }

    func assertRefused(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try WeightStore(bytes: bytes, source: "w.safetensors"), file: file, line: line) { error in
            XCTAssertEqual((error as? NNError)?.kind, .weights, file: file, line: line)
            XCTAssertTrue("\(error)".contains(fragment), "\(error)", file: file, line: line)
        }
    }

    func testRefusesMalformedBlobs() {
        let one = Blob.floats([1])
        assertRefused([1, 2, 3], "starts with an 8-byte header length")
        assertRefused([0, 0, 0, 0, 0, 0, 0, 0x10], "the largest accepted is 100000000")
        assertRefused(Array(Blob.make(header: "{}", data: []).dropLast(1)), "only 1 bytes follow it (truncated file?)")
        assertRefused([200, 0, 0, 0, 0, 0, 0, 0] + Array("{}".utf8), "only 2 bytes follow")
        assertRefused(Blob.make(header: "[1]", data: []), "does not start with '{'")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}"#, data: one), "ends early")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 4]}}"#, data: one), "unknown dtype 'Q8'")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "BOOL", "shape": [4], "data_offsets": [0, 4]}}"#, data: one), "BOOL is not supported")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}"#, data: one), "needs 2 × 4 = 8 bytes")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}}"#, data: one), "truncated")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, data: one + one), "leaves a gap")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, data: one), "overlaps")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, data: one + one), "4 trailing bytes")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, data: one + one), "appears twice")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#, data: one), "non-negative integers")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [2147483647, 2147483647, 4], "data_offsets": [0, 4]}}"#, data: one), "too many elements")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}"#, data: one), "run backwards")
    }

    /// A header padded so the data starts 64-byte aligned: float32 data is then used in place.
    static func alignedBlob(_ values: [Float]) -> [UInt8] {
        let header = "{\"w\": {\"dtype\": \"F32\", \"shape\": [\(values.count)], \"data_offsets\": [0, \(values.count * 4)]}}"
        let padded = header + String(repeating: " ", count: (64 - (8 + header.utf8.count) % 64) % 64)
        return Blob.make(header: padded, data: Blob.floats(values))
    }

    /// Evicting values that live in memory nnbuild owns must not drop them (MADV_DONTNEED on
    /// anonymous memory zeroes it); only a file mapping can read its pages back.
    func testEvictKeepsValuesThatAreNotMappedFromAFile() throws {
        let values = (0..<8192).map { Float($0 + 1) }
        let store = try WeightStore(bytes: WeightStoreTests.alignedBlob(values))
        let storage = store.floats(try XCTUnwrap(store.entry(named: "w")))
        XCTAssertTrue(storage.isMapped)
        storage.evict()
        XCTAssertEqual(storage.array, values)
    }

    /// Weights loaded with `.copy` survive the file being truncated under the process (a mapping
    /// would raise SIGBUS on the lost pages), and a mapped file's values also survive `evict`.
    func testCopiedWeightsSurviveTruncation() throws {
        let values = (0..<8192).map { Float($0) * 0.5 }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-copy-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(WeightStoreTests.alignedBlob(values)).write(to: file)
        let mapped = try WeightStore(path: file.path)
        let mappedValues = mapped.floats(try XCTUnwrap(mapped.entry(named: "w")))
        mappedValues.evict()
        XCTAssertEqual(mappedValues.array, values)
        let copied = try WeightStore(path: file.path, loading: .copy)
        XCTAssertEqual(truncate(file.path, 0), 0)
        let storage = copied.floats(try XCTUnwrap(copied.entry(named: "w")))
        storage.evict()
        XCTAssertEqual(storage.array, values)
    }

    /// json-c keeps one of two equal names, so a second copy written with a `\u` escape, or with a
    /// `\u0000` suffix (json-c ends keys at NUL), used to replace the first unnoticed.
    func testDuplicateNamesAreComparedDecoded() {
        let one = Blob.floats([1])
        let tensor = #"{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}"#
        assertRefused(Blob.make(header: #"{"dense/kernel": \#(tensor), "dense/k\u0065rnel": \#(tensor)}"#, data: one),
                      "key 'dense/kernel' appears twice at the top level")
        assertRefused(Blob.make(header: #"{"dense/kernel": \#(tensor), "dense/kernel\u0000": \#(tensor)}"#, data: one),
                      #"key 'dense/kernel\u0000' holds a NUL character"#)
        assertRefused(Blob.make(header: #"{"a\u0000b": \#(tensor)}"#, data: one), "holds a NUL character")
        // nnbuild looks names up as Swift strings, where "é" and "e" + U+0301 are equal.
        let second = #"{"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}"#
        assertRefused(Blob.make(header: #"{"caf\u00e9/kernel": \#(tensor), "cafe\u0301/kernel": \#(second)}"#, data: one + one),
                      "appears twice at the top level (spelt with other Unicode code points that compare equal)")
        assertRefused(Blob.make(header: #"{"a": {"dtype": "F32", "shape": [1], "shape": [1], "data_offsets": [0, 4]}}"#, data: one),
                      "key 'shape' appears twice in 'a'")
    }

    func testNamesMustBeRFC3629UTF8() {
        let tensor = Array(#": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#.utf8)
        for bad: [UInt8] in [[0xED, 0xA0, 0x80], [0xE0, 0x80, 0xAF], [0xC0, 0xAF], [0xF4, 0x90, 0x80, 0x80]] {
            let header = [UInt8(ascii: "{"), UInt8(ascii: "\""), UInt8(ascii: "w")] + bad + [UInt8(ascii: "\"")] + tensor
            let blob = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + Blob.floats([1])
            assertRefused(blob, "header:1:4: the text is not valid UTF-8")
        }
    }

    func testMissingFileIsAnIOError() {
        XCTAssertThrowsError(try WeightStore(path: "/nonexistent/w.safetensors")) { error in
            XCTAssertEqual((error as? NNError)?.kind, .io)
        }
    }
}
