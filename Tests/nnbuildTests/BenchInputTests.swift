import Foundation
import XCTest

/// `bench` draws a valid random batch for every input: token ids inside the embedding's range
/// for an input an Embedding reads, also when the spec names its InputLayer explicitly (as every
/// Keras 3 Sequential does).
final class BenchInputTests: CLITestCase {
    func testBenchDrawsTokenIdsForAnEmbeddingBehindAnExplicitInputLayer() throws {
        let root = MalformedTests.root.appendingPathComponent("specs/text_bilstm")
        let result = try run(["bench", root.appendingPathComponent("model.json").path, root.appendingPathComponent("weights.safetensors").path,
                              "--batch", "1", "--seconds", "0.05", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.text.contains("\"samples_per_s\""), result.text)
    }
}
