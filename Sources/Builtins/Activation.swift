import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

/// An element-wise (or, for softmax, last-axis) activation function, by its Keras name.
public enum Activation: Sendable, Equatable {
    case linear, relu, relu6, sigmoid, hardSigmoid, hardSilu, tanh, softmax, logSoftmax, softplus, softsign
    case elu(alpha: Float)
    case selu
    case gelu(approximate: Bool)
    case silu, exponential
    case leakyRelu(negativeSlope: Float)
    case mish
    case celu(alpha: Float)
    case hardShrink(threshold: Float), softShrink(threshold: Float)
    case hardTanh, logSigmoid, sparsePlus, sparseSigmoid, tanhShrink
    case squareplus(b: Float)
    case threshold(threshold: Float, defaultValue: Float)
    case sparsemax
    /// Keras's `relu` with its parameters (the ReLU layer's config): zero at or below
    /// `threshold`, then capped at `maxValue`, less `negativeSlope` times how far below the
    /// threshold x is. `relu` and `relu6` are its plain cases.
    case parametricRelu(maxValue: Float?, negativeSlope: Float, threshold: Float)

    /// The ReLU layer's config as an activation: `relu` or `relu6` where it is one of them.
    static func relu(maxValue: Float?, negativeSlope: Float, threshold: Float) -> Activation {
        guard negativeSlope == 0, threshold == 0 else { return .parametricRelu(maxValue: maxValue, negativeSlope: negativeSlope, threshold: threshold) }
        switch maxValue {
        case nil: return .relu
        case 6?: return .relu6
        default: return .parametricRelu(maxValue: maxValue, negativeSlope: negativeSlope, threshold: threshold)
        }
    }

    /// What Keras refuses in a ReLU's config (nil when it takes it), as "'key' must ...".
    static func reluProblem(maxValue: Double?, negativeSlope: Double, threshold: Double) -> (key: String, message: String)? {
        if let maxValue, maxValue < 0 { return ("max_value", "'max_value' must not be negative, found \(maxValue)") }
        if negativeSlope < 0 { return ("negative_slope", "'negative_slope' must not be negative, found \(negativeSlope)") }
        if threshold < 0 { return ("threshold", "'threshold' must not be negative, found \(threshold) (Keras refuses it too)") }
        return nil
    }

    /// One value of `parametricRelu`.
    @inline(__always)
    static func parametricReluValue(_ x: Float, maxValue: Float?, negativeSlope: Float, threshold: Float) -> Float {
        var y = x > threshold ? x : 0
        if let maxValue { y = Swift.min(Swift.max(y, 0), maxValue) }
        if negativeSlope != 0 { y -= negativeSlope * Swift.max(threshold - x, 0) }
        return y
    }

    /// Every name `named(_:)` accepts.
    public static let names = ["linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "tanh",
                               "softmax", "log_softmax", "softplus", "softsign", "elu", "selu", "gelu", "gelu_approximate",
                               "swish", "silu", "exponential", "leaky_relu", "mish", "celu", "hard_shrink", "soft_shrink",
                               "hard_tanh", "log_sigmoid", "sparse_plus", "sparse_sigmoid", "tanh_shrink", "squareplus", "sparsemax"]

    /// The activation Keras calls `name` (None and an empty name mean linear).
    public static func named(_ name: String) -> Activation? {
        switch name.lowercased() {
        case "linear", "none", "": return .linear
        case "relu": return .relu
        case "relu6": return .relu6
        case "sigmoid": return .sigmoid
        case "hard_sigmoid": return .hardSigmoid
        case "hard_silu", "hard_swish": return .hardSilu
        case "tanh": return .tanh
        case "softmax": return .softmax
        case "log_softmax": return .logSoftmax
        case "softplus": return .softplus
        case "softsign": return .softsign
        case "elu": return .elu(alpha: 1)
        case "selu": return .selu
        case "gelu": return .gelu(approximate: false)
        case "gelu_approximate": return .gelu(approximate: true)
        case "swish", "silu": return .silu
        case "exponential": return .exponential
        case "leaky_relu": return .leakyRelu(negativeSlope: 0.2)
        case "mish": return .mish
        case "celu": return .celu(alpha: 1)
        case "hard_shrink": return .hardShrink(threshold: 0.5)
        case "soft_shrink": return .softShrink(threshold: 0.5)
        case "hard_tanh": return .hardTanh
        case "log_sigmoid": return .logSigmoid
        case "sparse_plus": return .sparsePlus
        case "sparse_sigmoid": return .sparseSigmoid
        case "tanh_shrink": return .tanhShrink
        case "squareplus": return .squareplus(b: 4)
        case "sparsemax": return .sparsemax
        default: return nil
        }
    }

    /// Reads config key `key` (default linear) and resolves it, failing on an unknown name.
    /// Besides a name, Keras 3 serializes an activation passed as a layer instance as the layer
    /// itself (`{"module": "keras.layers", "class_name": "ReLU", "config": {...}}`); those whose
    /// config is one of the functions here are read with their parameters, others are refused.
    public static func from(_ context: LayerContext, key: String = "activation", default defaultName: String = "linear") throws -> Activation {
        if let raw = context.value(key), case .object? = raw["config"], case let .string(className)? = raw["class_name"] {
            return try fromLayerObject(className, raw["config"] ?? .null, context: context, key: key)
        }
        let name = try context.activationName(key, default: defaultName)
        // Keras accepts these names but cannot call them as a layer's activation: threshold has
        // no default for its parameters (Keras raises a TypeError), and glu halves an axis, so the
        // layer's output would not have the shape the layer declares.
        switch name {
        case "threshold":
            throw context.error("activation 'threshold' needs 'threshold' and 'default_value', which a name cannot give (Keras fails to call it too); use keras.ops.threshold in a graph", key: key)
        case "glu":
            throw context.error("activation 'glu' halves the last axis, so the layer's output would not have its declared shape; use keras.ops.glu in a graph", key: key)
        default: break
        }
        guard let activation = named(name) else {
            throw context.error("unknown activation '\(name)'; expected one of \(names.joined(separator: ", "))", key: key)
        }
        return activation
    }

    /// An activation given as a serialized activation layer: ReLU, LeakyReLU, ELU, Softmax (last
    /// axis) and Activation, with their configs; anything else is refused with what to do.
    static func fromLayerObject(_ className: String, _ config: JSONValue, context: LayerContext, key: String) throws -> Activation {
        func number(_ name: String) throws -> Double? {
            switch config[name] {
            case nil, .null?: return nil
            case let .int(value)?: return Double(value)
            case let .double(value)?: return value
            case let other?: throw context.error("activation layer \(className): '\(name)' must be a number, found \(other.brief())", key: key)
            }
        }
        let refuse = { (why: String) in
            context.error("activation given as a \(className) layer \(why); put a separate \(className) layer after this one instead", key: key)
        }
        switch className {
        case "ReLU":
            let maxValue = try number("max_value"), slope = try number("negative_slope") ?? 0, threshold = try number("threshold") ?? 0
            if let problem = reluProblem(maxValue: maxValue, negativeSlope: slope, threshold: threshold) {
                throw context.error("activation layer ReLU: \(problem.message)", key: key)
            }
            return .relu(maxValue: maxValue.map(Float.init), negativeSlope: Float(slope), threshold: Float(threshold))
        case "LeakyReLU":
            return .leakyRelu(negativeSlope: Float(try number("alpha") ?? number("negative_slope") ?? 0.3))
        case "ELU":
            return .elu(alpha: Float(try number("alpha") ?? 1))
        case "Softmax":
            switch config["axis"] {
            case nil, .null?, .int(-1)?: return .softmax
            default: throw refuse("over an axis other than the last is not supported")
            }
        case "Activation":
            guard case let .string(name)? = config["activation"], let activation = named(name) else {
                throw refuse("whose activation is not one of \(names.joined(separator: ", "))")
            }
            return activation
        default:
            throw refuse("is not supported (ReLU, LeakyReLU, ELU, Softmax and Activation are)")
        }
    }

    /// Whether each output depends on its own input only (every activation but softmax,
    /// log-softmax and sparsemax, which work over an axis).
    public var isElementwise: Bool { self != .softmax && self != .logSoftmax && self != .sparsemax }

    /// Applies the activation in place; softmax and log-softmax work on groups of `axisLength`.
    public func apply(_ values: UnsafeMutableBufferPointer<Float>, axisLength: Int) {
        let count = values.count
        guard let x = values.baseAddress, count > 0 else { return }
        switch self {
        case .linear: return
        case .relu: for i in 0..<count { x[i] = Swift.max(x[i], 0) }
        case .relu6: for i in 0..<count { x[i] = Swift.min(Swift.max(x[i], 0), 6) }
        case .sigmoid: if Gemm.useAVX2Kernels { nnb_sigmoid(x, count) } else { FastMath.map(x, count: count, FastMath.sigmoid) }
        case .hardSigmoid: for i in 0..<count { x[i] = Swift.min(Swift.max(x[i] + 3, 0), 6) / 6 }
        case .hardSilu: for i in 0..<count { x[i] = x[i] * (Swift.min(Swift.max(x[i] + 3, 0), 6) / 6) }
        case .tanh: if Gemm.useAVX2Kernels { nnb_tanh(x, count) } else { FastMath.map(x, count: count, FastMath.tanh) }
        case .softmax, .logSoftmax:
            let length = Swift.max(axisLength, 1)
            Activation.softmaxRows(x, rows: count / length, length: length, log: self == .logSoftmax)
        case .softplus: for i in 0..<count { x[i] = Activation.softplus(x[i]) }
        case .softsign: for i in 0..<count { x[i] = x[i] / (1 + Swift.abs(x[i])) }
        case let .elu(alpha): for i in 0..<count where x[i] <= 0 { x[i] = alpha * LibM.expm1(x[i]) }
        case .selu:
            let alpha: Float = 1.6732632423543772, scale: Float = 1.0507009873554805
            for i in 0..<count { x[i] = x[i] > 0 ? scale * x[i] : scale * alpha * LibM.expm1(x[i]) }
        case let .gelu(approximate):
            if !approximate, Gemm.useAVX2Kernels {
                nnb_gelu(x, count)
            } else if approximate {
                let c = Float((2 / Double.pi).squareRoot())
                for i in 0..<count {
                    let v = x[i]
                    x[i] = 0.5 * v * (1 + LibM.tanh(c * (v + 0.044715 * v * v * v)))
                }
            } else {
                for i in 0..<count {
                    let v = Double(x[i])
                    x[i] = Float(0.5 * v * (1 + LibM.erf(v / 2.0.squareRoot())))
                }
            }
        case .silu: for i in 0..<count { x[i] = x[i] * Activation.sigmoid(x[i]) }
        case .exponential: for i in 0..<count { x[i] = LibM.exp(x[i]) }
        case let .leakyRelu(slope): for i in 0..<count where x[i] < 0 { x[i] *= slope }
        case .mish: for i in 0..<count { x[i] = x[i] * LibM.tanh(Activation.softplus(x[i])) }
        case let .celu(alpha): for i in 0..<count { x[i] = Swift.max(x[i], 0) + alpha * LibM.expm1(Swift.min(x[i], 0) / alpha) }
        case let .hardShrink(t): for i in 0..<count where !(Swift.abs(x[i]) > t) { x[i] = 0 }
        case let .softShrink(t): for i in 0..<count { x[i] = x[i] > t ? x[i] - t : (x[i] < -t ? x[i] + t : 0) }
        case .hardTanh: for i in 0..<count { x[i] = Swift.min(Swift.max(x[i], -1), 1) }
        case .logSigmoid: for i in 0..<count { x[i] = -Activation.softplus(-x[i]) }
        case .sparsePlus: for i in 0..<count { x[i] = x[i] <= -1 ? 0 : (x[i] < 1 ? 0.25 * (x[i] + 1) * (x[i] + 1) : x[i]) }
        case .sparseSigmoid: for i in 0..<count { x[i] = x[i] <= -1 ? 0 : (x[i] >= 1 ? 1 : 0.5 * (x[i] + 1)) }
        case .tanhShrink: for i in 0..<count { x[i] = x[i] - LibM.tanh(x[i]) }
        case let .squareplus(b): for i in 0..<count { x[i] = (x[i] + (x[i] * x[i] + b).squareRoot()) / 2 }
        case let .threshold(t, fill): for i in 0..<count where !(x[i] > t) { x[i] = fill }
        case let .parametricRelu(maxValue, slope, threshold):
            for i in 0..<count { x[i] = Activation.parametricReluValue(x[i], maxValue: maxValue, negativeSlope: slope, threshold: threshold) }
        case .sparsemax:
            let length = Swift.max(axisLength, 1)
            var sorted = [Float](repeating: 0, count: length)
            var start = 0
            while start + length <= count {
                Activation.sparsemaxRow(x + start, length: length, sorted: &sorted)
                start += length
            }
        }
    }

    /// Applies the activation to a whole array whose last axis has `axisLength` items.
    public func apply(_ values: inout [Float], axisLength: Int) {
        guard self != .linear else { return }
        values.withUnsafeMutableBufferPointer { apply($0, axisLength: axisLength) }
    }

    @inlinable
    public static func sigmoid(_ v: Float) -> Float {
        v >= 0 ? 1 / (1 + LibM.exp(-v)) : { let e = LibM.exp(v); return e / (1 + e) }()
    }

    @inlinable
    public static func softplus(_ v: Float) -> Float {
        Swift.max(v, 0) + LibM.log1p(LibM.exp(-Swift.abs(v)))
    }

    /// Sparsemax of `length` values in place, exactly as Keras 3 computes it (backend nn.py):
    /// z sorted descending, c its running sum, support where z_j − (c_j − 1)/j > 0, k its size,
    /// τ = (Σ_{j in support} c_j − 1) / k (Keras sums the running sums, not c_k as the paper
    /// does; ground truth is Keras), y = max(x − τ, 0).
    static func sparsemaxRow(_ x: UnsafeMutablePointer<Float>, length: Int, sorted: inout [Float]) {
        for i in 0..<length { sorted[i] = x[i] }
        sorted.sort(by: >)
        var running: Float = 0, sumOfRunning: Float = 0, k: Float = 0
        for j in 0..<length {
            running += sorted[j]
            if sorted[j] - (running - 1) / Float(j + 1) > 0 {
                sumOfRunning += running
                k += 1
            }
        }
        let tau = (sumOfRunning - 1) / k
        for i in 0..<length { x[i] = Swift.max(x[i] - tau, 0) }
    }

    /// `softmaxRow` on `rows` consecutive rows: one kernel call for them all.
    static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, length: Int, log: Bool) {
        if Gemm.useAVX2Kernels {
            nnb_softmax(x, rows, length, log ? 1 : 0)
            return
        }
        for row in 0..<rows { softmaxRow(x + row * length, length: length, log: log) }
    }

    /// Softmax (or log-softmax) of `length` values in place, max-shifted for stability.
    static func softmaxRow(_ x: UnsafeMutablePointer<Float>, length: Int, log: Bool) {
        if Gemm.useAVX2Kernels {
            nnb_softmax(x, 1, length, log ? 1 : 0)
            return
        }
        var peak = -Float.infinity
        for i in 0..<length { peak = Swift.max(peak, x[i]) }
        if !peak.isFinite { peak = 0 }
        var sum: Double = 0
        for i in 0..<length { sum += Double(LibM.exp(x[i] - peak)) }
        if log {
            let logSum = Float(LibM.log(sum))
            for i in 0..<length { x[i] = x[i] - peak - logSum }
        } else {
            for i in 0..<length { x[i] = Float(Double(LibM.exp(x[i] - peak)) / sum) }
        }
    }
}

/// A layer that does nothing but apply an element-wise activation (`Activation`, `ReLU`,
/// `LeakyReLU`, `ELU`): a layer before it with a linear activation of its own can take it over
/// (`FusesNext`) and apply it in the same pass.
protocol ElementwiseActivationLayer: Layer {
    /// The activation, nil when it is not one of `Activation`'s (then it cannot be fused).
    var elementwiseActivation: Activation? { get }
}

/// The activation of `next` when it is an element-wise activation layer that passes its input's
/// mask on: what a layer before it may apply in its own pass instead (`AbsorbsActivation`, a
/// merge, a channels-first run).
func absorbableActivation(_ next: any NodeLayer) -> Activation? {
    guard next.maskBehavior == .propagates, let activation = (next as? any ElementwiseActivationLayer)?.elementwiseActivation,
          activation.isElementwise else { return nil }
    return activation
}

/// A layer computing `activation(something)` that, while its activation is linear, takes over an
/// element-wise activation layer after it: `fusing` returns a copy with that activation.
protocol AbsorbsActivation: FusesNext {
    var activation: Activation { get set }
}

extension AbsorbsActivation {
    public func fusing(_ next: any Layer) -> (any Layer)? { absorbing(next) }

    /// A copy with `next`'s activation, or nil when `next` is not an element-wise activation layer
    /// or this layer's own activation is not linear: what `fusing` does unless a layer takes over
    /// more (`Conv2D` a max pooling after it).
    func absorbing(_ next: any Layer) -> Self? {
        guard activation == .linear, let absorbed = absorbableActivation(next) else { return nil }
        var fused = self
        fused.activation = absorbed
        return fused
    }
}
