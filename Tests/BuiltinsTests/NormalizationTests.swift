import XCTest
import Builtins
import LayerRegistry

final class NormalizationTests: XCTestCase {
    func testBatchNormalizationUsesMovingStatistics() throws {
        // (x − mean) / √(var + eps) · gamma + beta with mean 1, var 4 − eps, gamma 2, beta 0.5.
        let model = try buildSingle(#"{"class_name": "BatchNormalization", "config": {"name": "bn", "epsilon": 0.001}}"#, input: [1],
                                    weights: [("bn/gamma", [1], [2]), ("bn/beta", [1], [0.5]), ("bn/moving_mean", [1], [1]), ("bn/moving_variance", [1], [3.999])])
        assertClose(try model.predict(Tensor(shape: [2, 1], data: [1, 5])).data, [0.5, 4.5])
    }

    func testBatchNormalizationOnANonLastAxis() throws {
        let model = try buildSingle(#"{"class_name": "BatchNormalization", "config": {"name": "bn", "axis": 1, "center": false, "scale": false, "epsilon": 0}}"#, input: [2, 2],
                                    weights: [("bn/moving_mean", [2], [1, 2]), ("bn/moving_variance", [2], [1, 4])])
        assertClose(try model.predict(Tensor(shape: [1, 2, 2], data: [1, 3, 4, 6])).data, [0, 2, 1, 2])
    }

    func testLayerAndRMSNormalization() throws {
        let layer = try buildSingle(#"{"class_name": "LayerNormalization", "config": {"center": false, "scale": false, "epsilon": 0}}"#, input: [2])
        assertClose(try layer.predict(Tensor(shape: [1, 2], data: [1, 3])).data, [-1, 1])
        let rms = try buildSingle(#"{"class_name": "RMSNormalization", "config": {"name": "r", "epsilon": 0}}"#, input: [2], weights: [("r/scale", [2], [1, 2])])
        assertClose(try rms.predict(Tensor(shape: [1, 2], data: [3, 4])).data, [3 / Float(12.5).squareRoot(), 8 / Float(12.5).squareRoot()])
    }

    func testBadAxisIsRefused() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "BatchNormalization", "config": {"axis": 3}}"#, input: [2])) { error in
            XCTAssertTrue("\(error)".contains("'axis' must name distinct axes"), "\(error)")
        }
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "LayerNormalization", "config": {"epsilon": -1}}"#, input: [2]))
    }

    func testNormalizationFixturesMatchKeras() {
        for name in ["batchnorm", "layernorm", "rmsnorm"] { assertMatchesKeras(name) }
    }
}
