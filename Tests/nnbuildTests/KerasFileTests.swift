import Foundation
import XCTest
import ModelSpec

/// Real Keras files (tools/make_keras_files.py, Tests/KerasFiles): a `.keras` archive and a legacy
/// `.h5` of a CNN, a masked BiLSTM, a GRU, a residual model with a nested Sequential and a model
/// with Bidirectional and TimeDistributed wrappers each run from the file alone and match Keras's
/// predictions within 1e-5; a whole model file where the weights belong is refused, naming what to do.
final class KerasFileTests: CLITestCase {
    static let files = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KerasFiles")
    static let cases = ["cnn", "bilstm_masked", "gru", "residual_nested", "wrappers"]

    static func file(_ name: String) -> String { files.appendingPathComponent(name).path }

    func maxError(_ got: String, _ expected: String) throws -> Double {
        let a = try Npy.read(FileBytes.read(path: got), source: got)
        let b = try Npy.read(FileBytes.read(path: expected), source: expected)
        XCTAssertEqual(a.shape, b.shape, got)
        var worst = 0.0
        for (x, y) in zip(a.values, b.values) {
            let error = abs(Double(x) - Double(y)) / (1 + abs(Double(y)))
            worst = error.isNaN ? .infinity : max(worst, error)
        }
        return worst
    }

    func testEachModelFileRunsAloneAndMatchesKeras() throws {
        for name in Self.cases {
            for format in ["keras", "h5"] {
                let out = path("\(name).\(format).npy")
                let result = try run(["infer", Self.file("\(name).\(format)"), "--input", Self.file("\(name).input.npy"), "-o", out])
                XCTAssertEqual(result.status, 0, "\(name).\(format): \(result.stderr)")
                guard result.status == 0 else { continue }
                XCTAssertLessThanOrEqual(try maxError(out, Self.file("\(name).expected.npy")), 1e-5, "\(name).\(format)")
            }
        }
    }

    func testValidateCompareEvalAndBenchTakeAModelFileAlone() throws {
        let model = Self.file("gru.keras")
        XCTAssertEqual(try run(["validate", model]).status, 0)
        let compared = try run(["compare", model, "--input", Self.file("gru.input.npy"), "--expected", Self.file("gru.expected.npy")])
        XCTAssertEqual(compared.status, 0, compared.stderr)
    }

    func testAModelFileGivenAsTheWeightsIsRefused() throws {
        let result = try run(["validate", path("model.json"), Self.file("cnn.keras")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("this is a whole Keras model archive (.keras), not a weights file; pass it alone in place of the spec and weights"), result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
    }

    func testAModelFileWithWeightsBesideItIsRefused() throws {
        let result = try run(["infer", Self.file("cnn.keras"), path("weights.safetensors"), "--input", Self.file("cnn.input.npy")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("is a whole Keras model file, which holds its own weights; pass it alone"), result.stderr)
    }

    func testASpecWithoutWeightsIsRefusedWhereWeightsAreNeeded() throws {
        let result = try run(["infer", path("model.json"), "--input", path("x.json")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("a JSON spec needs its weights"), result.stderr)
    }
}
