import XCTest
@testable import Builtins
import LayerRegistry

final class ActivationsTests: XCTestCase {
    let x: [Float] = [-3, -1, -0.5, 0, 0.5, 1, 3]

    func apply(_ activation: Activation) -> [Float] {
        var values = x
        activation.apply(&values, axisLength: values.count)
        return values
    }

    /// Values printed by Keras 3.15.1: keras.activations.<name>(np.array([-3, -1, -0.5, 0, 0.5, 1, 3])).
    func testActivationsMatchKerasValues() {
        assertClose(apply(.gelu(approximate: true)), [-0.0036374330520629883, -0.15880799293518066, -0.1542859971523285, 0.0, 0.3457140028476715, 0.8411920070648193, 2.9963626861572266])
        assertClose(apply(.gelu(approximate: false)), [-0.004049695562571287, -0.15865525603294373, -0.1542687714099884, 0.0, 0.3457312285900116, 0.8413447141647339, 2.995950222015381])
        assertClose(apply(.hardSigmoid), [0.0, 0.3333333432674408, 0.4166666567325592, 0.5, 0.5833333134651184, 0.6666666865348816, 1.0])
        assertClose(apply(.selu), [-1.6705687046051025, -1.1113307476043701, -0.6917581558227539, 0.0, 0.5253505110740662, 1.0507010221481323, 3.1521029472351074])
        assertClose(apply(.mish), [-0.14564746618270874, -0.30340149998664856, -0.22074377536773682, 0.0, 0.37524524331092834, 0.8650984168052673, 2.98653507232666])
    }

    func testEveryNameResolvesAndUnknownNamesDoNot() {
        for name in Activation.names { XCTAssertNotNil(Activation.named(name), name) }
        XCTAssertNil(Activation.named("relu7"))
    }

    func testReluLayerFollowsKeras3Formula() throws {
        // threshold 0.5, negative_slope 0.2, max_value 2: below the threshold 0.2·(x − 0.5).
        let model = try buildSingle(#"{"class_name": "ReLU", "config": {"max_value": 2.0, "negative_slope": 0.2, "threshold": 0.5}}"#, input: [5])
        assertClose(try model.predict(Tensor(shape: [1, 5], data: [-1, 0.5, 1, 3, 0])).data, [-0.3, 0, 1, 2, -0.1])
    }

    func testLeakyReluReadsKeras2Alpha() throws {
        let model = try buildSingle(#"{"class_name": "LeakyReLU", "config": {"alpha": 0.1}}"#, input: [2])
        assertClose(try model.predict(Tensor(shape: [1, 2], data: [-2, 2])).data, [-0.2, 2])
    }

    func testSoftmaxOverAnInnerAxis() throws {
        let model = try buildSingle(#"{"class_name": "Softmax", "config": {"axis": 1}}"#, input: [2, 2])
        assertClose(try model.predict(Tensor(shape: [1, 2, 2], data: [0, 1, 0, 1])).data, [0.5, 0.5, 0.5, 0.5])
    }

    func testActivationFixturesMatchKeras() {
        for name in ["activations", "activation_layers", "relu_layer", "dense_relu", "dense_3d", "activation_layer_objects"] { assertMatchesKeras(name) }
    }

    /// Keras 3's LeakyReLU takes `alpha` over `negative_slope` when a config has both.
    func testLeakyReluAlphaWinsOverNegativeSlope() throws {
        let model = try buildSingle(#"{"class_name": "LeakyReLU", "config": {"negative_slope": 0.5, "alpha": 0.1}}"#, input: [2])
        assertClose(try model.predict(Tensor(shape: [1, 2], data: [-1, 2])).data, [-0.1, 2])
    }

    /// A ReLU layer object with any of its parameters is a layer's activation (the fixture
    /// `relu_activation_objects` checks them against Keras); one Keras refuses is refused, and an
    /// activation layer with weights (PReLU) is refused, naming what to do.
    func testActivationLayerObjects() throws {
        let capped = #"{"class_name": "Dense", "config": {"units": 2, "activation": {"module": "keras.layers", "class_name": "ReLU", "config": {"max_value": 3.0, "negative_slope": 0.5, "threshold": 1.0}}}}"#
        let model = try buildSingle(capped, input: [2])
        let input = Tensor(shape: [1, 2], data: [1, 1])
        let dense = try XCTUnwrap(model.nodes.last?.layer as? Dense)
        let pre = (0..<2).map { unit in dense.kernel.values[unit] + dense.kernel.values[2 + unit] + (dense.bias?.values[unit] ?? 0) }
        assertClose(try model.predict(input).data, pre.map { Activation.parametricReluValue($0, maxValue: 3, negativeSlope: 0.5, threshold: 1) })
        let negative = #"{"class_name": "Dense", "config": {"units": 2, "activation": {"module": "keras.layers", "class_name": "ReLU", "config": {"threshold": -1.0}}}}"#
        XCTAssertThrowsError(try buildSingle(negative, input: [2])) { error in
            XCTAssertTrue(error.nnProblems.joined().contains("'threshold' must not be negative"), error.nnProblems.joined())
        }
        let prelu = #"{"class_name": "Dense", "config": {"units": 2, "activation": {"module": "keras.layers", "class_name": "PReLU", "config": {}}}}"#
        XCTAssertThrowsError(try buildSingle(prelu, input: [2])) { error in
            XCTAssertTrue(error.nnProblems.joined().contains("put a separate PReLU layer after this one"), error.nnProblems.joined())
        }
    }
}
