import LayerRegistry

/// `ReversibleEmbedding` (keras.layers, a language model's tied input and output embedding): called
/// on token ids it is an `Embedding`; called with `reverse=True` on vectors of `output_dim` it
/// gives logits over the vocabulary, x · embeddingsᵀ (or x · `reverse_embeddings` with
/// `tie_weights` false), then with `logit_soft_cap` c: tanh(logits / c) · c. One layer is usually
/// called both ways (a shared layer); each call builds its own node over the same weights.
///
/// Config: `input_dim`, `output_dim`, `tie_weights` (true), `mask_zero` (false; true is refused),
/// `reverse_dtype` (null or "float32"), `logit_soft_cap` (null or a positive number). Weights:
/// `embeddings` (input_dim, output_dim), and `reverse_embeddings` (output_dim, input_dim) when not
/// tied.
enum ReversibleEmbedding {
    static func factory(_ context: LayerContext) throws -> any Layer {
        let (inputDim, outputDim) = try Embedding.dimensions(context)
        let tied = try context.bool("tie_weights", default: true)
        guard try !context.bool("mask_zero", default: false) else {
            throw context.error("'mask_zero' true is not supported for a ReversibleEmbedding (Keras sets its mask inside the call)", key: "mask_zero")
        }
        if context.has("reverse_dtype") {
            let dtype = try context.string("reverse_dtype")
            guard dtype == "float32" else {
                throw context.error("'reverse_dtype' is \"\(dtype)\"; nnbuild computes the reverse projection in float32 only", key: "reverse_dtype")
            }
        }
        let cap = try context.optionalDouble("logit_soft_cap")
        if let cap, !(cap > 0 && cap.isFinite && cap <= Double(Float.greatestFiniteMagnitude)) {
            throw context.error("'logit_soft_cap' must be a positive float32 number, found \(cap)", key: "logit_soft_cap")
        }
        // The weights in Keras's creation order, whichever way this call goes.
        let embeddings = try context.weightWithLoRA("embeddings", shape: [inputDim, outputDim], down: "lora_embeddings_a", up: "lora_embeddings_b")
        let reverse = tied ? nil : try context.weight("reverse_embeddings", shape: [outputDim, inputDim])
        guard try context.kwargBool("reverse", default: false) else {
            guard !context.inputShape.isEmpty else {
                throw context.error("expects token ids of shape (batch, steps), found \(describeShape(context.inputShape))")
            }
            return Embedding(inputDim: inputDim, outputDim: outputDim, maskZero: false, embeddings: embeddings,
                             outputShape: context.inputShape + [outputDim])
        }
        let features = try context.inputDimension(-1)
        guard features == outputDim else {
            throw context.error("called with reverse=True on vectors of \(features) features, expected output_dim \(outputDim)")
        }
        // The projection (output_dim, input_dim) as a Dense kernel: the reverse weights, or the
        // embeddings transposed (as Keras transposes them on every call).
        let kernel: Weight
        if let reverse {
            kernel = reverse
        } else {
            var transposed = [Float](repeating: 0, count: inputDim * outputDim)
            let table = embeddings.values
            for token in 0..<inputDim {
                for feature in 0..<outputDim { transposed[feature * inputDim + token] = table[token * outputDim + feature] }
            }
            kernel = Weight(name: embeddings.name, shape: [outputDim, inputDim], storage: FloatStorage(transposed))
        }
        let projection = Dense(units: inputDim, inputSize: outputDim, kernel: kernel,
                               packed: Gemm.useAVX2Kernels ? PackedOnDemand(kernel, rows: outputDim, columns: inputDim) : nil, bias: nil,
                               activation: .linear, outputShape: Array(context.inputShape.dropLast()) + [inputDim])
        return ReverseProjection(projection: projection, softCap: cap.map { Float($0) })
    }
}

/// A ReversibleEmbedding called with reverse=True: the projection onto the vocabulary, then the
/// optional soft cap, tanh(logits / c) · c, in Keras's order (divide, tanh, multiply).
struct ReverseProjection: Layer {
    let projection: Dense
    let softCap: Float?
    var outputShape: [Int?] { projection.outputShape }
    /// Keras's compute_mask returns None: no mask after it.
    var maskBehavior: MaskBehavior { .drops }

    func forward(_ input: Tensor) throws -> Tensor {
        var logits = try projection.forward(input)
        if let cap = softCap {
            for index in logits.data.indices { logits.data[index] /= cap }
            Activation.tanh.apply(&logits.data, axisLength: logits.shape.last ?? 1)
            for index in logits.data.indices { logits.data[index] *= cap }
        }
        return logits
    }
}

extension Builtins {
    static func registerReversibleEmbedding(_ registry: LayerRegistry) {
        registry.register("ReversibleEmbedding", origin: "builtin",
                          summary: "Token ids → embeddings, or with reverse=True vectors → logits over the vocabulary (tied weights).",
                          factory: ReversibleEmbedding.factory)
    }
}
