import LayerRegistry

/// `Bidirectional`: runs the nested `layer` forwards and `backward_layer` (by default the same
/// config with `go_backwards` flipped) over the sequence and merges the two outputs. With
/// `return_sequences` the backward output is reversed back in time before merging.
///
/// Config: `layer`, `backward_layer` (optional), `merge_mode` ("concat"; "sum", "mul", "ave").
/// Both halves are built through the registry, so any registered recurrent layer can be wrapped.
public struct Bidirectional: Layer {
    public enum Merge: String, Sendable { case concat, sum, mul, ave }

    public let forwardLayer: any Layer
    public let backwardLayer: any Layer
    public let merge: Merge
    public let returnSequences: Bool
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { returnSequences ? .propagates : .drops }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let mode = try context.string("merge_mode", default: "concat")
        guard let merge = Merge(rawValue: mode) else {
            if context.value("merge_mode")?.isNull == true {
                throw context.error("merge_mode null (a list of both outputs) is not supported: a Sequential model passes one tensor on", key: "merge_mode")
            }
            throw context.error("'merge_mode' must be one of \"concat\", \"sum\", \"mul\", \"ave\", found \"\(mode)\"", key: "merge_mode")
        }
        if context.value("merge_mode")?.isNull == true {
            throw context.error("merge_mode null (a list of both outputs) is not supported: a Sequential model passes one tensor on", key: "merge_mode")
        }
        var forward = try context.nestedSpec("layer")
        let returnSequences = try bool(forward, "return_sequences")
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
        // Both halves must agree on return_sequences (Keras checks the same).
        for spec in [forward, backward] where try bool(spec, "return_sequences") != returnSequences {
            throw context.error("the forward and backward layers must agree on return_sequences")
        }
        // Keras's Bidirectional forces zero_output_for_mask to return_sequences on both halves,
        // whatever their configs say.
        forward.config = set(forward.config, "zero_output_for_mask", .bool(returnSequences))
        backward.config = set(backward.config, "zero_output_for_mask", .bool(returnSequences))
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
        if merge != .concat, last != otherLast {
            throw context.error("merge_mode \"\(mode)\" needs both halves to have the same width, found \(last) and \(otherLast)", key: "merge_mode")
        }
        return Bidirectional(forwardLayer: forwardLayer, backwardLayer: backwardLayer, merge: merge, returnSequences: returnSequences,
                             outputShape: Array(a.dropLast()) + [merge == .concat ? last + otherLast : last])
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
        // The halves are independent: on a single row with two threads they run side by side.
        let halves = try runConcurrently(2) { try ($0 == 0 ? forwardLayer : backwardLayer).apply(input) }
        let a = halves[0]
        var b = halves[1]
        guard a.shape.dropLast() == b.shape.dropLast() else {
            throw NNError(.input, "Bidirectional", "the halves gave shapes \(a.shape) and \(b.shape)")
        }
        if returnSequences, b.rank == 3 {
            // Reverse the backward output in time so step t lines up with the forward output.
            let steps = b.shape[1], width = b.shape[2]
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
        switch merge {
        case .concat:
            var data = [Float]()
            data.reserveCapacity(a.count + b.count)
            for row in 0..<rows {
                data += a.data[(row * width)..<((row + 1) * width)]
                data += b.data[(row * otherWidth)..<((row + 1) * otherWidth)]
            }
            return Tensor(shape: Array(a.shape.dropLast()) + [width + otherWidth], data: data)
        case .sum: return Tensor(shape: a.shape, data: zip(a.data, b.data).map { $0 + $1 })
        case .mul: return Tensor(shape: a.shape, data: zip(a.data, b.data).map { $0 * $1 })
        case .ave: return Tensor(shape: a.shape, data: zip(a.data, b.data).map { ($0 + $1) / 2 })
        }
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
