/// How a model runs, as a value given to `Model.build` and `Model.predict` (never process-wide
/// state, since a server calls `predict` from many threads at once).
public struct ExecutionSettings: Sendable, Equatable {
    /// The memory limit's default: 4 GiB.
    public static let defaultMemoryLimit = 4 << 30

    /// Most bytes one layer may allocate for one call: its output and its scratch buffers, plus the
    /// input it reads. Checked for one sample when the model is built and for the actual batch
    /// before each layer runs.
    public var memoryLimit: Int

    /// Threads one `predict` call may run on: the calling thread plus pool workers (at most one
    /// per core). A call's results are the same bits whatever this is.
    public var threads: Int

    /// Unpacked matrix products through OpenBLAS's sgemm instead of nnbuild's own kernels: faster
    /// for large products on the portable path (`NNBUILD_KERNELS=baseline`, or a CPU without AVX2),
    /// but OpenBLAS chooses its kernel, and so its summation order, by the matrices' sizes, so a
    /// row's result then depends on the batch it is in. Off by default.
    public var batchVariantBLAS: Bool

    public init(memoryLimit: Int = ExecutionSettings.defaultMemoryLimit, threads: Int = 1, batchVariantBLAS: Bool = false) {
        self.memoryLimit = memoryLimit
        self.threads = max(threads, 1)
        self.batchVariantBLAS = batchVariantBLAS
    }

    public static let `default` = ExecutionSettings()
}

/// What the kernels of the `predict` call running on this thread may do, from its
/// `ExecutionSettings`: bound by `Model.execute` for the call's duration (a task-local value, so
/// concurrent calls each see their own), with `threads` 1 inside the tasks of a parallel step so
/// that threads never nest. Kernels read it; nothing sets it process-wide.
package struct KernelOptions: Sendable, Equatable {
    package var threads = 1
    package var batchVariantBLAS = false
    /// The call's memory limit, for a layer whose output size depends on its input's values (a
    /// TextVectorization's tokens), which the plan made from shapes cannot bound.
    package var memoryLimit = ExecutionSettings.defaultMemoryLimit

    package init(threads: Int = 1, batchVariantBLAS: Bool = false, memoryLimit: Int = ExecutionSettings.defaultMemoryLimit) {
        self.threads = max(threads, 1)
        self.batchVariantBLAS = batchVariantBLAS
        self.memoryLimit = memoryLimit
    }

    package init(_ settings: ExecutionSettings) {
        self.init(threads: settings.threads, batchVariantBLAS: settings.batchVariantBLAS, memoryLimit: settings.memoryLimit)
    }

    /// These options with `threads` threads.
    package func with(threads: Int) -> KernelOptions {
        var options = self
        options.threads = max(threads, 1)
        return options
    }

    @TaskLocal package static var current = KernelOptions()
}

/// What one call of a layer allocates, in float32 values, for a given input.
public struct WorkingSet: Sendable, Equatable {
    /// The output's shape, batch axis first.
    public var outputShape: [Int]
    /// Temporary buffers the call allocates besides its output (padded copies, im2col columns...).
    public var scratch: Int
    /// What the scratch is, for messages ("a zero-padded copy of the input").
    public var scratchMeaning: String

    public init(outputShape: [Int], scratch: Int = 0, scratchMeaning: String = "") {
        self.outputShape = outputShape
        self.scratch = scratch
        self.scratchMeaning = scratchMeaning
    }

    /// The output's element count, `Int.max` past `Int`.
    public var output: Int { ShapeMath.saturatingProduct(outputShape) }
}

/// A layer that knows exactly what a call allocates for a given input: layers whose output size
/// is not its `outputShape` with unknown axes taken from the input (upsampling, padding a
/// sequence of run-time length), and layers with scratch buffers (convolutions).
public protocol PlansMemory {
    /// What a call on a batch of shape `input` (batch axis first) allocates. Sizes saturate at
    /// `Int.max` rather than overflow (`ShapeMath.saturatingProduct`).
    func workingSet(input: [Int]) -> WorkingSet
}

extension Layer {
    /// What a call on a batch of shape `input` allocates: the layer's own plan (`PlansMemory`),
    /// else its output, `outputShape` with each unknown axis taken from the same axis of the input.
    public func plannedWorkingSet(input: [Int]) -> WorkingSet {
        if let planner = self as? any PlansMemory { return planner.workingSet(input: input) }
        let sample = outputShape.enumerated().map { axis, size in size ?? (axis + 1 < input.count ? input[axis + 1] : 1) }
        return WorkingSet(outputShape: [input.first ?? 1] + sample)
    }

    /// Fails when a call on a batch of shape `input` would need more than `limit` bytes (the
    /// input it reads, its output and its scratch, as float32), or when its output would pass
    /// `ShapeMath.tensorLimit`. `label` names the layer.
    public func checkMemory(input: [Int], limit: Int, label: String, location: String, kind: NNError.Kind) throws {
        let plan = plannedWorkingSet(input: input)
        if case let .failure(message) = ShapeMath.checkTensor(plan.outputShape, what: "the output") {
            throw NNError(kind, location, "\(label): \(message.text)")
        }
        let inputCount = ShapeMath.saturatingProduct(input)
        let bytes = ShapeMath.floatBytes(ShapeMath.saturatingSum(inputCount, plan.output, plan.scratch))
        guard bytes > limit else { return }
        let rows = input.first ?? 1
        let batch = rows == 1 ? "one sample" : "a batch of \(rows)"
        var parts = ["output \(ShapeMath.describeBytes(ShapeMath.floatBytes(plan.output)))"]
        if plan.scratch > 0 {
            parts.append("\(plan.scratchMeaning.isEmpty ? "scratch" : plan.scratchMeaning) \(ShapeMath.describeBytes(ShapeMath.floatBytes(plan.scratch)))")
        }
        parts.append("input \(ShapeMath.describeBytes(ShapeMath.floatBytes(inputCount)))")
        let advice = kind == .layer ? "raise the limit (nnbuild --max-memory) or use a smaller configuration"
                                    : "use a smaller batch (--batch-size) or raise the limit (--max-memory)"
        throw NNError(kind, location, "\(label): \(batch) would need \(ShapeMath.describeBytes(bytes)) (\(parts.joined(separator: ", "))), more than the memory limit of \(ShapeMath.describeBytes(limit)); \(advice)")
    }
}

extension Tensor {
    /// Fails unless `data` (or `strings`, for a string tensor) holds exactly the values `shape`
    /// describes and `mask` (when present) one flag per (batch, step): what every public entry point checks before a kernel runs,
    /// since kernels index the buffers by the shape.
    public func checkConsistent(_ location: String) throws {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }) else {
            throw NNError(.input, location, "tensor shape \(shape) must have a batch axis and no negative size")
        }
        let count: Int
        switch ShapeMath.checkTensor(shape, what: "the tensor") {
        case let .success(value): count = value
        case let .failure(message): throw NNError(.input, location, message.text)
        }
        if case let .failure(message) = ShapeMath.checkSample(known: shape.dropFirst(), what: "each sample") {
            throw NNError(.input, location, message.text)
        }
        if let strings {
            guard strings.count == count, data.isEmpty else {
                throw NNError(.input, location, "string tensor of shape \(shape) must hold \(count) strings and no numbers, found \(strings.count) and \(data.count)")
            }
        } else if data.count != count {
            throw NNError(.input, location, "tensor of shape \(shape) must hold \(count) values, found \(data.count)")
        }
        if let mask {
            guard shape.count >= 2 else {
                throw NNError(.input, location, "a mask needs a (batch, steps, ...) tensor, found shape \(shape)")
            }
            let flags = ShapeMath.saturatingProduct(shape.prefix(2))
            guard mask.count == flags else {
                throw NNError(.input, location, "the mask of a tensor of shape \(shape) must hold \(flags) flags (batch × steps), found \(mask.count)")
            }
        }
    }
}
