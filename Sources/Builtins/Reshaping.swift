import LayerRegistry

// Spatial reshaping layers: zero padding, cropping and upsampling of sequences (1-D) and images
// (2-D), channels last.

/// Reads `key` as (before, after) amounts per spatial axis, as Keras accepts them: one integer for
/// every side, one entry per axis (an integer for both sides or a pair), or for one axis a pair.
func sideAmounts(_ context: LayerContext, _ key: String, axes: Int, default defaultValue: [(Int, Int)]) throws -> [(Int, Int)] {
    guard let raw = context.value(key), !raw.isNull else { return defaultValue }
    let limit = 1 << 20
    func integer(_ value: JSONValue) -> Int? {
        switch value {
        case let .int(number) where number >= 0 && number <= limit: return Int(number)
        case let .double(number) where number.rounded() == number && number >= 0 && number <= Double(limit): return Int(number)
        default: return nil
        }
    }
    func pair(_ value: JSONValue) -> (Int, Int)? {
        if let amount = integer(value) { return (amount, amount) }
        if case let .array(items) = value, items.count == 2, let before = integer(items[0]), let after = integer(items[1]) {
            return (before, after)
        }
        return nil
    }
    var amounts: [(Int, Int)]?
    if let amount = integer(raw) {
        amounts = Array(repeating: (amount, amount), count: axes)
    } else if axes == 1 {
        if case let .array(items) = raw, items.count == 2, let before = integer(items[0]), let after = integer(items[1]) {
            amounts = [(before, after)]
        }
    } else if case let .array(items) = raw, items.count == axes {
        let pairs = items.compactMap(pair)
        if pairs.count == axes { amounts = pairs }
    }
    guard let amounts else {
        let expected = axes == 1
            ? "an integer or a pair (before, after)"
            : "an integer, a pair (rows, columns) or a pair of pairs ((top, bottom), (left, right))"
        throw context.error("'\(key)' must be \(expected) of non-negative integers (at most \(limit)), found \(raw.brief())", key: key)
    }
    return amounts
}

/// `ZeroPadding1D` / `ZeroPadding2D` / `Cropping1D` / `Cropping2D`: adds zero rows and columns
/// around each sample, or removes them. The 1-D layers accept a run-time sequence length.
///
/// Config: `padding` (1-D: 1 or (left, right); 2-D: (1, 1), an integer, (rows, columns) or
/// ((top, bottom), (left, right))), or `cropping` (1-D: (1, 1); 2-D: ((0, 0), (0, 0)), same forms);
/// `data_format` ("channels_last").
public struct SpatialPadding: Layer {
    let label: String
    let inputShape: [Int?]
    /// (before, after) per spatial axis: positive pads with zeros, negative crops.
    let amounts: [(Int, Int)]
    public let outputShape: [Int?]

    static func paddingFactory(spatialRank: Int) -> LayerFactory {
        { context in
            try requireRank(context, spatialRank)
            try requireChannelsLast(context)
            let amounts = try sideAmounts(context, "padding", axes: spatialRank, default: Array(repeating: (1, 1), count: spatialRank))
            return try make(context, spatialRank: spatialRank, amounts: amounts)
        }
    }

    static func croppingFactory(spatialRank: Int) -> LayerFactory {
        { context in
            try requireRank(context, spatialRank)
            if spatialRank == 2 { try requireChannelsLast(context) }
            let defaultAmount = spatialRank == 1 ? 1 : 0
            let amounts = try sideAmounts(context, "cropping", axes: spatialRank,
                                          default: Array(repeating: (defaultAmount, defaultAmount), count: spatialRank))
            for (axis, amount) in amounts.enumerated() {
                if let length = context.inputShape[axis], amount.0 + amount.1 >= length {
                    let unit = spatialRank == 1 ? "steps" : (axis == 0 ? "rows" : "columns")
                    throw context.error("cropping (\(amount.0), \(amount.1)) removes \(amount.0 + amount.1) of the input's \(length) \(unit); expected fewer than \(length) (input \(describeShape(context.inputShape)))", key: "cropping")
                }
            }
            return try make(context, spatialRank: spatialRank, amounts: amounts.map { (-$0.0, -$0.1) })
        }
    }

    private static func requireRank(_ context: LayerContext, _ spatialRank: Int) throws {
        if spatialRank == 1 {
            try context.requireRank(2, meaning: "(batch, steps, channels)")
        } else {
            try context.requireRank(3, meaning: "(batch, height, width, channels)")
            _ = try context.inputDimension(0)
            _ = try context.inputDimension(1)
        }
        _ = try context.inputDimension(-1)
    }

    private static func make(_ context: LayerContext, spatialRank: Int, amounts: [(Int, Int)]) throws -> SpatialPadding {
        var output = context.inputShape
        for axis in 0..<spatialRank {
            output[axis] = output[axis].map { $0 + amounts[axis].0 + amounts[axis].1 }
        }
        try context.sampleCount(output)
        return SpatialPadding(label: context.label, inputShape: context.inputShape, amounts: amounts, outputShape: output)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputShape, label: label)
        let twoD = amounts.count == 2
        let height = twoD ? input.shape[1] : 1
        let width = input.shape[twoD ? 2 : 1]
        let channels = input.shape[input.rank - 1]
        let vertical = twoD ? amounts[0] : (0, 0)
        let horizontal = amounts[amounts.count - 1]
        let outputHeight = height + vertical.0 + vertical.1, outputWidth = width + horizontal.0 + horizontal.1
        guard outputHeight > 0, outputWidth > 0 else {
            throw NNError(.input, label, "cropping (\(-horizontal.0), \(-horizontal.1)) removes every one of the input's \(width) steps; expected more than \(-horizontal.0 - horizontal.1)")
        }
        try ShapeMath.sampleCount([outputHeight, outputWidth, channels], at: label)
        let count = input.batch * outputHeight * outputWidth * channels
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                pad2D(x, batch: input.batch, height: height, width: width, channels: channels,
                      top: vertical.0, bottom: vertical.1, left: horizontal.0, right: horizontal.1, into: buffer)
            }
            initialized = count
        }
        let shape = [input.batch] + (twoD ? [outputHeight, outputWidth] : [outputWidth]) + [channels]
        return Tensor(shape: shape, data: data)
    }
}

extension SpatialPadding: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        var shape = input
        for (axis, amount) in amounts.enumerated() where axis + 1 < shape.count {
            // Positive amounts pad, negative ones crop.
            let padded = ShapeMath.saturatingSum(shape[axis + 1], amount.0, amount.1)
            shape[axis + 1] = max(padded - max(-amount.0, 0) - max(-amount.1, 0), 0)
        }
        return WorkingSet(outputShape: shape)
    }
}

/// How `UpSampling2D` fills the new cells.
enum Interpolation: String, Sendable, CaseIterable {
    case nearest, bilinear, bicubic, area, lanczos3, lanczos5, gaussian, mitchellcubic
}

/// `UpSampling1D` / `UpSampling2D`: enlarges each sample by whole factors. Nearest repeats each
/// cell; the other interpolations follow TensorFlow's `tf.image.resize` (half-pixel centres, no
/// antialiasing), which Keras calls.
///
/// Config: `size` (1-D: 2; 2-D: (2, 2), an integer or (rows, columns)), `interpolation` (2-D:
/// "nearest" | "bilinear" | "bicubic" | "area" | "lanczos3" | "lanczos5", and Keras 2's "gaussian" |
/// "mitchellcubic"), `data_format` ("channels_last").
public struct UpSampling: Layer {
    let label: String
    let inputShape: [Int?]
    let rowFactor: Int
    let columnFactor: Int
    let interpolation: Interpolation
    /// Separable weights for interpolations other than nearest (2-D, known size).
    let weights: (rows: ResampleWeights, columns: ResampleWeights)?
    public let outputShape: [Int?]

    static func factory1D(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(2, meaning: "(batch, steps, channels)")
        let channels = try context.inputDimension(-1)
        let size = try context.positiveInt("size", default: 2, maximum: 1 << 16)
        try context.sampleCount([context.inputShape[0].map { $0 * size }, channels], key: "size")
        return UpSampling(label: context.label, inputShape: context.inputShape, rowFactor: 1, columnFactor: size,
                          interpolation: .nearest, weights: nil, outputShape: [context.inputShape[0].map { $0 * size }, channels])
    }

    static func factory2D(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(3, meaning: "(batch, height, width, channels)")
        let height = try context.inputDimension(0), width = try context.inputDimension(1)
        let channels = try context.inputDimension(2)
        try requireChannelsLast(context)
        let size = try context.positiveInts("size", count: 2, default: [2, 2], maximum: 1 << 16)
        let name = try context.choice("interpolation", default: "nearest", allowed: Interpolation.allCases.map(\.rawValue))
        let interpolation = Interpolation(rawValue: name) ?? .nearest
        let outputHeight = height * size[0], outputWidth = width * size[1]
        try context.sampleCount([outputHeight, outputWidth, channels], key: "size")
        // Interpolation weights are precomputed per output row and column.
        if interpolation != .nearest, max(outputHeight, outputWidth) > 1 << 20 {
            throw context.error("interpolation \"\(name)\" would produce \(outputHeight)×\(outputWidth) images; the largest side accepted is \(1 << 20) (\"nearest\" has no such limit)", key: "size")
        }
        var weights: (rows: ResampleWeights, columns: ResampleWeights)?
        switch interpolation {
        case .nearest: weights = nil
        case .bilinear: weights = (.bilinear(input: height, output: outputHeight), .bilinear(input: width, output: outputWidth))
        case .bicubic: weights = (.bicubic(input: height, output: outputHeight), .bicubic(input: width, output: outputWidth))
        case .area: weights = (.area(input: height, output: outputHeight), .area(input: width, output: outputWidth))
        case .lanczos3, .lanczos5, .gaussian, .mitchellcubic:
            let filter: ResampleFilter = switch interpolation {
            case .lanczos3: .lanczos3
            case .lanczos5: .lanczos5
            case .gaussian: .gaussian
            default: .mitchellCubic
            }
            weights = (.scaleAndTranslate(input: height, output: outputHeight, filter: filter),
                       .scaleAndTranslate(input: width, output: outputWidth, filter: filter))
        }
        return UpSampling(label: context.label, inputShape: context.inputShape, rowFactor: size[0], columnFactor: size[1],
                          interpolation: interpolation, weights: weights, outputShape: [outputHeight, outputWidth, channels])
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputShape, label: label)
        let twoD = input.rank == 4
        let height = twoD ? input.shape[1] : 1
        let width = input.shape[twoD ? 2 : 1]
        let channels = input.shape[input.rank - 1]
        let outputHeight = height * rowFactor, outputWidth = width * columnFactor
        try ShapeMath.sampleCount([outputHeight, outputWidth, channels], at: label)
        let count = input.batch * outputHeight * outputWidth * channels
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                if let weights {
                    resample2D(x, batch: input.batch, channels: channels, rows: weights.rows, columns: weights.columns, into: buffer)
                } else {
                    upsampleNearest2D(x, batch: input.batch, height: height, width: width, channels: channels,
                                      rowFactor: rowFactor, columnFactor: columnFactor, into: buffer)
                }
            }
            initialized = count
        }
        let shape = [input.batch] + (twoD ? [outputHeight, outputWidth] : [outputWidth]) + [channels]
        return Tensor(shape: shape, data: data)
    }
}

extension UpSampling: PlansMemory {
    /// The output, and for interpolations other than nearest one image resampled along the width.
    public func workingSet(input: [Int]) -> WorkingSet {
        var shape = input
        let twoD = shape.count == 4
        if twoD { shape[1] = ShapeMath.saturatingProduct([shape[1], rowFactor]) }
        if shape.count >= 3 { shape[twoD ? 2 : 1] = ShapeMath.saturatingProduct([shape[twoD ? 2 : 1], columnFactor]) }
        let across = weights == nil || !twoD ? 0 : ShapeMath.saturatingProduct([input[1], shape[2], shape[3]])
        return WorkingSet(outputShape: shape, scratch: across, scratchMeaning: "one image resampled along the width")
    }
}

extension Builtins {
    static func registerReshaping(_ registry: LayerRegistry) {
        registry.register("ZeroPadding2D", origin: "builtin", summary: "Adds rows and columns of zeros around each image.",
                          factory: SpatialPadding.paddingFactory(spatialRank: 2))
        registry.register("ZeroPadding1D", origin: "builtin", summary: "Adds zero steps at the start and end of each sequence.",
                          factory: SpatialPadding.paddingFactory(spatialRank: 1))
        registry.register("Cropping2D", origin: "builtin", summary: "Removes rows and columns from the edges of each image.",
                          factory: SpatialPadding.croppingFactory(spatialRank: 2))
        registry.register("Cropping1D", origin: "builtin", summary: "Removes steps from the start and end of each sequence.",
                          factory: SpatialPadding.croppingFactory(spatialRank: 1))
        registry.register("UpSampling2D", origin: "builtin",
                          summary: "Enlarges each image by whole factors (nearest, bilinear, bicubic, area or Lanczos).",
                          factory: UpSampling.factory2D)
        registry.register("UpSampling1D", origin: "builtin", summary: "Repeats each time step size times.",
                          factory: UpSampling.factory1D)
    }
}
