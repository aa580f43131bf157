import Foundation
import XCTest
import LayerRegistry

/// The public `.npy` helpers a library user reaches from `import LayerRegistry`.
final class NpyFileTensorTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-npy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func write(_ name: String, _ array: NumericArray) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(Npy.encode(array)).write(to: url)
        return url.path
    }

    /// A model of one InputLayer taking (batch, 3).
    func model() throws -> Model {
        let spec = try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 3]}}]}}"#)
        let registry = LayerRegistry()
        registry.register("InputLayer") { context in Identity(outputShape: context.inputShape) }
        return try Model.build(spec, registry: registry)
    }

    struct Identity: Layer {
        let outputShape: [Int?]
        func forward(_ input: Tensor) throws -> Tensor { input }
    }

    func testTensorFromNpyFileKeepsShapeAndValues() throws {
        let path = try write("x.npy", NumericArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        XCTAssertEqual(try Tensor(npyFile: path), Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]))
    }

    func testModelBatchFromNpyFileAddsTheBatchAxisToOneSample() throws {
        let path = try write("one.npy", NumericArray(shape: [3], values: [7, 8, 9]))
        let batch = try model().batch(npyFile: path)
        XCTAssertEqual(batch.shape, [1, 3])
        XCTAssertEqual(try model().predict(batch).data, [7, 8, 9])
    }

    func testErrorsNameTheFile() throws {
        let missing = dir.appendingPathComponent("missing.npy").path
        XCTAssertThrowsError(try Tensor(npyFile: missing)) { error in
            XCTAssertEqual((error as? NNError)?.kind, .io)
            XCTAssertEqual((error as? NNError)?.location, missing)
        }
        let wrong = try write("wrong.npy", NumericArray(shape: [2, 4], values: Array(repeating: 0, count: 8)))
        XCTAssertThrowsError(try model().batch(npyFile: wrong)) { error in
            XCTAssertEqual((error as? NNError)?.kind, .input)
            XCTAssertEqual((error as? NNError)?.location, wrong)
        }
        let notNpy = dir.appendingPathComponent("x.json")
        try Data("[1, 2, 3]".utf8).write(to: notNpy)
        XCTAssertThrowsError(try Tensor(npyFile: notNpy.path)) { error in
            XCTAssertTrue((error as? NNError)?.message.contains("not a .npy file") ?? false, "\(error)")
        }
    }
}
