import LayerRegistry

/// `TimeDistributed`: applies the nested `layer` to every step of a sequence, as one batch of
/// (batch · steps) samples. The sequence mask passes through.
public struct TimeDistributed: Layer {
    public let inner: any Layer
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        guard context.inputShape.count >= 2 else {
            throw context.error("expects input of shape (batch, steps, ...), found \(describeShape(context.inputShape))")
        }
        let inner = try context.buildNested(try context.nestedSpec("layer"), inputShape: Array(context.inputShape.dropFirst()))
        return TimeDistributed(inner: inner, outputShape: [context.inputShape[0]] + inner.outputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let steps = input.shape[1]
        let flat = Tensor(shape: [input.batch * steps] + input.shape.dropFirst(2), data: input.data)
        let output = try inner.apply(flat)
        return Tensor(shape: [input.batch, steps] + output.shape.dropFirst(), data: output.data)
    }
}

extension TimeDistributed: PlansMemory {
    /// The nested layer's plan for (batch · steps) samples, its output regrouped by sequence.
    public func workingSet(input: [Int]) -> WorkingSet {
        guard input.count >= 2 else { return WorkingSet(outputShape: input) }
        let plan = inner.plannedWorkingSet(input: [ShapeMath.saturatingProduct(input.prefix(2))] + input.dropFirst(2))
        return WorkingSet(outputShape: [input[0], input[1]] + plan.outputShape.dropFirst(), scratch: plan.scratch,
                          scratchMeaning: plan.scratchMeaning)
    }
}

/// A layer with a `kernel` variable, which `SpectralNormalization` can wrap (Keras requires the
/// attribute): Dense and the convolutions.
protocol HasKernel {
    var kernel: Weight { get }
}

extension Dense: HasKernel {}
extension Conv1D: HasKernel {}
extension Conv2D: HasKernel {}
extension Conv3D: HasKernel {}
extension TransposedConvolution: HasKernel {}
extension DepthwiseConvolution: HasKernel {}

/// `SpectralNormalization`: at inference, the nested `layer` as it is. Training divides the
/// kernel by its spectral norm and stores the result in the kernel itself (with the power
/// iteration's `vector_u`, shape (1, the kernel's last axis)), so the saved kernel is already
/// normalized. A `.keras` file holds the kernel twice (the wrapper tracks it as its own too); the
/// nested layer's copy is the one read. Config: `layer`, `power_iterations` (1, positive). As
/// Keras's Layer default, the mask stops here. A wrapped Embedding (Keras casts its output to the
/// ids' integer type) is refused.
public struct SpectralNormalization: Layer {
    public let inner: any Layer
    public var outputShape: [Int?] { inner.outputShape }
    public var maskBehavior: MaskBehavior { .drops }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let iterations = try context.int("power_iterations", default: 1)
        guard iterations > 0 else { throw context.error("'power_iterations' must be positive, found \(iterations)", key: "power_iterations") }
        let nested = try context.nestedSpec("layer")
        let inner = try context.buildNested(nested)
        guard let kernel = (inner as? HasKernel)?.kernel else {
            throw context.error("wraps \(nested.className), which has no 'kernel'; nnbuild takes Dense and the convolutions (Keras needs a kernel, or an Embedding's table, whose output it casts to the ids' integer type)", key: "layer")
        }
        guard let units = kernel.shape.last else { throw context.error("the wrapped layer's kernel has no axes", key: "layer") }
        // Keras tracks the wrapped kernel as the wrapper's own first variable too (`self.kernel =
        // self.layer.kernel`): a .keras file stores it again as the wrapper's vars/0, the same
        // values as the nested layer's, which bound it already.
        context.ignoreWeight("kernel")
        // Read so that it is checked and bound; inference does not use it.
        _ = try context.weight("vector_u", shape: [1, units])
        return SpectralNormalization(inner: inner)
    }

    public func forward(_ input: Tensor) throws -> Tensor { try inner.apply(input) }
}

extension SpectralNormalization: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet { inner.plannedWorkingSet(input: input) }
}

/// `Pipeline` (Keras 3, layers/preprocessing/pipeline.py): its `layers`, each built from its config
/// as a sub-layer and applied to the one before's output, in one step (a layer that takes the
/// next over does, as a run of layers in a model would). Keras calls them with training=True
/// by default; a model's `predict` passes False, as nnbuild runs every layer. Weights are looked
/// up as Keras names them (`pipeline/conv2d/kernel`), and in a .keras file under the Pipeline's
/// `layers` list. An empty Pipeline is refused (Keras cannot call one either).
enum Pipeline {
    static func factory(_ context: LayerContext) throws -> any Layer {
        var shape = context.inputShape
        var chain: (any Layer)?
        for spec in try context.nestedSpecs("layers") {
            let layer = try context.buildNested(spec, inputShape: shape)
            shape = layer.outputShape
            chain = chain.map { chained($0, layer) } ?? layer
        }
        guard let chain else { throw context.error("has no layers (Keras cannot call an empty Pipeline either)", key: "layers") }
        return chain
    }
}

extension Builtins {
    static func registerWrappers(_ registry: LayerRegistry) {
        registry.register("Pipeline", origin: "builtin", summary: "Applies its list of layers one after another.",
                          savedChildren: .nestedList("layers", key: "layers"), factory: Pipeline.factory)
        registry.register("TimeDistributed", origin: "builtin", summary: "Applies a nested layer to every step of a sequence.",
                          savedChildren: .nested("layer", key: "layer"), factory: TimeDistributed.factory)
        registry.register("SpectralNormalization", origin: "builtin",
                          summary: "Runs the nested Dense or convolution with its stored (already normalized) kernel.",
                          savedChildren: .nested("layer", key: "layer"), factory: SpectralNormalization.factory)
    }
}
