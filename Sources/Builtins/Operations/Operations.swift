#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// Keras 3 operations on tensors (`x + y`, `ops.mean(x, axis=1)`, `x[:, -1]`), serialized as graph
// nodes whose `module` is `keras.src.ops.*` and registered as `ops.ClassName`
// (LayerRegistry.operationName). One family per file: Elementwise (arithmetic, comparisons,
// unary math, activations, cast), Shape (reshape, transpose, expand_dims, squeeze, concatenate,
// stack, GetItem), Reductions (mean, sum, prod, max, min, any, all, argmax, argmin), Products
// (matmul, einsum).
//
// An operation sees the whole tensor, batch axis first, as Keras does; the engine keeps the
// batch axis first, so an operation that would remove, move or mix it is refused when the model
// is built. Operations on KerasTensors never carry a mask in Keras 3 (keras/src/ops/operation.py
// sets none): every output here is unmasked; Keras writes a mask a layer needs as explicit
// operations passed in the call's `mask` argument. Booleans and integers are float32 values
// (true is 1, false 0).

/// An operation node: output shapes fixed at build time, one function of the input tensors.
struct OperationNode: NodeLayer {
    let name: String
    let outputShapes: [[Int?]]
    let run: @Sendable ([Tensor]) throws -> [Tensor]

    /// An operation of one output.
    init(name: String, outputShapes: [[Int?]], _ run: @escaping @Sendable ([Tensor]) throws -> Tensor) {
        self.name = name
        self.outputShapes = outputShapes
        self.run = { [try run($0)] }
    }

    /// An operation of several outputs (`ops.split`, `ops.unstack`), one per shape.
    init(name: String, outputShapes: [[Int?]], outputs run: @escaping @Sendable ([Tensor]) throws -> [Tensor]) {
        self.name = name
        self.outputShapes = outputShapes
        self.run = run
    }

    func call(_ inputs: [Tensor]) throws -> [Tensor] {
        try run(inputs).map { Tensor(shape: $0.shape, data: $0.data) }
    }
}

/// The tensor made of `input`'s elements at the given positions along each axis (every axis
/// listed, batch first): out[i, j, …] = input[positions[0][i], positions[1][j], …]. Slicing,
/// splitting, tiling and repeating are each one choice of positions.
func gather(_ input: Tensor, _ positions: [[Int]]) -> Tensor {
    let strides = contiguousStrides(input.shape)
    var data = [Float]()
    data.reserveCapacity(positions.reduce(1) { $0 * $1.count })
    func walk(_ axis: Int, _ offset: Int) {
        if axis == positions.count { data.append(input.data[offset]); return }
        for position in positions[axis] { walk(axis + 1, offset + position * strides[axis]) }
    }
    walk(0, 0)
    return Tensor(shape: positions.map(\.count), data: data)
}

/// A positional argument of an operation: an input tensor (its index among the node's inputs),
/// or a constant Keras wrote in the call (`2.0`, `0`, `True`, a `__tensor__` or `__numpy__`, a nested list).
enum Operand: Sendable {
    case input(Int)
    case constant(shape: [Int], values: [Float])

    /// The full shape (batch axis first, nil for it) at build time.
    func shape(_ context: LayerContext) -> [Int?] {
        switch self {
        case let .input(index): return [nil] + context.inputShapes[index]
        case let .constant(shape, _): return shape
        }
    }

    /// The value at run time.
    func tensor(_ inputs: [Tensor]) -> Tensor {
        switch self {
        case let .input(index): return inputs[index]
        case let .constant(shape, values): return Tensor(shape: shape, data: values)
        }
    }

    var isInput: Bool { if case .input = self { return true } else { return false } }
}

extension LayerContext {
    /// The call's positional arguments as operands, reading each (a list is refused: use
    /// `tensorList`).
    func operands() throws -> [Operand] {
        var next = 0
        var operands: [Operand] = []
        var index = 0
        while let argument = callArgument(index) {
            operands.append(try operand(argument, position: index, next: &next))
            index += 1
        }
        return operands
    }

    func operand(_ argument: CallArgument, position: Int, next: inout Int) throws -> Operand {
        if case .tensor = argument {
            defer { next += 1 }
            return .input(next)
        }
        guard argument.tensors.isEmpty else {
            throw error("positional argument \(position) must be a tensor or a constant, found a list holding tensors")
        }
        let (shape, values) = try constant(argument, what: "positional argument \(position)")
        return .constant(shape: shape, values: values)
    }

    /// A constant call argument as a shape and its values: a number, a boolean, a nested list of
    /// them, or Keras's `{"class_name": "__tensor__", "config": {"value": ..., "dtype": ...}}` (a
    /// NumPy array: `__numpy__`).
    func constant(_ argument: CallArgument, what: String) throws -> ([Int], [Float]) {
        func read(_ value: JSONValue, depth: Int) throws -> ([Int], [Float]) {
            guard depth < 16 else { throw error("\(what) is nested more than 16 deep") }
            switch value {
            case let .int(number): return ([], [Float(number)])
            case let .double(number): return ([], [Float(number)])
            case let .bool(flag): return ([], [flag ? 1 : 0])
            case let .array(items):
                var shape: [Int]?
                var values: [Float] = []
                for item in items {
                    let (inner, data) = try read(item, depth: depth + 1)
                    if let shape, shape != inner { throw error("\(what) is a ragged list (items of shapes \(shape) and \(inner)); expected a rectangular array") }
                    shape = inner
                    values += data
                }
                return ([items.count] + (shape ?? []), values)
            case .object:
                if case let .string(kind)? = value["class_name"], kind == "__tensor__" || kind == "__numpy__", let inner = value["config"]?["value"] {
                    return try read(inner, depth: depth + 1)
                }
                fallthrough
            default:
                throw error("\(what) must be a tensor or a numeric constant, found \(value.brief())")
            }
        }
        func json(_ argument: CallArgument) throws -> JSONValue {
            switch argument {
            case let .value(value): return value
            case let .list(items): return .array(try items.map(json))
            default: throw error("\(what) must be a tensor or a numeric constant")
            }
        }
        let (shape, values) = try read(try json(argument), depth: 0)
        guard ShapeMath.product(shape) == values.count else { throw error("\(what) holds \(values.count) values for shape \(shape)") }
        return (shape, values)
    }

    /// The tensors of positional argument 0 when it is a list of tensors (`ops.concatenate([a, b])`).
    func tensorList(_ operation: String) throws -> Int {
        guard let argument = callArgument(0) else { throw error("\(operation) needs a list of tensors") }
        let items: [CallArgument]
        switch argument {
        case let .list(list): items = list
        case .tensor: items = [argument]
        case .value, .dict: throw error("\(operation) needs a list of tensors, found a constant")
        }
        guard !items.isEmpty, items.allSatisfy({ if case .tensor = $0 { return true } else { return false } }) else {
            throw error("\(operation) needs a list of tensors, found a list holding constants; nnbuild joins tensors only")
        }
        return items.count
    }

    /// Axis `axis` of a tensor of full rank `rank` (batch axis included, negative counts from the
    /// end), which must not be the batch axis.
    func sampleAxis(_ axis: Int, rank: Int, key: String) throws -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0, resolved < rank else {
            throw error("'\(key)' is \(axis), expected an axis of a tensor of rank \(rank) (from \(-rank) to \(rank - 1))", key: key)
        }
        guard resolved != 0 else {
            throw error("'\(key)' is \(axis), the batch axis; nnbuild keeps the batch axis first and refuses operations that remove or move it", key: key)
        }
        return resolved
    }

    /// Config key `key` as a list of axes (an integer or a list of them), nil when null or absent.
    func axisList(_ key: String) throws -> [Int]? {
        guard has(key), let raw = value(key) else { return nil }
        switch raw {
        case let .int(number): return [Int(number)]
        case let .array(items):
            let numbers = items.compactMap { item -> Int? in if case let .int(number) = item { return Int(number) } else { return nil } }
            guard numbers.count == items.count else { throw error("'\(key)' must be an integer or a list of integers, found \(raw.brief())", key: key) }
            return numbers
        default: throw error("'\(key)' must be an integer or a list of integers, found \(raw.brief())", key: key)
        }
    }
}

/// Row-major strides of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var step = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = step
        step *= shape[axis]
    }
    return strides
}

extension Builtins {
    static func registerOperations(_ registry: LayerRegistry) {
        func register(_ names: [String], _ summary: String, _ factory: @escaping LayerFactory) {
            for name in names {
                registry.register(LayerRegistry.operationName(name), origin: "builtin", summary: summary, factory: factory)
            }
        }
        for (names, summary, factory) in elementwiseOperations() + shapeOperations() + reductionOperations() + productOperations() + moreOperations() {
            register(names, summary, factory)
        }
    }
}

/// Names, summary and factory of a family of operations, for `registerOperations`.
typealias OperationEntry = (names: [String], summary: String, factory: LayerFactory)
