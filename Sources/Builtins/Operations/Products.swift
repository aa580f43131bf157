#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// Products of tensors: matmul (NumPy's, leading axes broadcast) and einsum over one or two
// operands (any subscripts, an ellipsis too), keras/src/ops/numpy.py. The batch axis stays
// a batch axis: it is never contracted nor moved.

/// `a @ b` on full shapes (…, n, k) and (…, k, m): the leading axes broadcast, then
/// out[…, i, j] = Σ_k a[…, i, k] · b[…, k, j].
func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard a.rank >= 2, b.rank >= 2 else { throw NNError(.input, "Matmul", "operands of shapes \(a.shape) and \(b.shape) need 2 axes or more") }
    let (n, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (k2, m) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    guard k == k2 else { throw NNError(.input, "Matmul", "operands of shapes \(a.shape) and \(b.shape): \(k) columns against \(k2) rows") }
    let rank = Swift.max(a.rank, b.rank) - 2
    let leadA = [Int](repeating: 1, count: rank - (a.rank - 2)) + a.shape.dropLast(2)
    let leadB = [Int](repeating: 1, count: rank - (b.rank - 2)) + b.shape.dropLast(2)
    guard case let .success(lead) = Broadcast.shape(of: [leadA, leadB]) else {
        throw NNError(.input, "Matmul", "operands of shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    let shape = lead + [n, m]
    let count = try ShapeMath.sampleCount(shape, of: "the output", at: "Matmul")
    var data = [Float](repeating: 0, count: count)
    let indexA = BroadcastIndex(shape: leadA, to: lead), indexB = BroadcastIndex(shape: leadB, to: lead)
    let blocks = ShapeMath.saturatingProduct(lead)
    for block in 0..<blocks {
        let baseA = indexA.offset(of: block) * n * k, baseB = indexB.offset(of: block) * k * m, baseOut = block * n * m
        for i in 0..<n {
            for p in 0..<k {
                let x = a.data[baseA + i * k + p]
                for j in 0..<m { data[baseOut + i * m + j] += x * b.data[baseB + p * m + j] }
            }
        }
    }
    return Tensor(shape: shape, data: data)
}

/// `shape` with its last two sizes swapped.
func swappingLastTwo<Size>(_ shape: [Size]) -> [Size] {
    guard shape.count >= 2 else { return shape }
    var swapped = shape
    swapped.swapAt(shape.count - 1, shape.count - 2)
    return swapped
}

/// An einsum over one or two operands: `subscripts` like "bij,bjk->bik", each letter an axis;
/// letters not in the output are summed over. The output is the implicit one (letters used
/// once, in alphabetical order) when there is no "->".
struct Einsum: Sendable {
    let inputs: [[Character]]
    let output: [Character]

    /// `ranks`: each operand's number of axes (the batch axis included), which an ellipsis
    /// (`...`) stands for the rest of: the elided axes get letters no subscript uses, aligned
    /// from the right across operands as NumPy aligns them, and come first in an implicit output.
    static func parse(_ text: String, ranks: [Int], where fail: (String) -> NNError) throws -> Einsum {
        let operands = ranks.count
        var compact = text.filter { !$0.isWhitespace }
        let sidesWithEllipsis = compact.components(separatedBy: "->")
        guard sidesWithEllipsis.count <= 2 else { throw fail("subscripts \"\(text)\" hold more than one \"->\"") }
        var implicitLead: [Character] = []
        if compact.contains(".") {
            let parts = sidesWithEllipsis[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == operands else {
                throw fail("subscripts \"\(text)\" name \(parts.count) operands, called on \(operands)")
            }
            let used = Set(compact.filter { $0.isLetter })
            let fresh = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ").filter { !used.contains($0) }
            var elided: [Int?] = []
            for (part, rank) in zip(parts, ranks) {
                let pieces = part.components(separatedBy: "...")
                guard pieces.count <= 2, !pieces.joined().contains(".") else { throw fail("subscripts \"\(text)\": an ellipsis must be written \"...\", once per operand") }
                guard pieces.count == 2 else { elided.append(nil); continue }
                let count = rank - pieces.joined().count
                guard count >= 0 else { throw fail("subscripts \"\(text)\": operand \"\(part)\" names more axes than its \(rank)") }
                elided.append(count)
            }
            let most = elided.compactMap { $0 }.max() ?? 0
            guard most <= fresh.count else { throw fail("subscripts \"\(text)\": the ellipsis stands for more axes than there are letters left") }
            let lead = Array(fresh.prefix(most))
            let expanded = zip(parts, elided).map { part, count -> String in
                guard let count else { return part }
                return part.components(separatedBy: "...").joined(separator: String(lead.suffix(count)))
            }
            var rebuilt = expanded.joined(separator: ",")
            if sidesWithEllipsis.count == 2 {
                let output = sidesWithEllipsis[1]
                guard output.components(separatedBy: "...").count <= 2 else { throw fail("subscripts \"\(text)\": the output's ellipsis appears more than once") }
                rebuilt += "->" + output.components(separatedBy: "...").joined(separator: String(lead))
            } else {
                implicitLead = lead
            }
            compact = rebuilt
        }
        let sides = compact.components(separatedBy: "->")
        let inputs = sides[0].split(separator: ",", omittingEmptySubsequences: false).map { Array($0) }
        guard inputs.count == operands, operands == 1 || operands == 2 else {
            throw fail("subscripts \"\(text)\" name \(inputs.count) operands, called on \(operands); nnbuild supports einsum of one or two operands")
        }
        let letters = inputs.flatMap { $0 }
        guard letters.allSatisfy({ $0.isASCII && $0.isLetter }) else { throw fail("subscripts \"\(text)\" must be letters, commas, one \"->\" and ellipses") }
        let output: [Character]
        if sides.count == 2 {
            output = Array(sides[1])
            guard output.allSatisfy({ $0.isASCII && $0.isLetter }), Set(output).count == output.count else {
                throw fail("output subscripts \"\(sides[1])\" must be distinct letters")
            }
            for letter in output where !letters.contains(letter) {
                throw fail("output subscript '\(letter)' is in no operand of \"\(text)\"")
            }
        } else {
            // NumPy's implicit output: the ellipsis's axes, then the letters used once, in order.
            output = implicitLead + Set(letters).subtracting(implicitLead).filter { letter in letters.filter { $0 == letter }.count == 1 }.sorted()
        }
        return Einsum(inputs: inputs, output: output)
    }

    /// Each letter's size from the operands' full shapes (nil where unknown); fails on a
    /// rank or size mismatch.
    func sizes(_ shapes: [[Int?]], where fail: (String) -> NNError) throws -> [Character: Int?] {
        var sizes: [Character: Int?] = [:]
        for (operand, (letters, shape)) in zip(inputs, shapes).enumerated() {
            guard letters.count == shape.count else {
                throw fail("operand \(operand) has \(shape.count) axes, its subscripts \"\(String(letters))\" name \(letters.count)")
            }
            for (letter, size) in zip(letters, shape) {
                if let known = sizes[letter], let known, let size, known != size {
                    throw fail("subscript '\(letter)' has size \(known) in one place and \(size) in another")
                }
                if sizes[letter] == nil || sizes[letter] == .some(nil) { sizes[letter] = size }
            }
        }
        return sizes
    }

    func run(_ operands: [Tensor]) throws -> Tensor {
        let known = try sizes(operands.map { $0.shape.map(Optional.some) }) { NNError(.input, "Einsum", $0) }
        let letters = output + Set(inputs.flatMap { $0 }).subtracting(output).sorted()
        let extents = letters.map { (known[$0] ?? nil) ?? 1 }
        let shape = output.map { (known[$0] ?? nil) ?? 1 }
        let count = try ShapeMath.sampleCount(shape, of: "the output", at: "Einsum")
        // Per letter, how far one step moves in each operand and in the output.
        let outputStrides = contiguousStrides(shape)
        let steps: [[Int]] = zip(inputs, operands).map { subscripts, tensor in
            let strides = contiguousStrides(tensor.shape)
            return letters.map { letter in subscripts.indices.filter { subscripts[$0] == letter }.reduce(0) { $0 + strides[$1] } }
        }
        let outputSteps = letters.map { letter in output.firstIndex(of: letter).map { outputStrides[$0] } ?? 0 }
        var data = [Float](repeating: 0, count: count)
        guard !extents.contains(0) else { return Tensor(shape: shape, data: data) }
        var coordinates = [Int](repeating: 0, count: letters.count)
        var offsets = [Int](repeating: 0, count: operands.count)
        var out = 0
        while true {
            var product: Float = 1
            for (index, tensor) in operands.enumerated() { product *= tensor.data[offsets[index]] }
            data[out] += product
            var axis = letters.count - 1
            while axis >= 0 {
                coordinates[axis] += 1
                out += outputSteps[axis]
                for index in offsets.indices { offsets[index] += steps[index][axis] }
                if coordinates[axis] < extents[axis] { break }
                out -= outputSteps[axis] * extents[axis]
                for index in offsets.indices { offsets[index] -= steps[index][axis] * extents[axis] }
                coordinates[axis] = 0
                axis -= 1
            }
            if axis < 0 { break }
        }
        return Tensor(shape: shape, data: data)
    }
}

func productOperations() -> [OperationEntry] {
    [
        (["Matmul"], "Matrix product of the last two axes, leading axes broadcast (the batch axis kept).", { context in
            let operands = try context.operands()
            guard operands.count == 2 else { throw context.error("takes 2 operands, called on \(operands.count)") }
            // Keras 2's tf.matmul(a, b, transpose_a=..., transpose_b=...) comes here with those keys
            // (KerasTwoOperations; Keras 3 writes neither): an operand's last two axes swapped first.
            let transposed = [try context.bool("transpose_a", default: false), try context.bool("transpose_b", default: false)]
            for (index, operand) in operands.enumerated() where transposed[index] && operand.shape(context).count < (operand.isInput ? 3 : 2) {
                let key = index == 0 ? "transpose_a" : "transpose_b"
                throw context.error(operand.isInput
                    ? "operand \(index) of shape \(describeShape(Array(operand.shape(context).dropFirst()))) is transposed, which would move the batch axis; nnbuild keeps it first"
                    : "constant operand \(index) is transposed and needs 2 axes or more", key: key)
            }
            let shapes = operands.enumerated().map { index, operand in
                transposed[index] ? swappingLastTwo(operand.shape(context)) : operand.shape(context)
            }
            let operand: @Sendable (Int, [Tensor]) -> Tensor = { index, inputs in
                let tensor = operands[index].tensor(inputs)
                return transposed[index] ? permute(tensor, swappingLastTwo(Array(0..<tensor.rank))) : tensor
            }
            // x @ W: a (batch, k) tensor times a (k, m) constant keeps the batch as its rows.
            if operands[0].isInput, !operands[1].isInput, shapes[0].count == 2, shapes[1].count == 2 {
                if let k = shapes[0][1], let k2 = shapes[1][0], k != k2 {
                    throw context.error("operands of shapes \(OperandBroadcast.describeFull(shapes[0])) and \(OperandBroadcast.describeFull(shapes[1])) do not multiply: \(k) columns against \(k2) rows")
                }
                let sample = [shapes[1][1]]
                return OperationNode(name: "Matmul", outputShapes: [sample]) { inputs in
                    try matmul(operand(0, inputs), operand(1, inputs))
                }
            }
            for (index, operand) in operands.enumerated() where shapes[index].count < (operand.isInput ? 3 : 2) {
                throw context.error(operand.isInput
                    ? "operand \(index) of shape \(describeShape(Array(shapes[index].dropFirst()))) has one axis after the batch axis: matmul would contract or move the batch axis; nnbuild keeps it first"
                    : "constant operand \(index) needs 2 axes or more for matmul, found shape \(shapes[index].map { $0 ?? 0 })")
            }
            let lead = try OperandBroadcast.sampleShape(shapes.map { Array($0.dropLast(2)) }, inputs: operands.map(\.isInput), context)
            let (a, b) = (shapes[0], shapes[1])
            if let k = a[a.count - 1], let k2 = b[b.count - 2], k != k2 {
                throw context.error("operands of shapes \(OperandBroadcast.describeFull(a)) and \(OperandBroadcast.describeFull(b)) do not multiply: \(k) columns against \(k2) rows")
            }
            let sample = lead + [a[a.count - 2], b[b.count - 1]]
            try context.sampleCount(sample)
            return OperationNode(name: "Matmul", outputShapes: [sample]) { inputs in
                try matmul(operand(0, inputs), operand(1, inputs))
            }
        }),
        (["Einsum"], "einsum over one or two operands (an ellipsis for the axes not named); the batch axis kept first.", { context in
            let subscripts = try context.string("subscripts")
            let operands = try context.operands()
            let shapes = operands.map { $0.shape(context) }
            let einsum = try Einsum.parse(subscripts, ranks: shapes.map(\.count)) { context.error($0, key: "subscripts") }
            let sizes = try einsum.sizes(shapes) { context.error($0, key: "subscripts") }
            // The batch axis: the first letter of every tensor operand, first in the output,
            // nowhere else.
            let batchLetters = Set(zip(einsum.inputs, operands).filter { $0.1.isInput }.compactMap { $0.0.first })
            guard batchLetters.count == 1, let batch = batchLetters.first, einsum.output.first == batch,
                  einsum.inputs.allSatisfy({ letters in letters.dropFirst().allSatisfy { $0 != batch } }),
                  zip(einsum.inputs, operands).allSatisfy({ $0.1.isInput || !$0.0.contains(batch) }) else {
                throw context.error("subscripts \"\(subscripts)\" do not keep the batch axis (each tensor's first axis) as the output's first axis and nowhere else; nnbuild keeps the batch axis first", key: "subscripts")
            }
            let sample = einsum.output.dropFirst().map { sizes[$0] ?? nil }
            try context.sampleCount(sample)
            return OperationNode(name: "Einsum", outputShapes: [sample]) { inputs in
                try einsum.run(operands.map { $0.tensor(inputs) })
            }
        }),
    ]
}
