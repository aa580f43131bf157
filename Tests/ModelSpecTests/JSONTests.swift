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

    func testWriterRoundTrips() throws {
        let value = JSONValue.object([("a", .array([.double(0.1), .int(2), .string("q\"\n")])), ("b", .null)])
        XCTAssertEqual(try JSONParser.parse(JSONWriter.string(value), source: "s"), value)
    }
}
