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

    /// Fingerprint64 of strings longer than an integer's decimal form (the 33-64 byte branch, and
    /// the 64-byte blocks past it), against TensorFlow 2.20's
    /// `tf.strings.to_hash_bucket_fast(texts, 2**63 - 1)`.
    func testLongStringsHashAsTensorFlow() {
        let tensorFlow: [(String, UInt64)] = [
            (String(repeating: "a", count: 33), 8_087_743_964_839_449_942), (String(repeating: "a", count: 40), 2_168_401_864_796_137_711),
            (String(repeating: "a", count: 63), 7_519_940_488_587_662_353), (String(repeating: "a", count: 64), 5_893_282_057_753_879_417),
            (String(repeating: "a", count: 65), 7_778_058_094_944_459_892), (String(repeating: "a", count: 100), 3_930_626_154_289_304_811),
            (String(repeating: "a", count: 127), 7_531_535_164_187_061_522), (String(repeating: "a", count: 128), 4_475_744_069_048_419_319),
            (String(repeating: "a", count: 129), 8_956_811_025_052_791_425), (String(repeating: "a", count: 200), 5_497_959_393_405_389_090),
            ("The quick brown fox jumps over the lazy dog, again and again and again!", 3_085_418_243_975_595_470),
        ]
        for (text, bucket) in tensorFlow {
            XCTAssertEqual(Hashing.fingerprint64(Array(text.utf8)) % ((UInt64(1) << 63) - 1), bucket, "\(text.utf8.count) bytes")
        }
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
        XCTAssertTrue(mask?.contains("'mask_value' must be a number (the input holds numbers)") == true, mask ?? "built")
        let bins = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "Hashing", "config": {"name": "h", "num_bins": 0}}"#])
        XCTAssertTrue(bins?.contains("num_bins") == true, bins ?? "built")
    }
}
