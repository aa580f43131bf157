#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// Reductions over axes (keras/src/ops/numpy.py Mean, Sum, Prod, Max, Min, Any, All), with
// `keepdims`; the batch axis is never reduced (axis=None, which reduces it too, is refused).

enum Reduction: String, CaseIterable, Sendable {
    case mean = "Mean", sum = "Sum", prod = "Prod", max = "Max", min = "Min", any = "Any", all = "All"

    /// Reduces `input` over `axes` (full-tensor axes, batch excluded), keeping them as size 1
    /// when `keepDims`. Sums and products accumulate in double.
    func run(_ input: Tensor, axes: Set<Int>, keepDims: Bool, initial: Float?) -> Tensor {
        let reducedShape = input.shape.indices.map { axes.contains($0) ? 1 : input.shape[$0] }
        let outputStrides = contiguousStrides(reducedShape)
        let strides = input.shape.indices.map { axes.contains($0) ? 0 : outputStrides[$0] }
        let count = ShapeMath.saturatingProduct(reducedShape)
        let start: Double
        switch self {
        case .mean, .sum, .any: start = 0
        case .prod, .all: start = 1
        case .max: start = -.infinity
        case .min: start = .infinity
        }
        var accumulators = [Double](repeating: start, count: count)
        var coordinates = [Int](repeating: 0, count: input.rank)
        var offset = 0
        for value in input.data {
            let x = Double(value)
            switch self {
            case .mean, .sum: accumulators[offset] += x
            case .prod: accumulators[offset] *= x
            case .max: accumulators[offset] = x.isNaN ? x : Swift.max(accumulators[offset], x)
            case .min: accumulators[offset] = x.isNaN ? x : Swift.min(accumulators[offset], x)
            case .any: if x != 0 { accumulators[offset] = 1 }
            case .all: if x == 0 { accumulators[offset] = 0 }
            }
            var axis = input.rank - 1
            while axis >= 0 {
                coordinates[axis] += 1
                offset += strides[axis]
                if coordinates[axis] < input.shape[axis] { break }
                offset -= strides[axis] * coordinates[axis]
                coordinates[axis] = 0
                axis -= 1
            }
        }
        let reducedCount = axes.reduce(1) { $0 * input.shape[$1] }
        var data = accumulators.map { value -> Float in
            switch self {
            case .mean: return Float(value / Double(reducedCount))
            default: return Float(value)
            }
        }
        if let initial {
            for i in data.indices { data[i] = self == .max ? Swift.max(data[i], initial) : Swift.min(data[i], initial) }
        }
        let shape = keepDims ? reducedShape : input.shape.indices.filter { !axes.contains($0) }.map { input.shape[$0] }
        return Tensor(shape: shape, data: data)
    }
}

/// The position of the largest (Argmax) or smallest (Argmin) value along one axis, the first
/// such position on a tie (NaN never wins), as TensorFlow's argmax; the axis is removed unless `keepDims`.
func argExtreme(_ input: Tensor, axis: Int, largest: Bool, keepDims: Bool) -> Tensor {
    let length = input.shape[axis]
    let inner = ShapeMath.saturatingProduct(input.shape[(axis + 1)...]), outer = ShapeMath.saturatingProduct(input.shape[..<axis])
    var data = [Float](repeating: 0, count: outer * inner)
    for row in 0..<outer {
        for column in 0..<inner {
            var best = 0
            var bestValue = length > 0 ? input.data[row * length * inner + column] : 0
            for index in 0..<length {
                let value = input.data[(row * length + index) * inner + column]
                if largest ? value > bestValue : value < bestValue { best = index; bestValue = value }
            }
            data[row * inner + column] = Float(best)
        }
    }
    var shape = input.shape
    if keepDims { shape[axis] = 1 } else { shape.remove(at: axis) }
    return Tensor(shape: shape, data: data)
}

/// A reduction's one tensor, its axes (`axis`: an integer or a list, never the batch axis nor
/// None), `keepdims`, and the per-sample output shape.
func reductionAxes(_ context: LayerContext) throws -> (axes: Set<Int>, keepDims: Bool, sample: [Int?]) {
    guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
        throw context.error("reduces one tensor, called on \(context.inputShapes.count)")
    }
    let rank = context.inputShape.count + 1
    guard let listed = try context.axisList("axis") else {
        throw context.error("'axis' is None: it reduces every axis, the batch axis included; nnbuild keeps the batch axis, name the axes (axis=[1, ...])", key: "axis")
    }
    let axes = try listed.map { try context.sampleAxis($0, rank: rank, key: "axis") }
    guard Set(axes).count == axes.count else { throw context.error("'axis' repeats an axis", key: "axis") }
    let keepDims = try context.bool("keepdims", default: false)
    let sample = context.inputShape.indices.compactMap { index -> Int?? in
        axes.contains(index + 1) ? (keepDims ? .some(1) : nil) : .some(context.inputShape[index])
    }
    try context.sampleCount(sample)
    return (Set(axes), keepDims, sample)
}

func reductionOperations() -> [OperationEntry] {
    let arg: [OperationEntry] = [("Argmax", true), ("Argmin", false)].map { name, largest in
        ([name], "The index of the \(largest ? "largest" : "smallest") value along axis (never the batch axis), first on a tie.", { context in
            guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
                throw context.error("reduces one tensor, called on \(context.inputShapes.count)")
            }
            guard context.has("axis") else {
                throw context.error("'axis' is None: it flattens every axis, the batch axis included; nnbuild keeps the batch axis, name the axis", key: "axis")
            }
            let axis = try context.sampleAxis(try context.int("axis"), rank: context.inputShape.count + 1, key: "axis")
            let keepDims = try context.bool("keepdims", default: false)
            var sample = context.inputShape
            if keepDims { sample[axis - 1] = 1 } else { sample.remove(at: axis - 1) }
            try context.sampleCount(sample)
            return OperationNode(name: name, outputShapes: [sample]) { inputs in
                argExtreme(inputs[0], axis: axis, largest: largest, keepDims: keepDims)
            }
        })
    }
    // Variance, standard deviation and log-sum-exp, from the reductions above: var = mean((x − mean)²),
    // std = √var, logsumexp = max + log Σ exp(x − max) (max taken as 0 where it is infinite).
    let composed: [OperationEntry] = ["Var", "Std", "Logsumexp"].map { name in
        ([name], "\(name) over axis (never the batch axis), keepdims.", { context in
            let (axes, keepDims, sample) = try reductionAxes(context)
            return OperationNode(name: name, outputShapes: [sample]) { inputs in
                let x = inputs[0]
                if name == "Logsumexp" {
                    var peak = Reduction.max.run(x, axes: axes, keepDims: true, initial: nil)
                    for i in peak.data.indices where !peak.data[i].isFinite { peak.data[i] = 0 }
                    let shifted = try OperandBroadcast.apply([x, peak], name: name) { a, b, _ in LibM.exp(a - b) }
                    let sum = Reduction.sum.run(shifted, axes: axes, keepDims: true, initial: nil)
                    var result = try OperandBroadcast.apply([sum, peak], name: name) { a, b, _ in LibM.log(a) + b }
                    if !keepDims { result.shape = result.shape.indices.filter { !axes.contains($0) }.map { result.shape[$0] } }
                    return result
                }
                let mean = Reduction.mean.run(x, axes: axes, keepDims: true, initial: nil)
                let squares = try OperandBroadcast.apply([x, mean], name: name) { a, b, _ in (a - b) * (a - b) }
                var variance = Reduction.mean.run(squares, axes: axes, keepDims: keepDims, initial: nil)
                if name == "Std" { for i in variance.data.indices { variance.data[i] = variance.data[i].squareRoot() } }
                return variance
            }
        })
    }
    // ops.normalize (keras.src.ops.nn), as Keras computes it: order 2 over any axes (never the
    // batch axis) as x · min(rsqrt(Σ x²), 1 / epsilon); another order p ≥ 1 over one axis as
    // x / max((Σ |x|^p)^(1/p), epsilon). epsilon defaults to Keras's backend epsilon, 1e-7.
    let normalize: OperationEntry = (["Normalize"], "x over its norm along axis (never the batch axis).", { context in
        guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
            throw context.error("normalizes one tensor, called on \(context.inputShapes.count)")
        }
        let rank = context.inputShape.count + 1
        // Absent, the operation's default -1; written null, None: every axis.
        guard let listed = context.value("axis") == nil ? [-1] : try context.axisList("axis") else {
            throw context.error("'axis' is None: it normalizes over every axis, the batch axis included; nnbuild keeps samples apart, name the axes", key: "axis")
        }
        let axes = try listed.map { try context.sampleAxis($0, rank: rank, key: "axis") }
        guard Set(axes).count == axes.count else { throw context.error("'axis' repeats an axis", key: "axis") }
        let order = try context.int("order", default: 2)
        guard order >= 1 else { throw context.error("'order' must be an integer of 1 or more, found \(order)", key: "order") }
        guard order == 2 || axes.count == 1 else {
            throw context.error("'order' \(order) over \(axes.count) axes is a matrix norm, which nnbuild does not compute (order 2, or one axis)", key: "order")
        }
        let epsilon = try context.optionalDouble("epsilon") ?? 1e-7
        guard epsilon > 0, epsilon.isFinite else { throw context.error("'epsilon' must be a positive number, found \(epsilon)", key: "epsilon") }
        let bound = Float(1 / epsilon), floor = Float(epsilon), power = Float(order)
        return OperationNode(name: "Normalize", outputShapes: [context.inputShape]) { inputs in
            let x = inputs[0]
            if order == 2 {
                let squares = Tensor(shape: x.shape, data: x.data.map { $0 * $0 })
                var inverse = Reduction.sum.run(squares, axes: Set(axes), keepDims: true, initial: nil)
                for i in inverse.data.indices { inverse.data[i] = Swift.min(1 / inverse.data[i].squareRoot(), bound) }
                return try OperandBroadcast.apply([x, inverse], name: "Normalize") { a, b, _ in a * b }
            }
            let powers = Tensor(shape: x.shape, data: x.data.map { order == 1 ? Swift.abs($0) : LibM.pow(Swift.abs($0), power) })
            var norm = Reduction.sum.run(powers, axes: Set(axes), keepDims: true, initial: nil)
            for i in norm.data.indices { norm.data[i] = Swift.max(order == 1 ? norm.data[i] : LibM.pow(norm.data[i], 1 / power), floor) }
            return try OperandBroadcast.apply([x, norm], name: "Normalize") { a, b, _ in a / b }
        }
    })
    return arg + composed + [normalize] + Reduction.allCases.map { reduction in
        ([reduction.rawValue], "\(reduction.rawValue) over axis (never the batch axis), keepdims.", { context in
            let (axes, keepDims, sample) = try reductionAxes(context)
            let initial: Float? = (reduction == .max || reduction == .min) && context.has("initial") ? try context.float("initial") : nil
            return OperationNode(name: reduction.rawValue, outputShapes: [sample]) { inputs in
                reduction.run(inputs[0], axes: axes, keepDims: keepDims, initial: initial)
            }
        })
    }
}
