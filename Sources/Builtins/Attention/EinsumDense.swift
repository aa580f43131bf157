#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// EinsumDense (keras/src/layers/core/einsum_dense.py): y = activation(einsum(equation, x, kernel)
// + bias). Also the query/key/value/output projections of MultiHeadAttention.

/// An einsum of an input and a kernel, resolved at build time into one matrix product: the
/// letters of the equation fall into shared (input, kernel and output: an outer loop), free
/// (input and output: the rows), contracted (input and kernel: the inner dimension), kernel
/// (kernel and output: the columns) and summed (input only, added up first). The kernel is
/// stored in (shared, contracted, kernel) order at build time; the input is permuted to
/// (shared, free, contracted) only when it is not already in that order.
struct EinsumPlan: Sendable {
    /// The input's letters (batch first), the kernel's and the output's, ellipses expanded.
    let input: [Character]
    let kernel: [Character]
    let output: [Character]
    let shared: [Character], free: [Character], contracted: [Character], kernelOnly: [Character], summed: [Character]

    /// Parses `equation` (Keras's three forms: `X,Y->Z`, `...X,Y->...Z`, `X...,Y->Z...`) for an
    /// input of full rank `rank` (batch axis included).
    static func parse(_ equation: String, rank: Int, fail: (String) -> NNError) throws -> (EinsumPlan, leftElided: Bool, elided: Int) {
        let sides = equation.filter { !$0.isWhitespace }.components(separatedBy: "->")
        let operands = sides.first?.components(separatedBy: ",") ?? []
        guard sides.count == 2, operands.count == 2 else {
            throw fail("equation \"\(equation)\" must have the form X,Y->Z, ...X,Y->...Z or X...,Y->Z... (two operands and one \"->\")")
        }
        var x = operands[0], w = operands[1], z = sides[1]
        let leftElided = x.hasPrefix("...") && z.hasPrefix("...")
        let rightElided = !leftElided && x.hasSuffix("...") && z.hasSuffix("...")
        if leftElided { x.removeFirst(3); z.removeFirst(3) }
        if rightElided { x.removeLast(3); z.removeLast(3) }
        for (part, what) in [(x, "input"), (w, "kernel"), (z, "output")] {
            guard !part.isEmpty, part.allSatisfy({ $0.isASCII && $0.isLetter }) else {
                throw fail("equation \"\(equation)\": the \(what) subscripts \"\(part)\" must be letters (an ellipsis only at the start or end of both input and output)")
            }
            guard Set(part).count == part.count else {
                throw fail("equation \"\(equation)\": the \(what) subscripts \"\(part)\" repeat a letter; nnbuild supports each axis named once per operand")
            }
        }
        if rightElided, x.count < 2 {
            throw fail("equation \"\(equation)\": an ellipsis at the end needs at least two input letters, as Keras requires")
        }
        let elided = (leftElided || rightElided) ? rank - x.count : 0
        guard elided >= 0, (leftElided || rightElided) || x.count == rank else {
            throw fail("equation \"\(equation)\" names \(x.count) input axes, the input has \(rank) (batch axis included)")
        }
        // Fresh letters for the ellipsis: uppercase ones no subscript uses.
        let used = Set(x + w + z)
        let fresh = Array(Array("ZYXWVUTSRQPONMLKJIHGFEDCBA").filter { !used.contains($0) }.prefix(elided))
        guard fresh.count == elided else { throw fail("equation \"\(equation)\": the ellipsis stands for too many axes (\(elided))") }
        let input = leftElided ? fresh + Array(x) : Array(x) + fresh
        let output = leftElided ? fresh + Array(z) : Array(z) + fresh
        let kernel = Array(w)
        for letter in output where !input.contains(letter) && !kernel.contains(letter) {
            throw fail("equation \"\(equation)\": output subscript '\(letter)' is in neither the input nor the kernel")
        }
        for letter in kernel where !input.contains(letter) && !output.contains(letter) {
            throw fail("equation \"\(equation)\": kernel subscript '\(letter)' is in neither the input nor the output; Keras requires the kernel to be fully specified")
        }
        let plan = EinsumPlan(
            input: input, kernel: kernel, output: output,
            shared: input.filter { kernel.contains($0) && output.contains($0) },
            free: input.filter { !kernel.contains($0) && output.contains($0) },
            contracted: input.filter { kernel.contains($0) && !output.contains($0) },
            kernelOnly: kernel.filter { !input.contains($0) },
            summed: input.filter { !kernel.contains($0) && !output.contains($0) })
        return (plan, leftElided, elided)
    }
}

/// `EinsumDense`: y = activation(einsum(equation, x, kernel) + bias).
///
/// Config: `equation`, `output_shape` (the output's shape without the batch axis, None for an axis
/// taken from the input), `bias_axes` (nil: no bias), `activation` ("linear"). Weights: `kernel`
/// (its shape from the equation), `bias` (the output's axes from the first bias axis on, 1 where
/// the axis has no bias).
public struct EinsumDense: Layer {
    let plan: EinsumPlan
    /// Size of each kernel-only letter (the rest come from the input).
    let kernelSizes: [Character: Int]
    /// The kernel in (shared, contracted, kernel-only) order.
    let kernel: [Float]
    /// The same kernel for the AVX2 packed product (no shared letters: one matrix), nil elsewhere.
    let packed: PackedOnDemand?
    /// The bias expanded over the output's trailing block from the first bias axis on.
    let bias: [Float]?
    public let activation: Activation
    public let outputShape: [Int?]
    // Keras's EinsumDense does not support masking: a mask on its input stops there (the default, .drops).

    static func factory(_ context: LayerContext) throws -> any Layer {
        let equation = try context.string("equation")
        let rank = context.inputShape.count + 1
        let (plan, leftElided, elided) = try EinsumPlan.parse(equation, rank: rank) { context.error($0, key: "equation") }
        guard plan.input.first == plan.output.first, let batch = plan.input.first, !plan.kernel.contains(batch) else {
            throw context.error("equation \"\(equation)\" does not keep the input's first (batch) axis as the output's first axis; nnbuild keeps the batch axis first", key: "equation")
        }
        let fullInput: [Int?] = [nil] + context.inputShape
        func inputSize(_ letter: Character) -> Int? { plan.input.firstIndex(of: letter).flatMap { fullInput[$0] } }

        // Keras's full output shape: the batch, the configured `output_shape`, the elided axes.
        var configured: [Int?]
        _ = try? context.intList("output_shape")  // notes the key for `nnbuild layers`; read below, nulls included
        switch context.value("output_shape") {
        case nil, .null?: throw context.error("missing required key 'output_shape'", key: "output_shape")
        case let .int(value)?: configured = [Int(value)]
        case let .array(items)?:
            configured = try items.map { item -> Int? in
                switch item {
                case .null: return nil
                case let .int(value) where value > 0 && value < (1 << 28): return Int(value)
                default: throw context.error("'output_shape' entries must be positive integers or null, found \(item.brief())", key: "output_shape")
                }
            }
        case let other?: throw context.error("'output_shape' must be an integer or a list, found \(other.brief())", key: "output_shape")
        }
        var fullOutput: [Int?] = [nil] + configured
        if elided > 0, leftElided {
            for axis in 1..<elided { fullOutput.insert(fullInput[axis], at: 1) }
        } else if elided > 0 {
            fullOutput += fullInput[(rank - elided)...]
        }
        let explicitOutput = leftElided ? Array(plan.output.dropFirst(elided)) : Array(plan.output.prefix(plan.output.count - elided))
        func configuredSize(_ letter: Character) throws -> Int {
            guard let index = explicitOutput.firstIndex(of: letter) else { return 0 }
            let position = index + (leftElided ? elided : 0)
            guard position < fullOutput.count, let size = fullOutput[position], size > 0 else {
                throw context.error("'output_shape' \(describeShape(Array(configured))) gives no size for output axis '\(letter)' of \"\(equation)\"", key: "output_shape")
            }
            return size
        }
        var kernelSizes: [Character: Int] = [:]
        for letter in plan.kernelOnly { kernelSizes[letter] = try configuredSize(letter) }
        let kernelShape = try plan.kernel.map { letter -> Int in
            if let size = kernelSizes[letter] { return size }
            guard let size = inputSize(letter) else {
                throw context.error("kernel axis '\(letter)' of \"\(equation)\" takes its size from an input axis known only at run time", key: "equation")
            }
            return size
        }
        for letter in plan.output.dropFirst() where plan.input.contains(letter) {
            let index = explicitOutput.firstIndex(of: letter).map { $0 + (leftElided ? elided : 0) }
            if let index, index < fullOutput.count, let wanted = fullOutput[index], let found = inputSize(letter), wanted != found {
                throw context.error("'output_shape' gives axis '\(letter)' size \(wanted), the input has \(found)", key: "output_shape")
            }
        }
        let outputShape: [Int?] = plan.output.dropFirst().map { kernelSizes[$0] ?? inputSize($0) }
        try context.sampleCount(outputShape)

        let weight = try context.weight("kernel", shape: kernelShape)
        let order = (plan.shared + plan.contracted + plan.kernelOnly).compactMap { plan.kernel.firstIndex(of: $0) }
        let kernel = permute(Tensor(shape: kernelShape, data: Array(weight.values)), order).data

        var bias: [Float]?
        let axes = Array(try context.string("bias_axes", default: ""))
        if !axes.isEmpty {
            let explicit = explicitOutput
            for letter in axes where !explicit.contains(letter) {
                throw context.error("bias axis '\(letter)' is not in the output subscripts \"\(String(explicit))\"", key: "bias_axes")
            }
            guard let first = axes.compactMap({ explicit.firstIndex(of: $0) }).min() else {
                throw context.error("'bias_axes' is empty", key: "bias_axes")
            }
            let biasLetters = Array(explicit[first...])
            // As Keras: a bias axis takes its size from `output_shape`, which must give it.
            let biasShape = try biasLetters.map { axes.contains($0) ? try configuredSize($0) : 1 }
                + (leftElided ? [] : [Int](repeating: 1, count: elided))
            let values = try context.weight("bias", shape: biasShape)
            // Expand over the output's trailing block from the first bias axis on.
            let trailingLetters = Array(plan.output[(plan.output.firstIndex(of: biasLetters[0]) ?? 0)...])
            let trailing = try trailingLetters.map { letter -> Int in
                guard let size = kernelSizes[letter] ?? inputSize(letter) else {
                    throw context.error("output axis '\(letter)' after the first bias axis is known only at run time; nnbuild needs it at build time", key: "bias_axes")
                }
                return size
            }
            let count = try context.sampleCount(trailing, of: "the bias")
            let biasStrides = contiguousStrides(biasShape)
            let trailingStrides = contiguousStrides(trailing)
            bias = (0..<count).map { flat in
                var offset = 0
                for axis in trailing.indices where biasShape[axis] > 1 { offset += (flat / trailingStrides[axis]) % trailing[axis] * biasStrides[axis] }
                return values[offset]
            }
        }
        var packed: PackedOnDemand?
        if plan.shared.isEmpty, Gemm.useAVX2Kernels {
            let rows = ShapeMath.saturatingProduct(plan.contracted.map { letter in kernelShape[plan.kernel.firstIndex(of: letter) ?? 0] })
            let columns = ShapeMath.saturatingProduct(plan.kernelOnly.map { kernelSizes[$0] ?? 1 })
            packed = PackedOnDemand(Weight(name: weight.name, shape: [rows, columns], storage: FloatStorage(kernel)), rows: rows, columns: columns)
        }
        return EinsumDense(plan: plan, kernelSizes: kernelSizes, kernel: kernel, packed: packed, bias: bias,
                           activation: try Activation.from(context), outputShape: outputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.rank == plan.input.count else {
            throw NNError(.input, "EinsumDense", "expects an input of rank \(plan.input.count), found shape \(input.shape)")
        }
        var sizes = kernelSizes
        for (letter, size) in zip(plan.input, input.shape) { sizes[letter] = size }
        var biasFused = false
        var output = einsumDense(input, plan: plan, sizes: sizes, kernel: kernel, packed: packed, bias: bias, biasFused: &biasFused)
        if !biasFused, let bias, !bias.isEmpty {
            output.data.withUnsafeMutableBufferPointer { y in
                bias.withUnsafeBufferPointer { b in
                    var index = 0
                    while index < y.count {
                        for j in 0..<b.count { y[index + j] += b[j] }
                        index += b.count
                    }
                }
            }
        }
        activation.apply(&output.data, axisLength: output.shape.last ?? 1)
        return output
    }
}

/// einsum(plan, x, kernel) as matrix products: x full shape (letters `plan.input`), kernel in
/// (shared, contracted, kernel-only) order; output full shape (letters `plan.output`).
///
/// With `bias` (the output's trailing block) covering exactly one product row and the product
/// already in the output's order, the packed kernel adds it in its store, the same bits as adding
/// it afterwards, and `biasFused` is set.
func einsumDense(_ x: Tensor, plan: EinsumPlan, sizes: [Character: Int], kernel: [Float], packed: PackedOnDemand? = nil,
                 bias: [Float]? = nil, biasFused: UnsafeMutablePointer<Bool>? = nil) -> Tensor {
    func count(_ letters: [Character]) -> Int { ShapeMath.saturatingProduct(letters.map { sizes[$0] ?? 1 }) }
    let order = plan.shared + plan.free + plan.contracted + plan.summed
    let permutation = order.compactMap { plan.input.firstIndex(of: $0) }
    var operand = permutation == Array(plan.input.indices) ? x : permute(x, permutation)
    let summedCount = count(plan.summed)
    if !plan.summed.isEmpty {
        let rows = operand.count / max(summedCount, 1)
        operand = Tensor(shape: Array(operand.shape.dropLast(plan.summed.count)),
                         data: (0..<rows).map { row in operand.data[(row * summedCount)..<((row + 1) * summedCount)].reduce(0, +) })
    }
    let (s, m, k, n) = (count(plan.shared), count(plan.free), count(plan.contracted), count(plan.kernelOnly))
    var result = [Float](repeating: 0, count: s * m * n)
    let resultLetters = plan.shared + plan.free + plan.kernelOnly
    let back = plan.output.compactMap { resultLetters.firstIndex(of: $0) }
    let fuse = biasFused != nil && back == Array(resultLetters.indices) && bias?.count == n && n > 0
    let biasValues = fuse ? bias! : []
    operand.data.withUnsafeBufferPointer { a in
        kernel.withUnsafeBufferPointer { b in
            result.withUnsafeMutableBufferPointer { c in
                if s == 1, let packed, let matrix = packed.kernel(rows: m) {
                    if fuse {
                        biasValues.withUnsafeBufferPointer { bp in
                            matrix.multiply(a.baseAddress!, lda: k, into: c.baseAddress!, ldc: n, m: m, bias: bp.baseAddress!)
                        }
                        biasFused?.pointee = true
                    } else {
                        matrix.multiply(a.baseAddress!, lda: k, into: c.baseAddress!, ldc: n, m: m)
                    }
                    return
                }
                for block in 0..<s {
                    Gemm.gemm(a.baseAddress! + block * m * k, b.baseAddress! + block * k * n, c.baseAddress! + block * m * n,
                              m: m, n: n, k: k)
                }
            }
        }
    }
    let product = Tensor(shape: resultLetters.map { sizes[$0] ?? 1 }, data: result)
    return back == Array(resultLetters.indices) ? product : permute(product, back)
}

/// The naive twin of `einsumDense`: every output element summed letter by letter.
func naiveEinsumDense(_ x: Tensor, plan: EinsumPlan, sizes: [Character: Int], kernel: [Float]) -> Tensor {
    let letters = plan.output + (plan.contracted + plan.summed)
    let kernelLetters = plan.shared + plan.contracted + plan.kernelOnly
    let extents = letters.map { sizes[$0] ?? 1 }
    let outputShape = plan.output.map { sizes[$0] ?? 1 }
    var data = [Float](repeating: 0, count: ShapeMath.saturatingProduct(outputShape))
    let xStrides = contiguousStrides(x.shape), kStrides = contiguousStrides(kernelLetters.map { sizes[$0] ?? 1 })
    let oStrides = contiguousStrides(outputShape)
    let total = ShapeMath.saturatingProduct(extents)
    for flat in 0..<total {
        var rest = flat, xi = 0, ki = 0, oi = 0
        for axis in letters.indices.reversed() {
            let c = rest % extents[axis]
            rest /= extents[axis]
            let letter = letters[axis]
            if let p = plan.input.firstIndex(of: letter) { xi += c * xStrides[p] }
            if let p = kernelLetters.firstIndex(of: letter) { ki += c * kStrides[p] }
            if let p = plan.output.firstIndex(of: letter) { oi += c * oStrides[p] }
        }
        data[oi] += x.data[xi] * kernel[ki]
    }
    return Tensor(shape: outputShape, data: data)
}

extension EinsumDense: PlansMemory {
    /// The output, plus a permuted copy of the input when its axes are not already (shared,
    /// free, contracted) and the product before it is moved to the output's order.
    public func workingSet(input: [Int]) -> WorkingSet {
        var sizes = kernelSizes
        for (letter, size) in zip(plan.input, input) { sizes[letter] = size }
        let output = plan.output.map { sizes[$0] ?? 1 }
        let scratch = ShapeMath.saturatingSum(ShapeMath.saturatingProduct(input), ShapeMath.saturatingProduct(output))
        return WorkingSet(outputShape: output, scratch: scratch, scratchMeaning: "the input and the product in matrix order")
    }
}
