import XCTest
@testable import Builtins
import LayerRegistry

/// Hashing's two hashes on known strings (the fixture `hashing` checks whole layers against
/// TensorFlow), its casts and its config errors.
final class HashingTests: XCTestCase {
    func testDecimalFormsAsTensorFlowCastsThem() {
        XCTAssertEqual(String(decoding: Hashing.decimal(-2.7), as: UTF8.self), "-2")
        XCTAssertEqual(String(decoding: Hashing.decimal(Float(1 << 24)), as: UTF8.self), "16777216")
        XCTAssertEqual(String(decoding: Hashing.decimal(.nan), as: UTF8.self), "0")
        XCTAssertEqual(String(decoding: Hashing.decimal(.infinity), as: UTF8.self), "9223372036854775807")
        XCTAssertEqual(String(decoding: Hashing.decimal(-.infinity), as: UTF8.self), "-9223372036854775808")
    }

    /// Each length branch of Fingerprint64 gives a different value, and SipHash depends on its key.
    func testHashesCoverEveryLength() {
        let values = (0...20).map { Hashing.fingerprint64(Array(String(repeating: "7", count: $0).utf8)) }
        XCTAssertEqual(Set(values).count, values.count)
        let text = Array("12345".utf8)
        XCTAssertNotEqual(Hashing.sipHash24(text, key: (1, 2)), Hashing.sipHash24(text, key: (2, 1)))
    }

    /// FingerprintCat64 of two fingerprints, checked against tf.sparse.cross_hashed: crossing 3 and 7
    /// from its seed gives 115133 of 1000003 buckets.
    func testCrossingHashesAsTensorFlow() {
        let crossed = HashedCrossing.fingerprintCat64(HashedCrossing.fingerprintCat64(0xDE_CAFC_AFFE, 3), 7)
        XCTAssertEqual(crossed % 1_000_003, 115_133)
        let three = HandBuilt.buildError(input: [1], layers: [#"{"class_name": "HashedCrossing", "config": {"name": "h", "num_bins": 4}}"#])
        XCTAssertTrue(three?.contains("crosses two inputs") == true, three ?? "built")
    }

    func testConfigErrors() {
        let salt = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "Hashing", "config": {"name": "h", "num_bins": 4, "salt": [1, 2, 3]}}"#])
        XCTAssertTrue(salt?.contains("'salt' must be an integer or a list of two integers") == true, salt ?? "built")
        let mask = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "Hashing", "config": {"name": "h", "num_bins": 4, "mask_value": "x"}}"#])
        XCTAssertTrue(mask?.contains("string inputs are not supported") == true, mask ?? "built")
        let bins = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "Hashing", "config": {"name": "h", "num_bins": 0}}"#])
        XCTAssertTrue(bins?.contains("num_bins") == true, bins ?? "built")
    }
}
