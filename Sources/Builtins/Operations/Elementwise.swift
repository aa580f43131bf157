#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// Element-wise Keras operations: arithmetic, comparisons and logic on tensors and constants with
// NumPy broadcasting (keras/src/ops/numpy.py), unary math, the activations of keras.ops.nn
// (through Activation, the functions every layer's `activation` uses), clip, where, cast.

/// NumPy broadcasting of an operation's operands, batch axis included: shapes align from the
/// right, so every tensor operand must have the output's full rank (a lower-rank tensor would
/// line its batch axis up with another tensor's sample axis), and a constant may not be sized
/// along the batch axis.
enum OperandBroadcast {
    /// The per-sample output shape.
    static func sampleShape(_ operands: [Operand], _ context: LayerContext) throws -> [Int?] {
        try sampleShape(operands.map { $0.shape(context) }, inputs: operands.map(\.isInput), context)
    }

    /// The same for full shapes (`inputs[i]`: whether operand i is a tensor, not a constant).
    static func sampleShape(_ shapes: [[Int?]], inputs: [Bool], _ context: LayerContext) throws -> [Int?] {
        let rank = shapes.map(\.count).max() ?? 0
        guard inputs.contains(true) else { throw context.error("needs at least one tensor operand") }
        for (index, isInput) in inputs.enumerated() {
            let shape = shapes[index]
            if isInput, shape.count != rank {
                throw context.error("operand \(index) of shape \(describeShape(Array(shape.dropFirst()))) has fewer axes than the output's \(rank): broadcasting would align its batch axis with axis \(rank - shape.count) of the other operands; nnbuild keeps the batch axis first")
            }
            if !isInput, shape.count == rank, shape.first != 1 {
                throw context.error("constant operand \(index) of shape \(shape.map { $0 ?? 0 }) is sized along the batch axis (its first axis is \(shape.first.map { $0.map(String.init) ?? "?" } ?? "?"), expected 1 or fewer axes); nnbuild keeps the batch axis free")
            }
        }
        let padded = shapes.map { [Int?](repeating: 1, count: rank - $0.count) + $0 }
        switch Broadcast.shape(of: padded) {
        case let .success(output): return Array(output.dropFirst())
        case let .failure(mismatch):
            throw context.error("operands of shapes \(shapes.map { describeFull($0) }.joined(separator: ", ")) do not broadcast (axis \(mismatch.axis))")
        }
    }

    static func describeFull(_ shape: [Int?]) -> String {
        "(" + shape.map { $0.map(String.init) ?? "None" }.joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
    }

    /// `f` over up to three broadcast tensors (a missing operand reads 0).
    static func apply(_ tensors: [Tensor], name: String, _ f: (Float, Float, Float) -> Float) throws -> Tensor {
        try withoutActuallyEscaping(f) { f in try apply(tensors, name: name, ClosureFunction(f: f)) }
    }

    /// The same for a function known at compile time (`BinaryOperator`, `WhereFunction`): this
    /// walk is specialized for it, so the inner loop calls no closure per element. Through a
    /// closure, the Transformer's attention-mask LogicalAnd took 44 µs of a 0.5 ms call.
    static func apply<F: ElementFunction>(_ tensors: [Tensor], name: String, _ f: F) throws -> Tensor {
        let rank = tensors.map(\.rank).max() ?? 0
        let padded = tensors.map { [Int](repeating: 1, count: rank - $0.rank) + $0.shape }
        guard case let .success(output) = Broadcast.shape(of: padded) else {
            throw NNError(.input, name, "operands of shapes \(tensors.map(\.shape)) do not broadcast together")
        }
        let count = try ShapeMath.sampleCount(output, of: "the output", at: name)
        var data = [Float](repeating: 0, count: count)
        guard count > 0 else { return Tensor(shape: output, data: data) }
        // Each operand is read through its strides along the output's axes: its own stride, or 0
        // where it is broadcast (size 1) or missing (the scalar 0). The output is walked row by
        // row along its last axis, the other axes counted like an odometer, so the inner loop is
        // three strided reads and no index arithmetic per element.
        let zero: [Float] = [0]
        let sources = (0..<3).map { $0 < tensors.count ? tensors[$0].data : zero }
        let strides: [[Int]] = (0..<3).map { index in
            index < tensors.count ? BroadcastIndex(shape: padded[index], to: output).inputStrides : [Int](repeating: 0, count: rank)
        }
        let last = max(rank - 1, 0)
        let width = rank == 0 ? 1 : output[last]
        let s0 = rank == 0 ? 0 : strides[0][last], s1 = rank == 0 ? 0 : strides[1][last], s2 = rank == 0 ? 0 : strides[2][last]
        var coordinate = [Int](repeating: 0, count: max(rank - 1, 0))
        var base = (0, 0, 0)
        sources[0].withUnsafeBufferPointer { a in
            sources[1].withUnsafeBufferPointer { b in
                sources[2].withUnsafeBufferPointer { c in
                    data.withUnsafeMutableBufferPointer { out in
                        var row = 0
                        while row < count {
                            var i0 = base.0, i1 = base.1, i2 = base.2
                            // Rows that read each operand along its last axis or not at all (a mask
                            // against its transpose, x + bias) in loops the compiler can vectorize.
                            // (Indices wrap, never trap: each stays inside its buffer, and a
                            // checked add per element kept the loops scalar.)
                            if s0 == 1, s1 == 1, s2 == 0 {
                                for q in 0..<width { out[row &+ q] = f(a[i0 &+ q], b[i1 &+ q], c[i2]) }
                            } else if s0 == 0, s1 == 1, s2 == 0 {
                                for q in 0..<width { out[row &+ q] = f(a[i0], b[i1 &+ q], c[i2]) }
                            } else if s0 == 1, s1 == 0, s2 == 0 {
                                for q in 0..<width { out[row &+ q] = f(a[i0 &+ q], b[i1], c[i2]) }
                            } else {
                                for q in 0..<width {
                                    out[row + q] = f(a[i0], b[i1], c[i2])
                                    i0 += s0; i1 += s1; i2 += s2
                                }
                            }
                            row += width
                            // The next row: advance the odometer over the axes before the last.
                            var axis = rank - 2
                            while axis >= 0 {
                                coordinate[axis] += 1
                                base.0 += strides[0][axis]; base.1 += strides[1][axis]; base.2 += strides[2][axis]
                                if coordinate[axis] < output[axis] { break }
                                base.0 -= strides[0][axis] * output[axis]; base.1 -= strides[1][axis] * output[axis]
                                base.2 -= strides[2][axis] * output[axis]
                                coordinate[axis] = 0
                                axis -= 1
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: output, data: data)
    }
}

/// A function of up to three values that `OperandBroadcast.apply` maps over broadcast operands.
protocol ElementFunction {
    func callAsFunction(_ a: Float, _ b: Float, _ c: Float) -> Float
}

/// A function given as a closure (called through it per element).
struct ClosureFunction: ElementFunction {
    let f: (Float, Float, Float) -> Float
    func callAsFunction(_ a: Float, _ b: Float, _ c: Float) -> Float { f(a, b, c) }
}

/// where(condition, x, y).
struct WhereFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ c: Float, _ x: Float, _ y: Float) -> Float { c != 0 ? x : y }
}

/// Binary operations: NumPy's semantics on float32 values (comparisons and logic give 1 or 0).
enum BinaryOperator: ElementFunction, Sendable {
    case add, subtract, multiply, divide, power, floorDivide, mod, maximum, minimum
    case equal, notEqual, greater, greaterEqual, less, lessEqual, logicalAnd, logicalOr, logicalXor

    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: a + b
        case .subtract: a - b
        case .multiply: a * b
        case .divide: a / b
        case .power: LibM.pow(a, b)
        case .floorDivide: (a / b).rounded(.down)
        case .mod: a - (a / b).rounded(.down) * b
        case .maximum: Swift.max(a, b)
        case .minimum: Swift.min(a, b)
        case .equal: a == b ? 1 : 0
        case .notEqual: a != b ? 1 : 0
        case .greater: a > b ? 1 : 0
        case .greaterEqual: a >= b ? 1 : 0
        case .less: a < b ? 1 : 0
        case .lessEqual: a <= b ? 1 : 0
        case .logicalAnd: a != 0 && b != 0 ? 1 : 0
        case .logicalOr: a != 0 || b != 0 ? 1 : 0
        case .logicalXor: (a != 0) != (b != 0) ? 1 : 0
        }
    }

    @inline(__always) func callAsFunction(_ a: Float, _ b: Float, _ c: Float) -> Float { self(a, b) }

    /// The operator over two broadcast tensors, the walk specialized for this one case: applied as
    /// the enum, the switch above ran per element (the Transformer's attention-mask LogicalAnd,
    /// 128 × 128 values, took 19 µs).
    func apply(_ tensors: [Tensor], name: String) throws -> Tensor {
        switch self {
        case .add: try OperandBroadcast.apply(tensors, name: name, Fixed<Add>())
        case .subtract: try OperandBroadcast.apply(tensors, name: name, Fixed<Subtract>())
        case .multiply: try OperandBroadcast.apply(tensors, name: name, Fixed<Multiply>())
        case .divide: try OperandBroadcast.apply(tensors, name: name, Fixed<Divide>())
        case .maximum: try OperandBroadcast.apply(tensors, name: name, Fixed<Maximum>())
        case .minimum: try OperandBroadcast.apply(tensors, name: name, Fixed<Minimum>())
        case .equal: try OperandBroadcast.apply(tensors, name: name, Fixed<Equal>())
        case .notEqual: try OperandBroadcast.apply(tensors, name: name, Fixed<NotEqual>())
        case .logicalAnd: try OperandBroadcast.apply(tensors, name: name, Fixed<LogicalAnd>())
        case .logicalOr: try OperandBroadcast.apply(tensors, name: name, Fixed<LogicalOr>())
        default: try OperandBroadcast.apply(tensors, name: name, self)
        }
    }

    /// One operator as a type of its own, each computing exactly what `callAsFunction` does.
    protocol Case { static func of(_ a: Float, _ b: Float) -> Float }
    struct Fixed<Operator: Case>: ElementFunction {
        @inline(__always) func callAsFunction(_ a: Float, _ b: Float, _ c: Float) -> Float { Operator.of(a, b) }
    }
    enum Add: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.add(a, b) } }
    enum Subtract: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.subtract(a, b) } }
    enum Multiply: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.multiply(a, b) } }
    enum Divide: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.divide(a, b) } }
    enum Maximum: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.maximum(a, b) } }
    enum Minimum: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.minimum(a, b) } }
    enum Equal: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.equal(a, b) } }
    enum NotEqual: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.notEqual(a, b) } }
    enum LogicalAnd: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.logicalAnd(a, b) } }
    enum LogicalOr: Case { @inline(__always) static func of(_ a: Float, _ b: Float) -> Float { BinaryOperator.logicalOr(a, b) } }
}

let binaryOperations: [(names: [String], function: BinaryOperator)] = [
    (["Add"], .add), (["Subtract"], .subtract), (["Multiply"], .multiply), (["Divide", "TrueDivide"], .divide),
    (["Power"], .power), (["FloorDivide"], .floorDivide), (["Mod"], .mod), (["Maximum"], .maximum), (["Minimum"], .minimum),
    (["Equal"], .equal), (["NotEqual"], .notEqual), (["Greater"], .greater), (["GreaterEqual"], .greaterEqual),
    (["Less"], .less), (["LessEqual"], .lessEqual), (["LogicalAnd"], .logicalAnd), (["LogicalOr"], .logicalOr),
    (["LogicalXor"], .logicalXor),
]

/// Unary operations that are plain functions of one value.
let unaryFunctions: [(names: [String], function: @Sendable (Float) -> Float)] = [
    (["Log"], { LibM.log($0) }), (["Sqrt"], { $0.squareRoot() }), (["Absolute", "Abs"], { Swift.abs($0) }),
    (["Square"], { $0 * $0 }), (["Negative"], { -$0 }), (["LogicalNot"], { $0 == 0 ? 1 : 0 }),
    (["Sign"], { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }), (["Floor"], { $0.rounded(.down) }), (["Ceil"], { $0.rounded(.up) }),
    (["Rsqrt"], { 1 / $0.squareRoot() }), (["Reciprocal"], { 1 / $0 }), (["Log1p"], { LibM.log1p($0) }),
    (["Expm1"], { LibM.expm1($0) }), (["Sin"], { LibM.sin($0) }), (["Cos"], { LibM.cos($0) }),
    (["Tan"], { LibM.tan($0) }), (["Arctan"], { LibM.atan($0) }), (["Sinh"], { LibM.sinh($0) }),
    (["Cosh"], { LibM.cosh($0) }), (["Erf"], { LibM.erf($0) }), (["Log2"], { LibM.log2($0) }),
    (["Log10"], { LibM.log10($0) }), (["Exp2"], { LibM.exp2($0) }), (["Trunc"], { $0.rounded(.towardZero) }),
]

/// The activations of keras.ops.nn (and numpy's exp and tanh), with their config keys.
func activationOperation(_ name: String, _ context: LayerContext) throws -> Activation? {
    switch name {
    case "Relu": return .relu
    case "Relu6": return .relu6
    case "Sigmoid": return .sigmoid
    case "HardSigmoid": return .hardSigmoid
    case "HardSilu", "HardSwish": return .hardSilu
    case "Tanh": return .tanh
    case "Softplus": return .softplus
    case "Softsign": return .softsign
    case "Exp": return .exponential
    case "Elu": return .elu(alpha: try context.float("alpha", default: 1))
    case "Selu": return .selu
    case "Gelu": return .gelu(approximate: try context.bool("approximate", default: true))
    case "Silu", "Swish": return .silu
    case "LeakyRelu": return .leakyRelu(negativeSlope: try context.float("negative_slope", default: 0.2))
    case "Mish": return .mish
    case "Celu": return .celu(alpha: try context.float("alpha", default: 1))
    case "HardShrink": return .hardShrink(threshold: try context.float("threshold", default: 0.5))
    case "SoftShrink": return .softShrink(threshold: try context.float("threshold", default: 0.5))
    case "HardTanh": return .hardTanh
    case "LogSigmoid": return .logSigmoid
    case "SparsePlus": return .sparsePlus
    case "SparseSigmoid": return .sparseSigmoid
    case "TanhShrink": return .tanhShrink
    case "Squareplus": return .squareplus(b: try context.float("b", default: 4))
    case "Threshold": return .threshold(threshold: try context.float("threshold"), defaultValue: try context.float("default_value"))
    default: return nil
    }
}

/// Keras's cast (keras/src/ops/core.py `Cast`) on float32 values: to a float type the value
/// rounded to that type; to an integer type truncated toward zero (as TensorFlow casts); to bool
/// 1 where the value is not zero.
func castFunction(_ dtype: String) -> (@Sendable (Float) -> Float)? {
    switch dtype {
    case "float32", "float64": return { $0 }
    case "float16": return { Float(Float16($0)) }
    case "bfloat16":
        return { value in
            guard value.isFinite else { return value }
            let bits = value.bitPattern
            let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
            return Float(bitPattern: rounded & 0xFFFF_0000)
        }
    case "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64":
        return { $0.isFinite ? $0.rounded(.towardZero) : $0 }
    case "bool": return { $0 != 0 ? 1 : 0 }
    default: return nil
    }
}

/// A unary operation node mapping each value (its input's shape kept).
func mapNode(_ name: String, _ context: LayerContext, _ transform: @escaping @Sendable (inout [Float]) -> Void) throws -> any NodeLayer {
    guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
        throw context.error("takes one tensor, called on \(context.inputShapes.count) tensors")
    }
    return OperationNode(name: name, outputShapes: [context.inputShape]) { inputs in
        var output = inputs[0]
        transform(&output.data)
        return output
    }
}

/// Softmax or log-softmax over one axis (`axis`, default -1), never the batch axis; the axis may
/// be of a length known only at run time (attention over a sequence of any length).
func softmaxOperation(_ activation: Activation, _ name: String, _ context: LayerContext) throws -> any NodeLayer {
    let rank = context.inputShape.count + 1
    let axes = try context.axisList("axis") ?? [-1]
    guard axes.count == 1, let raw = axes.first else {
        throw context.error("'axis' must be one axis, found \(axes)", key: "axis")
    }
    let axis = try context.sampleAxis(raw, rank: rank, key: "axis")
    guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
        throw context.error("takes one tensor, called on \(context.inputShapes.count) tensors")
    }
    return OperationNode(name: name, outputShapes: [context.inputShape]) { inputs in
        var output = inputs[0]
        let length = output.shape[axis], inner = ShapeMath.saturatingProduct(output.shape[(axis + 1)...])
        let block = length * inner
        guard block > 0 else { return output }
        var group = [Float](repeating: 0, count: length)
        for start in stride(from: 0, to: output.count, by: block) {
            for offset in 0..<inner {
                for k in 0..<length { group[k] = output.data[start + k * inner + offset] }
                activation.apply(&group, axisLength: length)
                for k in 0..<length { output.data[start + k * inner + offset] = group[k] }
            }
        }
        return output
    }
}

/// keras.ops.glu: x split in two halves a, b along `axis` (-1; never the batch axis, of even
/// length known at build time), a · sigmoid(b).
func gluOperation(_ context: LayerContext) throws -> any NodeLayer {
    let rank = context.inputShape.count + 1
    let axis = try context.sampleAxis(try context.int("axis", default: -1), rank: rank, key: "axis")
    guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
        throw context.error("takes one tensor, called on \(context.inputShapes.count) tensors")
    }
    let length = try context.inputDimension(axis - 1)
    guard length % 2 == 0 else {
        throw context.error("'axis' must name an axis of even length, found length \(length)", key: "axis")
    }
    var shape = context.inputShape
    shape[axis - 1] = length / 2
    try context.sampleCount(shape)
    return OperationNode(name: "Glu", outputShapes: [shape]) { inputs in
        let x = inputs[0]
        let half = length / 2, inner = ShapeMath.saturatingProduct(x.shape[(axis + 1)...])
        let outer = ShapeMath.saturatingProduct(x.shape[..<axis])
        var outShape = x.shape
        outShape[axis] = half
        var data = [Float](repeating: 0, count: outer * half * inner)
        x.data.withUnsafeBufferPointer { source in
            for o in 0..<outer {
                for k in 0..<half {
                    let a = (o * length + k) * inner, b = (o * length + k + half) * inner, y = (o * half + k) * inner
                    for i in 0..<inner { data[y + i] = source[a + i] * Activation.sigmoid(source[b + i]) }
                }
            }
        }
        return Tensor(shape: outShape, data: data)
    }
}

func elementwiseOperations() -> [OperationEntry] {
    var entries: [OperationEntry] = []
    for (names, function) in binaryOperations {
        entries.append((names, "NumPy's \(names[0].lowercased()) of two tensors or constants, broadcast.", { context in
            let operands = try context.operands()
            guard operands.count == 2 else { throw context.error("takes 2 operands, called on \(operands.count)") }
            let shape = try OperandBroadcast.sampleShape(operands, context)
            try context.sampleCount(shape)
            return OperationNode(name: names[0], outputShapes: [shape]) { inputs in
                try function.apply(operands.map { $0.tensor(inputs) }, name: names[0])
            }
        }))
    }
    entries.append((["Where"], "where(condition, x, y): x where the condition is non-zero, else y, broadcast.", { context in
        let operands = try context.operands()
        guard operands.count == 3 else { throw context.error("takes 3 operands (condition, x, y), called on \(operands.count); where(condition) alone gives indices, which nnbuild does not support") }
        let shape = try OperandBroadcast.sampleShape(operands, context)
        try context.sampleCount(shape)
        return OperationNode(name: "Where", outputShapes: [shape]) { inputs in
            try OperandBroadcast.apply(operands.map { $0.tensor(inputs) }, name: "Where", WhereFunction())
        }
    }))
    for (names, function) in unaryFunctions {
        entries.append((names, "NumPy's \(names[0].lowercased()), element by element.", { context in
            try mapNode(names[0], context) { data in for i in data.indices { data[i] = function(data[i]) } }
        }))
    }
    let activations = ["Relu", "Relu6", "Sigmoid", "HardSigmoid", "HardSilu", "HardSwish", "Tanh", "Softplus", "Softsign", "Exp",
                       "Elu", "Selu", "Gelu", "Silu", "Swish", "LeakyRelu", "Mish", "Celu", "HardShrink", "SoftShrink", "HardTanh",
                       "LogSigmoid", "SparsePlus", "SparseSigmoid", "TanhShrink", "Squareplus", "Threshold"]
    for name in activations {
        entries.append(([name], "keras.ops \(name.lowercased()), element by element, as the activation of that name.", { context in
            guard let activation = try activationOperation(name, context) else { throw context.error("no activation '\(name)'") }
            return try mapNode(name, context) { data in activation.apply(&data, axisLength: 1) }
        }))
    }
    entries.append((["Softmax"], "Softmax over axis (never the batch axis).", { try softmaxOperation(.softmax, "Softmax", $0) }))
    entries.append((["LogSoftmax"], "Log-softmax over axis (never the batch axis).", { try softmaxOperation(.logSoftmax, "LogSoftmax", $0) }))
    entries.append((["Sparsemax"], "Sparsemax over axis (never the batch axis), as Keras computes it.", { try softmaxOperation(.sparsemax, "Sparsemax", $0) }))
    entries.append((["Glu"], "glu(x, axis): the first half of axis times the sigmoid of the second half.", gluOperation))
    entries.append((["Round"], "Rounds half to even, at decimals places.", { context in
        let scale = Float(LibM.pow(10, Double(try context.int("decimals", default: 0))))
        return try mapNode("Round", context) { data in
            for i in data.indices { data[i] = (data[i] * scale).rounded(.toNearestOrEven) / scale }
        }
    }))
    entries.append((["Clip"], "Clips to [x_min, x_max].", { context in
        let low = try context.float("x_min"), high = try context.float("x_max")
        return try mapNode("Clip", context) { data in for i in data.indices { data[i] = Swift.min(Swift.max(data[i], low), high) } }
    }))
    for (name, fill) in [("ZerosLike", Float(0)), ("OnesLike", Float(1))] {
        entries.append(([name], "A tensor of \(fill == 0 ? "zeros" : "ones") of the input's shape.", { context in
            if context.has("dtype") { _ = try context.string("dtype") }
            return try mapNode(name, context) { data in for i in data.indices { data[i] = fill } }
        }))
    }
    // Keras 3.15 writes ops.convert_to_tensor where a layer hands on its mask (Attention's
    // compute_mask): the identity, or a cast when it names a dtype.
    entries.append((["ConvertToTensor"], "The tensor as it is, or cast to dtype when one is given.", { context in
        for key in ["sparse", "ragged"] where try context.bool(key, default: false) {
            throw context.error("'\(key)' is true; nnbuild's tensors are dense", key: key)
        }
        guard context.has("dtype") else { return try mapNode("ConvertToTensor", context) { _ in } }
        let dtype = try context.string("dtype")
        guard let function = castFunction(dtype) else {
            throw context.error("'dtype' is \"\(dtype)\", expected a float, integer or bool dtype", key: "dtype")
        }
        return try mapNode("ConvertToTensor", context) { data in for i in data.indices { data[i] = function(data[i]) } }
    }))
    entries.append((["Cast"], "Casts to dtype: floats rounded to the type, integers truncated toward zero, bool as 1 or 0.", { context in
        let dtype = try context.string("dtype")
        guard let function = castFunction(dtype) else {
            throw context.error("'dtype' is \"\(dtype)\", expected a float, integer or bool dtype", key: "dtype")
        }
        return try mapNode("Cast", context) { data in for i in data.indices { data[i] = function(data[i]) } }
    }))
    return entries
}
