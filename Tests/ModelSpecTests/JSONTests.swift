import XCTest
@testable import ModelSpec

final class JSONTests: XCTestCase {
    func testParsesValuesInOrder() throws {
        let value = try JSONParser.parse(#"{"b": [1, 2.5, "x", null, true], "a": {"c": -3}}"#, source: "t")
        guard case let .object(members) = value else { return XCTFail("not an object") }
        XCTAssertEqual(members.map(\.0), ["b", "a"])
        XCTAssertEqual(value["b"], .array([.int(1), .double(2.5), .string("x"), .null, .bool(true)]))
        XCTAssertEqual(value["a"]?["c"], .int(-3))
    }

    func testSyntaxErrorReportsLineAndColumn() {
        let text = "{\n  \"layers\": [\n    {\"class_name\": \"Dense\",}\n  ]\n}"
        XCTAssertThrowsError(try JSONParser.parse(text, source: "spec.json")) { error in
            let problem = error as? NNError
            XCTAssertEqual(problem?.kind, .json)
            XCTAssertEqual(problem?.location, "spec.json:3:28")
        }
    }

    func testUnclosedDocumentIsAnError() {
        XCTAssertThrowsError(try JSONParser.parse("{\"a\": [1, 2", source: "s")) { error in
            XCTAssertTrue("\(error)".contains("ends early"), "\(error)")
        }
    }

    func testTrailingTextIsAnError() {
        XCTAssertThrowsError(try JSONParser.parse("{} {}", source: "s")) { error in
            XCTAssertEqual((error as? NNError)?.location, "s:1:4")
        }
    }

    func testDeepNestingIsRefused() {
        let text = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        XCTAssertThrowsError(try JSONParser.parse(text, source: "s")) { error in
            XCTAssertTrue("\(error)".contains("nested deeper than 64"), "\(error)")
        }
    }

    func testInvalidUTF8IsRefused() {
        XCTAssertThrowsError(try JSONParser.parse([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], source: "s")) { error in
            XCTAssertTrue("\(error)".contains("UTF-8"), "\(error)")
        }
    }

    /// RFC 3629: overlong forms, encoded surrogates and code points past U+10FFFF are not UTF-8.
    func testUTF8IsCheckedAsRFC3629Defines() throws {
        let refused: [(String, [UInt8])] = [
            ("encoded surrogate U+D800", [0xED, 0xA0, 0x80]), ("encoded surrogate U+DFFF", [0xED, 0xBF, 0xBF]),
            ("overlong 3-byte '/'", [0xE0, 0x80, 0xAF]), ("overlong 2-byte '/'", [0xC0, 0xAF]),
            ("overlong 4-byte", [0xF0, 0x80, 0x80, 0xAF]), ("U+110000", [0xF4, 0x90, 0x80, 0x80]),
            ("lead byte F5", [0xF5, 0x80, 0x80, 0x80]), ("lone continuation", [0x80]), ("cut short", [0xE2, 0x82]),
        ]
        for (name, bytes) in refused {
            XCTAssertThrowsError(try JSONParser.parse([0x5B, 0x22, 0x61] + bytes + [0x22, 0x5D], source: "s"), name) { error in
                XCTAssertEqual(error as? NNError, NNError(.json, "s:1:4", "the text is not valid UTF-8"), name)
            }
        }
        let accepted: [[UInt8]] = [[0xC3, 0xA9], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xF0, 0x9F, 0x98, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xE0, 0xA0, 0x80]]
        for bytes in accepted {
            XCTAssertEqual(try JSONParser.parse([0x5B, 0x22] + bytes + [0x22, 0x5D], source: "s"), .array([.string(String(decoding: bytes, as: UTF8.self))]))
        }
    }

    /// json-c ends a key at NUL, so `{"class_name\u0000x": ...}` would read as `class_name`.
    func testKeyHoldingNULIsRefused() {
        XCTAssertThrowsError(try JSONParser.parse(#"{"ok": 1, "class_name\u0000x": "Dense"}"#, source: "s")) { error in
            XCTAssertEqual(error as? NNError, NNError(.json, "s:1:11", #"key 'class_name\u0000x' holds a NUL character (\u0000); keys may not"#))
        }
        XCTAssertEqual(try JSONParser.parse(#"{"a": "x\u0000y"}"#, source: "s")["a"], .string("x\u{0}y"), "NUL in a string value is kept")
    }

    func testDuplicateKeysAreComparedDecoded() throws {
        XCTAssertEqual(try JSONParser.parse(#"{"a": 1, "\u0061": 2}"#, source: "s")["a"], .int(2), "the last wins unless refused")
        XCTAssertThrowsError(try JSONParser.parse(#"{"a": 1, "\u0061": 2}"#, source: "s", refuseDuplicateKeys: true)) { error in
            XCTAssertEqual(error as? NNError, NNError(.json, "s:1:10", "key 'a' appears twice at the top level"))
        }
        XCTAssertThrowsError(try JSONParser.parse(#"{"t": {"shape": [1], "sh\u0061pe": [2]}, "u": {}}"#, source: "s", refuseDuplicateKeys: true)) { error in
            XCTAssertEqual((error as? NNError)?.message, "key 'shape' appears twice in 't'")
        }
        XCTAssertThrowsError(try JSONParser.parse(#"{"\ud83d\ude00": 1, "😀": 2}"#, source: "s", refuseDuplicateKeys: true)) { error in
            XCTAssertEqual((error as? NNError)?.message, "key '😀' appears twice at the top level")
        }
        XCTAssertThrowsError(try JSONParser.parse(#"{"\ud800": 1}"#, source: "s")) { error in
            XCTAssertTrue("\(error)".contains("unpaired surrogate"), "\(error)")
        }
        // Equal keys in different objects, and strings that are values, are not duplicates.
        XCTAssertNoThrow(try JSONParser.parse(#"{"a": {"a": "a"}, "b": [{"a": 1}, {"a": 2}], "c": "a"}"#, source: "s", refuseDuplicateKeys: true))
    }

    func testWriterRoundTrips() throws {
        let value = JSONValue.object([("a", .array([.double(0.1), .int(2), .string("q\"\n")])), ("b", .null)])
        XCTAssertEqual(try JSONParser.parse(JSONWriter.string(value), source: "s"), value)
    }
}
