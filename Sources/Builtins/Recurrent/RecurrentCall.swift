import LayerRegistry

/// A recurrent layer that starts from given states and gives back its final ones: what Keras's
/// `return_state` and `initial_state` need. `RecurrentLayer` and `Bidirectional` (of two such
/// layers) are; `RecurrentCall` turns either into a graph node.
protocol StatefulSequenceLayer: Layer {
    /// The per-sample shape of each state, in Keras's order (LSTM: h, c; Bidirectional: the
    /// forward layer's, then the backward layer's): (units) for a vector cell, (rows, columns,
    /// filters) for ConvLSTM2D. Empty when the layer cannot report its states.
    var stateShapes: [[Int]] { get }
    /// A name for each state, for messages (`h`, `c`, `forward h`...).
    var stateNames: [String] { get }
    /// Per-sample shapes of the sequence outputs: one, or two for Bidirectional's merge_mode None.
    var sequenceOutputShapes: [[Int?]] { get }
    var returnSequences: Bool { get }
    /// The sequence outputs and the final states ((batch) + shape each, in `stateShapes` order),
    /// starting from `initialStates` (the same shapes; empty for zeros).
    func call(sequence: Tensor, initialStates: [Tensor]) throws -> (outputs: [Tensor], states: [Tensor])
}

extension RecurrentLayer: StatefulSequenceLayer {
    var stateShapes: [[Int]] { cell.stateShapes }
    var stateNames: [String] { cell.stateNames }
    var sequenceOutputShapes: [[Int?]] { [outputShape] }

    func call(sequence: Tensor, initialStates: [Tensor]) throws -> (outputs: [Tensor], states: [Tensor]) {
        let (output, states) = try run(sequence, initialStates: initialStates)
        return ([output], states)
    }
}

/// One call of a recurrent layer in a graph that is more than sequence in, sequence out: it reads
/// initial states (Keras's `initial_state`, as a keyword argument or as the positional tensors
/// after the sequence, as Keras 2 wrote `[x, h, c]`), or returns its final states after its
/// outputs (`return_state`), or returns two outputs (Bidirectional's merge_mode None).
///
/// Masks follow Keras's `compute_mask`: each sequence output keeps the sequence's mask with
/// `return_sequences`; the states carry none.
struct RecurrentCall: NodeLayer {
    let layer: any StatefulSequenceLayer
    let returnState: Bool
    /// Where the initial states sit among the call's inputs (empty: start from zeros).
    let stateInputs: [Int]

    /// The node for `layer` at the call `context` describes: the layer itself when the call is
    /// one sequence in and one tensor out (so fusion with an Embedding still applies), else a
    /// `RecurrentCall`. Refuses initial states of the wrong number or width, and several outputs
    /// where they cannot be passed on (a Sequential model, or inside a wrapper).
    static func make(_ layer: some StatefulSequenceLayer, returnState: Bool, context: LayerContext) throws -> any NodeLayer {
        let stateInputs = try initialStateInputs(context)
        let shapes = layer.stateShapes, names = layer.stateNames
        if (returnState || !stateInputs.isEmpty) && shapes.isEmpty {
            throw context.error("\(returnState ? "return_state=true" : "initial_state") needs both halves to be built-in recurrent layers (SimpleRNN, LSTM, GRU) whose states nnbuild can read",
                                key: returnState ? "return_state" : nil)
        }
        if !stateInputs.isEmpty {
            let expected = zip(names, shapes).map { "\($0) \(describeShape($1.map(Optional.some)))" }.joined(separator: ", ")
            guard stateInputs.count == shapes.count else {
                throw context.error("initial_state has \(stateInputs.count) tensor\(stateInputs.count == 1 ? "" : "s"); expected \(shapes.count): \(expected)")
            }
            for (position, (index, wanted)) in zip(stateInputs, shapes).enumerated() {
                let shape = index < context.inputShapes.count ? context.inputShapes[index] : []
                guard shape.count == wanted.count, zip(shape, wanted).allSatisfy({ $0 == nil || $0 == $1 }) else {
                    throw context.error("initial_state[\(position)] (\(names[position])) has shape \(describeShape(shape)); expected \(describeShape(wanted.map(Optional.some)))")
                }
            }
        }
        let outputCount = layer.sequenceOutputShapes.count + (returnState ? shapes.count : 0)
        if outputCount == 1 && stateInputs.isEmpty { return layer }
        if outputCount > 1 && context.callers == nil {
            let key = returnState ? "return_state" : "merge_mode"
            let what = returnState ? "return_state=true" : "merge_mode null"
            throw context.error("\(what) gives \(outputCount) tensors, which a Sequential model or a wrapper layer cannot pass on; call the layer in a Functional model", key: key)
        }
        return RecurrentCall(layer: layer, returnState: returnState, stateInputs: stateInputs)
    }

    /// The inputs holding the call's initial states: keyword argument `initial_state`, or every
    /// positional tensor after the first (Keras 3's `layer(x, [h, c])`, Keras 2's `[x, h, c]`).
    static func initialStateInputs(_ context: LayerContext) throws -> [Int] {
        let keyword = context.inputIndices(ofKeywordArgument: "initial_state")
        if context.kwarg("initial_state") != nil, keyword.isEmpty {
            throw context.error("initial_state must be a list of tensors from the graph (the layer's states), found no tensor")
        }
        let positional = (context.node?.args ?? []).reduce(0) { $0 + $1.tensors.count }
        if positional > 1, !keyword.isEmpty {
            throw context.error("initial_state is given both as a keyword argument and as \(positional - 1) positional tensor\(positional == 2 ? "" : "s") after the sequence; give it once")
        }
        return keyword.isEmpty && positional > 1 ? Array(1..<positional) : keyword
    }

    var outputShapes: [[Int?]] {
        layer.sequenceOutputShapes + (returnState ? layer.stateShapes.map { $0.map(Optional.some) } : [])
    }

    func outputMasks(inputMasks: [Bool]) -> [Bool] {
        let sequenceMasked = layer.returnSequences && (inputMasks.first ?? false)
        return layer.sequenceOutputShapes.map { _ in sequenceMasked } + (returnState ? layer.stateShapes.map { _ in false } : [])
    }

    func call(_ inputs: [Tensor]) throws -> [Tensor] {
        guard let sequence = inputs.first, stateInputs.allSatisfy({ $0 < inputs.count }) else {
            throw NNError(.input, "call", "a recurrent call was given \(inputs.count) input tensors; expected the sequence and \(stateInputs.count) initial states")
        }
        var (outputs, states) = try layer.call(sequence: sequence, initialStates: stateInputs.map { inputs[$0] })
        for index in outputs.indices { outputs[index].mask = layer.returnSequences ? sequence.mask : nil }
        return outputs + (returnState ? states.map { state in var plain = state; plain.mask = nil; return plain } : [])
    }

    func plannedWorkingSets(inputs: [[Int]]) -> [WorkingSet] {
        let first = inputs.first ?? [1]
        let batch = first.first ?? 1
        var plans = outputShapes.map { shape in
            WorkingSet(outputShape: [batch] + shape.enumerated().map { axis, size in size ?? (axis + 1 < first.count ? first[axis + 1] : 1) })
        }
        // The layer's own plan holds the scratch of the run (projections, states, both halves).
        if !plans.isEmpty {
            let own = layer.plannedWorkingSet(input: first)
            plans[0].scratch = own.scratch
            plans[0].scratchMeaning = own.scratchMeaning
        }
        return plans
    }
}
