import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
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

    /// The scale and shift per feature `forward` applies, for a layer that applies them in its own
    /// pass (a convolution's store, `ConvolutionStore`) with the same arithmetic: y·scale + shift.
    func channelAffine() -> (scale: [Float], shift: [Float])? { folded.get(now: true, { fold() }) }

    /// This layer over the last axis of data of per-sample shape `outputShape` whose last axis
    /// holds its features: the same weights applied to channels-last data (`ChannelsFirst`).
    func overLastAxis(outputShape: [Int?]) -> BatchNormalization {
        BatchNormalization(gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: epsilon, features: features,
                           inner: 1, outputShape: outputShape)
    }

    /// Whether the layer normalizes only the last axis, of `features` channels.
    func normalizesLastAxis(features: Int) -> Bool { inner == 1 && self.features == features }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        let features = self.features
        guard let (scale, shift) = channelAffine() else { return output }
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

/// `LayerNormalization`, `RMSNormalization` and `GroupNormalization`: each sample normalized over
/// groups of elements that share a mean and variance, then scaled and shifted per parameter slot
/// (AxisLayout: any axes, not only the last ones).
/// - LayerNormalization: groups over `axis` (-1, an integer or a list):
///   y = (x − mean) / √(var + epsilon) · gamma + beta (config `epsilon` 0.001, `center`, `scale`,
///   `rms_scaling`, which gives y = x / √(var + epsilon) · gamma); gamma and beta of the axes' shape.
/// - RMSNormalization: y = x / √(mean(x²) + epsilon) · scale (config `axis`, `epsilon` 1e-6).
/// - GroupNormalization: the channel axis `axis` (-1) split into `groups` (32; -1 = one per
///   channel) groups, each normalized over its channels and every other axis but the batch;
///   `epsilon` 0.001, `center`, `scale`; gamma and beta per channel.
public struct AxisNormalization: Layer {
    /// Sample axes reduced for the statistics.
    public let reducedAxes: Set<Int>
    /// GroupNormalization's split of a channel axis into (groups, channels / groups).
    public let groupSplit: (axis: Int, groups: Int)?
    public let epsilon: Float
    /// Whether the mean is subtracted from x (not for RMSNormalization or `rms_scaling`).
    public let centered: Bool
    /// Whether the variance is taken around the mean (LayerNormalization, `rms_scaling` too) or
    /// around zero, i.e. mean(x²) (RMSNormalization).
    public let varianceAroundMean: Bool
    public let gamma: Weight?
    public let beta: Weight?
    public let outputShape: [Int?]
    /// LayerNormalization and GroupNormalization pass the mask on (Keras's supports_masking);
    /// RMSNormalization does not support masking, so Keras drops the mask there.
    public let passesMask: Bool
    public var maskBehavior: MaskBehavior { passesMask ? .propagates : .drops }

    static func factory(rms: Bool) -> LayerFactory {
        { context in
            let axes = try normalizedAxes(context)
            let shape = try axes.map { try context.inputDimension($0) }
            try context.sampleCount(shape, of: "the normalized axes", key: "axis")
            let epsilon = try context.float("epsilon", default: rms ? 1e-6 : 1e-3)
            guard epsilon >= 0 else { throw context.error("'epsilon' must not be negative, found \(epsilon)", key: "epsilon") }
            if rms {
                // Keras multiplies by `scale` unbroadcast (ops.rms_normalization), which fails
                // unless the axes are the trailing ones.
                guard axes == Array((context.inputShape.count - axes.count)..<context.inputShape.count) else {
                    throw context.error("'axis' must name the last axes of the input for RMSNormalization (Keras cannot broadcast its scale otherwise), found \(axes.map { $0 + 1 })", key: "axis")
                }
                return AxisNormalization(reducedAxes: Set(axes), groupSplit: nil, epsilon: epsilon, centered: false, varianceAroundMean: false,
                                         gamma: try context.weight("scale", shape: shape), beta: nil, outputShape: context.inputShape,
                                         passesMask: false)
            }
            // rms_scaling (deprecated in Keras 3) is not RMS normalization: Keras computes
            // x / sqrt(var(x) + eps) · gamma, the variance around the mean, x itself not centred.
            let rmsScaling = try context.bool("rms_scaling", default: false)
            let gamma = try context.bool("scale", default: true) || rmsScaling ? try context.weight("gamma", shape: shape) : nil
            let beta = try context.bool("center", default: true) && !rmsScaling ? try context.weight("beta", shape: shape) : nil
            return AxisNormalization(reducedAxes: Set(axes), groupSplit: nil, epsilon: epsilon, centered: !rmsScaling, varianceAroundMean: true,
                                     gamma: gamma, beta: beta, outputShape: context.inputShape, passesMask: true)
        }
    }

    /// Keras's GroupNormalization (normalization/group_normalization.py): `axis` one integer.
    static func groupFactory(_ context: LayerContext) throws -> any Layer {
        if case .array? = context.value("axis") {
            throw context.error("'axis' must be one integer for GroupNormalization, found \(context.value("axis")?.brief() ?? "")", key: "axis")
        }
        let axes = try normalizedAxes(context)
        guard axes.count == 1, let axis = axes.first else { throw context.error("'axis' must be one axis", key: "axis") }
        // Every key is read before the input is checked, so `nnbuild layers` lists them all.
        var groups = try context.int("groups", default: 32)
        let epsilon = try context.float("epsilon", default: 1e-3)
        let scale = try context.bool("scale", default: true), center = try context.bool("center", default: true)
        let channels = try context.inputDimension(axis)
        if groups == -1 { groups = channels }
        guard groups >= 1, groups <= channels, channels % groups == 0 else {
            throw context.error("'groups' must divide the \(channels) channels of axis \(axis + 1) (or be -1), found \(groups)", key: "groups")
        }
        guard epsilon >= 0 else { throw context.error("'epsilon' must not be negative, found \(epsilon)", key: "epsilon") }
        let gamma = scale ? try context.weight("gamma", shape: [channels]) : nil
        let beta = center ? try context.weight("beta", shape: [channels]) : nil
        return AxisNormalization(reducedAxes: [], groupSplit: (axis, groups), epsilon: epsilon, centered: true, varianceAroundMean: true,
                                 gamma: gamma, beta: beta, outputShape: context.inputShape, passesMask: true)
    }

    /// The layout of a sample of shape `dims`: GroupNormalization's channel axis becomes two axes,
    /// groups (kept) and channels within a group (reduced with every other axis).
    func layout(_ dims: [Int]) -> AxisLayout {
        guard let (axis, groups) = groupSplit else {
            return AxisLayout(dims: dims, reduced: reducedAxes, parameterAxes: reducedAxes)
        }
        let split = Array(dims[..<axis]) + [groups, dims[axis] / groups] + Array(dims[(axis + 1)...])
        return AxisLayout(dims: split, reduced: Set(split.indices).subtracting([axis]), parameterAxes: [axis, axis + 1])
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        let layout = layout(Array(input.shape.dropFirst()))
        output.data.withUnsafeMutableBufferPointer { y in
            if layout.isTrailing, groupSplit == nil, centered, varianceAroundMean {
                layerNormalizeRows(y, length: layout.sampleSize / Swift.max(layout.groupCount, 1), epsilon: epsilon,
                                   gamma: gamma?.values, beta: beta?.values)
            } else if layout.isTrailing {
                normalizeRows(y, length: layout.sampleSize / Swift.max(layout.groupCount, 1), epsilon: epsilon, centered: centered,
                              varianceAroundMean: varianceAroundMean, gamma: gamma?.values, beta: beta?.values)
            } else {
                normalizeGroups(y, layout: layout, epsilon: epsilon, centered: centered, varianceAroundMean: varianceAroundMean,
                                gamma: gamma?.values, beta: beta?.values)
            }
        }
        return output
    }
}

/// LayerNormalization over each row of `length` trailing elements, in place (CKernels'
/// nnb_layer_norm on kernel path `path`): the mean and the variance around it summed in double
/// precision over eight lanes (element i in lane i mod 8), then (x − mean) · rsqrt(var + epsilon)
/// · gamma + beta. Each row's summation order depends only on its length, never on the batch or
/// the kernel path.
func layerNormalizeRows(_ x: UnsafeMutableBufferPointer<Float>, length n: Int, epsilon: Float,
                        gamma: UnsafeBufferPointer<Float>?, beta: UnsafeBufferPointer<Float>?, path: KernelPath = Gemm.kernelPath) {
    guard n > 0, let base = x.baseAddress else { return }
    nnb_layer_norm(base, x.count / n, n, epsilon, gamma?.baseAddress, beta?.baseAddress, Int32(path.rawValue))
}

/// `UnitNormalization`: x · min(rsqrt(Σx²), 1e12) over `axis` (-1; an integer or a list of any
/// axes), as Keras's ops.normalize(order=2, epsilon=1e-12).
public struct UnitNormalization: Layer {
    public let reducedAxes: Set<Int>
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let axes = try normalizedAxes(context)
        try context.sampleCount(try axes.map { try context.inputDimension($0) }, of: "the normalized axes", key: "axis")
        return UnitNormalization(reducedAxes: Set(axes), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        let layout = AxisLayout(dims: Array(input.shape.dropFirst()), reduced: reducedAxes, parameterAxes: [])
        output.data.withUnsafeMutableBufferPointer { unitNormalize($0, layout: layout) }
        return output
    }
}

/// x · min(1/√(Σ_group x²), 1e12) per group of `layout`, in place. x: (batch, layout.dims...) flat.
func unitNormalize(_ x: UnsafeMutableBufferPointer<Float>, layout: AxisLayout) {
    let size = layout.sampleSize, groups = layout.groupCount
    guard size > 0, let base = x.baseAddress else { return }
    var squares = [Double](repeating: 0, count: groups), inverse = [Float](repeating: 0, count: groups)
    var start = 0
    while start + size <= x.count {
        let sample = base + start
        for g in 0..<groups { squares[g] = 0 }
        layout.walk { offset, group, _ in squares[group] += Double(sample[offset]) * Double(sample[offset]) }
        for g in 0..<groups { inverse[g] = Float(Swift.min(1 / squares[g].squareRoot(), 1e12)) }
        layout.walk { offset, group, _ in sample[offset] *= inverse[group] }
        start += size
    }
}

extension Builtins {
    static func registerNormalization(_ registry: LayerRegistry) {
        registry.register("BatchNormalization", origin: "builtin", summary: "Normalizes with the moving statistics (inference).", factory: BatchNormalization.factory)
        registry.register("LayerNormalization", origin: "builtin", summary: "Normalizes each sample over axis (any axes).", factory: AxisNormalization.factory(rms: false))
        registry.register("RMSNormalization", origin: "builtin", summary: "Divides each sample by its root mean square over axis (any axes).", factory: AxisNormalization.factory(rms: true))
        registry.register("GroupNormalization", origin: "builtin", summary: "Normalizes each group of channels over every axis but the batch.", factory: AxisNormalization.groupFactory)
        registry.register("UnitNormalization", origin: "builtin", summary: "Scales each sample to unit L2 norm.", factory: UnitNormalization.factory)
    }
}
