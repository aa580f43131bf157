import Foundation
import XCTest

/// `nnbuild validate` on a Functional model prints Keras's Functional summary: a "Connected to"
/// column, then the model's named inputs and outputs.
final class FunctionalValidateTests: CLITestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("GraphFixtures")

    func testAFunctionalSummaryHasConnectedToAndNamedPorts() throws {
        let folder = Self.fixtures.appendingPathComponent("two_input_image_tabular")
        let result = try run(["validate", folder.appendingPathComponent("model.json").path, folder.appendingPathComponent("weights.safetensors").path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("Layer (type)") && $0.hasSuffix("Connected to") }, result.text)
        XCTAssertTrue(lines.contains { $0.hasPrefix("join (Concatenate)") && $0.hasSuffix("pool[0][0], table_dense[0][0]") }, result.text)
        XCTAssertTrue(lines.contains { $0.hasPrefix("image (InputLayer)") && $0.hasSuffix("-") }, result.text)
        XCTAssertTrue(lines.contains("Inputs: image (None, 5, 5, 2) float32, tabular (None, 4) float32"), result.text)
        XCTAssertTrue(lines.contains("Outputs: head (None, 2)"), result.text)
        XCTAssertTrue(lines.contains("Total params: 86"), result.text)
    }

    func testASequentialSummaryHasNoConnectedToColumn() throws {
        let result = try run(["validate", path("model.json"), path("weights.safetensors")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertFalse(result.text.contains("Connected to"), result.text)
    }
}
