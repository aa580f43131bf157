import LayerRegistry

/// `MaxPooling2D`, `AveragePooling2D`, `MaxPooling1D`, `AveragePooling1D`.
///
/// Config: `pool_size` (2), `strides` (null: pool_size), `padding` ("valid" or "same"; padded
/// cells are ignored by both max and average).
public struct Pooling: Layer {
    public let rank: Int
    public let average: Bool
    public let poolSize: [Int]
    public let strides: [Int]
    public let padding: String
    public let outputShape: [Int?]

    static func factory(rank: Int, average: Bool) -> LayerFactory {
        { context in
            try context.requireRank(rank + 1, meaning: rank == 2 ? "(batch, height, width, channels)" : "(batch, steps, features)")
            if context.has("data_format"), try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"]) != "channels_last" {
                throw context.error("data_format \"channels_first\" is not supported; nnbuild runs channels_last models", key: "data_format")
            }
            let poolKey = rank == 1 && !context.has("pool_size") && context.has("pool_length") ? "pool_length" : "pool_size"
            let poolSize = try context.positiveInts(poolKey, count: rank, default: Array(repeating: 2, count: rank))
            let strideKey = rank == 1 && !context.has("strides") && context.has("stride") ? "stride" : "strides"
            let strides = try context.positiveInts(strideKey, count: rank, default: poolSize)
            let padding = try context.choice("padding", default: "valid", allowed: ["valid", "same"])
            _ = try context.inputDimension(-1)
            var spatial: [Int?] = Array(context.inputShape.dropLast())
            for axis in 0..<rank {
                guard let size = spatial[axis] else {
                    guard rank == 1 else { throw context.error("needs known height and width, found \(describeShape(context.inputShape))") }
                    continue
                }
                let g = WindowGeometry.make(input: (1, size), kernel: (1, poolSize[axis]), strides: (1, strides[axis]), dilation: (1, 1), padding: padding)
                guard g.isValid else {
                    throw context.error("pool_size \(poolSize[axis]) does not fit input size \(size) with padding \"\(padding)\"", key: poolKey)
                }
                spatial[axis] = g.outputWidth
            }
            return Pooling(rank: rank, average: average, poolSize: poolSize, strides: strides, padding: padding,
                           outputShape: spatial + [context.inputShape.last ?? nil])
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let height = rank == 2 ? input.shape[1] : 1
        let width = input.shape[rank]
        let channels = input.shape[rank + 1]
        let g = rank == 2
            ? WindowGeometry.make(input: (height, width), kernel: (poolSize[0], poolSize[1]), strides: (strides[0], strides[1]), dilation: (1, 1), padding: padding)
            : WindowGeometry.make(input: (1, width), kernel: (1, poolSize[0]), strides: (1, strides[0]), dilation: (1, 1), padding: padding)
        guard g.isValid else { throw NNError(.input, "pooling", "pool_size \(poolSize) does not fit an input of shape \(input.shape)") }
        let shape = [input.batch] + (rank == 2 ? [g.outputHeight, g.outputWidth] : [g.outputWidth]) + [channels]
        var output = [Float](repeating: 0, count: shape.reduce(1, *))
        input.data.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                PoolingKernels.pool(x.baseAddress!, batch: input.batch, channels: channels, geometry: g, average: average, output: y.baseAddress!)
            }
        }
        return Tensor(shape: shape, data: output)
    }
}

/// `GlobalAveragePooling1D/2D` and `GlobalMaxPooling1D/2D`: reduce every axis between batch and
/// channels. Config: `keepdims` (false). GlobalAveragePooling1D averages only unmasked steps (an
/// all-masked row gives NaN, as Keras's 0/0 does).
public struct GlobalPooling: Layer {
    public let average: Bool
    public let keepDims: Bool
    public let usesMask: Bool
    public let outputShape: [Int?]

    static func factory(rank: Int, average: Bool) -> LayerFactory {
        { context in
            try context.requireRank(rank + 1, meaning: rank == 2 ? "(batch, height, width, channels)" : "(batch, steps, features)")
            if context.has("data_format"), try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"]) != "channels_last" {
                throw context.error("data_format \"channels_first\" is not supported; nnbuild runs channels_last models", key: "data_format")
            }
            let keepDims = try context.bool("keepdims", default: false)
            let channels = try context.inputDimension(-1)
            return GlobalPooling(average: average, keepDims: keepDims, usesMask: average && rank == 1,
                                 outputShape: keepDims ? Array(repeating: 1, count: rank) + [channels] : [channels])
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let channels = input.shape.last ?? 1
        let cells = input.sampleSize / max(channels, 1)
        var output = [Float](repeating: 0, count: input.batch * channels)
        input.data.withUnsafeBufferPointer { x in
            for b in 0..<input.batch {
                let base = b * cells * channels
                if average {
                    var sums = [Double](repeating: 0, count: channels)
                    var count = 0
                    for cell in 0..<cells where !usesMask || input.isStepValid(row: b, step: cell) {
                        count += 1
                        for c in 0..<channels { sums[c] += Double(x[base + cell * channels + c]) }
                    }
                    for c in 0..<channels { output[b * channels + c] = Float(sums[c] / Double(count)) }
                } else {
                    for c in 0..<channels {
                        var best = -Float.infinity
                        for cell in 0..<cells {
                            let value = x[base + cell * channels + c]
                            if value > best || value.isNaN { best = value }
                        }
                        output[b * channels + c] = best
                    }
                }
            }
        }
        let keep = Array(repeating: 1, count: input.rank - 2)
        return Tensor(shape: [input.batch] + (keepDims ? keep : []) + [channels], data: output)
    }
}

extension Builtins {
    static func registerPooling(_ registry: LayerRegistry) {
        registry.register("MaxPooling2D", aliases: ["MaxPool2D"], origin: "builtin", summary: "Max over 2-D windows.", factory: Pooling.factory(rank: 2, average: false))
        registry.register("AveragePooling2D", aliases: ["AvgPool2D"], origin: "builtin", summary: "Mean over 2-D windows (padded cells ignored).", factory: Pooling.factory(rank: 2, average: true))
        registry.register("MaxPooling1D", aliases: ["MaxPool1D"], origin: "builtin", summary: "Max over windows of steps.", factory: Pooling.factory(rank: 1, average: false))
        registry.register("AveragePooling1D", aliases: ["AvgPool1D"], origin: "builtin", summary: "Mean over windows of steps (padded cells ignored).", factory: Pooling.factory(rank: 1, average: true))
        registry.register("GlobalAveragePooling2D", aliases: ["GlobalAvgPool2D"], origin: "builtin", summary: "Mean over height and width.", factory: GlobalPooling.factory(rank: 2, average: true))
        registry.register("GlobalMaxPooling2D", aliases: ["GlobalMaxPool2D"], origin: "builtin", summary: "Max over height and width.", factory: GlobalPooling.factory(rank: 2, average: false))
        registry.register("GlobalAveragePooling1D", aliases: ["GlobalAvgPool1D"], origin: "builtin", summary: "Mean over unmasked steps.", factory: GlobalPooling.factory(rank: 1, average: true))
        registry.register("GlobalMaxPooling1D", aliases: ["GlobalMaxPool1D"], origin: "builtin", summary: "Max over steps.", factory: GlobalPooling.factory(rank: 1, average: false))
    }
}
