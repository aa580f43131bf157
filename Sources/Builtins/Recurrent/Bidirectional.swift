import LayerRegistry

/// `Bidirectional`: runs the nested `layer` forwards and `backward_layer` (by default the same
/// config with `go_backwards` flipped) over the sequence and merges the two outputs. With
/// `return_sequences` the backward output is reversed back in time before merging.
///
/// Config: `layer`, `backward_layer` (optional), `merge_mode` ("concat"; "sum", "mul", "ave", or
/// null: both outputs as two tensors). With the halves' `return_state` the call returns the
/// output(s), then the forward layer's final states, then the backward layer's; a call's
/// `initial_state` is split in two, the first half for the forward layer, as Keras does.
/// Both halves are built through the registry, so any registered recurrent layer can be wrapped.
public struct Bidirectional: Layer {
    public enum Merge: String, Sendable { case concat, sum, mul, ave }

    public let forwardLayer: any Layer
    public let backwardLayer: any Layer
    /// How the two outputs merge; nil for merge_mode None (both, as two outputs).
    public let merge: Merge?
    public let returnSequences: Bool
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { returnSequences ? .propagates : .drops }

    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        let merge: Merge?
        if context.value("merge_mode")?.isNull == true {
            merge = nil
        } else {
            let mode = try context.string("merge_mode", default: "concat")
            guard let known = Merge(rawValue: mode) else {
                throw context.error("'merge_mode' must be one of \"concat\", \"sum\", \"mul\", \"ave\" or null, found \"\(mode)\"", key: "merge_mode")
            }
            merge = known
        }
        var forward = try context.nestedSpec("layer")
        let returnSequences = try bool(forward, "return_sequences")
        let returnState = try bool(forward, "return_state")
        var backward: LayerSpec
        if context.has("backward_layer") {
            backward = try context.nestedSpec("backward_layer")
        } else {
            // Keras derives the backward half from the forward config with go_backwards flipped.
            backward = forward
            backward.config = set(backward.config, "go_backwards", .bool(!(try bool(forward, "go_backwards"))))
            backward.name = "backward_" + forward.name
            backward.path = forward.path
            if !forward.name.hasPrefix("forward_") { forward.name = "forward_" + forward.name }
        }
        // Both halves must agree on return_sequences and return_state (Keras checks the same).
        for key in ["return_sequences", "return_state"] {
            for spec in [forward, backward] where try bool(spec, key) != (key == "return_state" ? returnState : returnSequences) {
                throw context.error("the forward and backward layers must agree on \(key)", key: "backward_layer")
            }
        }
        // Keras's Bidirectional forces zero_output_for_mask to return_sequences on both halves,
        // whatever their configs say. The halves return one tensor each: this layer asks them for
        // their states itself, so return_state is taken off their configs.
        for index in 0..<2 {
            var spec = index == 0 ? forward : backward
            spec.config = set(spec.config, "zero_output_for_mask", .bool(returnSequences))
            spec.config = set(spec.config, "return_state", .bool(false))
            if index == 0 { forward = spec } else { backward = spec }
        }
        let forwardLayer = try context.buildNested(forward)
        let backwardLayer = try context.buildNested(backward)
        for (key, spec, layer) in [("layer", forward, forwardLayer),
                                   (context.has("backward_layer") ? "backward_layer" : "layer", backward, backwardLayer)]
            where !(layer is any RecurrentSequenceLayer) {
            throw context.error("'\(key)' must be a recurrent layer (SimpleRNN, LSTM, GRU or another registered recurrent layer), as Keras requires; found \(spec.className) '\(spec.name)'", key: key)
        }
        let a = forwardLayer.outputShape, b = backwardLayer.outputShape
        guard a.count == b.count, a.dropLast() == b.dropLast(), let last = a.last ?? nil, let otherLast = b.last ?? nil else {
            throw context.error("the forward and backward layers give different shapes: \(describeShape(a)) and \(describeShape(b))")
        }
        if let merge, merge != .concat, last != otherLast {
            throw context.error("merge_mode \"\(merge.rawValue)\" needs both halves to have the same width, found \(last) and \(otherLast)", key: "merge_mode")
        }
        let layer = Bidirectional(forwardLayer: forwardLayer, backwardLayer: backwardLayer, merge: merge, returnSequences: returnSequences,
                                  outputShape: Array(a.dropLast()) + [merge == .concat ? last + otherLast : last])
        return try RecurrentCall.make(layer, returnState: returnState, context: context)
    }

    /// The same wrapper around other halves (an Embedding's fusion gives them token ids).
    func withHalves(_ forward: any Layer, _ backward: any Layer) -> Bidirectional {
        Bidirectional(forwardLayer: forward, backwardLayer: backward, merge: merge, returnSequences: returnSequences, outputShape: outputShape)
    }

    static func bool(_ spec: LayerSpec, _ key: String) throws -> Bool {
        switch spec.config[key] {
        case nil, .null?: return false
        case let .bool(flag)?: return flag
        case let other?: throw NNError(.layer, "\(spec.path).config.\(key)", "\(spec.label): '\(key)' must be true or false, found \(other.brief())")
        }
    }

    static func set(_ config: JSONValue, _ key: String, _ value: JSONValue) -> JSONValue {
        guard case var .object(members) = config else { return config }
        if let index = members.firstIndex(where: { $0.0 == key }) { members[index].1 = value } else { members.append((key, value)) }
        return .object(members)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let (outputs, _) = try call(sequence: input, initialStates: [])
        guard outputs.count == 1, let output = outputs.first else {
            throw NNError(.input, "Bidirectional", "merge_mode null gives \(outputs.count) outputs; run the layer as a graph node")
        }
        return output
    }
}

extension Bidirectional: StatefulSequenceLayer {
    /// The halves' states, forward then backward; empty unless both halves can report theirs.
    var stateShapes: [[Int]] {
        guard let forward = forwardLayer as? any StatefulSequenceLayer, let backward = backwardLayer as? any StatefulSequenceLayer,
              !forward.stateShapes.isEmpty, !backward.stateShapes.isEmpty else { return [] }
        return forward.stateShapes + backward.stateShapes
    }

    var stateNames: [String] {
        guard let forward = forwardLayer as? any StatefulSequenceLayer, let backward = backwardLayer as? any StatefulSequenceLayer else { return [] }
        return forward.stateNames.map { "forward " + $0 } + backward.stateNames.map { "backward " + $0 }
    }

    var sequenceOutputShapes: [[Int?]] {
        merge == nil ? [forwardLayer.outputShape, backwardLayer.outputShape] : [outputShape]
    }

    /// The merged output (or both outputs for merge_mode None), then the forward layer's final
    /// states, then the backward layer's. `initialStates` holds the forward layer's states then
    /// the backward layer's (empty for zeros).
    func call(sequence input: Tensor, initialStates: [Tensor]) throws -> (outputs: [Tensor], states: [Tensor]) {
        let halves = [forwardLayer, backwardLayer]
        let forwardCount = (forwardLayer as? any StatefulSequenceLayer)?.stateShapes.count ?? 0
        let split = [Array(initialStates.prefix(initialStates.isEmpty ? 0 : forwardCount)),
                     Array(initialStates.dropFirst(initialStates.isEmpty ? 0 : forwardCount))]
        // The halves are independent: on a single row with two threads they run side by side.
        let results = try runConcurrently(2) { index -> (Tensor, [Tensor]) in
            if let stateful = halves[index] as? any StatefulSequenceLayer {
                let (outputs, states) = try stateful.call(sequence: input, initialStates: split[index])
                guard let output = outputs.first else { throw NNError(.input, "Bidirectional", "a half gave no output") }
                return (output, states)
            }
            guard split[index].isEmpty else { throw NNError(.input, "Bidirectional", "a half that cannot take initial states was given some") }
            return (try halves[index].apply(input), [])
        }
        let a = results[0].0
        var b = results[1].0
        let states = results[0].1 + results[1].1
        guard a.shape.dropLast() == b.shape.dropLast() else {
            throw NNError(.input, "Bidirectional", "the halves gave shapes \(a.shape) and \(b.shape)")
        }
        if returnSequences, b.rank >= 3 {
            // Reverse the backward output in time so step t lines up with the forward output (a
            // step is a vector, or an image for ConvLSTM).
            let steps = b.shape[1], width = b.batch * steps > 0 ? b.count / (b.batch * steps) : 0
            var reversed = b.data
            for row in 0..<b.batch {
                for t in 0..<steps {
                    let source = (row * steps + t) * width, target = (row * steps + steps - 1 - t) * width
                    reversed.replaceSubrange(target..<(target + width), with: b.data[source..<(source + width)])
                }
            }
            b.data = reversed
        }
        let width = a.shape.last ?? 1, otherWidth = b.shape.last ?? 1
        let rows = a.count / max(width, 1)
        guard let merge else { return ([a, b], states) }
        let merged: Tensor
        switch merge {
        case .concat:
            var data = [Float]()
            data.reserveCapacity(a.count + b.count)
            for row in 0..<rows {
                data += a.data[(row * width)..<((row + 1) * width)]
                data += b.data[(row * otherWidth)..<((row + 1) * otherWidth)]
            }
            merged = Tensor(shape: Array(a.shape.dropLast()) + [width + otherWidth], data: data)
        case .sum: merged = Tensor(shape: a.shape, data: zip(a.data, b.data).map { $0 + $1 })
        case .mul: merged = Tensor(shape: a.shape, data: zip(a.data, b.data).map { $0 * $1 })
        case .ave: merged = Tensor(shape: a.shape, data: zip(a.data, b.data).map { ($0 + $1) / 2 })
        }
        return ([merged], states)
    }
}

extension Bidirectional: PlansMemory {
    /// Both halves at once (they may run side by side), each with its scratch, then the merge.
    public func workingSet(input: [Int]) -> WorkingSet {
        let halves = [forwardLayer, backwardLayer].map { $0.plannedWorkingSet(input: input) }
        let merged = WorkingSet(outputShape: [input.first ?? 1] + outputShape.enumerated().map { axis, size in
            size ?? (axis + 1 < input.count ? input[axis + 1] : 1)
        })
        let scratch = ShapeMath.saturatingSum(halves[0].output, halves[0].scratch, halves[1].output, halves[1].scratch)
        return WorkingSet(outputShape: merged.outputShape, scratch: scratch, scratchMeaning: "both halves' outputs and scratch")
    }
}
