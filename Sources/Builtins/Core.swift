import LayerRegistry

// Core layers: InputLayer, Dense, Activation, Flatten, Reshape, RepeatVector and the layers that
// are the identity at inference (Dropout and friends).

/// Passes its input through: `InputLayer`, and `Dropout`, `SpatialDropout1D/2D/3D`,
/// `GaussianNoise`, `GaussianDropout`, `AlphaDropout`, which only act while training. Keras
/// returns the input tensor itself (`ReturnsItsInput`), strings too (`ReadsStrings`).
public struct Identity: Layer, ReturnsItsInput, ReadsStrings {
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }
    public var passesStrings: Bool { true }

    public func forward(_ input: Tensor) throws -> Tensor { input }

    static func inputFactory(_ context: LayerContext) throws -> any Layer {
        // An InputLayer anywhere must agree with the shape flowing into it.
        for key in ["batch_shape", "batch_input_shape"] where context.has(key) {
            guard case let .array(items)? = context.value(key) else { continue }
            let declared: [Int?] = items.dropFirst().map { if case let .int(v) = $0 { return Int(v) } else { return nil } }
            if declared.count != context.inputShape.count || zip(declared, context.inputShape).contains(where: { $0 != nil && $1 != nil && $0 != $1 }) {
                throw context.error("declares input \(describeShape(declared)) but receives \(describeShape(context.inputShape))", key: key)
            }
        }
        return Identity(outputShape: context.inputShape)
    }

    static func trainingOnlyFactory(_ context: LayerContext) throws -> any Layer {
        // Keras 3 stores the seed generator's state as a variable; it plays no part at inference.
        context.ignoreWeight("seed_generator_state")
        context.ignoreWeight("state")
        if context.has("rate") {
            let rate = try context.double("rate")
            guard rate >= 0, rate <= 1 else { throw context.error("'rate' must be in [0, 1], found \(rate)", key: "rate") }
        }
        return Identity(outputShape: context.inputShape)
    }
}

/// `Dense`: y = activation(x · kernel + bias) on the last axis of an input of any rank.
///
/// Config: `units`, `activation` ("linear"), `use_bias` (true). Weights: `kernel` (in, units), `bias` (units).
public struct Dense: AbsorbsActivation {
    public let units: Int
    public let inputSize: Int
    public let kernel: Weight
    /// The kernel for the AVX2 kernels, packed on demand (nil where that path does not run).
    let packed: PackedOnDemand?
    public let bias: Weight?
    public internal(set) var activation: Activation
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        // Any rank with a features axis: the product runs over every row of the last axis.
        guard !context.inputShape.isEmpty else {
            throw context.error("expects input of shape (batch, ..., features), found \(describeShape(context.inputShape))\(context.previousLabel.map { " from \($0)" } ?? "")")
        }
        let units = try context.positiveInt("units")
        let inputSize = try context.inputDimension(-1)
        let activation = try Activation.from(context)
        let kernel = try context.weightWithLoRA("kernel", shape: [inputSize, units], down: "lora_kernel_a", up: "lora_kernel_b")
        let bias = try context.bool("use_bias", default: true) ? try context.weight("bias", shape: [units]) : nil
        return Dense(units: units, inputSize: inputSize, kernel: kernel,
                     packed: Gemm.useAVX2Kernels ? PackedOnDemand(kernel, rows: inputSize, columns: units) : nil, bias: bias,
                     activation: activation,
                     outputShape: Array(context.inputShape.dropLast()) + [units])
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.shape.last == inputSize else {
            throw NNError(.input, "Dense", "expects \(inputSize) features on the last axis, found shape \(input.shape)")
        }
        let rows = input.count / inputSize
        var output = [Float](repeating: 0, count: rows * units)
        input.data.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                // Our kernels add the bias and apply a ReLU in their store; other activations, and
                // every activation on the OpenBLAS path (no AVX2, or a batch by a weight too narrow
                // to pack, see PackedKernel), come after.
                let relu = activation == .relu
                var activated = false
                if let packed, let kernel = packed.kernel(rows: rows) {
                    kernel.multiply(x.baseAddress!, lda: inputSize, into: y.baseAddress!, ldc: units, m: rows,
                                    bias: bias?.values.baseAddress, relu: relu)
                    activated = relu
                } else if let packed, rows == 1 {
                    packed.rowTimesWeight(x.baseAddress!, into: y.baseAddress!, bias: bias?.values.baseAddress, relu: relu)
                    activated = relu
                } else {
                    Gemm.gemm(x.baseAddress!, lda: inputSize, kernel.values.baseAddress!, ldb: units, y.baseAddress!, ldc: units,
                              m: rows, n: units, k: inputSize, accumulate: false, bias: bias?.values.baseAddress)
                }
                if !activated { activation.apply(y, axisLength: units) }
            }
        }
        return Tensor(shape: Array(input.shape.dropLast()) + [units], data: output)
    }
}

/// `Activation`: applies the activation named by `activation`.
public struct ActivationLayer: ElementwiseActivationLayer {
    public let activation: Activation
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }
    var elementwiseActivation: Activation? { activation }

    static func factory(_ context: LayerContext) throws -> any Layer {
        ActivationLayer(activation: try Activation.from(context, default: "linear"), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        activation.apply(&output.data, axisLength: input.shape.last ?? 1)
        return output
    }
}

/// `Flatten`: (batch, d1, d2, ...) → (batch, d1·d2·...). Data is already channels-last C order.
public struct Flatten: Layer {
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        if context.inputShape.count > 1 { try requireChannelsLast(context) }
        // An axis known only at run time leaves the length to the call (as Keras's (None, None)).
        guard context.inputShape.allSatisfy({ $0 != nil }) else { return Flatten(outputShape: [nil]) }
        // Model.build has checked the input's size; the count still goes through the one checked facility.
        return Flatten(outputShape: [try context.inputCount(axes: context.inputShape.indices)])
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        Tensor(shape: [input.batch, input.sampleSize], data: input.data)
    }
}

extension Flatten: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        WorkingSet(outputShape: [input.first ?? 1, ShapeMath.saturatingProduct(input.dropFirst())])
    }
}

/// `Reshape`: each sample to `target_shape` (at most one -1, the size the others leave). On an
/// input with axes known only at run time, the -1 axis is found per call (and without a -1 the
/// call's size must match).
public struct Reshape: Layer {
    public let outputShape: [Int?]
    let label: String

    static func factory(_ context: LayerContext) throws -> any Layer {
        let target = try context.intList("target_shape")
        let unknown = target.filter { $0 == -1 }.count
        guard unknown <= 1, target.allSatisfy({ $0 > 0 || $0 == -1 }) else {
            throw context.error("'target_shape' must hold positive sizes and at most one -1, found \(target)", key: "target_shape")
        }
        let product = try context.sampleCount(target.filter { $0 > 0 }, of: "'target_shape' \(target)", key: "target_shape")
        guard context.inputShape.allSatisfy({ $0 != nil }) else {
            return Reshape(outputShape: target.map { $0 == -1 ? nil : $0 }, label: context.label)
        }
        let known = try context.inputCount(axes: context.inputShape.indices)
        var shape = target
        if let free = target.firstIndex(of: -1) {
            guard product > 0, known % product == 0 else {
                throw context.error("cannot reshape \(describeShape(context.inputShape)) (\(known) values) to \(target)", key: "target_shape")
            }
            shape[free] = known / product
        } else if product != known {
            throw context.error("cannot reshape \(describeShape(context.inputShape)) (\(known) values) to \(target) (\(product) values)", key: "target_shape")
        }
        return Reshape(outputShape: shape, label: context.label)
    }

    /// The values per sample of the known axes (the target's product but its -1).
    var fixed: Int { outputShape.reduce(1) { $0 * ($1 ?? 1) } }

    public func forward(_ input: Tensor) throws -> Tensor {
        let sample = input.sampleSize
        guard let free = outputShape.firstIndex(of: nil) else {
            guard sample == fixed else {
                throw NNError(.input, label, "cannot reshape a sample of shape \(Array(input.shape.dropFirst())) (\(sample) values) to \(describeShape(outputShape)) (\(fixed) values)")
            }
            return Tensor(shape: [input.batch] + outputShape.map { $0 ?? 1 }, data: input.data)
        }
        guard fixed > 0, sample % fixed == 0 else {
            throw NNError(.input, label, "cannot reshape a sample of shape \(Array(input.shape.dropFirst())) (\(sample) values) to \(describeShape(outputShape)): \(sample) is no multiple of \(fixed)")
        }
        var shape = outputShape.map { $0 ?? 1 }
        shape[free] = sample / fixed
        return Tensor(shape: [input.batch] + shape, data: input.data)
    }
}

extension Reshape: PlansMemory {
    /// The call's shape: the -1 axis from the input's size (a plan of the input's count in all).
    public func workingSet(input: [Int]) -> WorkingSet {
        let sample = ShapeMath.saturatingProduct(input.dropFirst())
        return WorkingSet(outputShape: [input.first ?? 1] + outputShape.map { $0 ?? sample / max(fixed, 1) })
    }
}

/// `RepeatVector`: (batch, features) → (batch, n, features).
public struct RepeatVector: Layer {
    public let times: Int
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(1, meaning: "(batch, features)")
        let times = try context.positiveInt("n")
        let shape = [times, try context.inputDimension(0)]
        try context.sampleCount(shape, key: "n")
        return RepeatVector(times: times, outputShape: shape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let features = input.sampleSize
        var output = [Float]()
        output.reserveCapacity(input.count * times)
        for row in 0..<input.batch {
            let slice = input.data[(row * features)..<((row + 1) * features)]
            for _ in 0..<times { output.append(contentsOf: slice) }
        }
        return Tensor(shape: [input.batch, times, features], data: output)
    }
}

extension Builtins {
    static func registerCore(_ registry: LayerRegistry) {
        registry.register("InputLayer", origin: "builtin", summary: "Declares the model's input shape and dtype.", factory: Identity.inputFactory)
        registry.register("Dense", origin: "builtin", summary: "activation(x · kernel + bias) on the last axis.", factory: Dense.factory)
        registry.register("Activation", origin: "builtin", summary: "Applies a named activation.", factory: ActivationLayer.factory)
        registry.register("Flatten", origin: "builtin", summary: "Flattens each sample to one axis.", factory: channelsFirstCapable(Flatten.factory))
        registry.register("Reshape", origin: "builtin", summary: "Reshapes each sample to target_shape.", factory: Reshape.factory)
        registry.register("RepeatVector", origin: "builtin", summary: "Repeats a vector n times along a new time axis.", factory: RepeatVector.factory)
        for name in ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization"] {
            registry.register(name, origin: "builtin", summary: "Identity at inference (acts only in training).", factory: Identity.trainingOnlyFactory)
        }
    }
}
