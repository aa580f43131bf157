#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// Keras operations that rearrange a tensor: reshape, transpose, expand_dims, squeeze,
// concatenate, stack and indexing (`GetItem`, keras/src/ops/numpy.py). Each keeps the batch axis
// first and whole, or is refused when the model is built.

/// The index of one axis in a `GetItem` key, resolved against the axis's length at run time.
enum IndexItem: Equatable, Sendable {
    /// `x[3]`, `x[-1]`: the axis is dropped.
    case index(Int)
    /// `x[start:stop:step]`, each part optional, with Python's meaning of negatives.
    case slice(start: Int?, stop: Int?, step: Int)
    /// `None` / `np.newaxis`: a new axis of size 1 (consumes no input axis).
    case newAxis

    /// Python's `slice.indices(length)`: the positions read, in order.
    static func positions(start: Int?, stop: Int?, step: Int, length: Int) -> [Int] {
        var result: [Int] = []
        if step > 0 {
            var first = start ?? 0, end = stop ?? length
            if first < 0 { first = Swift.max(first + length, 0) }
            if end < 0 { end = Swift.max(end + length, 0) }
            first = Swift.min(first, length)
            end = Swift.min(end, length)
            var position = first
            while position < end {
                result.append(position)
                let (next, overflow) = position.addingReportingOverflow(step)
                if overflow { break }
                position = next
            }
        } else {
            var first = start ?? (length - 1), end = stop ?? -1
            if let start, start < 0 { first = Swift.max(start + length, -1) }
            if let stop, stop < 0 { end = Swift.max(stop + length, -1) }
            first = Swift.min(first, length - 1)
            end = Swift.min(end, length - 1)
            var position = first
            while position > end {
                result.append(position)
                let (next, overflow) = position.addingReportingOverflow(step)
                if overflow { break }
                position = next
            }
        }
        return result
    }

    var isFullSlice: Bool { self == .slice(start: nil, stop: nil, step: 1) }
}

/// `x[key]`: integers, slices (negative steps too), `None` and one `Ellipsis`, one item per
/// axis from the first (the batch axis must be taken whole: `x[:, ...]`).
struct GetItem: Sendable {
    /// One item per input axis, newaxis items where Keras inserts an axis.
    let items: [IndexItem]

    static func parse(_ key: CallArgument, rank: Int, _ context: LayerContext) throws -> GetItem {
        var raw: [CallArgument]
        if case let .list(list) = key { raw = list } else { raw = [key] }
        var items: [IndexItem?] = []  // nil marks the ellipsis
        for (position, entry) in raw.enumerated() {
            guard case let .value(value) = entry else {
                throw context.error("index item \(position) is a tensor; nnbuild indexes with integers, slices, None and Ellipsis only")
            }
            func integer(_ part: JSONValue?, _ what: String) throws -> Int? {
                switch part {
                case nil, .null?: return nil
                case let .int(number)?: return Int(clamping: number)
                default: throw context.error("index item \(position): slice \(what) must be an integer or None, found \(part?.brief() ?? "")")
                }
            }
            switch value {
            case let .int(number): items.append(.index(Int(clamping: number)))
            case .null: items.append(.newAxis)
            case .object:
                switch value["class_name"] {
                case .string("__slice__")?:
                    let config = value["config"]
                    let step = try integer(config?["step"], "step") ?? 1
                    guard step != 0 else { throw context.error("index item \(position): slice step must not be zero") }
                    items.append(.slice(start: try integer(config?["start"], "start"), stop: try integer(config?["stop"], "stop"), step: step))
                case .string("__ellipsis__")?: items.append(nil)
                default: throw context.error("index item \(position) is \(value.brief()); expected an integer, a slice, None or Ellipsis")
                }
            default: throw context.error("index item \(position) is \(value.brief()); expected an integer, a slice, None or Ellipsis")
            }
        }
        guard items.filter({ $0 == nil }).count <= 1 else { throw context.error("an index may hold one Ellipsis, found several") }
        let consuming = items.filter { $0 != nil && $0 != .newAxis }.count
        guard consuming <= rank else { throw context.error("an index of \(consuming) axes into a tensor of rank \(rank)") }
        let full = IndexItem.slice(start: nil, stop: nil, step: 1)
        var resolved: [IndexItem] = []
        for item in items {
            if let item { resolved.append(item) } else { resolved += [IndexItem](repeating: full, count: rank - consuming) }
        }
        if !items.contains(where: { $0 == nil }) { resolved += [IndexItem](repeating: full, count: rank - consuming) }
        guard let batch = resolved.first(where: { $0 != .newAxis }), resolved.first == batch else {
            throw context.error("the index inserts an axis before the batch axis; nnbuild keeps the batch axis first")
        }
        guard batch.isFullSlice || batch == .slice(start: 0, stop: nil, step: 1) else {
            throw context.error("the index selects along the batch axis (\(batch)); nnbuild keeps the batch axis whole: index as x[:, ...]")
        }
        return GetItem(items: resolved)
    }

    /// The positions read along each input axis, for input `shape` (batch axis first); fails on
    /// an integer out of range.
    func positions(_ shape: [Int?], where location: (String) -> NNError) throws -> [[Int]?] {
        var axis = 0
        var result: [[Int]?] = []
        for item in items {
            switch item {
            case .newAxis: continue
            case let .index(index):
                guard let length = shape[axis] else { result.append(nil); axis += 1; continue }
                let resolved = index < 0 ? index + length : index
                guard resolved >= 0, resolved < length else {
                    throw location("index \(index) is out of range for axis \(axis) of size \(length)")
                }
                result.append([resolved])
            case let .slice(start, stop, step):
                guard let length = shape[axis] else { result.append(nil); axis += 1; continue }
                result.append(IndexItem.positions(start: start, stop: stop, step: step, length: length))
            }
            axis += 1
        }
        return result
    }

    /// The output shape (batch axis first) for input `shape`.
    func outputShape(_ shape: [Int?], _ positions: [[Int]?]) -> [Int?] {
        var axis = 0
        var output: [Int?] = []
        for item in items {
            switch item {
            case .newAxis: output.append(1); continue
            case .index: break
            case .slice: output.append(item.isFullSlice ? shape[axis] : positions[axis]?.count)
            }
            axis += 1
        }
        return output
    }

    func run(_ input: Tensor) throws -> Tensor {
        let shape = input.shape.map(Optional.some)
        let positions = try self.positions(shape) { NNError(.input, "GetItem", $0) }.map { $0 ?? [] }
        let outputShape = outputShape(shape, positions).map { $0 ?? 0 }
        _ = try ShapeMath.sampleCount(outputShape, of: "the output", at: "GetItem")
        return Tensor(shape: outputShape, data: gather(input, positions).data)
    }
}

/// Moves axes: output axis i is input axis `permutation[i]` (batch axis included, kept first).
func permute(_ input: Tensor, _ permutation: [Int]) -> Tensor {
    let strides = contiguousStrides(input.shape)
    let shape = permutation.map { input.shape[$0] }
    let readStrides = permutation.map { strides[$0] }
    var data = [Float]()
    data.reserveCapacity(input.count)
    func walk(_ axis: Int, _ offset: Int) {
        if axis == shape.count { data.append(input.data[offset]); return }
        for index in 0..<shape[axis] { walk(axis + 1, offset + index * readStrides[axis]) }
    }
    walk(0, 0)
    return Tensor(shape: shape, data: data)
}

/// Joins `inputs` (one shape) along a new axis `axis` (batch axis first, > 0).
func stack(_ inputs: [Tensor], axis: Int) throws -> Tensor {
    guard let first = inputs.first, inputs.allSatisfy({ $0.shape == first.shape }) else {
        throw NNError(.input, "Stack", "inputs of shapes \(inputs.map(\.shape)) must have one shape")
    }
    let outer = ShapeMath.saturatingProduct(first.shape[..<axis]), inner = ShapeMath.saturatingProduct(first.shape[axis...])
    var data = [Float]()
    data.reserveCapacity(outer * inner * inputs.count)
    for row in 0..<outer {
        for input in inputs { data.append(contentsOf: input.data[(row * inner)..<((row + 1) * inner)]) }
    }
    var shape = first.shape
    shape.insert(inputs.count, at: axis)
    return Tensor(shape: shape, data: data)
}

/// A node that keeps the data and changes the shape: `sample` at build time, `shape(full input
/// shape)` at run time.
func reshapeNode(_ name: String, _ context: LayerContext, sample: [Int?], shape: @escaping @Sendable ([Int]) -> [Int]) throws -> any NodeLayer {
    guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
        throw context.error("takes one tensor, called on \(context.inputShapes.count)")
    }
    try context.sampleCount(sample)
    return OperationNode(name: name, outputShapes: [sample]) { inputs in
        var output = inputs[0]
        let target = shape(output.shape)
        guard target.allSatisfy({ $0 >= 0 }), ShapeMath.saturatingProduct(target) == output.count else {
            throw NNError(.input, name, "input of shape \(output.shape) cannot take the shape \(target)")
        }
        output.shape = target
        return output
    }
}

func shapeOperations() -> [OperationEntry] {
    [
        (["Reshape"], "Reshapes to newshape, whose first entry must be -1 (the batch axis).", { context in
            let newShape = try context.intList("newshape")
            guard newShape.first == -1 else {
                throw context.error("'newshape' is \(newShape): its first entry sizes the batch axis; nnbuild keeps the batch axis free, expected -1 there (ops.reshape(x, (-1, ...)))", key: "newshape")
            }
            let sample = Array(newShape.dropFirst()).map { Optional($0) }
            guard sample.allSatisfy({ ($0 ?? 0) >= 0 }) else {
                throw context.error("'newshape' is \(newShape): with the batch axis inferred (-1) the other sizes must be known and non-negative", key: "newshape")
            }
            if let size = try? context.inputCount(axes: 0..<context.inputShape.count) {
                guard ShapeMath.product(sample.map { $0 ?? 1 }) == size else {
                    throw context.error("'newshape' \(newShape) does not hold the \(size) values of an input sample \(describeShape(context.inputShape))", key: "newshape")
                }
            }
            let fixed = Array(newShape.dropFirst())
            return try reshapeNode("Reshape", context, sample: sample) { input in
                [input.first ?? 1] + fixed
            }
        }),
        (["Transpose"], "Permutes axes; the batch axis must stay first.", { context in
            let rank = context.inputShape.count + 1
            let axes = try context.axisList("axes") ?? Array((0..<rank).reversed())
            let permutation = axes.map { $0 < 0 ? $0 + rank : $0 }
            guard permutation.sorted() == Array(0..<rank) else {
                throw context.error("'axes' is \(axes), expected a permutation of the \(rank) axes", key: "axes")
            }
            guard permutation.first == 0 else {
                throw context.error("'axes' is \(context.has("axes") ? "\(axes)" : "None (every axis reversed)"): it moves the batch axis; nnbuild keeps the batch axis first", key: "axes")
            }
            guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else { throw context.error("takes one tensor") }
            let shape = permutation.dropFirst().map { context.inputShape[$0 - 1] }
            return OperationNode(name: "Transpose", outputShapes: [shape]) { inputs in permute(inputs[0], permutation) }
        }),
        (["ExpandDims"], "Inserts axes of size 1 (never before the batch axis).", { context in
            let axes = try context.axisList("axis") ?? []
            let rank = context.inputShape.count + 1 + axes.count
            let resolved = try axes.map { try context.sampleAxis($0, rank: rank, key: "axis") }.sorted()
            guard Set(resolved).count == resolved.count else { throw context.error("'axis' repeats an axis", key: "axis") }
            var sample = context.inputShape
            for axis in resolved { sample.insert(1, at: axis - 1) }
            return try reshapeNode("ExpandDims", context, sample: sample) { input in
                var shape = input
                for axis in resolved { shape.insert(1, at: axis) }
                return shape
            }
        }),
        // axis=None squeezes the sample's axes of size 1 as the model's shapes say; TensorFlow
        // would also drop a batch axis of 1 at run time, which no later layer of the model expects.
        (["Squeeze"], "Removes axes of size 1 (all of a sample's when axis is None; never the batch axis).", { context in
            let rank = context.inputShape.count + 1
            let shape = context.inputShape
            let axes: [Int]
            if let listed = try context.axisList("axis") {
                axes = try listed.map { try context.sampleAxis($0, rank: rank, key: "axis") - 1 }
                for axis in axes where shape[axis] != 1 {
                    throw context.error("'axis' \(axis + 1) has size \(shape[axis].map(String.init) ?? "None"), expected 1", key: "axis")
                }
            } else {
                axes = shape.indices.filter { shape[$0] == 1 }
            }
            let sample = shape.indices.filter { !axes.contains($0) }.map { shape[$0] }
            return try reshapeNode("Squeeze", context, sample: sample) { input in
                input.indices.filter { $0 == 0 || !axes.contains($0 - 1) }.map { input[$0] }
            }
        }),
        (["Concatenate"], "Joins a list of tensors along an axis (never the batch axis).", { context in
            _ = try context.tensorList("Concatenate")
            guard context.has("axis") else {
                throw context.error("'axis' is absent: keras.ops.concatenate joins along axis 0, the batch axis, by default; nnbuild keeps the batch axis whole", key: "axis")
            }
            let joined = try Concatenate.factory(context)
            return OperationNode(name: "Concatenate", outputShapes: joined.outputShapes) { inputs in
                let unmasked = inputs.map { Tensor(shape: $0.shape, data: $0.data) }
                return try joined.call(unmasked)[0]
            }
        }),
        (["Stack"], "Joins a list of tensors of one shape along a new axis (never before the batch axis).", { context in
            let count = try context.tensorList("Stack")
            let rank = context.inputShape.count + 2
            let axis = try context.sampleAxis(try context.int("axis", default: 0), rank: rank, key: "axis")
            for shape in context.inputShapes where shape.count != context.inputShape.count || zip(shape, context.inputShape).contains(where: { a, b in a != nil && b != nil && a != b }) {
                throw context.error("stacks tensors of one shape, found \(context.inputShapes.map(describeShape).joined(separator: ", "))")
            }
            var sample = context.inputShape
            sample.insert(count, at: axis - 1)
            try context.sampleCount(sample)
            return OperationNode(name: "Stack", outputShapes: [sample]) { inputs in try stack(inputs, axis: axis) }
        }),
        (["GetItem"], "x[key]: integers, slices (any step), None and Ellipsis; the batch axis whole.", { context in
            guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
                throw context.error("indexes one tensor with a constant key")
            }
            guard let key = context.callArgument(1) else { throw context.error("has no index") }
            let full = [nil] + context.inputShape
            let item = try GetItem.parse(key, rank: full.count, context)
            let positions = try item.positions(full) { context.error($0) }
            let shape = Array(item.outputShape(full, positions).dropFirst())
            try context.sampleCount(shape)
            return OperationNode(name: "GetItem", outputShapes: [shape]) { inputs in try item.run(inputs[0]) }
        }),
        (["Split"], "Splits along axis into equal sections or at indices, one output each (never the batch axis).", { context in
            try oneTensor(context)
            let axis = try context.sampleAxis(try context.int("axis", default: 0), rank: context.inputShape.count + 1, key: "axis")
            let length = try context.inputDimension(axis - 1)
            let bounds: [Int]
            switch context.value("indices_or_sections") {
            case let .int(sections)?:
                guard sections > 0, length % Int(sections) == 0 else {
                    throw context.error("'indices_or_sections' is \(sections): axis \(axis) of size \(length) does not split into \(sections) equal sections", key: "indices_or_sections")
                }
                bounds = (0...Int(sections)).map { $0 * (length / Int(sections)) }
            case .array?:
                let indices = try context.intList("indices_or_sections").map { Swift.min(Swift.max($0 < 0 ? $0 + length : $0, 0), length) }
                bounds = [0] + indices + [length]
            default:
                throw context.error("'indices_or_sections' must be an integer or a list of integers, found \(context.value("indices_or_sections")?.brief() ?? "nothing")", key: "indices_or_sections")
            }
            // NumPy: section i runs from bounds[i] to bounds[i + 1], empty when they cross.
            let ranges = zip(bounds, bounds.dropFirst()).map { start, end in start..<Swift.max(start, end) }
            let shapes = ranges.map { range -> [Int?] in
                var shape = context.inputShape
                shape[axis - 1] = range.count
                return shape
            }
            return OperationNode(name: "Split", outputShapes: shapes, outputs: { inputs in
                try ranges.map { range in try gatherAlong(inputs[0], axis: axis, Array(range), what: "Split") }
            })
        }),
        (["Unstack"], "One output per index of axis, that axis removed (never the batch axis).", { context in
            try oneTensor(context)
            let axis = try context.sampleAxis(try context.int("axis", default: 0), rank: context.inputShape.count + 1, key: "axis")
            let length = try context.inputDimension(axis - 1)
            if context.has("num") {
                let num = try context.int("num")
                guard num == length else { throw context.error("'num' is \(num), axis \(axis) has size \(length)", key: "num") }
            }
            var shape = context.inputShape
            shape.remove(at: axis - 1)
            return OperationNode(name: "Unstack", outputShapes: [[Int?]](repeating: shape, count: length), outputs: { inputs in
                try (0..<length).map { index in
                    var part = try gatherAlong(inputs[0], axis: axis, [index], what: "Unstack")
                    part.shape.remove(at: axis)
                    return part
                }
            })
        }),
        (["Tile"], "Repeats the whole tensor along each axis (a repeat of 1 on the batch axis).", { context in
            try oneTensor(context)
            let rank = context.inputShape.count + 1
            var repeats = try context.axisList("repeats") ?? []
            guard repeats.count <= rank else {
                throw context.error("'repeats' \(repeats) has more entries than the \(rank) axes: NumPy would add axes before the batch axis; nnbuild keeps the batch axis first", key: "repeats")
            }
            repeats = [Int](repeating: 1, count: rank - repeats.count) + repeats
            guard repeats[0] == 1, repeats.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }) else {
                throw context.error("'repeats' \(repeats) must be non-negative (at most \(Int32.max)) and 1 on the batch axis; nnbuild keeps the batch axis whole", key: "repeats")
            }
            let shape = zip(context.inputShape, repeats.dropFirst()).map { size, times in size.map { $0 * times } }
            try context.sampleCount(shape)
            let tiles = repeats
            return OperationNode(name: "Tile", outputShapes: [shape]) { inputs in
                let input = inputs[0]
                // Each axis alone too: an empty axis elsewhere must not let one axis's positions grow unchecked.
                let sizes = zip(input.shape, tiles).map { $0.multipliedReportingOverflow(by: $1) }.map { $0.overflow ? Int.max : $0.partialValue }
                _ = try ShapeMath.sampleCount(sizes, of: "the output", at: "Tile")
                for size in sizes { _ = try ShapeMath.sampleCount([size], of: "an axis of the output", at: "Tile") }
                return gather(input, zip(input.shape, tiles).map { size, times in (0..<(size * times)).map { $0 % Swift.max(size, 1) } })
            }
        }),
        (["Repeat"], "Repeats each element along axis (never the batch axis).", { context in
            try oneTensor(context)
            guard context.has("axis") else {
                throw context.error("'axis' is None: it flattens every axis, the batch axis included; nnbuild keeps the batch axis, name the axis", key: "axis")
            }
            let axis = try context.sampleAxis(try context.int("axis"), rank: context.inputShape.count + 1, key: "axis")
            let times: Int
            switch context.value("repeats") {
            case let .array(items)? where items.count == 1: times = try context.intList("repeats")[0]
            default: times = try context.int("repeats")
            }
            guard times >= 0 else { throw context.error("'repeats' must be non-negative, found \(times)", key: "repeats") }
            var shape = context.inputShape
            shape[axis - 1] = shape[axis - 1].map { $0 * times }
            try context.sampleCount(shape)
            return OperationNode(name: "Repeat", outputShapes: [shape]) { inputs in
                let length = inputs[0].shape[axis]
                _ = try ShapeMath.sampleCount(Array(inputs[0].shape.dropFirst()) + [times], of: "the output", at: "Repeat")
                _ = try ShapeMath.sampleCount([length, times], of: "the repeated axis", at: "Repeat")
                return try gatherAlong(inputs[0], axis: axis, (0..<(length * times)).map { $0 / times }, what: "Repeat")
            }
        }),
    ]
}

/// Fails unless the call is on one tensor.
func oneTensor(_ context: LayerContext) throws {
    guard context.inputShapes.count == 1, case .tensor? = context.callArgument(0) else {
        throw context.error("takes one tensor, called on \(context.inputShapes.count)")
    }
}

/// `input` at `positions` along `axis` (full-tensor axis), every other axis whole.
func gatherAlong(_ input: Tensor, axis: Int, _ positions: [Int], what: String) throws -> Tensor {
    guard axis < input.rank, positions.allSatisfy({ $0 >= 0 && $0 < input.shape[axis] }) else {
        throw NNError(.input, what, "input of shape \(input.shape) has no position \(positions.max() ?? 0) along axis \(axis)")
    }
    return gather(input, input.shape.indices.map { $0 == axis ? positions : Array(0..<input.shape[$0]) })
}
