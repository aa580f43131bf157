import XCTest
@testable import LayerRegistry

/// y = x · scale (a weight of the input's width), for exercising the registry without built-ins.
struct Scale: Layer {
    let scale: Weight
    let outputShape: [Int?]
    var maskBehavior: MaskBehavior { .propagates }

    func forward(_ input: Tensor) throws -> Tensor {
        let width = scale.count
        return Tensor(shape: input.shape, data: input.data.enumerated().map { $1 * scale[$0 % width] })
    }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let width = try context.inputDimension(-1)
        return Scale(scale: try context.weight("scale", shape: [width]), outputShape: context.inputShape)
    }
}

/// Wraps any registered layer given under config key `layer`, as Bidirectional does.
struct Wrap: Layer {
    let inner: any Layer
    var outputShape: [Int?] { inner.outputShape }

    func forward(_ input: Tensor) throws -> Tensor { try inner.apply(input) }

    static func factory(_ context: LayerContext) throws -> any Layer {
        Wrap(inner: try context.buildNested(try context.nestedSpec("layer")))
    }
}

func spec(_ layers: String, input: String = "[null, 2]") -> ModelDescription {
    // swiftlint:disable:next force_try
    try! ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": \#(input)}}, \#(layers)]}}"#, source: "m.json")
}

func blob(_ tensors: [(String, [Float])]) throws -> WeightStore {
    var offset = 0
    var entries: [String] = []
    var data: [UInt8] = []
    for (name, values) in tensors {
        entries.append("\"\(name)\": {\"dtype\": \"F32\", \"shape\": [\(values.count)], \"data_offsets\": [\(offset), \(offset + values.count * 4)]}")
        offset += values.count * 4
        for value in values { data += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
    }
    let header = Array(("{" + entries.joined(separator: ", ") + "}").utf8)
    let length = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init)
    return try WeightStore(bytes: length + header + data, source: "w.safetensors")
}

final class RegistryTests: XCTestCase {
    var registry: LayerRegistry!

    override func setUp() {
        registry = LayerRegistry()
        registry.register("InputLayer", origin: "test") { context in Scale.passThrough(context) }
        registry.register("Scale", aliases: ["Scaler"], factory: Scale.factory)
        registry.register("Wrap", factory: Wrap.factory)
    }

    func testBuildsAndRunsThroughRegisteredFactories() throws {
        let weights = try blob([("sequential/scale/scale", [2, 3])])
        let model = try Model.build(spec(#"{"class_name": "Scale", "config": {"name": "scale"}}"#), registry: registry, weights: weights)
        XCTAssertEqual(model.parameterCount, 2)
        let output = try model.predict(Tensor(shape: [1, 2], data: [1, 1]))
        XCTAssertEqual(output.data, [2, 3])
    }

    func testAliasAndRegisteredNameResolve() throws {
        XCTAssertTrue(registry.contains("Scaler"))
        let custom = LayerSpec(className: "Whatever", registeredName: "my_package>Scale", name: "s", config: .object([]), path: "p")
        XCTAssertNil(registry.registration(for: custom))
        registry.register("my_package>Scale", factory: Scale.factory)
        XCTAssertEqual(registry.registration(for: custom)?.name, "my_package>Scale")
    }

    func testOverridingReplacesTheFactory() throws {
        registry.register("Scale") { context in
            Scale(scale: Weight(name: "one", shape: [2], storage: FloatStorage([10, 10])), outputShape: context.inputShape)
        }
        let model = try Model.build(spec(#"{"class_name": "Scale"}"#), registry: registry)
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [1, 2])).data, [10, 20])
    }

    func testUnknownTypeListsClosestNames() {
        XCTAssertThrowsError(try Model.build(spec(#"{"class_name": "Scal"}"#), registry: registry)) { error in
            XCTAssertEqual((error as? NNError)?.kind, .unknownLayer)
            XCTAssertTrue("\(error)".contains("closest registered: 'Scale'"), "\(error)")
            XCTAssertEqual((error as? NNError)?.location, "m.json: config.layers[1].class_name")
        }
    }

    func testWeightNamesResolveAcrossKerasDialects() throws {
        for name in ["sequential/scale/scale", "scale/scale:0", "scale/scale", "model/scale/cell/scale"] {
            let model = try Model.build(spec(#"{"class_name": "Scale", "config": {"name": "scale"}}"#), registry: registry, weights: try blob([(name, [4, 5])]))
            XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [1, 1])).data, [4, 5], name)
        }
    }

    /// tf-keras let a layer's name hold `/` (MobileNetV3's `Conv/BatchNorm`); its tensors then
    /// spell the name over several path segments, and bind by them.
    func testALayerNameHoldingSlashesBindsOverSeveralSegments() throws {
        let layer = #"{"class_name": "Scale", "config": {"name": "block/se/scale"}}"#
        for name in ["block/se/scale/scale:0", "model/block/se/scale/scale"] {
            let model = try Model.build(spec(layer), registry: registry, weights: try blob([(name, [4, 5])]))
            XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [1, 1])).data, [4, 5], name)
        }
        XCTAssertThrowsError(try Model.build(spec(layer), registry: registry, weights: try blob([("block/scale/se/scale", [4, 5])]))) { error in
            XCTAssertTrue(error.nnProblems[0].contains("weight 'scale' of shape [2] is missing"), error.nnProblems[0])
        }
        XCTAssertEqual(WeightBinder.position(of: "a/b", in: ["x", "a", "b", "k"][...]), 1..<3)
        XCTAssertNil(WeightBinder.position(of: "a/b", in: ["a", "x", "b", "k"][...]))
    }

    /// A variable Keras 2 named otherwise (DepthwiseConv2D's `depthwise_kernel`, Keras 3's
    /// `kernel`): the other name binds only where no tensor has the variable's own, and a missing
    /// weight's message names both.
    func testAVariableBindsUnderItsOtherNameOnlyWhenItsOwnIsAbsent() throws {
        registry.register("Depthwise") { context in
            Scale(scale: try context.weight("kernel", alsoNamed: ["depthwise_kernel"], shape: [2]), outputShape: context.inputShape)
        }
        let layer = #"{"class_name": "Depthwise", "config": {"name": "dw"}}"#
        let model = try Model.build(spec(layer), registry: registry, weights: try blob([("dw/depthwise_kernel:0", [4, 5])]))
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [1, 1])).data, [4, 5])
        // Both there: `kernel` binds, and the other is left over (every tensor must be used).
        XCTAssertThrowsError(try Model.build(spec(layer), registry: registry,
                                             weights: try blob([("dw/kernel", [6, 7]), ("dw/depthwise_kernel", [4, 5])]))) { error in
            XCTAssertEqual(error.nnProblems.count, 1, error.nnProblems.joined(separator: "\n"))
            XCTAssertTrue(error.nnProblems[0].contains("tensor 'dw/depthwise_kernel' (shape [2]) is not used"), error.nnProblems[0])
        }
        XCTAssertThrowsError(try Model.build(spec(layer), registry: registry, weights: try blob([("dw/pointwise_kernel", [1, 1])]))) { error in
            XCTAssertTrue(error.nnProblems[0].contains("no tensor in w.safetensors is named like '…dw/kernel' or '…dw/depthwise_kernel'"),
                          error.nnProblems[0])
        }
    }

    func testNestedLayersResolveUnderTheWrapperScope() throws {
        let layers = #"{"class_name": "Wrap", "config": {"name": "wrap", "layer": {"class_name": "Scale", "config": {"name": "scale"}}}}, {"class_name": "Scale", "config": {"name": "scale_1"}}"#
        let weights = try blob([("sequential/wrap/scale/scale", [2, 2]), ("sequential/scale_1/scale", [3, 3])])
        let model = try Model.build(spec(layers), registry: registry, weights: weights)
        XCTAssertEqual(model.nodes[1].parameterCount, 2)
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [1, 1])).data, [6, 6])
    }

    func testEveryWeightProblemIsReportedTogether() throws {
        let layers = #"{"class_name": "Scale", "config": {"name": "a"}}, {"class_name": "Scale", "config": {"name": "b"}}, {"class_name": "Scale", "config": {"name": "c"}}"#
        let weights = try blob([("a/scale", [1, 2, 3]), ("c/x/scale", [1, 1]), ("c/y/scale", [1, 1]), ("extra/bias", [0])])
        XCTAssertThrowsError(try Model.build(spec(layers), registry: registry, weights: weights)) { error in
            let problems = error.nnProblems
            XCTAssertEqual(problems.count, 4, problems.joined(separator: "\n"))
            XCTAssertTrue(problems[0].contains("layer 'a' (Scale): weight 'scale' ('a/scale') has shape [3], expected [2]"), problems[0])
            XCTAssertTrue(problems[1].contains("layer 'b' (Scale): weight 'scale' of shape [2] is missing"), problems[1])
            XCTAssertTrue(problems[2].contains("layer 'c' (Scale): weight 'scale' is ambiguous"), problems[2])
            XCTAssertTrue(problems[3].contains("tensor 'extra/bias' (shape [1]) is not used"), problems[3])
        }
    }

    func testAbsurdWeightSizesFailBeforeAllocating() {
        registry.register("Huge") { context in
            Scale(scale: try context.weight("kernel", shape: [1_000_000, 1_000_000]), outputShape: context.inputShape)
        }
        XCTAssertThrowsError(try Model.build(spec(#"{"class_name": "Huge"}"#), registry: registry)) { error in
            XCTAssertTrue("\(error)".contains("4.0 TB"), "\(error)")
        }
    }

    func testInputShapeIsChecked() throws {
        let model = try Model.build(spec(#"{"class_name": "Scale"}"#), registry: registry)
        XCTAssertThrowsError(try model.predict(Tensor(shape: [1, 3], data: [1, 2, 3]))) { error in
            XCTAssertEqual("\(error)", "input: input has shape 1×3, expected (None, 2) with the batch first")
        }
        XCTAssertEqual(try model.batch(from: NumericArray(shape: [2], values: [1, 2]), source: "x").shape, [1, 2])
    }
}

extension Scale {
    static func passThrough(_ context: LayerContext) -> any Layer {
        Scale(scale: Weight(name: "one", shape: [1], storage: FloatStorage([1])), outputShape: context.inputShape)
    }
}
