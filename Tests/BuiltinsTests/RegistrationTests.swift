import XCTest
import Builtins
import LayerRegistry

/// No built-in is special: built-ins are registered through the same call users make, and a user
/// factory can replace one.
final class RegistrationTests: XCTestCase {
    let spec = #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 2]}}, {"class_name": "Dense", "config": {"units": 2, "use_bias": false}}]}}"#

    /// Doubles its input, whatever Dense's config says.
    struct Doubler: Layer {
        let outputShape: [Int?]
        func forward(_ input: Tensor) throws -> Tensor { Tensor(shape: input.shape, data: input.data.map { 2 * $0 }) }
    }

    func testAUserFactoryReplacesBuiltinDense() throws {
        let registry = LayerRegistry.withBuiltins()
        XCTAssertEqual(registry.registration(named: "Dense")?.origin, "builtin")
        registry.register("Dense", origin: "user") { context in Doubler(outputShape: context.inputShape) }
        XCTAssertEqual(registry.registration(named: "Dense")?.origin, "user")
        let model = try Model.build(try ModelDescription.parse(spec), registry: registry)
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [3, -1])).data, [6, -2])
    }

    func testBuiltinsAreOrdinaryRegistrations() {
        let registry = LayerRegistry.withBuiltins()
        for name in ["InputLayer", "Dense", "Dropout", "Flatten", "Reshape", "Activation"] {
            XCTAssertEqual(registry.registration(named: name)?.origin, "builtin", name)
            XCTAssertFalse(registry.registration(named: name)?.summary.isEmpty ?? true, name)
        }
    }

    func testDescribeListsConfigKeysAndWeights() throws {
        let description = try XCTUnwrap(LayerRegistry.withBuiltins().describe("Dense"))
        XCTAssertEqual(description.keys.map(\.name), ["units", "activation", "use_bias"])
        XCTAssertNil(description.keys[0].defaultValue)
        XCTAssertEqual(description.keys[2].defaultValue, "true")
        XCTAssertEqual(description.weights.map(\.name), ["kernel", "bias"])
    }
}
