import LayerRegistry

/// `Embedding`: token ids → rows of `embeddings` (input_dim, output_dim). With `mask_zero`, id 0
/// is padding and the output carries a mask of the non-zero ids.
///
/// Config: `input_dim`, `output_dim`, `mask_zero` (false). An id outside [0, input_dim) or not an
/// integer is an input error naming the batch row and position. Ids of any shape, one per sample
/// too; the mask only on (batch, steps) ids (Keras's mask of a (batch,) input, one flag per
/// sample, has no sequence for a later layer to skip).
public struct Embedding: Layer, TakesIndices {
    public let inputDim: Int
    public let outputDim: Int
    public let maskZero: Bool
    public let embeddings: Weight
    public let outputShape: [Int?]
    /// Makes a mask only with `mask_zero` (as `mask(of:)` does); otherwise, as in Keras, none.
    public var maskBehavior: MaskBehavior { maskZero && outputShape.count == 2 ? .produces : .drops }
    public var indexLimit: Int { inputDim }

    static func factory(_ context: LayerContext) throws -> any Layer {
        // A (batch,) input (one id per sample: a user or item id) gives (batch, output_dim).
        let (inputDim, outputDim) = try dimensions(context)
        return Embedding(inputDim: inputDim, outputDim: outputDim, maskZero: try context.bool("mask_zero", default: false),
                         embeddings: try context.weightWithLoRA("embeddings", shape: [inputDim, outputDim],
                                                                 down: "lora_embeddings_a", up: "lora_embeddings_b"),
                         outputShape: context.inputShape + [outputDim])
    }

    /// `input_dim` (ids exact in float32: below 2^24) and `output_dim`, as Embedding and
    /// ReversibleEmbedding read them.
    static func dimensions(_ context: LayerContext) throws -> (input: Int, output: Int) {
        let inputDim = try context.positiveInt("input_dim", maximum: 1 << 27)
        let outputDim = try context.positiveInt("output_dim", maximum: 1 << 20)
        guard inputDim < 1 << 24 else { throw context.error("'input_dim' \(inputDim) is too large: ids are exact in float32 only below 2^24", key: "input_dim") }
        return (inputDim, outputDim)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkIDs(input)
        var output = [Float](repeating: 0, count: input.count * outputDim)
        let table = embeddings.values.baseAddress!
        output.withUnsafeMutableBufferPointer { y in
            for (index, value) in input.data.enumerated() {
                (y.baseAddress! + index * outputDim).update(from: table + Int(value) * outputDim, count: outputDim)
            }
        }
        return Tensor(shape: input.shape + [outputDim], data: output, mask: mask(of: input))
    }

    /// Throws the input error for the first id that is not an integer in [0, input_dim).
    func checkIDs(_ input: Tensor) throws {
        let perRow = max(input.sampleSize, 1)
        for (index, value) in input.data.enumerated() {
            guard value.rounded() == value, value >= 0, value < Float(inputDim) else {
                let id = value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
                throw NNError(.input, "input", "token id \(id) at batch row \(index / perRow), position \(index % perRow) is outside the embedding's range [0, \(inputDim)) (layer Embedding, input_dim \(inputDim))")
            }
        }
    }

    /// The mask the output carries: the non-zero ids with `mask_zero` on a (batch, steps) input.
    func mask(of input: Tensor) -> [Bool]? {
        maskZero && input.rank == 2 ? input.data.map { $0 != 0 } : nil
    }
}

/// An Embedding fuses with the recurrent layer (or Bidirectional of two) reading its sequence:
/// the layer's input projection of a token, E[id]·W + b, becomes a row of a table made once.
extension Embedding: FusesNext {
    public func fusing(_ next: any Layer) -> (any Layer)? {
        guard outputShape.count == 2 else { return nil }
        if let recurrent = next as? RecurrentLayer, let reading = recurrent.readingTokens(of: self) {
            return TokenSequence(embedding: self, layer: reading)
        }
        if let wrapper = next as? Bidirectional, let forward = wrapper.forwardLayer as? RecurrentLayer,
           let backward = wrapper.backwardLayer as? RecurrentLayer,
           let forwardReading = forward.readingTokens(of: self), let backwardReading = backward.readingTokens(of: self) {
            return TokenSequence(embedding: self, layer: wrapper.withHalves(forwardReading, backwardReading))
        }
        return nil
    }
}

/// An Embedding and the recurrent layer after it, run as one (`Embedding.fusing`): the ids are
/// checked and masked as the Embedding would, then go to the layer, which looks its input
/// projections up by id.
struct TokenSequence: Layer {
    let embedding: Embedding
    let layer: any Layer
    var outputShape: [Int?] { layer.outputShape }
    var maskBehavior: MaskBehavior { .produces }

    func forward(_ input: Tensor) throws -> Tensor {
        try embedding.checkIDs(input)
        return try layer.apply(Tensor(shape: input.shape, data: input.data, mask: embedding.mask(of: input)))
    }
}

extension TokenSequence: PlansMemory {
    /// The recurrent layer's plan for the ids (the mask is one flag per id).
    func workingSet(input: [Int]) -> WorkingSet { layer.plannedWorkingSet(input: input) }
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
