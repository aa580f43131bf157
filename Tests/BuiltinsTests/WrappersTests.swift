import XCTest
import Builtins
import LayerRegistry

final class WrappersTests: XCTestCase {
    func testTimeDistributedAppliesTheNestedLayerPerStep() throws {
        let model = try buildSingle(#"{"class_name": "TimeDistributed", "config": {"name": "td", "layer": {"class_name": "Dense", "config": {"name": "d", "units": 1, "use_bias": false}}}}"#,
                                    input: [2, 2], weights: [("td/d/kernel", [2, 1], [1, 10])])
        XCTAssertEqual(model.outputShape, [2, 1])
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 2, 2], data: [1, 2, 3, 4])).data, [21, 43])
        XCTAssertEqual(model.parameterCount, 2)
    }

    func testTimeDistributedFixtureMatchesKeras() {
        assertMatchesKeras("time_distributed_dense")
    }

    /// At inference the wrapped layer runs with its stored kernel; vector_u is bound (its shape
    /// checked against the kernel's last axis) and unused.
    func testSpectralNormalizationRunsTheWrappedLayerWithItsStoredKernel() throws {
        let dense = #"{"class_name": "Dense", "config": {"name": "d", "units": 2, "use_bias": false}}"#
        let layer = #"{"class_name": "SpectralNormalization", "config": {"name": "sn", "layer": \#(dense)}}"#
        let model = try buildSingle(layer, input: [2], weights: [("sn/d/kernel", [2, 2], [1, 2, 3, 4]), ("sn/vector_u", [1, 2], [0.5, -7])])
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [1, 1])).data, [4, 6])
        XCTAssertThrowsError(try buildSingle(layer, input: [2], weights: [("sn/d/kernel", [2, 2], [1, 2, 3, 4]), ("sn/vector_u", [1, 3], [0, 0, 0])]))
        let embedding = #"{"class_name": "Embedding", "config": {"name": "e", "input_dim": 4, "output_dim": 2}}"#
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "SpectralNormalization", "config": {"name": "sn", "layer": \#(embedding)}}"#,
                                             input: [3], weights: [("sn/e/embeddings", [4, 2], [Float](repeating: 1, count: 8)), ("sn/vector_u", [1, 2], [0, 0])])) { error in
            XCTAssertTrue("\(error)".contains("wraps Embedding, which has no 'kernel'"), "\(error)")
        }
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "SpectralNormalization", "config": {"name": "sn", "power_iterations": 0, "layer": \#(dense)}}"#,
                                             input: [2])) { error in
            XCTAssertTrue("\(error)".contains("'power_iterations' must be positive"), "\(error)")
        }
    }

    func testAnEmptyPipelineIsRefused() {
        let message = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "Pipeline", "config": {"name": "p", "layers": []}}"#])
        XCTAssertTrue(message?.contains("has no layers") == true, message ?? "built")
    }
}
