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

    /// Keys a factory reads raw (`value`) or as "a number or null" are listed too, so
    /// `nnbuild layers NAME` shows every key the layer takes.
    func testDescribeListsFreeFormAndOptionalKeys() throws {
        let registry = LayerRegistry.withBuiltins()
        let padding = try XCTUnwrap(registry.describe("ZeroPadding2D")).keys
        XCTAssertEqual(padding.first { $0.name == "padding" }?.defaultValue, "((1, 1), (1, 1))")
        let cropping = try XCTUnwrap(registry.describe("Cropping1D")).keys
        XCTAssertEqual(cropping.first { $0.name == "cropping" }?.kind, "integer or pair")
        let attention = try XCTUnwrap(registry.describe("MultiHeadAttention")).keys.map(\.name)
        XCTAssertTrue(attention.contains("output_shape") && attention.contains("attention_axes"), "\(attention)")
    }
}
