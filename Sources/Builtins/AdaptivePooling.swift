import LayerRegistry

// Adaptive pooling: max or mean over a fixed number of bins per spatial axis, whatever the input's
// size (1-D, 2-D and 3-D, channels last).

/// `AdaptiveAveragePooling1D/2D/3D` / `AdaptiveMaxPooling1D/2D/3D`: the output has `output_size`
/// cells on each spatial axis; cell i of an axis of n input cells pools cells
/// ⌊i·n / out⌋ ..< ⌈(i + 1)·n / out⌉, as Keras's TensorFlow backend does. Spatial sizes may be
/// unknown until run time (Keras itself needs them at build time).
///
/// Config: `output_size` (an integer for every axis, or one per axis), `data_format` ("channels_last").
public struct AdaptivePooling: Layer {
    let label: String
    let mode: PoolingMode
    let inputShape: [Int?]
    /// Output cells per spatial axis.
    let outputSize: [Int]
    public let outputShape: [Int?]

    static func factory(_ mode: PoolingMode, spatialRank: Int) -> LayerFactory {
        { context in
            try context.requireRank(spatialRank + 1, meaning: spatialMeaning(spatialRank))
            try requireChannelsLast(context)
            let channels = try context.inputDimension(-1)
            let outputSize = try context.positiveInts("output_size", count: spatialRank)
            try context.sampleCount(outputSize + [channels], key: "output_size")
            return AdaptivePooling(label: context.label, mode: mode, inputShape: context.inputShape, outputSize: outputSize,
                                   outputShape: outputSize + [channels])
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputShape, label: label)
        // As a volume: (depth, height, width), with depth and height of one for fewer spatial axes.
        let spatial = Array(repeating: 1, count: 3 - outputSize.count) + Array(input.shape.dropFirst().dropLast())
        let bins = zip(spatial, Array(repeating: 1, count: 3 - outputSize.count) + outputSize).map { adaptiveBins(input: $0, output: $1) }
        let channels = input.shape[input.rank - 1]
        let count = input.batch * bins[0].count * bins[1].count * bins[2].count * channels
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                adaptivePool3D(x, batch: input.batch, depth: spatial[0], height: spatial[1], width: spatial[2], channels: channels,
                               depthBins: bins[0], rowBins: bins[1], columnBins: bins[2], average: mode == .average, into: buffer)
            }
            initialized = count
        }
        return Tensor(shape: [input.batch] + outputSize + [channels], data: data)
    }
}

extension Builtins {
    static func registerAdaptivePooling(_ registry: LayerRegistry) {
        for rank in 1...3 {
            registry.register("AdaptiveAveragePooling\(rank)D", origin: "builtin",
                              summary: "Mean over output_size bins per spatial axis, whatever the input's size.",
                              factory: channelsFirstCapable(AdaptivePooling.factory(.average, spatialRank: rank)))
            registry.register("AdaptiveMaxPooling\(rank)D", origin: "builtin",
                              summary: "Max over output_size bins per spatial axis, whatever the input's size.",
                              factory: channelsFirstCapable(AdaptivePooling.factory(.max, spatialRank: rank)))
        }
    }
}
