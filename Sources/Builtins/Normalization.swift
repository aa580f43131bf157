import Foundation
import LayerRegistry

/// The input axes a normalization layer's `axis` names (an integer or a list, negative from the
/// end; axis 0 is the batch), as indices into the per-sample shape.
func normalizedAxes(_ context: LayerContext, default defaultAxis: Int = -1) throws -> [Int] {
    let rank = context.inputShape.count + 1
    var raw: [Int]
    if case .array? = context.value("axis") { raw = try context.intList("axis") } else { raw = [try context.int("axis", default: defaultAxis)] }
    raw = raw.map { $0 < 0 ? $0 + rank : $0 }
    guard !raw.isEmpty, raw.allSatisfy({ $0 >= 1 && $0 < rank }), Set(raw).count == raw.count else {
        throw context.error("'axis' must name distinct axes other than the batch axis of an input of rank \(rank), found \(context.value("axis")?.brief() ?? "-1")", key: "axis")
    }
    for axis in raw { _ = try context.inputDimension(axis - 1) }
    return raw.sorted().map { $0 - 1 }
}

/// `BatchNormalization` at inference: y = (x − moving_mean) / √(moving_variance + epsilon) · gamma + beta,
/// folded into one scale and shift per feature at the first call (not at load: a model built to be
/// validated never pays for tables its weights do not hold).
///
/// Config: `axis` (-1), `epsilon` (0.001), `center` (true: weight `beta`), `scale` (true: weight
/// `gamma`). Weights `moving_mean`, `moving_variance`, each of the normalized axes' shape.
public struct BatchNormalization: Layer {
    public let gamma: Weight?
    public let beta: Weight?
    public let mean: Weight
    public let variance: Weight
    public let epsilon: Float
    /// Elements of the normalized axes (features).
    public let features: Int
    /// Elements after the normalized axes (1 when the last axis is normalized).
    public let inner: Int
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }
    private let folded = MadeOnDemand<(scale: [Float], shift: [Float])>()

    static func factory(_ context: LayerContext) throws -> any Layer {
        let axes = try normalizedAxes(context)
        guard let first = axes.first, let last = axes.last, axes == Array(first...last) else {
            throw context.error("'axis' must name adjacent axes, found \(axes.map { $0 + 1 })", key: "axis")
        }
        let shape = try axes.map { try context.inputDimension($0) }
        let features = try context.inputCount(axes: axes)
        let inner = try context.inputCount(axes: (last + 1)..<context.inputShape.count)
        let epsilon = try context.float("epsilon", default: 1e-3)
        guard epsilon >= 0 else { throw context.error("'epsilon' must not be negative, found \(epsilon)", key: "epsilon") }
        let gamma = try context.bool("scale", default: true) ? try context.weight("gamma", shape: shape) : nil
        let beta = try context.bool("center", default: true) ? try context.weight("beta", shape: shape) : nil
        let mean = try context.weight("moving_mean", shape: shape)
        let variance = try context.weight("moving_variance", shape: shape)
        return BatchNormalization(gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: epsilon, features: features,
                                  inner: inner, outputShape: context.inputShape)
    }

    /// One scale and shift per feature: scale = gamma / √(variance + epsilon), shift = beta − mean · scale.
    func fold() -> (scale: [Float], shift: [Float]) {
        var scale = [Float](repeating: 0, count: features), shift = scale
        for i in 0..<features {
            var inverse = 1 / (variance[i] + epsilon).squareRoot()
            if let gamma { inverse *= gamma[i] }
            scale[i] = inverse
            shift[i] = (beta?[i] ?? 0) - mean[i] * inverse
        }
        return (scale, shift)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        let features = self.features
        guard let (scale, shift) = folded.get(now: true, { fold() }) else { return output }
        output.data.withUnsafeMutableBufferPointer { y in
            if inner == 1 {
                var index = 0
                while index + features <= y.count {
                    for c in 0..<features { y[index + c] = y[index + c] * scale[c] + shift[c] }
                    index += features
                }
            } else {
                for index in 0..<y.count {
                    let c = (index / inner) % features
                    y[index] = y[index] * scale[c] + shift[c]
                }
            }
        }
        return output
    }
}

/// `LayerNormalization` and `RMSNormalization`: normalize each sample over the trailing `axis`
/// axes. LayerNormalization: y = (x − mean) / √(var + epsilon) · gamma + beta (config `epsilon`
/// 0.001, `center`, `scale`, `rms_scaling`, which gives y = x / √(var + epsilon) · gamma);
/// RMSNormalization: y = x / √(mean(x²) + epsilon) · scale (config `epsilon` 1e-6, weight `scale`).
public struct GroupNormalization: Layer {
    public let size: Int
    public let epsilon: Float
    /// Whether the mean is subtracted from x (LayerNormalization without `rms_scaling`).
    public let centered: Bool
    /// Whether the variance is taken around the mean (LayerNormalization, `rms_scaling` too) or
    /// around zero, i.e. mean(x²) (RMSNormalization).
    public let varianceAroundMean: Bool
    public let gamma: Weight?
    public let beta: Weight?
    public let outputShape: [Int?]
    /// LayerNormalization passes the mask on; RMSNormalization does not support masking, so
    /// Keras drops the mask there and the layers after it see every step.
    public let passesMask: Bool
    public var maskBehavior: MaskBehavior { passesMask ? .propagates : .drops }

    static func factory(rms: Bool) -> LayerFactory {
        { context in
            let axes = try normalizedAxes(context)
            guard axes == Array((context.inputShape.count - axes.count)..<context.inputShape.count) else {
                throw context.error("'axis' must name the last axes of the input (found \(axes.map { $0 + 1 })); other layouts are not supported yet", key: "axis")
            }
            let shape = try axes.map { try context.inputDimension($0) }
            let size = try context.inputCount(axes: axes)
            let epsilon = try context.float("epsilon", default: rms ? 1e-6 : 1e-3)
            guard epsilon >= 0 else { throw context.error("'epsilon' must not be negative, found \(epsilon)", key: "epsilon") }
            if rms {
                return GroupNormalization(size: size, epsilon: epsilon, centered: false, varianceAroundMean: false,
                                          gamma: try context.weight("scale", shape: shape), beta: nil, outputShape: context.inputShape,
                                          passesMask: false)
            }
            // rms_scaling (deprecated in Keras 3) is not RMS normalization: Keras computes
            // x / sqrt(var(x) + eps) · gamma, the variance around the mean, x itself not centred.
            let rmsScaling = try context.bool("rms_scaling", default: false)
            let gamma = try context.bool("scale", default: true) || rmsScaling ? try context.weight("gamma", shape: shape) : nil
            let beta = try context.bool("center", default: true) && !rmsScaling ? try context.weight("beta", shape: shape) : nil
            return GroupNormalization(size: size, epsilon: epsilon, centered: !rmsScaling, varianceAroundMean: true,
                                      gamma: gamma, beta: beta, outputShape: context.inputShape, passesMask: true)
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        let n = size
        output.data.withUnsafeMutableBufferPointer { y in
            var start = 0
            while start + n <= y.count {
                var mean = 0.0
                if varianceAroundMean {
                    for i in 0..<n { mean += Double(y[start + i]) }
                    mean /= Double(n)
                }
                var variance = 0.0
                for i in 0..<n {
                    let d = Double(y[start + i]) - mean
                    variance += d * d
                }
                variance /= Double(n)
                let inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
                let shift = centered ? Float(mean) : 0
                for i in 0..<n {
                    var value = (y[start + i] - shift) * inverse
                    if let gamma { value *= gamma[i] }
                    if let beta { value += beta[i] }
                    y[start + i] = value
                }
                start += n
            }
        }
        return output
    }
}

/// `UnitNormalization`: x / ‖x‖₂ over `axis` (-1).
public struct UnitNormalization: Layer {
    public let size: Int
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let axes = try normalizedAxes(context)
        guard axes == Array((context.inputShape.count - axes.count)..<context.inputShape.count) else {
            throw context.error("'axis' must name the last axes of the input", key: "axis")
        }
        return UnitNormalization(size: try context.inputCount(axes: axes), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        var start = 0
        while start + size <= output.count {
            var squares = 0.0
            for i in 0..<size { squares += Double(output.data[start + i]) * Double(output.data[start + i]) }
            let inverse = Float(1 / max(squares, 1e-12).squareRoot())
            for i in 0..<size { output.data[start + i] *= inverse }
            start += size
        }
        return output
    }
}

extension Builtins {
    static func registerNormalization(_ registry: LayerRegistry) {
        registry.register("BatchNormalization", origin: "builtin", summary: "Normalizes with the moving statistics (inference).", factory: BatchNormalization.factory)
        registry.register("LayerNormalization", origin: "builtin", summary: "Normalizes each sample over its last axes.", factory: GroupNormalization.factory(rms: false))
        registry.register("RMSNormalization", origin: "builtin", summary: "Divides each sample by its root mean square over the last axes.", factory: GroupNormalization.factory(rms: true))
        registry.register("UnitNormalization", origin: "builtin", summary: "Scales each sample to unit L2 norm.", factory: UnitNormalization.factory)
    }
}
