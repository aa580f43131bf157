#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

// Attention and AdditiveAttention (keras/src/layers/attention/attention.py,
// additive_attention.py): attention without projections, called on [query, value] or
// [query, value, key].

/// `Attention` (Luong) and `AdditiveAttention` (Bahdanau) over (batch, Tq, dim) queries and
/// (batch, Tv, dim) values and keys:
/// - dot: scores = scale · q · kᵀ; concat: scores = weight · Σ tanh(scale · (q + k));
///   additive: scores = Σ scale · tanh(q + k);
/// - a masked score (the value's mask, the causal mask) becomes score − 1e9, as Keras subtracts;
/// - out = softmax(scores) · v, zeroed where the query is masked; the output keeps the query's mask.
///
/// Config: `use_scale` (false; AdditiveAttention true), `score_mode` ("dot", "concat";
/// Attention only), `dropout` (identity at inference), `seed`. Weights: `scale` (a scalar, or
/// (dim,) for AdditiveAttention), `concat_score_weight` (a scalar, concat only). Call arguments:
/// `use_causal_mask`, `return_attention_scores`.
public struct DotAttention: NodeLayer {
    public enum Score: Sendable { case dot, concat, additive }
    let score: Score
    let scale: [Float]?
    let concatWeight: Float
    let useCausalMask: Bool
    let returnScores: Bool
    let hasKey: Bool
    public let outputShapes: [[Int?]]

    static func factory(additive: Bool) -> LayerFactory {
        { context in
            let useScale = try context.bool("use_scale", default: additive)
            let mode = additive ? "additive" : try context.choice("score_mode", default: "dot", allowed: ["dot", "concat"])
            let dropout = try context.double("dropout", default: 0)
            guard dropout >= 0, dropout <= 1 else { throw context.error("'dropout' must be in [0, 1], found \(dropout)", key: "dropout") }
            let shapes = context.inputShapes
            guard shapes.count == 2 || shapes.count == 3 else {
                throw context.error("takes a list [query, value] or [query, value, key], called on \(shapes.count) input(s)")
            }
            guard shapes.allSatisfy({ $0.count == 2 }) else {
                throw context.error("query, value and key must be (batch, steps, dim) in nnbuild, found \(shapes.map(describeShape).joined(separator: ", "))")
            }
            let query = shapes[0], value = shapes[1], key = shapes.count == 3 ? shapes[2] : shapes[1]
            if let a = query[1], let b = key[1], a != b {
                throw context.error("query and key must have one last axis, found \(describeShape(query)) and \(describeShape(key))")
            }
            if let a = value[0], let b = key[0], a != b {
                throw context.error("value and key must have one number of steps, found \(describeShape(value)) and \(describeShape(key))")
            }
            var scale: [Float]?
            if useScale {
                if additive {
                    guard let dim = query[1] else { throw context.error("the query's last axis must be known for the 'scale' weight") }
                    scale = Array(try context.weight("scale", shape: [dim]).values)
                } else {
                    scale = Array(try context.weight("scale", shape: []).values)
                }
            }
            let concatWeight = mode == "concat" ? try context.weight("concat_score_weight", shape: []).values.first ?? 1 : 1
            let returnScores = try context.kwargBool("return_attention_scores", default: false)
            let output: [Int?] = [query[0], value[1]]
            try context.sampleCount(output)
            return DotAttention(score: mode == "dot" ? .dot : mode == "concat" ? .concat : .additive, scale: scale,
                                concatWeight: concatWeight, useCausalMask: try context.kwargBool("use_causal_mask", default: false),
                                returnScores: returnScores, hasKey: shapes.count == 3,
                                outputShapes: returnScores ? [output, [query[0], value[0]]] : [output])
        }
    }

    public func outputMasks(inputMasks: [Bool]) -> [Bool] {
        let masked = inputMasks.first ?? false
        return returnScores ? [masked, false] : [masked]
    }

    public func call(_ inputs: [Tensor]) throws -> [Tensor] {
        let q = inputs[0], v = inputs[1], k = hasKey ? inputs[2] : inputs[1]
        guard q.rank == 3, v.rank == 3, k.rank == 3, q.shape[2] == k.shape[2], v.shape[1] == k.shape[1],
              q.batch == v.batch, k.batch == v.batch else {
            throw NNError(.input, "Attention", "query \(q.shape), value \(v.shape) and key \(k.shape) do not fit (batch, Tq, dim), (batch, Tv, dimV), (batch, Tv, dim)")
        }
        let (batch, tq, tv, dim, dimV) = (q.shape[0], q.shape[1], k.shape[1], q.shape[2], v.shape[2])
        var scores = attentionScores(q.data, k.data, batch: batch, tq: tq, tv: tv, dim: dim)
        for b in 0..<batch {
            for i in 0..<tq {
                let row = (b * tq + i) * tv
                for j in 0..<tv where !v.isStepValid(row: b, step: j) || (useCausalMask && j > i) { scores[row + j] -= 1e9 }
                scores.withUnsafeMutableBufferPointer { Activation.softmaxRow($0.baseAddress! + row, length: tv, log: false) }
            }
        }
        var output = [Float](repeating: 0, count: batch * tq * dimV)
        scores.withUnsafeBufferPointer { s in
            v.data.withUnsafeBufferPointer { values in
                output.withUnsafeMutableBufferPointer { out in
                    for b in 0..<batch {
                        Gemm.gemm(s.baseAddress! + b * tq * tv, values.baseAddress! + b * tv * dimV, out.baseAddress! + b * tq * dimV,
                                  m: tq, n: dimV, k: tv)
                    }
                }
            }
        }
        if q.mask != nil {
            for b in 0..<batch {
                for i in 0..<tq where !q.isStepValid(row: b, step: i) {
                    for c in 0..<dimV { output[(b * tq + i) * dimV + c] = 0 }
                }
            }
        }
        let result = Tensor(shape: [batch, tq, dimV], data: output, mask: q.mask)
        return returnScores ? [result, Tensor(shape: [batch, tq, tv], data: scores)] : [result]
    }

    /// scores[b, i, j] from q (batch, tq, dim) and k (batch, tv, dim), before masking.
    func attentionScores(_ q: [Float], _ k: [Float], batch: Int, tq: Int, tv: Int, dim: Int) -> [Float] {
        var scores = [Float](repeating: 0, count: batch * tq * tv)
        switch score {
        case .dot:
            q.withUnsafeBufferPointer { a in
                k.withUnsafeBufferPointer { key in
                    scores.withUnsafeMutableBufferPointer { s in
                        for b in 0..<batch {
                            Gemm.gemm(a.baseAddress! + b * tq * dim, key.baseAddress! + b * tv * dim, s.baseAddress! + b * tq * tv,
                                      m: tq, n: tv, k: dim, transposeB: true)
                        }
                    }
                }
            }
            if let scale = scale?.first { for index in scores.indices { scores[index] *= scale } }
        case .concat, .additive:
            for b in 0..<batch {
                for i in 0..<tq {
                    for j in 0..<tv {
                        var sum: Float = 0
                        let qBase = (b * tq + i) * dim, kBase = (b * tv + j) * dim
                        for c in 0..<dim {
                            let x = q[qBase + c] + k[kBase + c]
                            switch score {
                            case .concat: sum += LibM.tanh((scale?.first ?? 1) * x)
                            default: sum += (scale?[c] ?? 1) * LibM.tanh(x)
                            }
                        }
                        scores[(b * tq + i) * tv + j] = score == .concat ? concatWeight * sum : sum
                    }
                }
            }
        }
        return scores
    }
}
