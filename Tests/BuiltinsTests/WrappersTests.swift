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
}
