import LayerRegistry

// Shape layers: zero padding, cropping and upsampling of sequences (1-D), images (2-D) and volumes
// (3-D), channels last; Permute; and Identity.

/// The names of a sample's spatial axes, for messages: steps; rows, columns; or slices, rows, columns.
func spatialUnits(_ spatialRank: Int) -> [String] {
    switch spatialRank {
    case 1: ["steps"]
    case 2: ["rows", "columns"]
    default: ["slices", "rows", "columns"]
    }
}

/// What a channels-last input of `spatialRank` spatial axes looks like, for messages.
func spatialMeaning(_ spatialRank: Int) -> String {
    switch spatialRank {
    case 1: "(batch, steps, channels)"
    case 2: "(batch, height, width, channels)"
    default: "(batch, depth, height, width, channels)"
    }
}

/// Reads `key` as (before, after) amounts per spatial axis, as Keras accepts them: one integer for
/// every side, one entry per axis (an integer for both sides or a pair), or for one axis a pair.
func sideAmounts(_ context: LayerContext, _ key: String, axes: Int, default defaultValue: [(Int, Int)]) throws -> [(Int, Int)] {
    let shown = defaultValue.map { "(\($0.0), \($0.1))" }.joined(separator: ", ")
    guard let raw = context.value(key, kind: axes == 1 ? "integer or pair" : "integer, pair, or \(axes) pairs", default: defaultValue.count == 1 ? shown : "(\(shown))"),
          !raw.isNull else { return defaultValue }
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
        let expected = switch axes {
        case 1: "an integer or a pair (before, after)"
        case 2: "an integer, a pair (rows, columns) or a pair of pairs ((top, bottom), (left, right))"
        default: "an integer, a triple (depth, rows, columns) or a triple of pairs ((front, back), (top, bottom), (left, right))"
        }
        throw context.error("'\(key)' must be \(expected) of non-negative integers (at most \(limit)), found \(raw.brief())", key: key)
    }
    return amounts
}

/// `ZeroPadding1D/2D/3D` / `Cropping1D/2D/3D`: adds zeros around each sample along its spatial
/// axes, or removes cells from their edges. Spatial sizes may be unknown until run time.
///
/// Config: `padding` (1-D: 1 or (left, right); 2-D: (1, 1), an integer, (rows, columns) or
/// ((top, bottom), (left, right)); 3-D: (1, 1, 1), an integer, (depth, rows, columns) or three
/// pairs), or `cropping` (1-D: (1, 1); 2-D: ((0, 0), (0, 0)); 3-D: ((1, 1), (1, 1), (1, 1)); same
/// forms); `data_format` ("channels_last").
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
            if spatialRank > 1 { try requireChannelsLast(context) }
            let defaultAmount = spatialRank == 2 ? 0 : 1
            let amounts = try sideAmounts(context, "cropping", axes: spatialRank,
                                          default: Array(repeating: (defaultAmount, defaultAmount), count: spatialRank))
            for (axis, amount) in amounts.enumerated() {
                if let length = context.inputShape[axis], amount.0 + amount.1 >= length {
                    let unit = spatialUnits(spatialRank)[axis]
                    throw context.error("cropping (\(amount.0), \(amount.1)) removes \(amount.0 + amount.1) of the input's \(length) \(unit); expected fewer than \(length) (input \(describeShape(context.inputShape)))", key: "cropping")
                }
            }
            return try make(context, spatialRank: spatialRank, amounts: amounts.map { (-$0.0, -$0.1) })
        }
    }

    private static func requireRank(_ context: LayerContext, _ spatialRank: Int) throws {
        try context.requireRank(spatialRank + 1, meaning: spatialMeaning(spatialRank))
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
        // As a volume: (depth, height, width), with depth and height of one for fewer spatial axes.
        let spatial = Array(repeating: 1, count: 3 - amounts.count) + Array(input.shape.dropFirst().dropLast())
        let sides = Array(repeating: (0, 0), count: 3 - amounts.count) + amounts
        let channels = input.shape[input.rank - 1]
        var output: [Int] = []
        for axis in 0..<3 {
            let length = spatial[axis] + sides[axis].0 + sides[axis].1
            guard length > 0 else {
                throw NNError(.input, label, "cropping (\(-sides[axis].0), \(-sides[axis].1)) removes every one of the input's \(spatial[axis]) \(spatialUnits(amounts.count)[axis - (3 - amounts.count)]); expected more than \(-sides[axis].0 - sides[axis].1)")
            }
            output.append(length)
        }
        try ShapeMath.sampleCount(output + [channels], at: label)
        let count = input.batch * output[0] * output[1] * output[2] * channels
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                pad3D(x, batch: input.batch, depth: spatial[0], height: spatial[1], width: spatial[2], channels: channels,
                      front: sides[0].0, back: sides[0].1, top: sides[1].0, bottom: sides[1].1, left: sides[2].0, right: sides[2].1,
                      into: buffer)
            }
            initialized = count
        }
        return Tensor(shape: [input.batch] + output.suffix(amounts.count) + [channels], data: data)
    }
}

/// A 2-D zero padding right before a depthwise convolution or a max pooling runs inside it: the
/// layer reads the unpadded image, the convolution leaving the padding's taps out and the pooling
/// counting its zeros, so the padded copy is never written.
extension SpatialPadding: FusesNext {
    public func fusing(_ next: any Layer) -> (any Layer)? {
        if let depthwise = next as? DepthwiseConvolution { return depthwise.absorbing(self) }
        return (next as? Pooling)?.absorbing(self)
    }
}

extension SpatialPadding {
    /// For the layer that runs this padding inside it: an input of `shape` (batch first) checked as
    /// this layer checks it, and its spatial sizes before and after padding (the padded image of
    /// `channels` within the sample limit); nil when the input has no two spatial axes of positive
    /// size to read in place, where the layer runs on `forward(input)` instead, as the two layers
    /// apart would.
    func paddedSizes(of shape: [Int], channels: Int) throws -> (spatial: [Int], padded: [Int])? {
        try checkInput(shape: shape, built: inputShape, label: label)
        let spatial = Array(shape.dropFirst().dropLast())
        guard spatial.count == 2, spatial.allSatisfy({ $0 > 0 }), amounts.count == 2 else { return nil }
        let padded = zip(spatial, amounts).map { ShapeMath.saturatingSum($0, $1.0, $1.1) }
        try ShapeMath.sampleCount(padded + [channels], at: label)
        return (spatial, padded)
    }

    /// `window`, placed over spatial axis `axis` of the padded image, moved onto the unpadded one
    /// of `length` that is read in place: the same taps, those in the padding now outside the input.
    func readingInPlace(_ window: WindowAxis, axis: Int, length: Int) -> WindowAxis {
        var moved = window
        moved.input = length
        moved.padBefore += amounts[axis].0
        return moved
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

/// How `UpSampling2D`, `Resizing` and `ops.image.resize` fill the new cells.
package enum Interpolation: String, Sendable, CaseIterable {
    case nearest, bilinear, bicubic, area, lanczos3, lanczos5, gaussian, mitchellcubic
}

/// `UpSampling1D/2D/3D`: enlarges each sample by whole factors. Nearest repeats each cell; the
/// other interpolations (2-D only) follow TensorFlow's `tf.image.resize` (half-pixel centres, no
/// antialiasing), which Keras calls.
///
/// Config: `size` (1-D: 2; 2-D: (2, 2), an integer or (rows, columns); 3-D: (2, 2, 2), an integer
/// or (depth, rows, columns)), `interpolation` (2-D: "nearest" | "bilinear" | "bicubic" | "area" |
/// "lanczos3" | "lanczos5", and Keras 2's "gaussian" | "mitchellcubic"), `data_format` ("channels_last").
public struct UpSampling: Layer {
    let label: String
    let inputShape: [Int?]
    /// The factor of each spatial axis.
    let factors: [Int]
    let interpolation: Interpolation
    /// Separable weights for interpolations other than nearest (2-D, known size; made per call otherwise).
    let weights: (rows: ResampleWeights, columns: ResampleWeights)?
    public let outputShape: [Int?]

    private static func scaled(_ context: LayerContext, factors: [Int]) throws -> [Int?] {
        var output = context.inputShape
        for (axis, factor) in factors.enumerated() { output[axis] = output[axis].map { $0 * factor } }
        try context.sampleCount(output, key: "size")
        return output
    }

    static func factory1D(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(2, meaning: spatialMeaning(1))
        _ = try context.inputDimension(-1)
        let size = try context.positiveInt("size", default: 2, maximum: 1 << 16)
        return UpSampling(label: context.label, inputShape: context.inputShape, factors: [size], interpolation: .nearest, weights: nil,
                          outputShape: try scaled(context, factors: [size]))
    }

    static func factory3D(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(4, meaning: spatialMeaning(3))
        _ = try context.inputDimension(-1)
        try requireChannelsLast(context)
        let size = try context.positiveInts("size", count: 3, default: [2, 2, 2], maximum: 1 << 16)
        return UpSampling(label: context.label, inputShape: context.inputShape, factors: size, interpolation: .nearest, weights: nil,
                          outputShape: try scaled(context, factors: size))
    }

    static func factory2D(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(3, meaning: spatialMeaning(2))
        let channels = try context.inputDimension(2)
        try requireChannelsLast(context)
        let size = try context.positiveInts("size", count: 2, default: [2, 2], maximum: 1 << 16)
        let name = try context.choice("interpolation", default: "nearest", allowed: Interpolation.allCases.map(\.rawValue))
        let interpolation = Interpolation(rawValue: name) ?? .nearest
        let output = try scaled(context, factors: size)
        guard let height = context.inputShape[0], let width = context.inputShape[1], let outputHeight = output[0], let outputWidth = output[1] else {
            // Sizes known only at run time: the interpolation weights are made per call.
            return UpSampling(label: context.label, inputShape: context.inputShape, factors: size, interpolation: interpolation,
                              weights: nil, outputShape: output)
        }
        // Interpolation weights are precomputed per output row and column.
        if interpolation != .nearest, max(outputHeight, outputWidth) > 1 << 20 {
            throw context.error("interpolation \"\(name)\" would produce \(outputHeight)×\(outputWidth) images; the largest side accepted is \(1 << 20) (\"nearest\" has no such limit)", key: "size")
        }
        return UpSampling(label: context.label, inputShape: context.inputShape, factors: size, interpolation: interpolation,
                          weights: try weights(interpolation, height: height, width: width, factors: size, label: context.label),
                          outputShape: [outputHeight, outputWidth, channels])
    }

    /// The separable weights of a 2-D interpolation other than nearest (nil for nearest).
    private static func weights(_ interpolation: Interpolation, height: Int, width: Int, factors: [Int],
                                label: String) throws -> (rows: ResampleWeights, columns: ResampleWeights)? {
        guard interpolation != .nearest else { return nil }
        let outputHeight = height * factors[0], outputWidth = width * factors[1]
        guard max(outputHeight, outputWidth) <= 1 << 20 else {
            throw NNError(.input, label, "interpolation \"\(interpolation.rawValue)\" would produce \(outputHeight)×\(outputWidth) images; the largest side accepted is \(1 << 20)")
        }
        return (ResampleWeights.resize(interpolation, input: height, output: outputHeight),
                ResampleWeights.resize(interpolation, input: width, output: outputWidth))
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputShape, label: label)
        // As a volume: (depth, height, width), with depth and height of one for fewer spatial axes.
        let spatial = Array(repeating: 1, count: 3 - factors.count) + Array(input.shape.dropFirst().dropLast())
        let factor = Array(repeating: 1, count: 3 - factors.count) + factors
        let channels = input.shape[input.rank - 1]
        let output = (0..<3).map { spatial[$0] * factor[$0] }
        try ShapeMath.sampleCount(output + [channels], at: label)
        let count = input.batch * output[0] * output[1] * output[2] * channels
        var weights = self.weights
        if weights == nil, factors.count == 2 {
            weights = try Self.weights(interpolation, height: spatial[1], width: spatial[2], factors: factors, label: label)
        }
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                if let weights {
                    resample2D(x, batch: input.batch, channels: channels, rows: weights.rows, columns: weights.columns, into: buffer)
                } else {
                    upsampleNearest3D(x, batch: input.batch, depth: spatial[0], height: spatial[1], width: spatial[2], channels: channels,
                                      depthFactor: factor[0], rowFactor: factor[1], columnFactor: factor[2], into: buffer)
                }
            }
            initialized = count
        }
        return Tensor(shape: [input.batch] + output.suffix(factors.count) + [channels], data: data)
    }
}

extension UpSampling: PlansMemory {
    /// The output, and for interpolations other than nearest one image resampled along the width.
    public func workingSet(input: [Int]) -> WorkingSet {
        var shape = input
        for (axis, factor) in factors.enumerated() where axis + 1 < shape.count {
            shape[axis + 1] = ShapeMath.saturatingProduct([shape[axis + 1], factor])
        }
        let across = weights == nil || shape.count != 4 ? 0 : ShapeMath.saturatingProduct([input[1], shape[2], shape[3]])
        return WorkingSet(outputShape: shape, scratch: across, scratchMeaning: "one image resampled along the width")
    }
}

/// `Permute`: reorders the axes of each sample; `dims` lists, for each output axis, the input axis
/// it takes (1-based, the batch axis excluded), as `ops.transpose(x, (0,) + dims)`. Keras 3 drops
/// the mask here.
///
/// Config: `dims` (a permutation of 1…rank).
public struct Permute: Layer {
    let label: String
    let inputShape: [Int?]
    /// 0-based input axis of each output axis.
    let order: [Int]
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        let dims = try context.intList("dims")
        let rank = context.inputShape.count
        guard dims.sorted() == Array(1...max(rank, 1)), dims.count == rank else {
            throw context.error("'dims' must be a permutation of 1…\(rank) for an input of shape \(describeShape(context.inputShape)), found \(dims)", key: "dims")
        }
        let order = dims.map { $0 - 1 }
        return Permute(label: context.label, inputShape: context.inputShape, order: order, outputShape: order.map { context.inputShape[$0] })
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputShape, label: label)
        let shape = Array(input.shape.dropFirst())
        let count = input.data.count
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                permuteAxes(x, batch: input.batch, shape: shape, order: order, into: buffer)
            }
            initialized = count
        }
        return Tensor(shape: [input.batch] + order.map { shape[$0] }, data: data)
    }
}

extension Permute: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        WorkingSet(outputShape: [input.first ?? 1] + order.map { $0 + 1 < input.count ? input[$0 + 1] : 1 })
    }
}

extension Builtins {
    static func registerReshaping(_ registry: LayerRegistry) {
        registry.register("ZeroPadding2D", origin: "builtin", summary: "Adds rows and columns of zeros around each image.",
                          factory: channelsFirstCapable(SpatialPadding.paddingFactory(spatialRank: 2)))
        registry.register("ZeroPadding1D", origin: "builtin", summary: "Adds zero steps at the start and end of each sequence.",
                          factory: channelsFirstCapable(SpatialPadding.paddingFactory(spatialRank: 1)))
        registry.register("Cropping2D", origin: "builtin", summary: "Removes rows and columns from the edges of each image.",
                          factory: channelsFirstCapable(SpatialPadding.croppingFactory(spatialRank: 2)))
        registry.register("Cropping1D", origin: "builtin", summary: "Removes steps from the start and end of each sequence.",
                          factory: SpatialPadding.croppingFactory(spatialRank: 1))
        registry.register("UpSampling2D", origin: "builtin",
                          summary: "Enlarges each image by whole factors (nearest, bilinear, bicubic, area or Lanczos).",
                          factory: channelsFirstCapable(UpSampling.factory2D))
        registry.register("ZeroPadding3D", origin: "builtin", summary: "Adds slices, rows and columns of zeros around each volume.",
                          factory: channelsFirstCapable(SpatialPadding.paddingFactory(spatialRank: 3)))
        registry.register("Cropping3D", origin: "builtin", summary: "Removes slices, rows and columns from the edges of each volume.",
                          factory: channelsFirstCapable(SpatialPadding.croppingFactory(spatialRank: 3)))
        registry.register("UpSampling3D", origin: "builtin", summary: "Repeats each cell of a volume by whole factors along depth, height and width.",
                          factory: channelsFirstCapable(UpSampling.factory3D))
        registry.register("Permute", origin: "builtin", summary: "Reorders the axes of each sample (dims, 1-based).",
                          factory: Permute.factory)
        registry.register("Identity", origin: "builtin", summary: "Passes its input through, mask included.",
                          factory: { context in Identity(outputShape: context.inputShape) })
        registry.register("UpSampling1D", origin: "builtin", summary: "Repeats each time step size times.",
                          factory: UpSampling.factory1D)
    }
}
