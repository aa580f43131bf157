import Foundation
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
        let maxValue = try context.optionalDouble("max_value").map(Float.init)
        let slope = try context.float("negative_slope", default: 0)
        let threshold = try context.float("threshold", default: 0)
        if let maxValue, maxValue < 0 { throw context.error("'max_value' must not be negative, found \(maxValue)", key: "max_value") }
        if slope < 0 { throw context.error("'negative_slope' must not be negative, found \(slope)", key: "negative_slope") }
        let plain: Activation? = slope == 0 && threshold == 0 ? (maxValue == nil ? .relu : maxValue == 6 ? .relu6 : nil) : nil
        return ElementwiseActivation(activation: plain, function: { x in
            var y = x > threshold ? x : 0
            if let maxValue { y = min(max(y, 0), maxValue) }
            if slope != 0 { y -= slope * max(threshold - x, 0) }
            return y
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
        return ElementwiseActivation(activation: .elu(alpha: alpha), function: { $0 > 0 ? $0 : alpha * Foundation.expm1($0) }, outputShape: context.inputShape)
    }

    /// Config: `theta` (1.0): x where x > theta, else 0.
    static func thresholdedFactory(_ context: LayerContext) throws -> any Layer {
        let theta = try context.float("theta", default: 1)
        return ElementwiseActivation(function: { $0 > theta ? $0 : 0 }, outputShape: context.inputShape)
    }
}

/// `PReLU`: x for x ≥ 0, alpha · x below, with a learned `alpha` shared along `shared_axes`.
/// Each element's alpha is found by walking the sample's coordinates, so nothing larger than
/// `alpha` itself is built at load.
public struct PReLU: Layer {
    public let alpha: Weight
    /// The per-sample input shape, and alpha's stride along each of its axes (0 where shared).
    let dims: [Int]
    let alphaStrides: [Int]
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let dims = try (0..<context.inputShape.count).map { try context.inputDimension($0) }
        try context.sampleCount(dims, of: "the input")
        var shared = Set<Int>()
        if context.has("shared_axes") {
            if case .array? = context.value("shared_axes") { shared = Set(try context.intList("shared_axes")) } else { shared = [try context.int("shared_axes")] }
        }
        guard shared.allSatisfy({ $0 >= 1 && $0 <= dims.count }) else {
            throw context.error("'shared_axes' must name axes 1...\(dims.count), found \(shared.sorted())", key: "shared_axes")
        }
        let alphaShape = dims.enumerated().map { shared.contains($0.offset + 1) ? 1 : $0.element }
        let alpha = try context.weight("alpha", shape: alphaShape)
        var strides = [Int](repeating: 0, count: dims.count)
        var stride = 1
        for axis in dims.indices.reversed() where alphaShape[axis] != 1 {
            strides[axis] = stride
            stride *= alphaShape[axis]
        }
        return PReLU(alpha: alpha, dims: dims, alphaStrides: strides, outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        guard !dims.isEmpty else {
            for i in output.data.indices where output.data[i] < 0 { output.data[i] *= alpha[0] }
            return output
        }
        let last = dims.count - 1
        var coordinates = [Int](repeating: 0, count: dims.count)
        var target = 0
        output.data.withUnsafeMutableBufferPointer { y in
            for i in y.indices {
                if y[i] < 0 { y[i] *= alpha[target] }
                // Step to the next element of the sample, wrapping to the first at its end.
                var axis = last
                while axis >= 0 {
                    coordinates[axis] += 1
                    target += alphaStrides[axis]
                    if coordinates[axis] < dims[axis] { break }
                    target -= alphaStrides[axis] * dims[axis]
                    coordinates[axis] = 0
                    axis -= 1
                }
            }
        }
        return output
    }
}

/// `Softmax` over `axis` (-1; an integer or a list of adjacent axes).
public struct SoftmaxLayer: Layer {
    /// Elements in the softmax group and the stride between them.
    public let length: Int
    public let inner: Int
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let axes = try normalizedAxes(context)
        guard let first = axes.first, let last = axes.last, axes == Array(first...last) else {
            throw context.error("'axis' must name adjacent axes", key: "axis")
        }
        let inner = try context.inputCount(axes: (last + 1)..<context.inputShape.count)
        return SoftmaxLayer(length: try context.inputCount(axes: axes), inner: inner, outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        if inner == 1 {
            Activation.softmax.apply(&output.data, axisLength: length)
            return output
        }
        let block = length * inner
        var group = [Float](repeating: 0, count: length)
        for start in stride(from: 0, to: output.count, by: block) {
            for offset in 0..<inner {
                for k in 0..<length { group[k] = output.data[start + k * inner + offset] }
                Activation.softmax.apply(&group, axisLength: length)
                for k in 0..<length { output.data[start + k * inner + offset] = group[k] }
            }
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
