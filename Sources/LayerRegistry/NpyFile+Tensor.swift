import ModelSpec

extension Tensor {
    /// Reads a `.npy` file (format 1 to 3, C order; float16/32/64, signed or unsigned integers, or
    /// bool) as a tensor of the file's shape, its values converted to `Float`.
    ///
    /// Errors name the file: a missing file is an `.io` error, a malformed one an `.input` error.
    /// To feed a model, prefer ``Model/batch(npyFile:)``, which also accepts one sample without
    /// its batch axis and checks the shape and dtype against the model's input.
    public init(npyFile path: String) throws {
        let array = try Npy.read(try FileBytes.read(path: path), source: path)
        self.init(shape: array.shape, data: array.values)
    }
}

extension Model {
    /// Reads a `.npy` file as a batch for this model: the file's shape must be the batch axis then
    /// the model's per-sample input shape, or the per-sample shape alone (a batch of one); a model
    /// taking token ids needs whole numbers. Equivalent to `batch(from:source:)` on the file's array.
    public func batch(npyFile path: String) throws -> Tensor {
        try batch(from: try Npy.read(try FileBytes.read(path: path), source: path), source: path)
    }
}
