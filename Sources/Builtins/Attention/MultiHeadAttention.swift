#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// MultiHeadAttention (keras/src/layers/attention/multi_head_attention.py): project query, key
// and value with EinsumDense sub-layers, score with a scaled dot product over the attention
// axes, softmax with the combined mask, combine the values, project the result.

/// `MultiHeadAttention`, called as `mha(query, value)`, `mha(query, value, key)` or with any of
/// them (and `attention_mask`, `use_causal_mask`, `return_attention_scores`) as keywords.
///
/// Config: `num_heads`, `key_dim`, `value_dim` (key_dim), `use_bias` (true), `output_shape`
/// (the query's last axis), `attention_axes` (every axis between the batch and the features),
/// `dropout` (identity at inference), `use_gate` (false), `flash_attention`, `seed`. Weights: the
/// `kernel` and `bias` of sub-layers `query`, `key`, `value`, `attention_output` (and `gate`).
///
/// The mask on the scores is Keras's `_compute_attention_mask`: the query's mask [B, T, 1], the
/// value's and key's masks [B, 1, S], the causal mask (t ≥ s) and `attention_mask`, all ANDed;
/// a masked score becomes -1e9 before the softmax, so a fully masked row is uniform, as in Keras.
/// The output carries the query's mask. Keras's `call` then clears the masks of the query, value
/// and key tensors themselves (`backend.set_keras_mask(query, None)`), so every later reader of
/// them sees them unmasked (`InputMaskClearing`); GroupedQueryAttention's `call` does not.
public struct MultiHeadAttention: InputMaskClearing {
    let query: EinsumDense, key: EinsumDense, value: EinsumDense, output: EinsumDense
    let gate: EinsumDense?
    /// Where query, value, key and attention_mask sit among the call's inputs.
    let queryIndex: Int, valueIndex: Int, keyIndex: Int?, attentionMaskIndex: Int?
    let useCausalMask: Bool
    let returnScores: Bool
    /// The projected query's attention axes (batch axis 0).
    let attentionAxes: [Int]
    let scale: Float
    /// How many query heads share each key and value head (GroupedQueryAttention; 1 otherwise).
    let repeats: Int
    /// Whether this is GroupedQueryAttention, whose call leaves its inputs' masks alone.
    let grouped: Bool
    public let outputShapes: [[Int?]]

    /// Keras's `_build_proj_equation`: free axes, contracted axes, output axes.
    static func projection(free: Int, bound: Int, output: Int) -> (equation: String, biasAxes: String) {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let input = String(letters[0..<(free + bound)])
        let kernel = String(letters[free..<(free + bound + output)])
        let out = String(letters[0..<free]) + String(letters[(free + bound)..<(free + bound + output)])
        return ("\(input),\(kernel)->\(out)", String(letters[(free + bound)..<(free + bound + output)]))
    }

    /// Keras's `_build_attention_equation` for projected tensors of rank `rank`: what
    /// `attentionScores` and `attentionCombine` compute, kept as their naive twin.
    static func attentionEquations(rank: Int, axes: [Int]) -> (dot: String, combine: String) {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let target = Array(letters[0..<rank])
        let batchDims = (0..<rank).filter { !axes.contains($0) && $0 != rank - 1 }
        var offset = rank
        var source: [Character] = []
        for axis in 0..<rank {
            if batchDims.contains(axis) || axis == rank - 1 { source.append(target[axis]) } else { source.append(letters[offset]); offset += 1 }
        }
        let product = String(batchDims.map { target[$0] } + axes.map { target[$0] } + axes.map { source[$0] })
        return ("\(String(source)),\(String(target))->\(product)", "\(product),\(String(source))->\(String(target))")
    }

    /// MultiHeadAttention's factory (`grouped` false) or GroupedQueryAttention's: the same layer
    /// with `head_dim` for key_dim and value_dim, `num_key_value_heads` key and value heads each
    /// repeated for `num_query_heads / num_key_value_heads` query heads, attention over axis 1
    /// and the query's features out (grouped_query_attention.py).
    static func factory(grouped: Bool) -> LayerFactory {
        { context in try make(context, grouped: grouped) }
    }

    static func make(_ context: LayerContext, grouped: Bool) throws -> any NodeLayer {
        let heads: Int, keyDim: Int, valueDim: Int, keyValueHeads: Int
        if grouped {
            keyDim = try context.positiveInt("head_dim", maximum: 1 << 20)
            valueDim = keyDim
            heads = try context.positiveInt("num_query_heads", maximum: 1 << 16)
            keyValueHeads = try context.positiveInt("num_key_value_heads", maximum: 1 << 16)
            guard heads % keyValueHeads == 0 else {
                throw context.error("'num_query_heads' (\(heads)) must be a multiple of 'num_key_value_heads' (\(keyValueHeads))", key: "num_key_value_heads")
            }
        } else {
            heads = try context.positiveInt("num_heads", maximum: 1 << 16)
            keyDim = try context.positiveInt("key_dim", maximum: 1 << 20)
            valueDim = try context.int("value_dim", default: keyDim)
            guard valueDim > 0 else { throw context.error("'value_dim' must be positive, found \(valueDim)", key: "value_dim") }
            keyValueHeads = heads
        }
        let useBias = try context.bool("use_bias", default: true)
        let useGate = try context.bool("use_gate", default: false)
        _ = try context.double("dropout", default: 0)
        _ = try context.bool("flash_attention", default: false)
        if context.has("sliding_window") {
            throw context.error("'sliding_window' is not supported by nnbuild yet", key: "sliding_window")
        }

        // The call: query, value, key positional or by keyword.
        func index(positional: Int, keyword: String) throws -> Int? {
            let byKeyword = context.inputIndices(ofKeywordArgument: keyword)
            if let argument = context.callArgument(positional) {
                guard case .tensor = argument else { throw context.error("call argument \(positional) (\(keyword)) must be a tensor, found a value") }
                return (0..<positional).reduce(0) { $0 + (context.node?.args[$1].tensors.count ?? 0) }
            }
            if byKeyword.count > 1 { throw context.error("call argument '\(keyword)' must be one tensor, found \(byKeyword.count)") }
            return byKeyword.first
        }
        let shapes = context.inputShapes
        guard let queryIndex = try index(positional: 0, keyword: "query") ?? (context.node == nil && !shapes.isEmpty ? 0 : nil),
              let valueIndex = try index(positional: 1, keyword: "value") ?? (context.node == nil ? min(1, shapes.count - 1) : nil),
              queryIndex < shapes.count, valueIndex < shapes.count else {
            throw context.error("needs a query and a value tensor (mha(query, value) or mha(query=..., value=...)), called on \(shapes.count) input(s)")
        }
        let keyIndex = try index(positional: 2, keyword: "key")
        let maskIndices = context.inputIndices(ofKeywordArgument: "attention_mask")
        guard maskIndices.count <= 1 else { throw context.error("call argument 'attention_mask' must be one tensor") }
        let attentionMaskIndex = maskIndices.first
        let useCausalMask = try context.kwargBool("use_causal_mask", default: false)
        let returnScores = try context.kwargBool("return_attention_scores", default: false)

        let queryShape = shapes[queryIndex], valueShape = shapes[valueIndex]
        let keyShape = keyIndex.map { shapes[$0] } ?? valueShape
        guard queryShape.count >= 2, valueShape.count == queryShape.count, keyShape.count == queryShape.count else {
            throw context.error("query, value and key must have one rank of at least 3 (batch, ..., features), found \(describeShape(queryShape)), \(describeShape(valueShape)), \(describeShape(keyShape))")
        }
        guard Array(valueShape.dropLast()) == Array(keyShape.dropLast()) else {
            throw context.error("value and key must agree on every axis but the last, found \(describeShape(valueShape)) and \(describeShape(keyShape))")
        }
        if grouped, let a = queryShape.last, let b = valueShape.last, let a, let b, a != b {
            throw context.error("the query's and the value's last axes must be equal, as Keras requires, found \(describeShape(queryShape)) and \(describeShape(valueShape))")
        }
        let rank = queryShape.count + 1  // the inputs' full rank
        let projectedRank = rank + 1
        var axes: [Int]
        switch grouped ? nil : context.value("attention_axes") {
        case nil, .null?: axes = Array(1..<(projectedRank - 2))
        case let .int(axis)?: axes = [Int(axis) >= 0 ? Int(axis) : projectedRank - 1 + Int(axis)]
        default:
            axes = try context.intList("attention_axes").map { $0 >= 0 ? $0 : projectedRank - 1 + $0 }
        }
        guard !axes.isEmpty, axes.allSatisfy({ $0 >= 1 && $0 < projectedRank - 2 }), Set(axes).count == axes.count else {
            throw context.error("'attention_axes' must name distinct axes between the batch and the features (1...\(rank - 2)), found \(axes)", key: "attention_axes")
        }
        let sequenceAxes = axes == [1]
        if !sequenceAxes, useCausalMask || context.inputMasks.contains(true) {
            throw context.error("masks and use_causal_mask need attention over axis 1 of inputs of rank 3 in nnbuild (Keras's masks are per step of axis 1)", key: "attention_axes")
        }
        if sequenceAxes, rank != 3, useCausalMask || context.inputMasks.contains(true) {
            throw context.error("masks and use_causal_mask need inputs of rank 3 (batch, steps, features) in nnbuild, found rank \(rank)")
        }

        var outputDims: [Int]
        switch grouped ? nil : context.value("output_shape") {
        case nil, .null?:
            guard let last = queryShape.last, let last else { throw context.error("the query's last axis must be known") }
            outputDims = [last]
        case let .int(size)?: outputDims = [Int(size)]
        default: outputDims = try context.intList("output_shape")
        }
        guard !outputDims.isEmpty, outputDims.allSatisfy({ $0 > 0 }) else {
            throw context.error("'output_shape' must be positive sizes, found \(outputDims)", key: "output_shape")
        }

        func sublayer(_ name: String, free: Int, bound: Int, output: [Int], activation: String = "linear", input: [Int?]) throws -> EinsumDense {
            let (equation, biasAxes) = projection(free: free, bound: bound, output: output.count)
            let shape: [JSONValue] = [JSONValue](repeating: .null, count: free - 1) + output.map { .int(Int64($0)) }
            var config: [(String, JSONValue)] = [("name", .string(name)), ("equation", .string(equation)), ("output_shape", .array(shape)),
                                                 ("activation", .string(activation))]
            if useBias { config.append(("bias_axes", .string(biasAxes))) }
            let spec = LayerSpec(className: "EinsumDense", name: name, config: .object(config), path: "\(context.spec.path).\(name)")
            guard let layer = try context.buildNested(spec, inputShape: input) as? EinsumDense else {
                throw context.error("the '\(name)' projection must be the built-in EinsumDense")
            }
            return layer
        }
        let free = rank - 1
        let query = try sublayer("query", free: free, bound: 1, output: [heads, keyDim], input: queryShape)
        let key = try sublayer("key", free: free, bound: 1, output: [keyValueHeads, keyDim], input: keyShape)
        let gate = useGate ? try sublayer("gate", free: free, bound: 1, output: [heads, valueDim], activation: "sigmoid", input: queryShape) : nil
        let value = try sublayer("value", free: free, bound: 1, output: [keyValueHeads, valueDim], input: valueShape)
        let combinedShape = Array(queryShape.dropLast()) + [heads, valueDim]
        let output = try sublayer("attention_output", free: free, bound: 2, output: outputDims, input: combinedShape)


        if let attentionMaskIndex {
            let maskShape = shapes[attentionMaskIndex]
            guard maskShape.count == 2 * axes.count else {
                throw context.error("call argument 'attention_mask' must have shape (batch, \(axes.count == 1 ? "T, S" : "query attention axes…, key attention axes…")), found \(describeShape(maskShape))")
            }
        }
        // The scores: (batch, other axes…, heads, query attention axes…, key attention axes…).
        let projectedQuery: [Int?] = [nil] + Array(queryShape.dropLast()) + [heads, keyDim]
        let projectedKey: [Int?] = [nil] + Array(keyShape.dropLast()) + [heads, keyDim]
        let batchDims = (1..<projectedRank).filter { !axes.contains($0) && $0 != projectedRank - 1 }
        let scoresShape = batchDims.map { projectedQuery[$0] } + axes.map { projectedQuery[$0] } + axes.map { projectedKey[$0] }
        let attentionOutput = Array(queryShape.dropLast()) + outputDims.map(Optional.some)
        try context.sampleCount(attentionOutput)
        try context.sampleCount(scoresShape, of: "the attention scores")
        return MultiHeadAttention(query: query, key: key, value: value, output: output, gate: gate,
                                  queryIndex: queryIndex, valueIndex: valueIndex, keyIndex: keyIndex,
                                  attentionMaskIndex: attentionMaskIndex, useCausalMask: useCausalMask, returnScores: returnScores,
                                  attentionAxes: axes,
                                  scale: 1 / Float(Double(keyDim).squareRoot()), repeats: heads / keyValueHeads, grouped: grouped,
                                  outputShapes: returnScores ? [attentionOutput, scoresShape] : [attentionOutput])
    }

    /// Keras's MultiHeadAttention.call: `set_keras_mask(query, None)`, then value and key (the key
    /// is the value when none is given).
    public var maskClearedInputs: [Int] {
        grouped ? [] : [queryIndex, valueIndex] + (keyIndex.map { [$0] } ?? [])
    }

    public func outputMasks(inputMasks: [Bool]) -> [Bool] {
        let masked = queryIndex < inputMasks.count && inputMasks[queryIndex]
        return returnScores ? [masked, false] : [masked]
    }

    public func call(_ inputs: [Tensor]) throws -> [Tensor] {
        let queryInput = inputs[queryIndex], valueInput = inputs[valueIndex]
        let keyInput = keyIndex.map { inputs[$0] } ?? valueInput
        var q = try query.forward(queryInput)
        let k = try key.forward(keyInput)
        let v = try value.forward(valueInput)
        let scale = self.scale
        q.data.withUnsafeMutableBufferPointer { x in
            for index in 0..<x.count { x[index] *= scale }
        }
        if attentionAxes == [1], q.rank == 4, k.rank == 4, v.rank == 4, q.count > 0, k.count > 0, v.count > 0 {
            return try sequenceAttention(inputs, queryInput: queryInput, q: q, k: k, v: v)
        }
        let kr = repeatHeads(k), vr = repeatHeads(v)
        return try generalAttention(inputs, queryInput: queryInput, q: q, k: kr, v: vr)
    }

    /// Attention over axis 1 of projected (batch, steps, heads, dim) tensors, without permuted
    /// copies: per sample and head, the scores (T × S) are one product of the query's rows (read
    /// in place, stride heads · dim) with the key's transposed slice, the mask and softmax go row
    /// by row, and the weighted sum is written straight into the combined (batch, T, heads, dim)
    /// layout. Each (sample, head) block is the same products whatever the batch.
    func sequenceAttention(_ inputs: [Tensor], queryInput: Tensor, q: Tensor, k: Tensor, v: Tensor) throws -> [Tensor] {
        let batch = q.shape[0], queryLength = q.shape[1], heads = q.shape[2], dim = q.shape[3]
        let keyLength = k.shape[1], keyHeads = k.shape[2], valueDim = v.shape[3]
        guard k.shape[0] == batch, v.shape[0] == batch, v.shape[1] == keyLength, v.shape[2] == keyHeads, k.shape[3] == dim,
              keyHeads * repeats == heads else {
            throw NNError(.input, "MultiHeadAttention", "projected query \(q.shape), key \(k.shape) and value \(v.shape) do not fit")
        }
        let mask = try attentionMask(inputs, batch: batch, queryLength: queryLength, keyLength: keyLength)
        let scoresShape = [batch, heads, queryLength, keyLength]
        let scoreCount = try ShapeMath.sampleCount(scoresShape, of: "the attention scores", at: "MultiHeadAttention")
        let combinedShape = [batch, queryLength, heads, valueDim]
        let combinedCount = try ShapeMath.sampleCount(combinedShape, of: "the attention output", at: "MultiHeadAttention")
        var scores = [Float](repeating: 0, count: scoreCount)
        var combinedData = [Float](repeating: 0, count: combinedCount)
        let block = queryLength * keyLength
        let flags = mask ?? [true]
        flags.withUnsafeBufferPointer { m in
        q.data.withUnsafeBufferPointer { qp in
            k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    scores.withUnsafeMutableBufferPointer { sp in
                        combinedData.withUnsafeMutableBufferPointer { cp in
                            let shared = UncheckedHeads(flags: m.baseAddress!, q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!,
                                                        scores: sp.baseAddress!, combined: cp.baseAddress!)
                            // The (sample, head) blocks in parts across the pool's threads: each
                            // writes its own scores and its own head's columns of the output, in
                            // the same order whatever part it falls in. At batch 1 the blocks'
                            // products are too small to split themselves, so the four heads of
                            // transformer_text ran on one thread.
                            let items = batch * heads
                            runInParts(items, work: items * queryLength * keyLength * (dim + valueDim)) { range in
                                AlignedFloats.withScratch(dim * keyLength) { t in
                                    for item in range {
                                        let b = item / heads, h = item % heads, kh = h / repeats
                                        // The key slice (S × dim, stride keyHeads · dim) transposed to dim × S,
                                        // written row by row (the slice stays in L1 for the strided reads;
                                        // written column by column, each store took a line of its own).
                                        let keyBase = shared.k + (b * keyLength * keyHeads + kh) * dim
                                        let keyStride = keyHeads * dim
                                        for d in 0..<dim {
                                            let out = t + d * keyLength
                                            for s in 0..<keyLength { out[s] = keyBase[s &* keyStride &+ d] }
                                        }
                                        let s = shared.scores + (b * heads + h) * block
                                        Gemm.gemm(shared.q + (b * queryLength * heads + h) * dim, lda: heads * dim,
                                                  UnsafePointer(t), ldb: keyLength, s, ldc: keyLength,
                                                  m: queryLength, n: keyLength, k: dim, accumulate: false)
                                        for row in 0..<queryLength {
                                            let r = s + row * keyLength
                                            if mask != nil {
                                                let flags = shared.flags + (b * queryLength + row) * keyLength
                                                for j in 0..<keyLength where !flags[j] { r[j] = -1e9 }
                                            }
                                            Activation.softmaxRow(r, length: keyLength, log: false)
                                        }
                                        Gemm.gemm(UnsafePointer(s), lda: keyLength,
                                                  shared.v + (b * keyLength * keyHeads + kh) * valueDim, ldb: keyHeads * valueDim,
                                                  shared.combined + (b * queryLength * heads + h) * valueDim, ldc: heads * valueDim,
                                                  m: queryLength, n: valueDim, k: keyLength, accumulate: false)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        }
        var combined = Tensor(shape: combinedShape, data: combinedData)
        if let gate {
            let g = try gate.forward(queryInput)
            combined.data.withUnsafeMutableBufferPointer { c in
                g.data.withUnsafeBufferPointer { gp in
                    for index in 0..<min(c.count, gp.count) { c[index] *= gp[index] }
                }
            }
        }
        var result = try output.forward(combined)
        result.mask = queryInput.mask
        return returnScores ? [result, Tensor(shape: scoresShape, data: scores)] : [result]
    }

    /// Any other attention axes: the projections moved to matrix order, then the general products.
    func generalAttention(_ inputs: [Tensor], queryInput: Tensor, q: Tensor, k: Tensor, v: Tensor) throws -> [Tensor] {
        var scores = try attentionScores(q, k, attentionAxes: attentionAxes)
        // (batch, middle, T, S): T and S the products of the query's and key's attention axes.
        let batch = q.shape[0]
        let queryLength = ShapeMath.saturatingProduct(attentionAxes.map { q.shape[$0] })
        let keyLength = ShapeMath.saturatingProduct(attentionAxes.map { k.shape[$0] })
        let mask = try attentionMask(inputs, batch: batch, queryLength: queryLength, keyLength: keyLength)
        let rows = scores.count / max(keyLength, 1)
        let middle = rows / max(batch * queryLength, 1)
        scores.data.withUnsafeMutableBufferPointer { s in
            for row in 0..<rows {
                let base = row * keyLength
                if let mask {
                    let b = row / (middle * queryLength), t = row % queryLength
                    let maskBase = (b * queryLength + t) * keyLength
                    for j in 0..<keyLength where !mask[maskBase + j] { s[base + j] = -1e9 }
                }
                Activation.softmaxRow(s.baseAddress! + base, length: keyLength, log: false)
            }
        }
        var combined = try attentionCombine(scores, v, attentionAxes: attentionAxes)
        if let gate {
            let g = try gate.forward(queryInput)
            for index in combined.data.indices { combined.data[index] *= g.data[index] }
        }
        var result = try output.forward(combined)
        result.mask = queryInput.mask
        return returnScores ? [result, scores] : [result]
    }

    /// The outputs, plus the projected query, key and value (and gate), each moved once to
    /// matrix order, the scores and the combined heads.
    public func plannedWorkingSets(inputs: [[Int]]) -> [WorkingSet] {
        let query = query.plannedWorkingSet(input: inputs[queryIndex])
        let valueInput = inputs[valueIndex]
        let key = key.plannedWorkingSet(input: keyIndex.map { inputs[$0] } ?? valueInput)
        let value = value.plannedWorkingSet(input: valueInput)
        let heads = query.outputShape.count >= 2 ? query.outputShape[query.outputShape.count - 2] : 1
        let queryPositions = ShapeMath.saturatingProduct(query.outputShape.dropLast(2))
        let keyPositions = ShapeMath.saturatingProduct(key.outputShape.dropFirst().dropLast(2))
        let scores = ShapeMath.saturatingProduct([queryPositions, heads, keyPositions])
        let combined = ShapeMath.saturatingProduct(query.outputShape.dropLast() + [value.outputShape.last ?? 1])
        let projections = ShapeMath.saturatingSum(query.output, query.scratch, ShapeMath.saturatingProduct([key.output, repeats]), key.scratch,
                                                  ShapeMath.saturatingProduct([value.output, repeats]), value.scratch, gate == nil ? 0 : query.output)
        let outputShape = [inputs[queryIndex].first ?? 1] + outputShapes[0].enumerated().map { axis, size in
            size ?? (axis + 1 < inputs[queryIndex].count ? inputs[queryIndex][axis + 1] : 1)
        }
        let scratch = ShapeMath.saturatingSum(ShapeMath.saturatingProduct([projections, 2]), ShapeMath.saturatingProduct([scores, 3]), combined, combined)
        let main = WorkingSet(outputShape: outputShape, scratch: scratch, scratchMeaning: "the projections, the attention scores and mask, and the combined heads")
        guard returnScores else { return [main] }
        let batch = max(inputs[queryIndex].first ?? 1, 1)
        return [main, WorkingSet(outputShape: [batch, scores / batch])]
    }

    /// ops.repeat(x, repeats, axis=-2) on projected (…, heads, dim): each head `repeats` times in a row.
    func repeatHeads(_ x: Tensor) -> Tensor {
        guard repeats > 1, x.rank >= 2 else { return x }
        let dim = x.shape[x.rank - 1], heads = x.shape[x.rank - 2]
        let groups = x.count / max(heads * dim, 1)
        var data = [Float]()
        data.reserveCapacity(x.count * repeats)
        for group in 0..<groups {
            for head in 0..<heads {
                let start = (group * heads + head) * dim
                for _ in 0..<repeats { data.append(contentsOf: x.data[start..<(start + dim)]) }
            }
        }
        var shape = x.shape
        shape[x.rank - 2] = heads * repeats
        return Tensor(shape: shape, data: data)
    }

    /// Keras's `_compute_attention_mask` as batch × T × S flags, nil when nothing is masked.
    func attentionMask(_ inputs: [Tensor], batch: Int, queryLength: Int, keyLength: Int) throws -> [Bool]? {
        let queryMask = inputs[queryIndex].mask
        let valueMask = inputs[valueIndex].mask
        let keyMask = keyIndex.flatMap { inputs[$0].mask }
        guard queryMask != nil || valueMask != nil || keyMask != nil || useCausalMask || attentionMaskIndex != nil else { return nil }
        // A sequence mask has one flag per step of axis 1: it fits only attention over that axis.
        for (mask, length) in [(queryMask, queryLength), (valueMask, keyLength), (keyMask, keyLength)] {
            if let mask, mask.count != batch * length {
                throw NNError(.input, "MultiHeadAttention", "a sequence mask of \(mask.count) flags does not fit \(batch) × \(length) attention positions")
            }
        }
        var flags = [Bool](repeating: true, count: batch * queryLength * keyLength)
        var explicit: Tensor?
        var explicitStrides: [Int] = []
        if let attentionMaskIndex {
            let tensor = inputs[attentionMaskIndex]
            let dims = Array(tensor.shape.dropFirst())
            let axisCount = attentionAxes.count
            let wanted = attentionAxes.map { inputs[queryIndex].shape[$0] } + attentionAxes.map { inputs[valueIndex].shape[$0] }
            guard tensor.shape.first == batch || tensor.shape.first == 1, dims.count == 2 * axisCount,
                  zip(dims, wanted).allSatisfy({ $0 == $1 || $0 == 1 }) else {
                throw NNError(.input, "MultiHeadAttention", "attention_mask of shape \(tensor.shape) does not broadcast to (batch, T…, S…) = \([batch] + wanted)")
            }
            explicit = tensor
            explicitStrides = contiguousStrides(tensor.shape).enumerated().map { tensor.shape[$0.offset] == 1 ? 0 : $0.element }
        }
        let queryDims = attentionAxes.map { inputs[queryIndex].shape[$0] }
        let keyDims = attentionAxes.map { inputs[valueIndex].shape[$0] }
        if queryDims.count == 1 {
            // One attention axis: the flags row by row, each source read through its strides.
            let sequenceMasks = [valueMask, keyMask].compactMap { $0 }
            flags.withUnsafeMutableBufferPointer { f in
                for b in 0..<batch {
                    for t in 0..<queryLength {
                        let row = f.baseAddress! + (b * queryLength + t) * keyLength
                        if let queryMask, !queryMask[b * queryLength + t] {
                            for s in 0..<keyLength { row[s] = false }
                            continue
                        }
                        // Each source and-ed into the row's flags as bytes (0 or 1), without a
                        // branch or a checked add per flag, so the loops vectorize: the
                        // Transformer's 128 × 128 flags took 18 µs a call flag by flag.
                        let first = b * keyLength
                        row.withMemoryRebound(to: UInt8.self, capacity: keyLength) { bytes in
                            for sequence in sequenceMasks {
                                sequence.withUnsafeBufferPointer { m in
                                    for s in 0..<keyLength { bytes[s] &= m[first &+ s] ? 1 : 0 }
                                }
                            }
                            if let explicit {
                                let base = b * explicitStrides[0] + t * explicitStrides[1], stride = explicitStrides[2]
                                explicit.data.withUnsafeBufferPointer { e in
                                    if stride == 1 {
                                        for s in 0..<keyLength { bytes[s] &= e[base &+ s] != 0 ? 1 : 0 }
                                    } else {
                                        for s in 0..<keyLength { bytes[s] &= e[base &+ s &* stride] != 0 ? 1 : 0 }
                                    }
                                }
                            }
                        }
                        if useCausalMask, t + 1 < keyLength {
                            for s in (t + 1)..<keyLength { row[s] = false }
                        }
                    }
                }
            }
            return flags
        }
        for b in 0..<batch {
            for t in 0..<queryLength {
                for s in 0..<keyLength {
                    var real = true
                    if let queryMask { real = real && queryMask[b * queryLength + t] }
                    if let valueMask { real = real && valueMask[b * keyLength + s] }
                    if let keyMask { real = real && keyMask[b * keyLength + s] }
                    if useCausalMask { real = real && t >= s }
                    if let explicit {
                        var offset = b * explicitStrides[0]
                        var rest = t
                        for axis in queryDims.indices.reversed() { offset += (rest % queryDims[axis]) * explicitStrides[1 + axis]; rest /= queryDims[axis] }
                        rest = s
                        for axis in keyDims.indices.reversed() { offset += (rest % keyDims[axis]) * explicitStrides[1 + queryDims.count + axis]; rest /= keyDims[axis] }
                        real = real && explicit.data[offset] != 0
                    }
                    flags[(b * queryLength + t) * keyLength + s] = real
                }
            }
        }
        return flags
    }
}

extension Builtins {
    static func registerAttention(_ registry: LayerRegistry) {
        registry.register("EinsumDense", origin: "builtin", summary: "activation(einsum(equation, x, kernel) + bias).", factory: EinsumDense.factory)
        registry.register("MultiHeadAttention", origin: "builtin", summary: "Multi-head scaled dot-product attention with query/key/value/output projections and Keras's masks.",
                          savedChildren: MultiHeadAttention.savedChildren(private: false), factory: MultiHeadAttention.factory(grouped: false))
        registry.register("GroupedQueryAttention", aliases: ["GroupQueryAttention"], origin: "builtin",
                          summary: "Grouped-query attention: key and value heads shared by groups of query heads, Keras's masks.",
                          savedChildren: MultiHeadAttention.savedChildren(private: true).savedAs("GroupedQueryAttention"), factory: MultiHeadAttention.factory(grouped: true))
        registry.register("Attention", origin: "builtin", summary: "Dot-product (or concat) attention of [query, value(, key)], Keras's masks.",
                          factory: DotAttention.factory(additive: false))
        registry.register("AdditiveAttention", origin: "builtin", summary: "Additive (Bahdanau) attention of [query, value(, key)], Keras's masks.",
                          factory: DotAttention.factory(additive: true))
    }
}

/// The query–key dot products of projected q (…, heads, dim) and k, as Keras's dot-product einsum
/// lays them out: (batch, other axes…, heads, query attention axes…, key attention axes…).
/// Both are moved to (groups, attention positions, dim), then one matrix product per group.
/// Its naive twin is Keras's own einsum (`attentionEquations`) run by `Einsum.run`, as the tests do.
func attentionScores(_ q: Tensor, _ k: Tensor, attentionAxes: [Int]) throws -> Tensor {
    let rank = q.rank
    let groupAxes = (0..<rank).filter { !attentionAxes.contains($0) && $0 != rank - 1 }
    let order = groupAxes + attentionAxes + [rank - 1]
    let groupShape = groupAxes.map { q.shape[$0] }
    guard k.rank == rank, groupAxes.map({ k.shape[$0] }) == groupShape, q.shape[rank - 1] == k.shape[rank - 1] else {
        throw NNError(.input, "MultiHeadAttention", "projected query \(q.shape) and key \(k.shape) differ outside the attention axes")
    }
    let qs = permute(q, order), ks = permute(k, order)
    let groups = ShapeMath.saturatingProduct(groupShape), dim = q.shape[rank - 1]
    let queryDims = attentionAxes.map { q.shape[$0] }, keyDims = attentionAxes.map { k.shape[$0] }
    let (tq, tk) = (ShapeMath.saturatingProduct(queryDims), ShapeMath.saturatingProduct(keyDims))
    let shape = groupShape + queryDims + keyDims
    let count = try ShapeMath.sampleCount(shape, of: "the attention scores", at: "MultiHeadAttention")
    var data = [Float](repeating: 0, count: count)
    qs.data.withUnsafeBufferPointer { a in
        ks.data.withUnsafeBufferPointer { b in
            data.withUnsafeMutableBufferPointer { c in
                for g in 0..<groups {
                    Gemm.gemm(a.baseAddress! + g * tq * dim, b.baseAddress! + g * tk * dim, c.baseAddress! + g * tq * tk,
                              m: tq, n: tk, k: dim, transposeB: true)
                }
            }
        }
    }
    return Tensor(shape: shape, data: data)
}

/// Σ over key positions of probabilities (the layout of `attentionScores`) times projected v
/// (…, heads, value dim): the output in v's axis order with the query's attention positions.
func attentionCombine(_ scores: Tensor, _ v: Tensor, attentionAxes: [Int]) throws -> Tensor {
    let rank = v.rank
    let groupAxes = (0..<rank).filter { !attentionAxes.contains($0) && $0 != rank - 1 }
    let order = groupAxes + attentionAxes + [rank - 1]
    let groupShape = groupAxes.map { v.shape[$0] }
    let keyDims = attentionAxes.map { v.shape[$0] }
    let queryDims = Array(scores.shape.dropFirst(groupShape.count).prefix(attentionAxes.count))
    guard Array(scores.shape.prefix(groupShape.count)) == groupShape, scores.rank == groupShape.count + 2 * attentionAxes.count,
          Array(scores.shape.suffix(attentionAxes.count)) == keyDims else {
        throw NNError(.input, "MultiHeadAttention", "attention scores \(scores.shape) do not fit the projected value \(v.shape)")
    }
    let vs = permute(v, order)
    let groups = ShapeMath.saturatingProduct(groupShape), dim = v.shape[rank - 1]
    let (tq, tk) = (ShapeMath.saturatingProduct(queryDims), ShapeMath.saturatingProduct(keyDims))
    let permutedShape = groupShape + queryDims + [dim]
    var data = [Float](repeating: 0, count: try ShapeMath.sampleCount(permutedShape, of: "the attention output", at: "MultiHeadAttention"))
    scores.data.withUnsafeBufferPointer { a in
        vs.data.withUnsafeBufferPointer { b in
            data.withUnsafeMutableBufferPointer { c in
                for g in 0..<groups {
                    Gemm.gemm(a.baseAddress! + g * tq * tk, b.baseAddress! + g * tk * dim, c.baseAddress! + g * tq * dim,
                              m: tq, n: dim, k: tk)
                }
            }
        }
    }
    let back = (0..<rank).compactMap { order.firstIndex(of: $0) }
    let permuted = Tensor(shape: permutedShape, data: data)
    return back == Array(0..<rank) ? permuted : permute(permuted, back)
}

extension MultiHeadAttention {
    /// The projections Keras saves below the layer: MultiHeadAttention's public `query_dense`,
    /// `key_dense`, `value_dense`, `output_dense` (GroupedQueryAttention's are private,
    /// `_query_dense`...), and `_gate_dense` with `use_gate`.
    static func savedChildren(private: Bool) -> SavedChildren {
        let prefix = `private` ? "_" : ""
        let projections = [("query", "query"), ("key", "key"), ("value", "value"), ("output", "attention_output")]
        return projections.reduce(SavedChildren.made("_gate_dense", className: "EinsumDense", name: "gate", when: { spec in
            if case .bool(true)? = spec.config["use_gate"] { return true }
            return false
        })) { declared, projection in
            declared + .made("\(prefix)\(projection.0)_dense", className: "EinsumDense", name: projection.1)
        }
    }
}

/// What the (sample, head) blocks of `sequenceAttention` read and write, shared by its parts.
private struct UncheckedHeads: @unchecked Sendable {
    let flags: UnsafePointer<Bool>
    let q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>
    let scores: UnsafeMutablePointer<Float>, combined: UnsafeMutablePointer<Float>
}
