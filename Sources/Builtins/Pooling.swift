import LayerRegistry

// Pooling layers: max and average over sliding windows (1-D and 2-D), and global max and
// average over every position (1-D and 2-D), channels last.

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

/// `MaxPooling2D` / `AveragePooling2D`: max or mean over (pool_h, pool_w) windows moved by
/// `strides`; with padding "same" the padded cells take no part in either.
///
/// Config: `pool_size` ((2, 2)), `strides` (null = pool_size), `padding` ("valid" | "same"),
/// `data_format` ("channels_last").
public struct Pooling2D: Layer {
    let label: String
    let mode: PoolingMode
    let geometry: PoolingGeometry
    public let outputShape: [Int?]

    static func factory(_ mode: PoolingMode) -> LayerFactory {
        { context in
            try context.requireRank(3, meaning: "(batch, height, width, channels)")
            let height = try context.inputDimension(0), width = try context.inputDimension(1)
            let channels = try context.inputDimension(2)
            let settings = try PoolingSettings.read(context, rank: 2)
            guard let rows = settings.window(axis: 0, length: height) else {
                throw context.error("\(settings.misfit(axis: 0, length: height, unit: "rows")) (input \(describeShape(context.inputShape)))", key: "pool_size")
            }
            guard let columns = settings.window(axis: 1, length: width) else {
                throw context.error("\(settings.misfit(axis: 1, length: width, unit: "columns")) (input \(describeShape(context.inputShape)))", key: "pool_size")
            }
            return Pooling2D(label: context.label, mode: mode, geometry: PoolingGeometry(rows: rows, columns: columns, channels: channels),
                             outputShape: [rows.output, columns.output, channels])
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let g = geometry
        guard input.shape.count == 4, input.shape[1] == g.rows.input, input.shape[2] == g.columns.input, input.shape[3] == g.channels else {
            throw NNError(.input, label, "expects input of shape (batch, \(g.rows.input), \(g.columns.input), \(g.channels)), found \(input.shape)")
        }
        return runPooling(input, mode: mode, geometry: g, shape: [input.batch, g.rows.output, g.columns.output, g.channels])
    }
}

/// `MaxPooling1D` / `AveragePooling1D`: max or mean over windows of `pool_size` steps moved by
/// `strides`; the sequence may have a run-time length. Keras 3 drops the mask here.
///
/// Config: `pool_size` (2; Keras 2 `pool_length`), `strides` (null = pool_size; Keras 2 `stride`),
/// `padding` ("valid" | "same"), `data_format` ("channels_last").
public struct Pooling1D: Layer {
    let label: String
    let mode: PoolingMode
    let settings: PoolingSettings
    let inputSteps: Int?
    let channels: Int
    public let outputShape: [Int?]

    static func factory(_ mode: PoolingMode) -> LayerFactory {
        { context in
            try context.requireRank(2, meaning: "(batch, steps, channels)")
            let channels = try context.inputDimension(1)
            let settings = try PoolingSettings.read(context, rank: 1)
            let length = context.inputShape[0]
            var steps: Int?
            if let length {
                guard let window = settings.window(axis: 0, length: length) else {
                    throw context.error("\(settings.misfit(axis: 0, length: length, unit: "steps")) (input \(describeShape(context.inputShape)))", key: "pool_size")
                }
                steps = window.output
            }
            return Pooling1D(label: context.label, mode: mode, settings: settings, inputSteps: length, channels: channels,
                             outputShape: [steps, channels])
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.shape.count == 3, input.shape[2] == channels, inputSteps == nil || input.shape[1] == inputSteps else {
            throw NNError(.input, label, "expects input of shape (batch, \(inputSteps.map(String.init) ?? "steps"), \(channels)), found \(input.shape)")
        }
        guard let columns = settings.window(axis: 0, length: input.shape[1]) else {
            throw NNError(.input, label, settings.misfit(axis: 0, length: input.shape[1], unit: "steps"))
        }
        let rows = WindowAxis(input: 1, size: 1, stride: 1, dilation: 1, padBefore: 0, output: 1)
        return runPooling(input, mode: mode, geometry: PoolingGeometry(rows: rows, columns: columns, channels: channels),
                          shape: [input.batch, columns.output, channels])
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

/// `GlobalMaxPooling1D/2D` / `GlobalAveragePooling1D/2D`: max or mean over every step (1-D) or
/// every (row, column) (2-D) of each channel. `GlobalAveragePooling1D` averages only the steps the
/// input's mask marks as real (a row with none gives NaN, as in Keras); `GlobalMaxPooling1D`
/// ignores the mask, as Keras 3 does.
///
/// Config: `keepdims` (false: (batch, channels); true: (batch, 1, channels) or (batch, 1, 1, channels)),
/// `data_format` ("channels_last").
public struct GlobalPooling: Layer {
    let label: String
    let mode: PoolingMode
    /// Spatial axes pooled over: 1 (steps) or 2 (height, width).
    let spatialRank: Int
    let channels: Int
    let keepDimensions: Bool
    public let outputShape: [Int?]

    static func factory(_ mode: PoolingMode, spatialRank: Int) -> LayerFactory {
        { context in
            if spatialRank == 2 {
                try context.requireRank(3, meaning: "(batch, height, width, channels)")
                _ = try context.inputDimension(0)
                _ = try context.inputDimension(1)
            } else {
                try context.requireRank(2, meaning: "(batch, steps, channels)")
            }
            try requireChannelsLast(context)
            let channels = try context.inputDimension(-1)
            let keep = try context.bool("keepdims", default: false)
            return GlobalPooling(label: context.label, mode: mode, spatialRank: spatialRank, channels: channels, keepDimensions: keep,
                                 outputShape: keep ? Array(repeating: 1, count: spatialRank) + [channels] : [channels])
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.shape.count == spatialRank + 2, input.shape.last == channels else {
            let expected = spatialRank == 2 ? "(batch, height, width, \(channels))" : "(batch, steps, \(channels))"
            throw NNError(.input, label, "expects input of shape \(expected), found \(input.shape)")
        }
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
}

extension Builtins {
    static func registerPooling(_ registry: LayerRegistry) {
        registry.register("MaxPooling2D", aliases: ["MaxPool2D"], origin: "builtin",
                          summary: "Max over sliding (height, width) windows; same padding ignores padded cells.",
                          factory: Pooling2D.factory(.max))
        registry.register("AveragePooling2D", aliases: ["AvgPool2D"], origin: "builtin",
                          summary: "Mean over sliding (height, width) windows; same padding averages only real cells.",
                          factory: Pooling2D.factory(.average))
        registry.register("MaxPooling1D", aliases: ["MaxPool1D"], origin: "builtin",
                          summary: "Max over sliding windows of time steps; same padding ignores padded steps.",
                          factory: Pooling1D.factory(.max))
        registry.register("AveragePooling1D", aliases: ["AvgPool1D"], origin: "builtin",
                          summary: "Mean over sliding windows of time steps; same padding averages only real steps.",
                          factory: Pooling1D.factory(.average))
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
