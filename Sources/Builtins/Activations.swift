#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

/// `ReLU`, `LeakyReLU`, `ELU`, `ThresholdedReLU`, `PReLU` and `Softmax` as layers.
public struct ElementwiseActivation: ElementwiseActivationLayer {
    /// A named activation when the config reduces to one (vectorized), else a general function.
    public let activation: Activation?
    public let function: @Sendable (Float) -> Float
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    var elementwiseActivation: Activation? { activation }

    init(activation: Activation? = nil, function: @escaping @Sendable (Float) -> Float, outputShape: [Int?]) {
        self.activation = activation
        self.function = function
        self.outputShape = outputShape
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        if let activation {
            activation.apply(&output.data, axisLength: 1)
            return output
        }
        output.data.withUnsafeMutableBufferPointer { y in
            for i in y.indices { y[i] = function(y[i]) }
        }
        return output
    }

    /// Keras 3's relu(x, negative_slope, max_value, threshold): x above the threshold (clipped to
    /// max_value), negative_slope · (x − threshold) below it.
    /// Config: `max_value` (null), `negative_slope` (0), `threshold` (0).
    static func reluFactory(_ context: LayerContext) throws -> any Layer {
        let given = (maxValue: try context.optionalDouble("max_value"), slope: try context.double("negative_slope", default: 0),
                     threshold: try context.double("threshold", default: 0))
        if let problem = Activation.reluProblem(maxValue: given.maxValue, negativeSlope: given.slope, threshold: given.threshold) {
            throw context.error(problem.message, key: problem.key)
        }
        let maxValue = given.maxValue.map(Float.init), slope = Float(given.slope), threshold = Float(given.threshold)
        return ElementwiseActivation(activation: .relu(maxValue: maxValue, negativeSlope: slope, threshold: threshold), function: { x in
            Activation.parametricReluValue(x, maxValue: maxValue, negativeSlope: slope, threshold: threshold)
        }, outputShape: context.inputShape)
    }

    /// Config: `negative_slope` (Keras 3) or `alpha` (Keras 2), default 0.3; as in Keras 3's
    /// constructor, `alpha` wins when both are given.
    static func leakyFactory(_ context: LayerContext) throws -> any Layer {
        let slope = try context.float(context.has("alpha") ? "alpha" : "negative_slope", default: 0.3)
        return ElementwiseActivation(activation: .leakyRelu(negativeSlope: slope), function: { $0 >= 0 ? $0 : slope * $0 }, outputShape: context.inputShape)
    }

    /// Config: `alpha` (1.0).
    static func eluFactory(_ context: LayerContext) throws -> any Layer {
        let alpha = try context.float("alpha", default: 1)
        return ElementwiseActivation(activation: .elu(alpha: alpha), function: { $0 > 0 ? $0 : alpha * LibM.expm1($0) }, outputShape: context.inputShape)
    }

    /// Config: `theta` (1.0): x where x > theta, else 0.
    static func thresholdedFactory(_ context: LayerContext) throws -> any Layer {
        let theta = try context.float("theta", default: 1)
        return ElementwiseActivation(function: { $0 > theta ? $0 : 0 }, outputShape: context.inputShape)
    }
}

/// `PReLU`: x for x ≥ 0, alpha · x below, with a learned `alpha` shared along `shared_axes`.
/// A shared axis may be of a length known only at run time (alpha is 1 long there). Each
/// element's alpha is found by walking the sample's coordinates (AxisLayout's parameter index), so
/// nothing larger than `alpha` itself is built.
public struct PReLU: Layer {
    public let alpha: Weight
    /// The sample axes alpha varies along (every axis not shared).
    let alphaAxes: Set<Int>
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let rank = context.inputShape.count
        var shared = Set<Int>()
        if context.has("shared_axes") {
            if case .array? = context.value("shared_axes") { shared = Set(try context.intList("shared_axes")) } else if case .null? = context.value("shared_axes") {} else { shared = [try context.int("shared_axes")] }
        }
        guard shared.allSatisfy({ $0 >= 1 && $0 <= rank }) else {
            throw context.error("'shared_axes' must name axes 1...\(rank), found \(shared.sorted())", key: "shared_axes")
        }
        let alphaShape = try (0..<rank).map { axis -> Int in
            if shared.contains(axis + 1) { return 1 }
            guard let size = context.inputShape[axis] else {
                throw context.error("input axis \(axis + 1) has a size known only at run time, so alpha cannot be sized along it; expected it in 'shared_axes', found \(shared.sorted())", key: "shared_axes")
            }
            return size
        }
        try context.sampleCount(alphaShape, of: "alpha")
        let alpha = try context.weight("alpha", shape: alphaShape)
        return PReLU(alpha: alpha, alphaAxes: Set((0..<rank).filter { !shared.contains($0 + 1) }), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        let layout = AxisLayout(dims: Array(input.shape.dropFirst()), reduced: [], parameterAxes: alphaAxes)
        let size = layout.sampleSize
        guard size > 0 else { return output }
        output.data.withUnsafeMutableBufferPointer { y in
            guard let base = y.baseAddress else { return }
            var start = 0
            while start + size <= y.count {
                let sample = base + start
                layout.walk { offset, _, parameter in if sample[offset] < 0 { sample[offset] *= alpha[parameter] } }
                start += size
            }
        }
        return output
    }
}

/// `Softmax` over `axis` (-1; an integer or a list of any axes, adjacent or not). With a mask on
/// (batch, steps) input, as Keras: masked steps enter as -1e9 and leave as 0.
public struct SoftmaxLayer: Layer {
    /// Sample axes the softmax runs over.
    public let reducedAxes: Set<Int>
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let axes = try normalizedAxes(context)
        try context.sampleCount(try axes.map { try context.inputDimension($0) }, of: "the softmax axes", key: "axis")
        // Keras broadcasts the (batch, steps) mask against the input from the LAST axis, which
        // lines steps up with the input's last axis: only (batch, steps) input makes sense of it.
        if context.inputMasks.first == true, context.inputShape.count != 1 {
            throw context.error("receives a (batch, steps) mask on input \(describeShape(context.inputShape)); Keras aligns that mask with the input's last axes, which fails or mixes axes, so nnbuild refuses it (drop the mask before the Softmax)")
        }
        return SoftmaxLayer(reducedAxes: Set(axes), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        if let mask = input.mask, mask.count == output.count {
            for i in output.data.indices where !mask[i] { output.data[i] = -1e9 }
            Activation.softmax.apply(&output.data, axisLength: output.shape.last ?? 1)
            for i in output.data.indices where !mask[i] { output.data[i] = 0 }
            return output
        }
        let layout = AxisLayout(dims: Array(input.shape.dropFirst()), reduced: reducedAxes, parameterAxes: [])
        if layout.isTrailing {
            Activation.softmax.apply(&output.data, axisLength: layout.sampleSize / Swift.max(layout.groupCount, 1))
        } else {
            output.data.withUnsafeMutableBufferPointer { applyOverGroups($0, layout: layout, .softmax) }
        }
        return output
    }
}

extension Builtins {
    static func registerActivations(_ registry: LayerRegistry) {
        registry.register("ReLU", origin: "builtin", summary: "relu with max_value, negative_slope and threshold.", factory: ElementwiseActivation.reluFactory)
        registry.register("LeakyReLU", origin: "builtin", summary: "x, or negative_slope · x below zero.", factory: ElementwiseActivation.leakyFactory)
        registry.register("ELU", origin: "builtin", summary: "x, or alpha · (exp(x) − 1) below zero.", factory: ElementwiseActivation.eluFactory)
        registry.register("ThresholdedReLU", origin: "builtin", summary: "x above theta, else 0 (Keras 2).", factory: ElementwiseActivation.thresholdedFactory)
        registry.register("PReLU", origin: "builtin", summary: "Leaky ReLU with a learned slope per element.", factory: PReLU.factory)
        registry.register("Softmax", origin: "builtin", summary: "Softmax over axis.", factory: SoftmaxLayer.factory)
    }
}
