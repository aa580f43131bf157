import LayerRegistry

// Pooling layers: max and average over sliding windows (1-D, 2-D and 3-D), and global max and
// average over every position (1-D, 2-D and 3-D), channels last; spatial sizes may be known only
// at run time.

/// Max or average over a window.
enum PoolingMode: Sendable {
    case max, average
}

/// The window of a pooling layer, read from a Keras config.
struct PoolingSettings: Sendable, Equatable {
    var poolSize: [Int]
    var strides: [Int]
    var padding: WindowPadding

    /// Reads `pool_size` (default 2 on every axis), `strides` (default `pool_size`), `padding` and
    /// `data_format`; for 1-D also Keras 2's `pool_length` and `stride`.
    static func read(_ context: LayerContext, rank: Int) throws -> PoolingSettings {
        try requireChannelsLast(context)
        var sizeKey = "pool_size", strideKey = "strides"
        if rank == 1, !context.has(sizeKey), context.has("pool_length") { sizeKey = "pool_length" }
        if rank == 1, !context.has(strideKey), context.has("stride") { strideKey = "stride" }
        let poolSize = try context.positiveInts(sizeKey, count: rank, default: Array(repeating: 2, count: rank))
        let strides = try context.positiveInts(strideKey, count: rank, default: poolSize)
        let padding = try context.choice("padding", default: "valid", allowed: ["valid", "same"])
        return PoolingSettings(poolSize: poolSize, strides: strides, padding: padding == "same" ? .same : .valid)
    }

    func window(axis: Int, length: Int) -> WindowAxis? {
        WindowAxis.place(input: length, size: poolSize[axis], stride: strides[axis], padding: padding)
    }

    /// Why no output fits: the window is wider than a "valid"-padded input.
    func misfit(axis: Int, length: Int, unit: String) -> String {
        "the pooling window spans \(poolSize[axis]) \(unit) but the input has \(length) with padding \"valid\"; expected an input of at least \(poolSize[axis]) \(unit) or padding \"same\""
    }
}

/// `MaxPooling1D/2D/3D` / `AveragePooling1D/2D/3D`: max or mean over windows of `pool_size` moved
/// by `strides`; with padding "same" the padded cells take no part in either. Spatial sizes may be
/// unknown until run time (`Input((None, None, 3))`); the windows are then placed per call. Keras 3
/// drops the mask here.
///
/// Config: `pool_size` (2 on every axis; 1-D also Keras 2's `pool_length`), `strides` (null =
/// pool_size; 1-D also Keras 2's `stride`), `padding` ("valid" | "same"), `data_format` ("channels_last").
public struct Pooling: Layer {
    let label: String
    let mode: PoolingMode
    let settings: PoolingSettings
    /// The per-sample input shape the layer was built for: spatial axes (nil = run time), channels.
    let inputShape: [Int?]
    let channels: Int
    public let outputShape: [Int?]
    /// A 2-D zero padding right before a max pooling, run inside it (`SpatialPadding.fusing`): the
    /// windows reach into the padding, whose zeros take part in each max they cover, but the
    /// padded copy is never written (ResNet50's pool1_pad: 3.3 MB at batch 1). Nil for none.
    var zeroPadding: SpatialPadding?

    static func factory(_ mode: PoolingMode, spatialRank: Int) -> LayerFactory {
        { context in
            try context.requireRank(spatialRank + 1, meaning: spatialMeaning(spatialRank))
            let channels = try context.inputDimension(spatialRank)
            let settings = try PoolingSettings.read(context, rank: spatialRank)
            var output: [Int?] = []
            for axis in 0..<spatialRank {
                guard let length = context.inputShape[axis] else { output.append(nil); continue }
                guard let window = settings.window(axis: axis, length: length) else {
                    throw context.error("\(settings.misfit(axis: axis, length: length, unit: spatialUnits(spatialRank)[axis])) (input \(describeShape(context.inputShape)))", key: "pool_size")
                }
                output.append(window.output)
            }
            return Pooling(label: context.label, mode: mode, settings: settings, inputShape: context.inputShape, channels: channels,
                           outputShape: output + [channels], zeroPadding: nil)
        }
    }

    /// The windows for a run-time input of per-sample shape `spatial`, padded to (depth, rows, columns).
    func geometry(spatial: [Int]) throws -> PoolingGeometry {
        var axes: [WindowAxis] = []
        for (axis, length) in spatial.enumerated() {
            guard let window = settings.window(axis: axis, length: length) else {
                throw NNError(.input, label, settings.misfit(axis: axis, length: length, unit: spatialUnits(spatial.count)[axis]))
            }
            axes.append(window)
        }
        axes = Array(repeating: PoolingGeometry.single, count: 3 - axes.count) + axes
        return PoolingGeometry(depth: axes[0], rows: axes[1], columns: axes[2], channels: channels)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var g: PoolingGeometry
        if let zeroPadding {
            // (The padded sizes are those the pooling was built for, where the padding's input was known.)
            guard let (spatial, padded) = try zeroPadding.paddedSizes(of: input.shape, channels: channels) else {
                var plain = self
                plain.zeroPadding = nil
                return try plain.forward(zeroPadding.forward(input))
            }
            g = try geometry(spatial: padded)
            g.rows = zeroPadding.readingInPlace(g.rows, axis: 0, length: spatial[0])
            g.columns = zeroPadding.readingInPlace(g.columns, axis: 1, length: spatial[1])
            g.zeroPadded = true
        } else {
            try checkInput(input, built: inputShape, label: label)
            g = try geometry(spatial: Array(input.shape.dropFirst().dropLast()))
        }
        let spatial = [g.depth.output, g.rows.output, g.columns.output].suffix(inputShape.count - 1)
        return runPooling(input, mode: mode, geometry: g, shape: [input.batch] + spatial + [channels])
    }

    /// This layer run on the output of `pad`, a 2-D zero padding (no cropping) of its input, with
    /// the padding read in place; nil when it cannot (an average, whose divisor would count the
    /// zeros, or "same" windows, which leave padded cells out).
    func absorbing(_ pad: SpatialPadding) -> Pooling? {
        guard mode == .max, zeroPadding == nil, settings.padding == .valid, inputShape.count == 3, pad.amounts.count == 2,
              pad.amounts.allSatisfy({ $0.0 >= 0 && $0.1 >= 0 }), pad.outputShape.count == 3, pad.outputShape[2] == channels else { return nil }
        var fused = self
        fused.zeroPadding = pad
        return fused
    }
}

extension Pooling: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        // A fused padding's zeros are never written: the windows see the padded sizes.
        let seen = zeroPadding.map { $0.workingSet(input: input).outputShape } ?? input
        let sizes = seen.dropFirst().dropLast().enumerated().map { axis, length in settings.window(axis: axis, length: length)?.output ?? 0 }
        return WorkingSet(outputShape: [seen.first ?? 1] + sizes + [channels])
    }
}

private func runPooling(_ input: Tensor, mode: PoolingMode, geometry: PoolingGeometry, shape: [Int]) -> Tensor {
    let count = input.batch * geometry.outputCount
    let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        input.data.withUnsafeBufferPointer { x in
            switch mode {
            case .max: maxPool2D(x, batch: input.batch, into: buffer, geometry: geometry)
            case .average: averagePool2D(x, batch: input.batch, into: buffer, geometry: geometry)
            }
        }
        initialized = count
    }
    return Tensor(shape: shape, data: data)
}

/// `GlobalMaxPooling1D/2D/3D` / `GlobalAveragePooling1D/2D/3D`: max or mean over every position
/// (steps, (row, column) or (slice, row, column)) of each channel; spatial sizes may be known only
/// at run time. `GlobalAveragePooling1D` averages only the steps the input's mask marks as real (a
/// row with none gives NaN, as in Keras); `GlobalMaxPooling1D` ignores the mask, as Keras 3 does.
///
/// Config: `keepdims` (false: (batch, channels); true: (batch, 1, channels), (batch, 1, 1, channels)
/// or (batch, 1, 1, 1, channels)), `data_format` ("channels_last"; "channels_first" pools each
/// channel's trailing positions instead, as keras.io's time-series Transformer pools its
/// features with GlobalAveragePooling1D(data_format="channels_first"); no mask there).
public struct GlobalPooling: Layer {
    let label: String
    let mode: PoolingMode
    /// Spatial axes pooled over: 1 (steps), 2 (height, width) or 3 (depth, height, width).
    let spatialRank: Int
    let channels: Int
    let keepDimensions: Bool
    /// Channels on the first per-sample axis (data_format "channels_first").
    let channelsFirst: Bool
    public let outputShape: [Int?]

    static func factory(_ mode: PoolingMode, spatialRank: Int) -> LayerFactory {
        { context in
            try context.requireRank(spatialRank + 1, meaning: spatialMeaning(spatialRank))
            let first = try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"]) == "channels_first"
            let channels = try context.inputDimension(first ? 0 : -1)
            let keep = try context.bool("keepdims", default: false)
            let ones = Array(repeating: Int?(1), count: spatialRank)
            return GlobalPooling(label: context.label, mode: mode, spatialRank: spatialRank, channels: channels, keepDimensions: keep,
                                 channelsFirst: first, outputShape: keep ? (first ? [channels] + ones : ones + [channels]) : [channels])
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.shape.count == spatialRank + 2, (channelsFirst ? input.shape[1] : input.shape.last) == channels else {
            throw NNError(.input, label, "expects input of shape \(spatialMeaning(spatialRank)) with \(channels) channels, found \(input.shape)")
        }
        if channelsFirst { return try channelsFirstForward(input) }
        let batch = input.batch
        let steps = ShapeMath.saturatingProduct(input.shape.dropFirst().dropLast())
        let useMask = mode == .average && spatialRank == 1 && input.mask?.count == batch * steps
        let count = batch * channels
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                switch mode {
                case .max:
                    globalMaxPool(x, batch: batch, steps: steps, channels: channels, into: buffer)
                case .average:
                    if useMask, let mask = input.mask {
                        mask.withUnsafeBufferPointer { m in
                            globalAveragePool(x, batch: batch, steps: steps, channels: channels, mask: m, into: buffer)
                        }
                    } else {
                        globalAveragePool(x, batch: batch, steps: steps, channels: channels, mask: nil, into: buffer)
                    }
                }
            }
            initialized = count
        }
        let shape = keepDimensions ? [batch] + Array(repeating: 1, count: spatialRank) + [channels] : [batch, channels]
        return Tensor(shape: shape, data: data)
    }

    /// Channels first: each channel's positions lie together after it, so the channels-last
    /// kernels pool them as batch · channels rows of one channel each.
    func channelsFirstForward(_ input: Tensor) throws -> Tensor {
        guard input.mask == nil else {
            throw NNError(.input, label, "a masked input with data_format \"channels_first\" is not supported (Keras's mask is over the steps of axis 1, which here are the channels)")
        }
        let batch = input.batch, rows = batch * channels
        let positions = ShapeMath.saturatingProduct(input.shape.dropFirst(2))
        let data = [Float](unsafeUninitializedCapacity: rows) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                if mode == .max {
                    globalMaxPool(x, batch: rows, steps: positions, channels: 1, into: buffer)
                } else {
                    globalAveragePool(x, batch: rows, steps: positions, channels: 1, mask: nil, into: buffer)
                }
            }
            initialized = rows
        }
        let shape = keepDimensions ? [batch, channels] + Array(repeating: 1, count: spatialRank) : [batch, channels]
        return Tensor(shape: shape, data: data)
    }
}

extension Builtins {
    static func registerPooling(_ registry: LayerRegistry) {
        registry.register("MaxPooling3D", aliases: ["MaxPool3D"], origin: "builtin",
                          summary: "Max over sliding (depth, height, width) windows; same padding ignores padded cells.",
                          factory: channelsFirstCapable(Pooling.factory(.max, spatialRank: 3)))
        registry.register("AveragePooling3D", aliases: ["AvgPool3D"], origin: "builtin",
                          summary: "Mean over sliding (depth, height, width) windows; same padding averages only real cells.",
                          factory: channelsFirstCapable(Pooling.factory(.average, spatialRank: 3)))
        registry.register("MaxPooling2D", aliases: ["MaxPool2D"], origin: "builtin",
                          summary: "Max over sliding (height, width) windows; same padding ignores padded cells.",
                          factory: channelsFirstCapable(Pooling.factory(.max, spatialRank: 2)))
        registry.register("AveragePooling2D", aliases: ["AvgPool2D"], origin: "builtin",
                          summary: "Mean over sliding (height, width) windows; same padding averages only real cells.",
                          factory: channelsFirstCapable(Pooling.factory(.average, spatialRank: 2)))
        registry.register("MaxPooling1D", aliases: ["MaxPool1D"], origin: "builtin",
                          summary: "Max over sliding time steps windows; same padding ignores padded steps.",
                          factory: channelsFirstCapable(Pooling.factory(.max, spatialRank: 1)))
        registry.register("AveragePooling1D", aliases: ["AvgPool1D"], origin: "builtin",
                          summary: "Mean over sliding time steps windows; same padding averages only real steps.",
                          factory: channelsFirstCapable(Pooling.factory(.average, spatialRank: 1)))
        registry.register("GlobalMaxPooling3D", aliases: ["GlobalMaxPool3D"], origin: "builtin",
                          summary: "Max over all (depth, height, width) positions of each channel.",
                          factory: GlobalPooling.factory(.max, spatialRank: 3))
        registry.register("GlobalAveragePooling3D", aliases: ["GlobalAvgPool3D"], origin: "builtin",
                          summary: "Mean over all (depth, height, width) positions of each channel.",
                          factory: GlobalPooling.factory(.average, spatialRank: 3))
        registry.register("GlobalMaxPooling2D", aliases: ["GlobalMaxPool2D"], origin: "builtin",
                          summary: "Max over all (height, width) positions of each channel.",
                          factory: GlobalPooling.factory(.max, spatialRank: 2))
        registry.register("GlobalAveragePooling2D", aliases: ["GlobalAvgPool2D"], origin: "builtin",
                          summary: "Mean over all (height, width) positions of each channel.",
                          factory: GlobalPooling.factory(.average, spatialRank: 2))
        registry.register("GlobalMaxPooling1D", aliases: ["GlobalMaxPool1D"], origin: "builtin",
                          summary: "Max over all time steps of each channel (the mask is ignored, as in Keras).",
                          factory: GlobalPooling.factory(.max, spatialRank: 1))
        registry.register("GlobalAveragePooling1D", aliases: ["GlobalAvgPool1D"], origin: "builtin",
                          summary: "Mean over the time steps of each channel, only the unmasked ones when a mask is present.",
                          factory: GlobalPooling.factory(.average, spatialRank: 1))
    }
}
