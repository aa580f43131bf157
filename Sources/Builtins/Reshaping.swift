import LayerRegistry

/// `ZeroPadding1D/2D` and `Cropping1D/2D`: move every cell by an offset into a larger (zeros
/// around) or smaller (edges dropped) grid. Config: `padding` / `cropping` as an integer, one per
/// spatial axis, or a (before, after) pair per axis.
public struct PadCrop: Layer {
    public let rank: Int
    /// (before, after) per spatial axis; negative for cropping.
    public let margins: [(Int, Int)]
    public let outputShape: [Int?]

    static func factory(rank: Int, crop: Bool) -> LayerFactory {
        { context in
            try context.requireRank(rank + 1, meaning: rank == 2 ? "(batch, height, width, channels)" : "(batch, steps, features)")
            let key = crop ? "cropping" : "padding"
            let defaultValue: JSONValue = rank == 1 ? .int(1) : .array([.int(crop ? 0 : 1), .int(crop ? 0 : 1)])
            let margins = try pairs(context, key: key, rank: rank, default: defaultValue).map { crop ? (-$0.0, -$0.1) : $0 }
            var shape = context.inputShape
            for axis in 0..<rank {
                guard let size = shape[axis] else {
                    guard rank == 1 else { throw context.error("needs known height and width, found \(describeShape(context.inputShape))") }
                    continue
                }
                let result = size + margins[axis].0 + margins[axis].1
                guard result > 0 else { throw context.error("\(key) removes all of axis \(axis + 1) (size \(size))", key: key) }
                shape[axis] = result
            }
            return PadCrop(rank: rank, margins: margins, outputShape: shape)
        }
    }

    static func pairs(_ context: LayerContext, key: String, rank: Int, default defaultValue: JSONValue) throws -> [(Int, Int)] {
        let raw = context.value(key).flatMap { $0.isNull ? nil : $0 } ?? defaultValue
        func int(_ value: JSONValue) -> Int? {
            if case let .int(number) = value, number >= 0, number < 1 << 20 { return Int(number) }
            return nil
        }
        if let single = int(raw) { return Array(repeating: (single, single), count: rank) }
        if case let .array(items) = raw {
            if rank == 1, items.count == 2, let a = int(items[0]), let b = int(items[1]) { return [(a, b)] }
            if items.count == rank {
                let parsed: [(Int, Int)?] = items.map { item in
                    if let v = int(item) { return (v, v) }
                    if case let .array(pair) = item, pair.count == 2, let a = int(pair[0]), let b = int(pair[1]) { return (a, b) }
                    return nil
                }
                if parsed.allSatisfy({ $0 != nil }) { return parsed.compactMap { $0 } }
            }
        }
        throw context.error("'\(key)' must be a non-negative integer, \(rank) integers, or \(rank) (before, after) pairs, found \(raw.brief())", key: key)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let height = rank == 2 ? input.shape[1] : 1
        let width = input.shape[rank]
        let channels = input.shape[rank + 1]
        let (top, bottom) = rank == 2 ? margins[0] : (0, 0)
        let (left, right) = margins[rank - 1]
        let outH = height + top + bottom, outW = width + left + right
        guard outH > 0, outW > 0 else { throw NNError(.input, "cropping", "removes every cell of an input of shape \(input.shape)") }
        var output = [Float](repeating: 0, count: input.batch * outH * outW * channels)
        for b in 0..<input.batch {
            for h in max(0, -top)..<min(height, outH - top) {
                for w in max(0, -left)..<min(width, outW - left) {
                    let source = ((b * height + h) * width + w) * channels
                    let target = ((b * outH + h + top) * outW + w + left) * channels
                    output.replaceSubrange(target..<(target + channels), with: input.data[source..<(source + channels)])
                }
            }
        }
        return Tensor(shape: [input.batch] + (rank == 2 ? [outH, outW] : [outW]) + [channels], data: output)
    }
}

/// `UpSampling1D` / `UpSampling2D` with nearest-neighbour repetition. Config: `size` (2),
/// `interpolation` ("nearest"; other modes are refused).
public struct UpSampling: Layer {
    public let rank: Int
    public let size: [Int]
    public let outputShape: [Int?]

    static func factory(rank: Int) -> LayerFactory {
        { context in
            try context.requireRank(rank + 1, meaning: rank == 2 ? "(batch, height, width, channels)" : "(batch, steps, features)")
            let size = try context.positiveInts(rank == 1 ? "size" : "size", count: rank, default: Array(repeating: 2, count: rank), maximum: 1 << 12)
            if rank == 2 {
                let mode = try context.string("interpolation", default: "nearest")
                guard mode == "nearest" else {
                    throw context.error("interpolation \"\(mode)\" is not supported yet; only \"nearest\"", key: "interpolation")
                }
            }
            var shape = context.inputShape
            for axis in 0..<rank { shape[axis] = shape[axis].map { $0 * size[axis] } }
            return UpSampling(rank: rank, size: size, outputShape: shape)
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let height = rank == 2 ? input.shape[1] : 1
        let width = input.shape[rank]
        let channels = input.shape[rank + 1]
        let sh = rank == 2 ? size[0] : 1, sw = size[rank - 1]
        let outH = height * sh, outW = width * sw
        var output = [Float](repeating: 0, count: input.batch * outH * outW * channels)
        for b in 0..<input.batch {
            for h in 0..<outH {
                for w in 0..<outW {
                    let source = ((b * height + h / sh) * width + w / sw) * channels
                    let target = ((b * outH + h) * outW + w) * channels
                    output.replaceSubrange(target..<(target + channels), with: input.data[source..<(source + channels)])
                }
            }
        }
        return Tensor(shape: [input.batch] + (rank == 2 ? [outH, outW] : [outW]) + [channels], data: output)
    }
}

extension Builtins {
    static func registerReshaping(_ registry: LayerRegistry) {
        registry.register("ZeroPadding2D", origin: "builtin", summary: "Adds rows and columns of zeros around each image.", factory: PadCrop.factory(rank: 2, crop: false))
        registry.register("ZeroPadding1D", origin: "builtin", summary: "Adds zero steps before and after each sequence.", factory: PadCrop.factory(rank: 1, crop: false))
        registry.register("Cropping2D", origin: "builtin", summary: "Removes rows and columns at the edges of each image.", factory: PadCrop.factory(rank: 2, crop: true))
        registry.register("Cropping1D", origin: "builtin", summary: "Removes steps at the start and end of each sequence.", factory: PadCrop.factory(rank: 1, crop: true))
        registry.register("UpSampling2D", origin: "builtin", summary: "Repeats rows and columns (nearest neighbour).", factory: UpSampling.factory(rank: 2))
        registry.register("UpSampling1D", origin: "builtin", summary: "Repeats each step.", factory: UpSampling.factory(rank: 1))
    }
}
