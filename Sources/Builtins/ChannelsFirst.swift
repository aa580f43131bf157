import LayerRegistry

/// A layer saved with `data_format: "channels_first"`, run as its own `channels_last` form between
/// two transposes: the input's channel axis moved last, the layer, the channels moved back.
///
/// Keras's layers compute exactly that (checked against Keras 3.15 for every layer registered
/// through `channelsFirstCapable`: the convolutions, pooling, padding, cropping, up-sampling,
/// resizing, `Flatten` and ConvLSTM give the same values as their channels-last forms on
/// transposed data), and the weights do not depend on the format (a kernel is always
/// (spatial…, in, out)), so one mechanism covers every such layer, a user's too, with no
/// channels-first kernel anywhere.
///
/// Runs of these layers do not transpose back and forth: a step that starts with one takes over
/// (`fusing`) the next channels-first layer, an element-wise activation and a BatchNormalization
/// over the channel axis, running them all channels-last between one pair of transposes (and a
/// convolution there takes over the activation or normalization as usual).
struct ChannelsFirst: FusesNext, PlansMemory {
    /// Moves the channel axis last, checking the input against the channels-first shape the layer was built for.
    let toLast: Permute
    /// The layer (or run of layers) on channels-last data.
    let layer: any Layer
    /// Moves the channels of the output back; nil when the output has no channel axis (`Flatten`).
    let toFirst: Permute?

    var outputShape: [Int?] { toFirst?.outputShape ?? layer.outputShape }

    func forward(_ input: Tensor) throws -> Tensor {
        let output = try layer.apply(try toLast.forward(input))
        return try toFirst?.forward(output) ?? output
    }

    /// Builds `context`'s layer for channels-first data whose channels sit at per-sample axis
    /// `channelAxis` (after the time axis of a ConvLSTM).
    static func make(_ context: LayerContext, channelAxis: Int) throws -> any NodeLayer {
        let shape = context.inputShape, rank = shape.count
        guard context.inputShapes.count == 1 else {
            throw context.error("with data_format \"channels_first\" takes one input, found \(context.inputShapes.count) (an initial_state is not supported there)", key: "data_format")
        }
        guard !context.inputCarriesMask else {
            throw context.error("a masked input with data_format \"channels_first\" is not supported", key: "data_format")
        }
        guard case var .object(members) = context.config, let index = members.firstIndex(where: { $0.0 == "data_format" }) else {
            throw context.error("expected a config object with 'data_format'", key: "data_format")
        }
        members[index].1 = .string("channels_last")
        let order = Array(0..<channelAxis) + Array((channelAxis + 1)..<rank) + [channelAxis]
        let toLast = Permute(label: context.label, inputShape: shape, order: order, outputShape: order.map { shape[$0] })
        let built = try context.rebuilt(config: .object(members), inputShapes: [toLast.outputShape])
        let layer: any Layer
        if let unary = built as? any Layer {
            layer = unary
        } else if built.outputShapes.count == 1 {
            layer = OneOutputNode(node: built)  // an operation (`ops.image.resize`)
        } else {
            throw context.error("with data_format \"channels_first\" must give one output (return_state is not supported there)", key: "data_format")
        }
        let produced = layer.outputShape, outputRank = produced.count
        let outputAxis = channelAxis - (rank - outputRank)
        guard outputRank >= 2, outputAxis >= 0 else {
            return ChannelsFirst(toLast: toLast, layer: layer, toFirst: nil)
        }
        let back = Array(0..<outputAxis) + [outputRank - 1] + Array(outputAxis..<(outputRank - 1))
        return ChannelsFirst(toLast: toLast, layer: layer,
                             toFirst: Permute(label: context.label, inputShape: produced, order: back, outputShape: back.map { produced[$0] }))
    }

    /// Per-sample axis of the output's channels, nil without a channel axis.
    private var outputChannelAxis: Int? { toFirst?.order.firstIndex(of: (toFirst?.order.count ?? 0) - 1) }

    func fusing(_ next: any Layer) -> (any Layer)? {
        guard let toFirst, let axis = outputChannelAxis else { return nil }
        if let other = next as? ChannelsFirst, other.toLast.order.indices.allSatisfy({ toFirst.order[other.toLast.order[$0]] == $0 }) {
            return ChannelsFirst(toLast: toLast, layer: chained(layer, other.layer), toFirst: other.toFirst)
        }
        if let activation = absorbableActivation(next) {
            // The activation alone, on the channels-last shape (`next` was built for the other).
            return ChannelsFirst(toLast: toLast, layer: chained(layer, ActivationLayer(activation: activation, outputShape: layer.outputShape)),
                                 toFirst: toFirst)
        }
        let following = toFirst.outputShape[(axis + 1)...].compactMap { $0 }
        if let normalization = next as? BatchNormalization, let channels = layer.outputShape.last.flatMap({ $0 }),
           normalization.features == channels, following.count == toFirst.outputShape.count - axis - 1,
           normalization.inner == ShapeMath.saturatingProduct(following) {
            return ChannelsFirst(toLast: toLast, layer: chained(layer, normalization.overLastAxis(outputShape: layer.outputShape)), toFirst: toFirst)
        }
        return nil
    }

    /// The output, and besides it the transposed input, the layer's output and its scratch.
    func workingSet(input: [Int]) -> WorkingSet {
        let moved = toLast.workingSet(input: input), inner = layer.plannedWorkingSet(input: moved.outputShape)
        guard let toFirst else {
            return WorkingSet(outputShape: inner.outputShape, scratch: ShapeMath.saturatingSum(moved.output, inner.scratch),
                              scratchMeaning: "the channels-last input")
        }
        return WorkingSet(outputShape: toFirst.workingSet(input: inner.outputShape).outputShape,
                          scratch: ShapeMath.saturatingSum(moved.output, inner.output, inner.scratch),
                          scratchMeaning: "the channels-last input and output")
    }
}

/// A graph node of one input and one output (an operation) seen as a `Layer`.
private struct OneOutputNode: Layer {
    let node: any NodeLayer
    var outputShape: [Int?] { node.outputShapes[0] }
    func forward(_ input: Tensor) throws -> Tensor { try node.call([input])[0] }
}

/// `factory` for a layer with a `data_format` key: as is for channels-last data, and for
/// `channels_first` the same layer's channels-last form between transposes (`ChannelsFirst`),
/// the channels at per-sample axis `channelAxis`. An input of too few axes to have channels and
/// a spatial axis (a `Flatten` of (batch, features)) has nothing to move.
func channelsFirstCapable(channelAxis: Int = 0, _ factory: @escaping LayerFactory) -> LayerFactory {
    { context in
        let format = try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"])
        guard format == "channels_first", context.inputShape.count >= channelAxis + 2 else { return try factory(context) }
        return try ChannelsFirst.make(context, channelAxis: channelAxis)
    }
}
