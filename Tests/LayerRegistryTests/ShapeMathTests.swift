import XCTest
@testable import LayerRegistry

/// The one checked facility for sizes: products that overflow are detected, the limits apply,
/// and a tensor's data must match its shape.
final class ShapeMathTests: XCTestCase {
    func testProductsDetectOverflowAndNegativeSizes() {
        XCTAssertEqual(ShapeMath.product([2, 3, 4]), 24)
        XCTAssertEqual(ShapeMath.product([Int]()), 1)
        XCTAssertNil(ShapeMath.product([1 << 32, 1 << 32]))
        XCTAssertNil(ShapeMath.product([3, -1]))
        XCTAssertEqual(ShapeMath.saturatingProduct([Int(Int32.max), Int(Int32.max), Int(Int32.max)]), Int.max)
        XCTAssertEqual(ShapeMath.saturatingSum(Int.max, 1), Int.max)
    }

    func testSampleLimitMessagesGiveTheSizes() throws {
        XCTAssertEqual(try ShapeMath.checkSample([nil, 4, 8], what: "the output").get(), 32)
        guard case let .failure(message) = ShapeMath.checkSample([1 << 20, 1 << 20], what: "the output") else { return XCTFail("accepted 2^40") }
        XCTAssertEqual(message.text, "the output would hold 2^40 values per sample (shape (None, 1048576, 1048576)), more than the limit of 2^31")
        guard case let .failure(past) = ShapeMath.checkSample([Int(Int32.max), Int(Int32.max), Int(Int32.max)], what: "its input") else { return XCTFail("accepted") }
        XCTAssertTrue(past.text.contains("about 2^92 values per sample"), past.text)
        XCTAssertThrowsError(try ShapeMath.sampleCount([1 << 16, 1 << 16, 1 << 16], at: "layer")) { error in
            XCTAssertEqual((error as? NNError)?.kind, .input)
        }
    }

    func testTensorZerosRefusesShapesPastTheLimit() throws {
        XCTAssertEqual(try Tensor(zeros: [2, 3]).data, [0, 0, 0, 0, 0, 0])
        XCTAssertThrowsError(try Tensor(zeros: [1 << 40, 1 << 40]))
        XCTAssertThrowsError(try Tensor(zeros: [2, -3]))
    }

    func testTensorConsistencyIsChecked() throws {
        XCTAssertNoThrow(try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]).checkConsistent("t"))
        XCTAssertThrowsError(try Tensor(shape: [2, 3], data: [1, 2, 3]).checkConsistent("t")) { error in
            XCTAssertEqual("\(error)", "t: tensor of shape [2, 3] must hold 6 values, found 3")
        }
        XCTAssertThrowsError(try Tensor(shape: [0, 1 << 40, 1 << 40], data: []).checkConsistent("t"))
        XCTAssertThrowsError(try Tensor(shape: [2, -1], data: []).checkConsistent("t"))
        XCTAssertThrowsError(try Tensor(shape: [2, 3], data: [Float](repeating: 0, count: 6), mask: [true]).checkConsistent("t"))
        // A model checks before its first layer runs, whatever the layer.
        let model = try Model.build(spec(#"{"class_name": "Scale", "config": {"name": "s"}}"#), registry: registry(), weights: try blob([("s/scale", [1, 2])]))
        XCTAssertThrowsError(try model.predict(Tensor(shape: [4, 2], data: [1, 2])))
    }

    func registry() -> LayerRegistry {
        let registry = LayerRegistry()
        registry.register("Scale", factory: Scale.factory)
        registry.register("InputLayer") { context in Passthrough(outputShape: context.inputShape) }
        return registry
    }
}

private struct Passthrough: Layer {
    let outputShape: [Int?]
    func forward(_ input: Tensor) throws -> Tensor { input }
}
