import CKernels
import LayerRegistry
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Zero-pads (or, with negative amounts, crops) the two spatial axes. A 1-D layer is the same with a
/// height of one.
///
/// input [batch, H, W, C] → output [batch, H + top + bottom, W + left + right, C]
package func pad2D(_ input: UnsafeBufferPointer<Float>, batch: Int, height: Int, width: Int, channels: Int,
                   top: Int, bottom: Int, left: Int, right: Int, fill: Float = 0, into output: UnsafeMutableBufferPointer<Float>) {
    guard let x = input.baseAddress, let y = output.baseAddress else { return }
    let outputHeight = height + top + bottom, outputWidth = width + left + right
    guard outputHeight > 0, outputWidth > 0 else { return }
    // The input columns that land in the output, and where they land.
    let firstColumn = max(0, -left), endColumn = min(width, width + right)
    let copied = max(endColumn - firstColumn, 0) * channels
    let before = max(left, 0) * channels, after = max(right, 0) * channels
    var out = y
    for image in 0..<batch {
        for outRow in 0..<outputHeight {
            let inputRow = outRow - top
            if inputRow < 0 || inputRow >= height {
                out.update(repeating: fill, count: outputWidth * channels)
            } else {
                out.update(repeating: fill, count: before)
                (out + before).update(from: x + ((image * height + inputRow) * width + firstColumn) * channels, count: copied)
                (out + before + copied).update(repeating: fill, count: after)
            }
            out += outputWidth * channels
        }
    }
}

/// Zero padding (positive amounts) or cropping (negative ones) of volumes: each output slice is
/// `pad2D` of its input slice, or zeros where it falls in the padding. A 2-D image is a volume of
/// one slice with no depth amounts.
///
/// input [batch, D, H, W, C] → output [batch, D + front + back, H + top + bottom, W + left + right, C]
package func pad3D(_ input: UnsafeBufferPointer<Float>, batch: Int, depth: Int, height: Int, width: Int, channels: Int,
                   front: Int, back: Int, top: Int, bottom: Int, left: Int, right: Int, into output: UnsafeMutableBufferPointer<Float>) {
    guard let x = input.baseAddress, let y = output.baseAddress else { return }
    let outputDepth = depth + front + back
    let inputSlice = height * width * channels, outputSlice = (height + top + bottom) * (width + left + right) * channels
    guard outputDepth > 0, outputSlice > 0 else { return }
    for image in 0..<batch {
        for outSlice in 0..<outputDepth {
            let inSlice = outSlice - front
            let out = y + (image * outputDepth + outSlice) * outputSlice
            if inSlice < 0 || inSlice >= depth {
                out.update(repeating: 0, count: outputSlice)
            } else {
                pad2D(UnsafeBufferPointer(start: x + (image * depth + inSlice) * inputSlice, count: inputSlice), batch: 1,
                      height: height, width: width, channels: channels, top: top, bottom: bottom, left: left, right: right,
                      into: UnsafeMutableBufferPointer(start: out, count: outputSlice))
            }
        }
    }
}

/// Nearest-neighbour upsampling of volumes by whole factors: each slice upsampled as an image,
/// then repeated `depthFactor` times (Keras's `ops.repeat` on each axis).
///
/// input [batch, D, H, W, C] → output [batch, D·depthFactor, H·rowFactor, W·columnFactor, C]
package func upsampleNearest3D(_ input: UnsafeBufferPointer<Float>, batch: Int, depth: Int, height: Int, width: Int, channels: Int,
                               depthFactor: Int, rowFactor: Int, columnFactor: Int, into output: UnsafeMutableBufferPointer<Float>) {
    guard let x = input.baseAddress, let y = output.baseAddress else { return }
    let inputSlice = height * width * channels, outputSlice = inputSlice * rowFactor * columnFactor
    var out = y
    for slice in 0..<(batch * depth) {
        upsampleNearest2D(UnsafeBufferPointer(start: x + slice * inputSlice, count: inputSlice), batch: 1, height: height, width: width,
                          channels: channels, rowFactor: rowFactor, columnFactor: columnFactor,
                          into: UnsafeMutableBufferPointer(start: out, count: outputSlice))
        for copy in 1..<max(depthFactor, 1) { (out + copy * outputSlice).update(from: out, count: outputSlice) }
        out += outputSlice * max(depthFactor, 1)
    }
}

/// Reorders the per-sample axes: output axis i is input axis `order[i]` (a permutation of
/// 0..<shape.count). The innermost loop runs along the last output axis, a contiguous copy when
/// that axis stays last.
///
/// input [batch, shape…] → output [batch, shape[order[0]], …, shape[order[n-1]]]
package func permuteAxes(_ input: UnsafeBufferPointer<Float>, batch: Int, shape: [Int], order: [Int],
                         into output: UnsafeMutableBufferPointer<Float>) {
    guard let x = input.baseAddress, var out = output.baseAddress, let lastAxis = order.last else { return }
    if let (outer, rows, columns) = transposeView(shape: shape, order: order) {
        transposeTiles(x, count: batch * outer, rows: rows, columns: columns, into: out)
        return
    }
    var strides = Array(repeating: 1, count: shape.count)
    for axis in stride(from: shape.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
    let sizes = order.map { shape[$0] }, steps = order.map { strides[$0] }
    let sample = ShapeMath.saturatingProduct(shape)  // the caller checked this count
    let inner = sizes[sizes.count - 1], innerStep = steps[steps.count - 1]
    guard sample > 0 else { return }
    let outer = sample / inner
    for image in 0..<batch {
        let base = x + image * sample
        var index = Array(repeating: 0, count: sizes.count)
        var offset = 0
        for _ in 0..<outer {
            if lastAxis == shape.count - 1 {
                out.update(from: base + offset, count: inner)
            } else {
                var cell = base + offset
                for position in 0..<inner { out[position] = cell.pointee; cell += innerStep }
            }
            out += inner
            // Next index over the outer output axes, last fastest.
            var axis = sizes.count - 2
            while axis >= 0 {
                index[axis] += 1
                offset += steps[axis]
                if index[axis] < sizes[axis] { break }
                offset -= index[axis] * steps[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// A permutation that keeps the first axes and swaps two runs of the others (the channels moved
/// last, or moved back: `ChannelsFirst`) is a batch of matrix transposes: each (rows, columns)
/// block becomes (columns, rows). Returns (blocks per sample, rows, columns), or nil.
func transposeView(shape: [Int], order: [Int]) -> (outer: Int, rows: Int, columns: Int)? {
    let kept = order.indices.first { order[$0] != $0 } ?? order.count
    guard kept < order.count else { return nil }
    let split = order[kept]  // the first axis of the run that moves to the front of the rest
    guard split > kept, order[kept...] == ArraySlice(Array(split..<order.count) + Array(kept..<split)) else { return nil }
    return (ShapeMath.saturatingProduct(shape[..<kept]), ShapeMath.saturatingProduct(shape[kept..<split]),
            ShapeMath.saturatingProduct(shape[split...]))
}

/// `count` row-major (rows, columns) matrices from `x`, each written transposed to `y`
/// (`nnb_transpose`: tiles that stay in L1; a plain strided walk misses the cache on every read
/// when the rows are long), in bands of rows split across the allowed threads.
func transposeTiles(_ x: UnsafePointer<Float>, count: Int, rows: Int, columns: Int, into y: UnsafeMutablePointer<Float>) {
    // A moved element costs about what eight multiply-adds do (the split's unit): memory-bound.
    let parts = nnb_transpose_parts(count, rows), level = Int32(Gemm.kernelPath.rawValue)
    runInParts(parts, work: ShapeMath.saturatingProduct([count, rows, columns, 8])) { range in
        nnb_transpose(x, rows, columns, y, range.lowerBound, range.count, level)
    }
}

/// The naive twin of `permuteAxes`: each output element's input index computed from scratch.
package func permuteAxesNaive(_ input: [Float], batch: Int, shape: [Int], order: [Int]) -> [Float] {
    let sample = ShapeMath.saturatingProduct(shape)
    let sizes = order.map { shape[$0] }
    var output: [Float] = []
    output.reserveCapacity(batch * sample)
    for image in 0..<batch {
        for flat in 0..<sample {
            var rest = flat, outIndex = Array(repeating: 0, count: sizes.count)
            for axis in stride(from: sizes.count - 1, through: 0, by: -1) { outIndex[axis] = rest % sizes[axis]; rest /= sizes[axis] }
            var inIndex = Array(repeating: 0, count: shape.count)
            for (axis, source) in order.enumerated() { inIndex[source] = outIndex[axis] }
            let position = inIndex.enumerated().reduce(0) { $0 * shape[$1.offset] + $1.element }
            output.append(input[image * sample + position])
        }
    }
    return output
}

/// Nearest-neighbour upsampling by whole factors: each cell repeated `rowFactor` × `columnFactor`
/// times (Keras's `ops.repeat` on each axis).
///
/// input [batch, H, W, C] → output [batch, H·rowFactor, W·columnFactor, C]
package func upsampleNearest2D(_ input: UnsafeBufferPointer<Float>, batch: Int, height: Int, width: Int, channels: Int,
                               rowFactor: Int, columnFactor: Int, into output: UnsafeMutableBufferPointer<Float>) {
    guard let x = input.baseAddress, let y = output.baseAddress else { return }
    let outputRow = width * columnFactor * channels
    var out = y
    for image in 0..<batch {
        for row in 0..<height {
            let first = out
            var cell = x + (image * height + row) * width * channels
            for _ in 0..<width {
                for _ in 0..<columnFactor {
                    out.update(from: cell, count: channels)
                    out += channels
                }
                cell += channels
            }
            for _ in 1..<max(rowFactor, 1) {
                out.update(from: first, count: outputRow)
                out += outputRow
            }
        }
    }
}

/// Separable interpolation weights along one axis: output position `o` is
/// Σ weights[o·taps + t] · input[indices[o·taps + t]] over t in 0..<taps.
package struct ResampleWeights: Sendable, Equatable {
    package var input: Int
    package var output: Int
    package var taps: Int
    package var indices: [Int]
    package var weights: [Float]

    package init(input: Int, output: Int, taps: Int, indices: [Int], weights: [Float]) {
        self.input = input
        self.output = output
        self.taps = taps
        self.indices = indices
        self.weights = weights
    }

    /// TensorFlow's half-pixel source coordinate of output `position`: (o + 0.5)·in/out - 0.5.
    @inline(__always)
    static func halfPixel(_ position: Int, scale: Float) -> Float {
        (Float(position) + 0.5) * scale - 0.5
    }

    /// `resize_nearest_neighbor` with half-pixel centres: the cell ⌊(o + 0.5)·in/out⌋, clamped.
    package static func nearest(input: Int, output: Int) -> ResampleWeights {
        let scale = Float(input) / Float(output)
        let indices = (0..<output).map { min(max(Int(((Float($0) + 0.5) * scale).rounded(.down)), 0), input - 1) }
        return ResampleWeights(input: input, output: output, taps: 1, indices: indices, weights: Array(repeating: 1, count: output))
    }

    /// The weights `tf.image.resize(method: interpolation, antialias: antialias)` uses along one
    /// axis. With antialias every method but nearest and area is `scale_and_translate` with its
    /// kernel (bilinear a triangle, bicubic Keys' cubic), widened when downsampling.
    package static func resize(_ interpolation: Interpolation, input: Int, output: Int, antialias: Bool = false) -> ResampleWeights {
        if antialias {
            switch interpolation {
            case .bilinear: return .scaleAndTranslate(input: input, output: output, filter: .triangle, antialias: true)
            case .bicubic: return .scaleAndTranslate(input: input, output: output, filter: .keysCubic, antialias: true)
            case .lanczos3: return .scaleAndTranslate(input: input, output: output, filter: .lanczos3, antialias: true)
            case .lanczos5: return .scaleAndTranslate(input: input, output: output, filter: .lanczos5, antialias: true)
            case .gaussian: return .scaleAndTranslate(input: input, output: output, filter: .gaussian, antialias: true)
            case .mitchellcubic: return .scaleAndTranslate(input: input, output: output, filter: .mitchellCubic, antialias: true)
            case .nearest, .area: break
            }
        }
        return switch interpolation {
        case .nearest: .nearest(input: input, output: output)
        case .bilinear: .bilinear(input: input, output: output)
        case .bicubic: .bicubic(input: input, output: output)
        case .area: .area(input: input, output: output)
        case .lanczos3: .scaleAndTranslate(input: input, output: output, filter: .lanczos3)
        case .lanczos5: .scaleAndTranslate(input: input, output: output, filter: .lanczos5)
        case .gaussian: .scaleAndTranslate(input: input, output: output, filter: .gaussian)
        case .mitchellcubic: .scaleAndTranslate(input: input, output: output, filter: .mitchellCubic)
        }
    }

    /// `resize_bilinear` with half-pixel centres: lerp between ⌊s⌋ and ⌈s⌉, clamped to the edges.
    package static func bilinear(input: Int, output: Int) -> ResampleWeights {
        let scale = Float(input) / Float(output)
        var indices: [Int] = [], weights: [Float] = []
        for position in 0..<output {
            let source = halfPixel(position, scale: scale)
            let floor = source.rounded(.down)
            let lerp = source - floor
            indices += [min(max(Int(floor), 0), input - 1), min(max(Int(source.rounded(.up)), 0), input - 1)]
            weights += [1 - lerp, lerp]
        }
        return ResampleWeights(input: input, output: output, taps: 2, indices: indices, weights: weights)
    }

    /// `resize_bicubic` with half-pixel centres: Keys' cubic (a = -0.5) read from TensorFlow's
    /// 1024-entry table; taps outside the input get weight 0 and the rest are renormalised.
    package static func bicubic(input: Int, output: Int) -> ResampleWeights {
        let tableSize = 1024
        let a: Float = -0.5
        var table = [Float](repeating: 0, count: (tableSize + 1) * 2)
        for i in 0...tableSize {
            var x = Float(Double(i) / Double(tableSize))
            table[i * 2] = ((a + 2) * x - (a + 3)) * x * x + 1
            x += 1
            table[i * 2 + 1] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        }
        let scale = Float(input) / Float(output)
        var indices: [Int] = [], weights: [Float] = []
        for position in 0..<output {
            let source = halfPixel(position, scale: scale)
            let base = Int(source.rounded(.down))
            let offset = Int((( source - source.rounded(.down)) * Float(tableSize)).rounded(.toNearestOrEven))
            let raw = [table[offset * 2 + 1], table[offset * 2], table[(tableSize - offset) * 2], table[(tableSize - offset) * 2 + 1]]
            var tapWeights: [Float] = []
            for tap in 0..<4 {
                let index = base - 1 + tap
                indices.append(min(max(index, 0), input - 1))
                tapWeights.append(index >= 0 && index < input ? raw[tap] : 0)
            }
            let sum = tapWeights.reduce(0, +)
            if abs(sum) >= 1000 * Float.leastNormalMagnitude { tapWeights = tapWeights.map { $0 * (1 / sum) } }
            weights += tapWeights
        }
        return ResampleWeights(input: input, output: output, taps: 4, indices: indices, weights: weights)
    }

    /// `resize_area`: each output cell averages the input it covers, weighted by overlap.
    package static func area(input: Int, output: Int) -> ResampleWeights {
        let scale = Float(input) / Float(output)
        var spans: [[(Int, Float)]] = []
        for position in 0..<output {
            let start = Float(position) * scale, end = Float(position + 1) * scale
            var span: [(Int, Float)] = []
            var cell = Int(start.rounded(.down))
            while Float(cell) < end {
                let overlap = min(Float(cell + 1), end) - max(Float(cell), start)
                span.append((min(max(cell, 0), input - 1), overlap / scale))
                cell += 1
            }
            spans.append(span)
        }
        return padded(spans, input: input)
    }

    /// `scale_and_translate` with `filter`: the filter sampled at the input centres within its
    /// radius of each output centre, normalised to sum to one. With `antialias`, a downsampling
    /// filter is widened by in/out (kernel_scale = max(in/out, 1)), as TensorFlow does.
    package static func scaleAndTranslate(input: Int, output: Int, filter: ResampleFilter, antialias: Bool = false) -> ResampleWeights {
        let inverseScale = 1 / (Float(output) / Float(input))
        let kernelScale = antialias ? max(inverseScale, 1) : 1
        let radius = filter.radius * kernelScale, shrink = 1 / kernelScale
        var spans: [[(Int, Float)]] = []
        for position in 0..<output {
            let sample = (Float(position) + 0.5) * inverseScale
            guard sample >= 0, sample <= Float(input) else { spans.append([]); continue }
            let start = min(max(Int((sample - radius - 0.5).rounded(.up)), 0), input - 1)
            let end = min(max(Int((sample + radius - 0.5).rounded(.down)), 0), input - 1) + 1
            var span: [(Int, Float)] = []
            var total: Float = 0
            for source in start..<end {
                let weight = filter(abs((Float(source) + 0.5 - sample) * shrink))
                total += weight
                span.append((source, weight))
            }
            let normal = abs(total) >= 1000 * Float.leastNormalMagnitude
            spans.append(span.map { ($0.0, normal ? $0.1 * (1 / total) : 0) })
        }
        return padded(spans, input: input)
    }

    /// Spans of varying length as fixed-width taps (unused taps weigh nothing).
    private static func padded(_ spans: [[(Int, Float)]], input: Int) -> ResampleWeights {
        let taps = max(spans.map(\.count).max() ?? 1, 1)
        var indices: [Int] = [], weights: [Float] = []
        for span in spans {
            for tap in 0..<taps {
                indices.append(tap < span.count ? span[tap].0 : 0)
                weights.append(tap < span.count ? span[tap].1 : 0)
            }
        }
        return ResampleWeights(input: input, output: spans.count, taps: taps, indices: indices, weights: weights)
    }
}

/// The filters of TensorFlow's `scale_and_translate`, as `tf.image.resize` uses them.
package enum ResampleFilter: Sendable {
    case lanczos3, lanczos5, gaussian, mitchellCubic, triangle, keysCubic

    var radius: Float {
        switch self {
        case .triangle: 1
        case .keysCubic: 2
        case .lanczos3: 3
        case .lanczos5: 5
        case .gaussian: 1.5
        case .mitchellCubic: 2
        }
    }

    /// The filter's weight at distance `value` from the sample point.
    func callAsFunction(_ value: Float) -> Float {
        let x = abs(value)
        switch self {
        case .lanczos3, .lanczos5:
            let r = radius
            if x > r { return 0 }
            if x <= 1e-3 { return 1 }
            let pi: Float = 3.14159265359
            return r * sin(pi * x) * sin(pi * x / r) / (pi * pi * x * x)
        case .gaussian:
            // sigma = radius / 3 = 0.5, Turkowski's choice for a 3-pixel support.
            if x >= radius { return 0 }
            let sigma = radius / 3
            return Float(exp(-Double(x) * Double(x) / (2 * Double(sigma) * Double(sigma))))
        case .triangle:
            return x < 1 ? 1 - x : 0
        case .keysCubic:
            // Keys' cubic with a = -0.5, as TensorFlow's KeysCubicKernelFunc.
            if x >= 2 { return 0 }
            if x >= 1 { return ((-0.5 * x + 2.5) * x - 4) * x + 2 }
            return ((1.5 * x - 2.5) * x) * x + 1
        case .mitchellCubic:
            // Mitchell–Netravali with B = C = 1/3.
            if x >= 2 { return 0 }
            if x >= 1 { return (((-7 / 18) * x + 2) * x - 10 / 3) * x + 16 / 9 }
            return (((7 / 6) * x - 2) * x) * x + 8 / 9
        }
    }
}

/// Separable resampling: along the width with `columns`, then along the height with `rows`.
///
/// input [batch, rows.input, columns.input, C] → output [batch, rows.output, columns.output, C]
package func resample2D(_ input: UnsafeBufferPointer<Float>, batch: Int, channels: Int,
                        rows: ResampleWeights, columns: ResampleWeights, into output: UnsafeMutableBufferPointer<Float>) {
    guard let x = input.baseAddress, let y = output.baseAddress, channels > 0 else { return }
    let height = rows.input, width = columns.input
    let outputWidth = columns.output
    let rowSize = outputWidth * channels
    // One image resampled along the width, reused for every output row.
    let across = UnsafeMutablePointer<Float>.allocate(capacity: height * rowSize)
    defer { across.deallocate() }
    columns.indices.withUnsafeBufferPointer { columnIndex in
        columns.weights.withUnsafeBufferPointer { columnWeight in
            rows.indices.withUnsafeBufferPointer { rowIndex in
                rows.weights.withUnsafeBufferPointer { rowWeight in
                    for image in 0..<batch {
                        let source = x + image * height * width * channels
                        var out = across
                        for row in 0..<height {
                            let line = source + row * width * channels
                            for column in 0..<outputWidth {
                                out.update(repeating: 0, count: channels)
                                for tap in 0..<columns.taps {
                                    let weight = columnWeight[column * columns.taps + tap]
                                    if weight == 0 { continue }
                                    let cell = line + columnIndex[column * columns.taps + tap] * channels
                                    for channel in 0..<channels { out[channel] += weight * cell[channel] }
                                }
                                out += channels
                            }
                        }
                        let target = y + image * rows.output * rowSize
                        for row in 0..<rows.output {
                            let out = target + row * rowSize
                            out.update(repeating: 0, count: rowSize)
                            for tap in 0..<rows.taps {
                                let weight = rowWeight[row * rows.taps + tap]
                                if weight == 0 { continue }
                                let line = across + rowIndex[row * rows.taps + tap] * rowSize
                                for index in 0..<rowSize { out[index] += weight * line[index] }
                            }
                        }
                    }
                }
            }
        }
    }
}
