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

extension Builtins {
    static func registerWrappers(_ registry: LayerRegistry) {
        registry.register("TimeDistributed", origin: "builtin", summary: "Applies a nested layer to every step of a sequence.",
                          savedChildren: .nested("layer", key: "layer"), factory: TimeDistributed.factory)
    }
}
