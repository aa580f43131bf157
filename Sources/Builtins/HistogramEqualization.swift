import LayerRegistry
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `ContrastLimitedAdaptiveHistogramEqualization` (Keras 3, image_preprocessing/clahe.py): CLAHE,
/// which Keras applies at inference too, computed as Keras does in float32. Each image is taken
/// from `value_range` to [0, 255], padded at the bottom and right by reflection (the edge
/// repeated, numpy's "symmetric") to whole tiles of a `tile_grid_size` grid; each tile's
/// 256-bin histogram per channel (a value's bin: cast to int32, then clipped to 0…255) is clipped
/// at clip_limit · tile pixels / 256 with the excess spread evenly, and its cumulative sum, less
/// its least value, scaled to [0, 255] (divided by tile pixels less that value, or by 1 where
/// that is 0); each pixel's value (clipped to 0…255, then cast) is then looked up in the four
/// nearest tiles' maps (past the grid's edge, its edge tile's, as Keras extends it) and interpolated
/// bilinearly by where the pixel sits between the tiles' centres; then back to `value_range`.
///
/// Config: `value_range` ([0, 255]), `clip_limit` (4.0; 0 or less: no clipping),
/// `tile_grid_size` ([8, 8]), `data_format` (channels-first through `channelsFirstCapable`).
public struct ContrastLimitedEqualization: Layer {
    let low: Float
    let high: Float
    let clipLimit: Double
    let grid: (rows: Int, columns: Int)
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(3, meaning: spatialMeaning(2))
        let range = try context.numbers("value_range") ?? [0, 255]
        guard range.count == 2, range.allSatisfy({ $0.isFinite && abs($0) <= Double(Float.greatestFiniteMagnitude) }), range[0] != range[1] else {
            throw context.error("'value_range' must be 2 different finite numbers, found \(range)", key: "value_range")
        }
        let clipLimit = try context.double("clip_limit", default: 4)
        let grid = try context.positiveInts("tile_grid_size", count: 2, default: [8, 8], maximum: 1 << 12)
        _ = try context.choice("data_format", default: "channels_last", allowed: ["channels_last"])
        return ContrastLimitedEqualization(low: Float(range[0]), high: Float(range[1]), clipLimit: clipLimit,
                                           grid: (grid[0], grid[1]), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.rank == 4 else {
            throw NNError(.input, "ContrastLimitedAdaptiveHistogramEqualization", "expects images (batch, height, width, channels), found shape \(input.shape)")
        }
        let height = input.shape[1], width = input.shape[2], channels = input.shape[3]
        let tileHeight = (height + grid.rows - 1) / grid.rows, tileWidth = (width + grid.columns - 1) / grid.columns
        let paddedHeight = tileHeight * grid.rows, paddedWidth = tileWidth * grid.columns
        guard paddedHeight - height <= height, paddedWidth - width <= width else {
            throw NNError(.input, "ContrastLimitedAdaptiveHistogramEqualization", "a \(height)×\(width) image is too small for a \(grid.rows)×\(grid.columns) tile grid (its padding would reflect more than the image)")
        }
        _ = try ShapeMath.sampleCount([grid.rows, grid.columns, channels, 256], of: "the tiles' maps", at: "ContrastLimitedAdaptiveHistogramEqualization")
        let range = ByteRange(low: low, high: high)
        /// Numpy's "symmetric" padding: past the end, the edge again, then back inward.
        func source(_ index: Int, _ size: Int) -> Int { index < size ? index : 2 * size - 1 - index }
        /// TensorFlow's float → int32 cast on x86 (NaN and out-of-range values give int32's least).
        func int32(_ v: Float) -> Int { v > -2_147_483_648 && v < 2_147_483_648 ? Int(v.rounded(.towardZero)) : Int(Int32.min) }
        let tilePixels = tileHeight * tileWidth
        let limit = Float(clipLimit * Double(tilePixels) / 256)
        // Each row's and column's two tiles and weight. Keras indexes a grid extended by a copy of
        // each edge tile (positions 0…tiles + 1); position p is tile p − 1, clamped.
        func axis(_ count: Int, tile: Int, tiles: Int) -> [(Int, Int, Float)] {
            func clamped(_ position: Float) -> Int { min(max(Int(min(max(position, 0), Float(tiles + 1))) - 1, 0), tiles - 1) }
            return (0..<count).map { position in
                let at = (Float(position) - Float(Double(tile) / 2)) / Float(tile) + 1
                let first = at.rounded(.down)
                return (clamped(first), clamped(first + 1), at - first)
            }
        }
        let rowsAt = axis(height, tile: tileHeight, tiles: grid.rows), columnsAt = axis(width, tile: tileWidth, tiles: grid.columns)
        var maps = [Float](repeating: 0, count: grid.rows * grid.columns * channels * 256)
        var bytes = [Float](repeating: 0, count: height * width * channels)
        var output = input
        for image in 0..<input.batch {
            let base = image * height * width * channels
            for index in bytes.indices { bytes[index] = range.toBytes(input.data[base + index]) }
            for tileRow in 0..<grid.rows {
                for tileColumn in 0..<grid.columns {
                    for channel in 0..<channels {
                        var histogram = [Float](repeating: 0, count: 256)
                        for y in (tileRow * tileHeight)..<((tileRow + 1) * tileHeight) {
                            for x in (tileColumn * tileWidth)..<((tileColumn + 1) * tileWidth) {
                                let value = bytes[(source(y, height) * width + source(x, width)) * channels + channel]
                                histogram[min(max(int32(value), 0), 255)] += 1
                            }
                        }
                        if clipLimit > 0 {
                            var excess: Float = 0
                            for bin in 0..<256 {
                                let clipped = min(max(histogram[bin], 0), limit)
                                excess += histogram[bin] - clipped
                                histogram[bin] = clipped
                            }
                            let spread = excess / 256
                            for bin in 0..<256 { histogram[bin] += spread }
                        }
                        var sum: Float = 0
                        for bin in 0..<256 {
                            sum += histogram[bin]
                            histogram[bin] = sum
                        }
                        let least = histogram.min() ?? 0
                        var denominator = Float(tilePixels) - least
                        if denominator == 0 { denominator = 1 }
                        let start = ((tileRow * grid.columns + tileColumn) * channels + channel) * 256
                        for bin in 0..<256 { maps[start + bin] = min(max((histogram[bin] - least) * 255 / denominator, 0), 255) }
                    }
                }
            }
            for y in 0..<height {
                let (top, bottom, wy) = rowsAt[y]
                for x in 0..<width {
                    let (left, right, wx) = columnsAt[x]
                    for channel in 0..<channels {
                        let index = (y * width + x) * channels + channel
                        let value = min(max(bytes[index], 0), 255)
                        let bin = value.isNaN ? Int(Int32.min) : int32(value)
                        guard bin >= 0, bin < 256 else {
                            // Keras's take then reads outside the map: out of reach here; keep NaN.
                            output.data[base + index] = .nan
                            continue
                        }
                        func map(_ row: Int, _ column: Int) -> Float { maps[((row * grid.columns + column) * channels + channel) * 256 + bin] }
                        let upper = map(top, left) * (1 - wx) + map(top, right) * wx
                        let lower = map(bottom, left) * (1 - wx) + map(bottom, right) * wx
                        output.data[base + index] = range.fromBytes(upper * (1 - wy) + lower * wy)
                    }
                }
            }
        }
        return output
    }
}

extension Builtins {
    static func registerHistogramEqualization(_ registry: LayerRegistry) {
        registry.register("ContrastLimitedAdaptiveHistogramEqualization", origin: "builtin",
                          summary: "CLAHE per channel over a grid of tiles (as Keras, at inference too).",
                          factory: channelsFirstCapable(ContrastLimitedEqualization.factory))
    }
}
