#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// Merge layers (keras.layers.Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate,
// Dot): layers of several inputs, each following keras/src/layers/merging.

/// Add, Subtract, Multiply, Average, Maximum and Minimum: one element-wise operation over every
/// input, with Keras's broadcasting (a lower-rank input gains axes of size 1 after the batch
/// axis, `base_merge.py`, then sizes of 1 broadcast as in NumPy).
///
/// Masks, as Keras 3 does: the output carries a mask only when every input does (their OR).
/// Multiply counts a masked-out element as 1 and zeroes the output where no input is real;
/// Maximum and Minimum take a masked-out element from the other side.
public struct ElementwiseMerge: SumOfInputs {
    public enum Operation: String, Sendable, CaseIterable {
        case add = "Add", subtract = "Subtract", multiply = "Multiply", average = "Average", maximum = "Maximum", minimum = "Minimum"
    }

    public let operation: Operation
    public let outputShapes: [[Int?]]
    let inputRanks: [Int]
    /// An element-wise activation layer after the merge, applied in the same step (`fusing`).
    var activation: Activation = .linear

    static func factory(_ operation: Operation) -> LayerFactory {
        { context in
            let shapes = context.inputShapes
            guard !shapes.isEmpty else { throw context.error("a merge layer needs a list of at least one input tensor") }
            if operation == .subtract, shapes.count != 2 {
                throw context.error("a Subtract layer takes exactly 2 inputs, called on \(shapes.count)")
            }
            let rank = shapes.map(\.count).max() ?? 0
            let output: [Int?]
            switch Broadcast.shape(of: shapes.map { [Int?](repeating: 1, count: rank - $0.count) + $0 }) {
            case let .success(shape): output = shape
            case let .failure(axis):
                throw context.error("inputs have incompatible shapes: \(shapes.map(describeShape).joined(separator: ", ")) (axis \(axis.axis + 1) cannot broadcast)")
            }
            try context.sampleCount(output)
            return ElementwiseMerge(operation: operation, outputShapes: [output], inputRanks: shapes.map(\.count))
        }
    }

    public func outputMasks(inputMasks: [Bool]) -> [Bool] { [!inputMasks.isEmpty && inputMasks.allSatisfy { $0 }] }

    /// Add sums its inputs left to right: a convolution can finish it in its store (`SumOfInputs`).
    var sumsInputs: Bool { operation == .add && activation == .linear }

    public func call(_ inputs: [Tensor]) throws -> [Tensor] {
        var outputs = try merged(inputs)
        if activation != .linear {
            activation.apply(&outputs[0].data, axisLength: outputs[0].shape.last ?? 1)
        }
        return outputs
    }

    private func merged(_ inputs: [Tensor]) throws -> [Tensor] {
        let shapes = try broadcastShapes(inputs)
        let outputShape = shapes.output
        let masked = inputs.allSatisfy { $0.mask != nil }
        // Add, Subtract and Average never read a mask for their values (only Multiply, Maximum
        // and Minimum do), so inputs of one shape take the one-pass loops, masked or not: a
        // Transformer's residual Add on padded text spent 8% of the model per Add in the
        // element-by-element path below.
        if inputs.allSatisfy({ $0.shape == outputShape }),
           inputs.allSatisfy({ $0.mask == nil }) || [.add, .subtract, .average].contains(operation) {
            var output = sameShape(inputs, outputShape)
            if masked { output.mask = combinedMask(inputs, outputShape) }
            return [output]
        }
        let count = ShapeMath.saturatingProduct(outputShape)
        let steps = outputShape.count > 1 ? outputShape[1] : 1
        let perStep = steps == 0 ? 0 : count / max(outputShape[0] * steps, 1)
        // A mask is read only on inputs of the output's own shape (a sequence and its features).
        for input in inputs where input.mask != nil && input.shape != outputShape {
            throw NNError(.input, "\(operation.rawValue)", "a masked input of shape \(input.shape) cannot broadcast to \(outputShape); Keras masks only inputs of the output's shape")
        }
        func isReal(_ input: Tensor, _ flat: Int) -> Bool {
            guard let mask = input.mask, perStep > 0 else { return true }
            return mask[flat / perStep]
        }
        var data = [Float](repeating: 0, count: count)
        let offsets = shapes.inputs.map { BroadcastIndex(shape: $0, to: outputShape) }
        for flat in 0..<count {
            var value: Float = 0
            var outputReal = true
            var anyReal = false
            for (index, input) in inputs.enumerated() {
                var x = input.data[offsets[index].offset(of: flat)]
                let real = isReal(input, flat)
                anyReal = anyReal || real
                if index == 0 {
                    if operation == .multiply, !real { x = 1 }
                    value = x
                    outputReal = input.mask == nil ? true : real
                    continue
                }
                switch operation {
                case .add, .average: value += x
                case .subtract: value -= x
                case .multiply: value *= real ? x : 1
                case .maximum, .minimum:
                    // keras base_merge._apply_merge_op_and_or_mask, element by element.
                    let maskedSide = input.mask != nil
                    let earlierMasked = inputs[..<index].allSatisfy { $0.mask != nil }
                    if maskedSide, !real { x = value }
                    if earlierMasked, !outputReal { value = x }
                    outputReal = maskedSide && earlierMasked ? (outputReal || real) : true
                    value = operation == .maximum ? max(value, x) : min(value, x)
                }
            }
            if operation == .average { value /= Float(inputs.count) }
            if operation == .multiply, masked, !anyReal { value = 0 }
            data[flat] = value
        }
        var output = Tensor(shape: outputShape, data: data)
        if masked { output.mask = combinedMask(inputs, outputShape) }
        return [output]
    }

    /// The output's mask when every input has one: their OR over (batch, steps); nil for an
    /// output without a steps axis.
    func combinedMask(_ inputs: [Tensor], _ outputShape: [Int]) -> [Bool]? {
        guard outputShape.count >= 2 else { return nil }
        var flags = [Bool](repeating: false, count: outputShape[0] * outputShape[1])
        for input in inputs {
            guard let mask = input.mask, mask.count == flags.count else { continue }
            for index in flags.indices where mask[index] { flags[index] = true }
        }
        return flags
    }

    /// The common case, unmasked inputs of one shape (a residual Add): one pass per input.
    func sameShape(_ inputs: [Tensor], _ shape: [Int]) -> Tensor {
        var data = inputs[0].data
        for input in inputs.dropFirst() {
            data.withUnsafeMutableBufferPointer { out in
                input.data.withUnsafeBufferPointer { x in
                    switch operation {
                    case .add, .average: for index in out.indices { out[index] += x[index] }
                    case .subtract: for index in out.indices { out[index] -= x[index] }
                    case .multiply: for index in out.indices { out[index] *= x[index] }
                    case .maximum: for index in out.indices { out[index] = max(out[index], x[index]) }
                    case .minimum: for index in out.indices { out[index] = min(out[index], x[index]) }
                    }
                }
            }
        }
        if operation == .average {
            let count = Float(inputs.count)
            for index in data.indices { data[index] /= count }
        }
        return Tensor(shape: shape, data: data)
    }

    /// Each input's shape with Keras's extra axes of size 1 after the batch axis, and the
    /// broadcast output shape, for the actual batch; fails when sizes do not broadcast.
    func broadcastShapes(_ inputs: [Tensor]) throws -> (inputs: [[Int]], output: [Int]) {
        guard let first = inputs.first else { throw NNError(.input, operation.rawValue, "a merge layer needs at least one input") }
        let rank = inputs.map(\.rank).max() ?? 0
        let padded = inputs.map { input in [input.shape[0]] + [Int](repeating: 1, count: rank - input.rank) + input.shape.dropFirst() }
        guard case let .success(output) = Broadcast.shape(of: padded) else {
            throw NNError(.input, operation.rawValue, "inputs of shapes \(inputs.map(\.shape)) do not broadcast together")
        }
        guard inputs.allSatisfy({ $0.batch == first.batch }) else {
            throw NNError(.input, operation.rawValue, "inputs have different batch sizes: \(inputs.map(\.batch))")
        }
        _ = try ShapeMath.sampleCount(Array(output.dropFirst()), at: operation.rawValue)
        return (padded, output)
    }
}

/// A merge takes over the element-wise activation layer after it (a residual Add's ReLU where no
/// convolution finishes the sum: a channels-first block's), one pass fewer over the output.
extension ElementwiseMerge: FusesSuccessor {
    public func fusing(_ next: any NodeLayer, reading position: Int) -> (any NodeLayer)? {
        guard position == 0, activation == .linear, let absorbed = absorbableActivation(next) else { return nil }
        var fused = self
        fused.activation = absorbed
        return fused
    }
}

/// NumPy's broadcasting of shapes of one rank (callers align them first: merge layers pad after
/// the batch axis, operations on tensors before it): sizes of 1 stretch, nil (a size known only
/// at run time) stays nil. Shared by the merge layers and the Keras operations.
enum Broadcast {
    struct Mismatch: Error { let axis: Int }

    static func shape(of shapes: [[Int?]]) -> Result<[Int?], Mismatch> {
        let rank = shapes.first?.count ?? 0
        var output = [Int?](repeating: 1, count: rank)
        for shape in shapes {
            for axis in 0..<min(rank, shape.count) {
                switch (output[axis], shape[axis]) {
                case let (a?, b?) where a == b || b == 1: output[axis] = a
                case let (a?, b?) where a == 1: output[axis] = b
                case (_?, _?): return .failure(Mismatch(axis: axis))
                default: output[axis] = nil
                }
            }
        }
        return .success(output)
    }

    static func shape(of shapes: [[Int]]) -> Result<[Int], Mismatch> {
        shape(of: shapes.map { $0.map(Optional.some) }).map { $0.map { $0 ?? 1 } }
    }
}

/// Maps a flat index of a broadcast output to the flat index of one input.
struct BroadcastIndex {
    let outputStrides: [Int]
    let inputStrides: [Int]

    init(shape: [Int], to output: [Int]) {
        var outputStrides = [Int](repeating: 1, count: output.count)
        var inputStrides = [Int](repeating: 0, count: output.count)
        var outer = 1, inner = 1
        for axis in stride(from: output.count - 1, through: 0, by: -1) {
            outputStrides[axis] = outer
            outer *= output[axis]
            inputStrides[axis] = shape[axis] == 1 ? 0 : inner
            inner *= shape[axis]
        }
        self.outputStrides = outputStrides
        self.inputStrides = inputStrides
    }

    func offset(of flat: Int) -> Int {
        var rest = flat, offset = 0
        for axis in outputStrides.indices {
            let coordinate = rest / outputStrides[axis]
            rest -= coordinate * outputStrides[axis]
            offset += coordinate * inputStrides[axis]
        }
        return offset
    }
}

/// `Concatenate(axis)`: joins the inputs along `axis` (counted with the batch axis, negative from
/// the end; the batch axis itself is refused). Every other axis must agree.
///
/// Mask (concatenate.py): when any input is masked, an unmasked input counts as all real; joined
/// along the steps axis the masks are joined, along any later axis a step is real when it is real
/// in any input.
public struct Concatenate: NodeLayer {
    /// The axis within a sample (batch axis excluded).
    let axis: Int
    public let outputShapes: [[Int?]]

    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        let shapes = context.inputShapes
        guard let first = shapes.first else { throw context.error("a Concatenate layer needs a list of at least one input tensor") }
        let axis = try context.int("axis", default: -1)
        let rank = first.count + 1
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 1, resolved < rank else {
            throw context.error("'axis' is \(axis), expected an axis from 1 to \(rank - 1) (or -1 to -\(rank - 1)) of inputs of shape \(describeShape(first))", key: "axis")
        }
        var output = first
        for shape in shapes.dropFirst() {
            guard shape.count == first.count else {
                throw context.error("inputs must have the same rank: \(shapes.map(describeShape).joined(separator: ", "))")
            }
            for index in shape.indices where index != resolved - 1 {
                if let a = output[index], let b = shape[index], a != b {
                    throw context.error("inputs must match except along the concatenation axis \(axis): \(shapes.map(describeShape).joined(separator: ", "))")
                }
                if output[index] == nil { output[index] = shape[index] }
            }
            if let a = output[resolved - 1], let b = shape[resolved - 1] { output[resolved - 1] = a + b } else { output[resolved - 1] = nil }
        }
        try context.sampleCount(output)
        return Concatenate(axis: resolved - 1, outputShapes: [output])
    }

    public func outputMasks(inputMasks: [Bool]) -> [Bool] { [inputMasks.contains(true)] }

    public func call(_ inputs: [Tensor]) throws -> [Tensor] {
        guard let first = inputs.first else { throw NNError(.input, "Concatenate", "no input") }
        let batch = first.batch
        for input in inputs {
            guard input.rank == first.rank, input.batch == batch,
                  zip(input.shape, first.shape).enumerated().allSatisfy({ $0.offset == axis + 1 || $0.element.0 == $0.element.1 }) else {
                throw NNError(.input, "Concatenate", "inputs of shapes \(inputs.map(\.shape)) must match except along axis \(axis + 1)")
            }
        }
        let outer = ShapeMath.saturatingProduct(first.shape[...axis])
        let inners = inputs.map { ShapeMath.saturatingProduct($0.shape[(axis + 1)...]) }
        let total = inners.reduce(0, +)
        var data = [Float]()
        data.reserveCapacity(outer * total)
        for row in 0..<outer {
            for (input, inner) in zip(inputs, inners) {
                data.append(contentsOf: input.data[(row * inner)..<((row + 1) * inner)])
            }
        }
        var shape = first.shape
        shape[axis + 1] = inputs.reduce(0) { $0 + $1.shape[axis + 1] }
        var output = Tensor(shape: shape, data: data)
        if inputs.contains(where: { $0.mask != nil }), shape.count >= 2 {
            if axis == 0 {
                var flags: [Bool] = []
                for row in 0..<batch {
                    for input in inputs {
                        let steps = input.shape[1]
                        flags += input.mask.map { Array($0[(row * steps)..<((row + 1) * steps)]) } ?? [Bool](repeating: true, count: steps)
                    }
                }
                output.mask = flags
            } else {
                let count = batch * shape[1]
                output.mask = (0..<count).map { index in inputs.contains { $0.mask.map { $0[index] } ?? true } }
            }
        }
        return [output]
    }
}

/// `Dot(axes, normalize)`: the batch-wise dot product of two inputs along `axes[0]` of the first
/// and `axes[1]` of the second (an integer for both; negative counts from the end; the batch axis
/// is refused), as `batch_dot` in dot.py: the output has the first input's other axes then the
/// second's, `(batch, 1)` when both are vectors. With `normalize`, each input is first
/// L2-normalized along its axis: x · min(1/√Σx², 1/ε), ε = 1e-7. The output carries no mask.
public struct Dot: NodeLayer {
    /// The contracted axis of each input, within a sample.
    let axes: (Int, Int)
    let normalize: Bool
    public let outputShapes: [[Int?]]

    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        // An integer applies to both inputs; a negative axis counts from each input's end.
        let axes = try context.ints("axes", count: 2)
        let normalize = try context.bool("normalize", default: false)
        let shapes = context.inputShapes
        guard shapes.count == 2 else { throw context.error("a Dot layer takes exactly 2 inputs, called on \(shapes.count)") }
        let ranks = (shapes[0].count + 1, shapes[1].count + 1)
        let raw = (axes[0] < 0 ? axes[0] + ranks.0 : axes[0], axes[1] < 0 ? axes[1] + ranks.1 : axes[1])
        guard raw.0 >= 1, raw.0 < ranks.0, raw.1 >= 1, raw.1 < ranks.1 else {
            throw context.error("'axes' \(context.value("axes")?.brief() ?? "") must name an axis after the batch axis of each input, found axes (\(raw.0), \(raw.1)) for inputs \(shapes.map(describeShape).joined(separator: ", "))", key: "axes")
        }
        guard ranks.0 >= 2, ranks.1 >= 2 else { throw context.error("Dot needs inputs of rank 2 or more") }
        let (a, b) = (raw.0 - 1, raw.1 - 1)
        if let x = shapes[0][a], let y = shapes[1][b], x != y {
            throw context.error("incompatible input shapes: axis \(raw.0) of \(describeShape(shapes[0])) has \(x), axis \(raw.1) of \(describeShape(shapes[1])) has \(y)")
        }
        var first = shapes[0], second = shapes[1]
        first.remove(at: a)
        second.remove(at: b)
        var output = first + second
        if output.isEmpty { output = [1] }
        try context.sampleCount(output)
        return Dot(axes: (a, b), normalize: normalize, outputShapes: [output])
    }

    public func call(_ inputs: [Tensor]) throws -> [Tensor] {
        guard inputs.count == 2 else { throw NNError(.input, "Dot", "a Dot layer takes 2 inputs, given \(inputs.count)") }
        let x = inputs[0], y = inputs[1]
        let (a, b) = axes
        guard x.batch == y.batch, x.rank > a + 1, y.rank > b + 1, x.shape[a + 1] == y.shape[b + 1] else {
            throw NNError(.input, "Dot", "inputs of shapes \(x.shape) and \(y.shape) cannot be multiplied along axes \(a + 1) and \(b + 1)")
        }
        let k = x.shape[a + 1]
        let left = Dot.arrange(x, axis: a, normalize: normalize), right = Dot.arrange(y, axis: b, normalize: normalize)
        let rows = left.rest, columns = right.rest
        var data = [Float](repeating: 0, count: x.batch * rows * columns)
        for sample in 0..<x.batch {
            for i in 0..<rows {
                let l = (sample * rows + i) * k
                for j in 0..<columns {
                    let r = (sample * columns + j) * k
                    var sum: Float = 0
                    for index in 0..<k { sum += left.values[l + index] * right.values[r + index] }
                    data[(sample * rows + i) * columns + j] = sum
                }
            }
        }
        var shape = [x.batch] + x.shape.dropFirst().enumerated().filter { $0.offset != a }.map(\.element)
            + y.shape.dropFirst().enumerated().filter { $0.offset != b }.map(\.element)
        if shape.count == 1 { shape.append(1) }
        return [Tensor(shape: shape, data: data)]
    }

    /// The input as (batch, rest, k) with the contracted axis last (other axes in order),
    /// L2-normalized along it when asked.
    static func arrange(_ input: Tensor, axis: Int, normalize: Bool) -> (values: [Float], rest: Int) {
        let dims = Array(input.shape.dropFirst())
        let k = dims[axis]
        let inner = ShapeMath.saturatingProduct(dims[(axis + 1)...])
        let outer = ShapeMath.saturatingProduct(dims[..<axis])
        let rest = outer * inner
        var values = [Float](repeating: 0, count: input.batch * rest * k)
        for sample in 0..<input.batch {
            let base = sample * outer * k * inner
            for o in 0..<outer {
                for n in 0..<inner {
                    let target = (sample * rest + o * inner + n) * k
                    for index in 0..<k { values[target + index] = input.data[base + (o * k + index) * inner + n] }
                    if normalize {
                        var squares: Float = 0
                        for index in 0..<k { squares += values[target + index] * values[target + index] }
                        let scale = min(1 / squares.squareRoot(), 1e7)
                        for index in 0..<k { values[target + index] *= scale }
                    }
                }
            }
        }
        return (values, rest)
    }
}

extension Builtins {
    static func registerMerge(_ registry: LayerRegistry) {
        for operation in ElementwiseMerge.Operation.allCases {
            registry.register(operation.rawValue, origin: "builtin", summary: "\(operation.rawValue) of a list of inputs, element by element, with Keras's broadcasting.",
                              factory: ElementwiseMerge.factory(operation))
        }
        registry.register("Concatenate", origin: "builtin", summary: "Joins a list of inputs along an axis.", factory: Concatenate.factory)
        registry.register("Dot", origin: "builtin", summary: "Batch-wise dot product of two inputs along axes, optionally L2-normalized.", factory: Dot.factory)
    }
}
