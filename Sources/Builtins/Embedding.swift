import LayerRegistry

/// `Embedding`: token ids → rows of `embeddings` (input_dim, output_dim). With `mask_zero`, id 0
/// is padding and the output carries a mask of the non-zero ids.
///
/// Config: `input_dim`, `output_dim`, `mask_zero` (false). An id outside [0, input_dim) or not an
/// integer is an input error naming the batch row and position.
public struct Embedding: Layer, TakesIndices {
    public let inputDim: Int
    public let outputDim: Int
    public let maskZero: Bool
    public let embeddings: Weight
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .produces }
    public var indexLimit: Int { inputDim }

    static func factory(_ context: LayerContext) throws -> any Layer {
        guard !context.inputShape.isEmpty else {
            throw context.error("expects token ids of shape (batch, steps), found \(describeShape(context.inputShape))")
        }
        let inputDim = try context.positiveInt("input_dim", maximum: 1 << 27)
        let outputDim = try context.positiveInt("output_dim", maximum: 1 << 20)
        guard inputDim < 1 << 24 else { throw context.error("'input_dim' \(inputDim) is too large: ids are exact in float32 only below 2^24", key: "input_dim") }
        return Embedding(inputDim: inputDim, outputDim: outputDim, maskZero: try context.bool("mask_zero", default: false),
                         embeddings: try context.weightWithLoRA("embeddings", shape: [inputDim, outputDim],
                                                                 down: "lora_embeddings_a", up: "lora_embeddings_b"),
                         outputShape: context.inputShape + [outputDim])
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let perRow = max(input.sampleSize, 1)
        var output = [Float](repeating: 0, count: input.count * outputDim)
        let table = embeddings.values.baseAddress!
        try output.withUnsafeMutableBufferPointer { y in
            for (index, value) in input.data.enumerated() {
                guard value.rounded() == value, value >= 0, value < Float(inputDim) else {
                    let id = value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
                    throw NNError(.input, "input", "token id \(id) at batch row \(index / perRow), position \(index % perRow) is outside the embedding's range [0, \(inputDim)) (layer Embedding, input_dim \(inputDim))")
                }
                (y.baseAddress! + index * outputDim).update(from: table + Int(value) * outputDim, count: outputDim)
            }
        }
        let mask = maskZero && input.rank == 2 ? input.data.map { $0 != 0 } : nil
        return Tensor(shape: input.shape + [outputDim], data: output, mask: mask)
    }
}

/// `Masking`: a step whose features all equal `mask_value` (0.0) is masked and zeroed.
public struct Masking: Layer {
    public let maskValue: Float
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .produces }

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(2, meaning: "(batch, steps, features)")
        return Masking(maskValue: try context.float("mask_value", default: 0), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let steps = input.shape[1], features = input.shape[2]
        var output = input
        var mask = [Bool](repeating: true, count: input.batch * steps)
        for step in 0..<(input.batch * steps) {
            let start = step * features
            if !input.data[start..<(start + features)].contains(where: { $0 != maskValue }) {
                mask[step] = false
                for j in start..<(start + features) { output.data[j] = 0 }
            }
        }
        output.mask = mask
        return output
    }
}

extension Builtins {
    static func registerEmbedding(_ registry: LayerRegistry) {
        registry.register("Embedding", origin: "builtin", summary: "Looks up a vector per token id; mask_zero marks id 0 as padding.", factory: Embedding.factory)
        registry.register("Masking", origin: "builtin", summary: "Masks (and zeroes) steps whose features all equal mask_value.", factory: Masking.factory)
    }
}
