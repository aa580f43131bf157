import LayerRegistry

extension LayerContext {
    /// The weight `variable`, merged with its LoRA update when the config sets `lora_rank`:
    /// variable + lora_alpha / lora_rank · down · up, as Keras computes it at every call. `down` has
    /// the variable's shape with its last axis replaced by the rank; `up` is (rank, last axis).
    /// Config: `lora_rank` (none), `lora_alpha` (lora_rank). Used by Dense (`lora_kernel_a/b`),
    /// Embedding (`lora_embeddings_a/b`) and the convolutions (`lora_kernel_a/b`).
    func weightWithLoRA(_ variable: String, shape: [Int], down downName: String, up upName: String) throws -> Weight {
        let weight = try self.weight(variable, shape: shape)
        guard has("lora_rank"), !(value("lora_rank")?.isNull ?? true), !weightsSavedBySavingLib else { return weight }
        let rank = try positiveInt("lora_rank", maximum: 1 << 16)
        let alpha = try has("lora_alpha") && !(value("lora_alpha")?.isNull ?? true) ? double("lora_alpha") : Double(rank)
        // The weight's shape passed the binder's checked count, so this product does not overflow.
        let columns = shape[shape.count - 1], rows = ShapeMath.saturatingProduct(shape.dropLast())
        let down = try self.weight(downName, shape: Array(shape.dropLast()) + [rank])
        let up = try self.weight(upName, shape: [rank, columns])
        var merged = weight.storage.array
        let scale = Float(alpha / Double(rank))
        var product = [Float](repeating: 0, count: rows * columns)
        product.withUnsafeMutableBufferPointer { c in
            if let a = down.values.baseAddress, let b = up.values.baseAddress, let c = c.baseAddress {
                Gemm.gemm(a, b, c, m: rows, n: columns, k: rank)
            }
        }
        for index in merged.indices { merged[index] += scale * product[index] }
        return Weight(name: weight.name, shape: shape, storage: FloatStorage(merged))
    }
}
