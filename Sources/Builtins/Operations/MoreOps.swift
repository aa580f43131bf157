#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// keras.ops one_hot, take and cumsum (keras/src/ops/nn.py, numpy.py; TensorFlow backend), on
// float32 values holding integers where Keras wants integers (truncated toward zero, as a cast
// to int64 truncates).

/// An axis of an output of rank `rank` that is not the batch axis.
private func nonBatchAxis(_ context: LayerContext, _ raw: Int, rank: Int) throws -> Int {
    try context.sampleAxis(raw, rank: rank, key: "axis")
}

/// out[..., c, ...] = 1 where Int(x) == c, else 0 (an index outside 0..<num_classes gives a row
/// of zeros, as tf.one_hot). x: (batch, d...); out: x's shape with num_classes inserted at axis.
func oneHot(_ x: Tensor, classes: Int, axis: Int) -> Tensor {
    var shape = x.shape
    shape.insert(classes, at: axis)
    let outer = ShapeMath.saturatingProduct(x.shape[..<axis]), inner = ShapeMath.saturatingProduct(x.shape[axis...])
    var data = [Float](repeating: 0, count: outer * classes * inner)
    for o in 0..<outer {
        for i in 0..<inner {
            let value = x.data[o * inner + i]
            guard value.isFinite, value > -1, value < Float(classes) else { continue }
            let c = Int(value.rounded(.towardZero))
            data[(o * classes + c) * inner + i] = 1
        }
    }
    return Tensor(shape: shape, data: data)
}

/// Running sums along `axis`, in place. x: (outer, length, inner) flat.
func cumulativeSum(_ x: inout [Float], outer: Int, length: Int, inner: Int) {
    x.withUnsafeMutableBufferPointer { y in
        for o in 0..<outer where length > 1 {
            let base = o * length * inner
            for k in 1..<length {
                for i in 0..<inner { y[base + k * inner + i] += y[base + (k - 1) * inner + i] }
            }
        }
    }
}

/// ops.take: `source` gathered at `indices` along `axis` (negative indices count from the end,
/// as Keras fixes them; an index past either end is an error, as in TensorFlow's gather).
/// source: (a..., n, b...); indices: any shape I; out: (a..., I..., b...).
func take(_ source: Tensor, _ indices: Tensor, axis: Int, name: String) throws -> Tensor {
    let n = source.shape[axis]
    let outer = ShapeMath.saturatingProduct(source.shape[..<axis]), inner = ShapeMath.saturatingProduct(source.shape[(axis + 1)...])
    var positions = [Int]()
    positions.reserveCapacity(indices.count)
    for value in indices.data {
        let index = value.isFinite ? Int(value.rounded(.towardZero)) : Int.min
        let fixed = index < 0 && index != Int.min ? index + n : index
        guard fixed >= 0, fixed < n else {
            throw NNError(.input, name, "index \(value) is outside an axis of length \(n) (expected \(-n) to \(n - 1))")
        }
        positions.append(fixed)
    }
    var data = [Float]()
    data.reserveCapacity(outer * positions.count * inner)
    for o in 0..<outer {
        for p in positions {
            let start = (o * n + p) * inner
            data.append(contentsOf: source.data[start..<(start + inner)])
        }
    }
    return Tensor(shape: Array(source.shape[..<axis]) + indices.shape + Array(source.shape[(axis + 1)...]), data: data)
}

func moreOperations() -> [OperationEntry] {
    [
        (["OneHot"], "one_hot(x, num_classes, axis): 1 at each integer's class, along a new axis.", { context in
            let classes = try context.positiveInt("num_classes", maximum: 1 << 24)
            if try context.bool("sparse", default: false) {
                throw context.error("'sparse' is true; nnbuild computes dense tensors only", key: "sparse")
            }
            let dtype = try context.string("dtype", default: "float32")
            guard castFunction(dtype) != nil else { throw context.error("'dtype' is \"\(dtype)\", expected a float, integer or bool dtype", key: "dtype") }
            guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
                throw context.error("takes one tensor, called on \(context.inputShapes.count) tensors")
            }
            let axis = try nonBatchAxis(context, try context.int("axis", default: -1), rank: context.inputShape.count + 2)
            var shape = context.inputShape
            shape.insert(classes, at: axis - 1)
            try context.sampleCount(shape)
            return OperationNode(name: "OneHot", outputShapes: [shape]) { inputs in oneHot(inputs[0], classes: classes, axis: axis) }
        }),
        (["Cumsum"], "cumsum(x, axis): running sums along one axis (never the batch axis).", { context in
            guard context.has("axis") else {
                throw context.error("'axis' is null: Keras then sums over the flattened tensor, batch included; nnbuild keeps samples apart", key: "axis")
            }
            let axis = try nonBatchAxis(context, try context.int("axis"), rank: context.inputShape.count + 1)
            if context.has("dtype") {
                let dtype = try context.string("dtype")
                guard dtype.hasPrefix("float") else { throw context.error("'dtype' is \"\(dtype)\"; only float dtypes are supported", key: "dtype") }
            }
            return try mapNodeWithShape("Cumsum", context) { tensor in
                cumulativeSum(&tensor.data, outer: ShapeMath.saturatingProduct(tensor.shape[..<axis]), length: tensor.shape[axis],
                              inner: ShapeMath.saturatingProduct(tensor.shape[(axis + 1)...]))
            }
        }),
        (["Take"], "take(x, indices, axis): x's slices at the indices along axis.", { context in
            let operands = try context.operands()
            guard operands.count == 2 else { throw context.error("takes x and indices, called on \(operands.count) operands") }
            let rawAxis = context.has("axis") ? try context.int("axis") : nil
            switch (operands[0], operands[1]) {
            case let (.input(source), .constant(indexShape, values)):
                // A tensor's slices at constant positions: ops.take(x, [0, 2], axis=1).
                guard let rawAxis else { throw context.error("'axis' is null: Keras then takes from the flattened tensor, batch included; nnbuild keeps samples apart", key: "axis") }
                let shape = context.inputShapes[source]
                let axis = try nonBatchAxis(context, rawAxis, rank: shape.count + 1)
                let out = Array(shape[..<(axis - 1)]) + indexShape.map { Optional($0) } + Array(shape[axis...])
                try context.sampleCount(out)
                let indices = Tensor(shape: indexShape, data: values)
                return OperationNode(name: "Take", outputShapes: [out]) { inputs in try take(inputs[source], indices, axis: axis, name: "Take") }
            case let (.constant(tableShape, values), .input(source)):
                // Rows of a constant table at a tensor's indices (an embedding lookup): axis 0,
                // or null on a flattened table.
                let table = rawAxis == nil ? [ShapeMath.saturatingProduct(tableShape)] : tableShape
                guard rawAxis == nil || rawAxis == 0 || rawAxis == -table.count else {
                    throw context.error("'axis' is \(rawAxis ?? 0); with constant x and tensor indices only axis 0 (or null) keeps the indices' batch axis first", key: "axis")
                }
                guard !table.isEmpty else { throw context.error("x is a scalar; expected at least one axis to take from") }
                let out = context.inputShapes[source] + table.dropFirst().map { Optional($0) }
                try context.sampleCount(out)
                let constant = Tensor(shape: table, data: values)
                return OperationNode(name: "Take", outputShapes: [out]) { inputs in try take(constant, inputs[source], axis: 0, name: "Take") }
            default:
                throw context.error("takes a tensor x with constant indices, or a constant x with tensor indices; found \(operands.map { $0.isInput ? "tensor" : "constant" })")
            }
        }),
    ]
}

/// A one-input operation transforming its tensor in place, the shape kept.
func mapNodeWithShape(_ name: String, _ context: LayerContext, _ transform: @escaping @Sendable (inout Tensor) -> Void) throws -> any NodeLayer {
    guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
        throw context.error("takes one tensor, called on \(context.inputShapes.count) tensors")
    }
    return OperationNode(name: name, outputShapes: [context.inputShape]) { inputs in
        var output = inputs[0]
        transform(&output)
        return output
    }
}
