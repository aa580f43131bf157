/// The one protocol the model runs: a layer as a node of the graph, taking one or more input
/// tensors and returning one or more output tensors (a merge layer takes several, a recurrent
/// layer with `return_state` returns several).
///
/// Most layers take one tensor and return one: they implement the unary `Layer`, which refines
/// this protocol and supplies every requirement below from `outputShape`, `maskBehavior` and
/// `forward`. A factory returns either kind (`LayerFactory`); built-ins and users' layers, from
/// Swift or a plugin, have the same power.
///
/// The inputs a node receives are, in order, the tensors of its positional call arguments (a list
/// of tensors flattened, as Keras passes `[x, y]` to a merge layer), then the tensors of its keyword
/// arguments other than `mask` (`initial_state`, attention's `value`...), in document order; the
/// factory finds which is which with `LayerContext.inputIndices(ofKeywordArgument:)`.
///
/// (Not named `GraphLayer`: that is ModelSpec's parsed layer of a `GraphSpec`.)
public protocol NodeLayer: Sendable {
    /// Per-sample output shapes, one per output tensor, for the input shapes the layer was built
    /// for; nil marks a dimension known only at run time.
    var outputShapes: [[Int?]] { get }
    /// Keras's `compute_mask` at build time: which outputs carry a sequence mask, given which
    /// inputs do (`inputMasks[i]` for input i). Defaults to none.
    func outputMasks(inputMasks: [Bool]) -> [Bool]
    /// Computes the outputs for a batch. Each input's data and mask match its shape (checked by
    /// the model), and a masked input carries its mask in `Tensor.mask`; each output carries its
    /// own mask, as `outputMasks` said.
    func call(_ inputs: [Tensor]) throws -> [Tensor]
    /// What a call on inputs of shapes `inputs` (batch axis first) allocates: one working set per
    /// output, each with its scratch. Defaults to the output shapes with each unknown axis taken
    /// from the same axis of the first input, and no scratch.
    func plannedWorkingSets(inputs: [[Int]]) -> [WorkingSet]
}

extension NodeLayer {
    public func outputMasks(inputMasks: [Bool]) -> [Bool] { outputShapes.map { _ in false } }

    public func plannedWorkingSets(inputs: [[Int]]) -> [WorkingSet] {
        let first = inputs.first ?? [1]
        return outputShapes.map { shape in
            let sample = shape.enumerated().map { axis, size in size ?? (axis + 1 < first.count ? first[axis + 1] : 1) }
            return WorkingSet(outputShape: [first.first ?? 1] + sample)
        }
    }

    /// Fails when a call on inputs of shapes `inputs` would need more than `limit` bytes (the
    /// inputs it reads, its outputs and scratch, as float32), or when an output would pass
    /// `ShapeMath.tensorLimit`. `label` names the node.
    public func checkMemory(inputs: [[Int]], limit: Int, label: String, location: String, kind: NNError.Kind) throws {
        if inputs.count == 1, let unary = self as? any Layer {
            try unary.checkMemory(input: inputs[0], limit: limit, label: label, location: location, kind: kind)
            return
        }
        let plans = plannedWorkingSets(inputs: inputs)
        var total = 0
        for plan in plans {
            if case let .failure(message) = ShapeMath.checkTensor(plan.outputShape, what: "the output") {
                throw NNError(kind, location, "\(label): \(message.text)")
            }
            total = ShapeMath.saturatingSum(total, plan.output, plan.scratch)
        }
        for input in inputs { total = ShapeMath.saturatingSum(total, ShapeMath.saturatingProduct(input)) }
        let bytes = ShapeMath.floatBytes(total)
        guard bytes > limit else { return }
        let rows = inputs.first?.first ?? 1
        let batch = rows == 1 ? "one sample" : "a batch of \(rows)"
        let advice = kind == .layer ? "raise the limit (nnbuild --max-memory) or use a smaller configuration"
                                    : "use a smaller batch (--batch-size) or raise the limit (--max-memory)"
        throw NNError(kind, location, "\(label): \(batch) would need \(ShapeMath.describeBytes(bytes)) (its \(inputs.count) inputs, \(plans.count) outputs and scratch), more than the memory limit of \(ShapeMath.describeBytes(limit)); \(advice)")
    }
}

/// The unary layer adapted to the graph: one input, one output, the mask following `maskBehavior`.
extension Layer {
    public var outputShapes: [[Int?]] { [outputShape] }

    public func outputMasks(inputMasks: [Bool]) -> [Bool] {
        switch maskBehavior {
        case .drops: return [false]
        case .propagates: return [inputMasks.first ?? false]
        case .produces: return [true]
        }
    }

    public func call(_ inputs: [Tensor]) throws -> [Tensor] {
        guard inputs.count == 1 else {
            throw NNError(.input, "call", "a one-input layer was given \(inputs.count) input tensors")
        }
        return [try apply(inputs[0])]
    }

    public func plannedWorkingSets(inputs: [[Int]]) -> [WorkingSet] {
        [plannedWorkingSet(input: inputs.first ?? [1])]
    }
}

extension NodeLayer {
    /// Runs a node of one input and one output on `input`: the unary view tests and tools use on
    /// `Model.Node.layer`. Fails for a layer of several outputs.
    public func apply(_ input: Tensor) throws -> Tensor {
        let results = try call([input])
        guard results.count == 1, let result = results.first else {
            throw NNError(.input, "apply", "the layer returns \(results.count) output tensors; use call(_:)")
        }
        return result
    }

    /// The mask behaviour of a one-input `Layer`; `.drops` for any other node.
    public var maskBehavior: MaskBehavior { (self as? any Layer)?.maskBehavior ?? .drops }
}

/// A node layer whose call removes the masks of some tensors it reads, for every reader after it.
/// Keras 3's `MultiHeadAttention.call` does (`backend.set_keras_mask(query, None)`, and the same
/// for value and key): at run time a residual `Add` of its query sees that input unmasked, so its
/// output, and what reads that, carries no mask. The model honours it in Keras's order (a reader
/// that runs after such a call sees those inputs unmasked), at build time and at run time; an
/// explicit `mask` argument still wins.
///
/// A protocol of its own, like `FusesSuccessor`, so plugins built for this ABI version keep working.
public protocol InputMaskClearing: NodeLayer {
    /// The positions, among the call's inputs, of the tensors whose masks the call clears (empty:
    /// none, as a layer type may clear them in some configurations only).
    var maskClearedInputs: [Int] { get }
}

/// A node layer that can write its output over the storage of an input that nothing reads after
/// its call: a convolution whose store adds a residual writes the sum over the shortcut, so the
/// two never take memory at once (ResNet50's 56×56×256 blocks: 3.2 MB a block at batch 1). The
/// model calls `call(owning:reusable:)` instead of `call(_:)` and hands over the tensors: it holds
/// no other reference to those marked reusable (read by no later step, neither a model input nor
/// a model output), so their arrays are uniquely referenced once the layer takes them out of
/// `inputs`. A layer that writes over a storage it did not make unique first gets a copy (Swift
/// arrays copy on write), never a changed tensor someone else reads.
///
/// A protocol of its own, like `FusesSuccessor`, so plugins built for this ABI version keep working.
public protocol ReusesInputStorage: NodeLayer {
    /// `call(_:)` on `inputs`, which the layer may take apart; `reusable[i]` says whether input
    /// i's storage may become an output's.
    func call(owning inputs: inout [Tensor], reusable: [Bool]) throws -> [Tensor]
}

/// A one-input layer whose call at inference returns its input itself: in Keras the output is the
/// very tensor object it was given (`Dropout` and the other training-only layers, `Identity`), so
/// when an `InputMaskClearing` call clears the mask of one, the other loses it too. The model
/// treats the input and the output as one tensor for that.
public protocol ReturnsItsInput: Layer {}

/// A layer that takes strings (`Tensor.strings`): StringLookup, TextVectorization, Hashing, and
/// the identity layers (an InputLayer passes a string input on). A model input of dtype `string`
/// may reach only such layers: the build refuses any other reader by name, so no kernel ever sees
/// a string tensor's empty `data`. A reader's outputs hold numbers, unless `passesStrings`.
public protocol ReadsStrings: NodeLayer {
    /// Whether the outputs hold strings when an input does (a layer that returns its input).
    var passesStrings: Bool { get }
}

extension ReadsStrings {
    public var passesStrings: Bool { false }
}
