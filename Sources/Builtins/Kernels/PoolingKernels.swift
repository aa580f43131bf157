import CKernels
import LayerRegistry

/// The shape of a pooling, channels last, over up to three spatial axes (depth, rows, columns).
/// A 2-D pooling has a depth of one; a 1-D pooling also a height of one.
package struct PoolingGeometry: Sendable, Equatable {
    package var depth: WindowAxis
    package var rows: WindowAxis
    package var columns: WindowAxis
    package var channels: Int
    /// Whether cells outside the input are zeros that take part in a max (a `ZeroPadding2D` fused
    /// in), rather than no part (TensorFlow's "SAME").
    package var zeroPadded = false

    /// A window that leaves an axis of length one as it is.
    package static let single = WindowAxis(input: 1, size: 1, stride: 1, dilation: 1, padBefore: 0, output: 1)

    package init(depth: WindowAxis = PoolingGeometry.single, rows: WindowAxis, columns: WindowAxis, channels: Int) {
        self.depth = depth
        self.rows = rows
        self.columns = columns
        self.channels = channels
    }

    package var inputCount: Int { depth.input * rows.input * columns.input * channels }
    package var outputCount: Int { depth.output * rows.output * columns.output * channels }
}

/// Max over each window; padding cells take no part (as TensorFlow's "SAME" max pooling).
///
/// input [batch, D, H, W, C] → output [batch, outD, outH, outW, C] (D = 1 for 2-D pooling)
package func maxPool2D(_ input: UnsafeBufferPointer<Float>, batch: Int, into output: UnsafeMutableBufferPointer<Float>,
                       geometry g: PoolingGeometry) {
    pool3D(input, batch: batch, into: output, geometry: g, average: false)
    if g.zeroPadded { maxWithPadding(output, batch: batch, geometry: g) }
}

/// For a zero-padded max pooling (`PoolingGeometry.zeroPadded`): each window that reaches into
/// the padding takes the max of its input cells' max and 0, as the max over the padded copy gives
/// (a padding zero is one more cell, compared as the kernels compare cells: NaN passed over).
/// Only the border's windows reach there; each output row is visited once.
private func maxWithPadding(_ output: UnsafeMutableBufferPointer<Float>, batch: Int, geometry g: PoolingGeometry) {
    guard let y = output.baseAddress else { return }
    func clipped(_ axis: WindowAxis, _ position: Int) -> Bool {
        let (_, first, end) = axis.taps(at: position)
        return first > 0 || end < axis.size
    }
    let borderColumns = (0..<g.columns.output).filter { clipped(g.columns, $0) }
    let channels = g.channels, rowLength = g.columns.output * channels
    for row in 0..<(batch * g.depth.output * g.rows.output) {
        let out = y + row * rowLength
        let columns = clipped(g.depth, row / g.rows.output % g.depth.output) || clipped(g.rows, row % g.rows.output)
            ? Array(0..<g.columns.output) : borderColumns
        for column in columns {
            let cell = out + column * channels
            for channel in 0..<channels where 0 > cell[channel] { cell[channel] = 0 }
        }
    }
}

/// Mean over each window, dividing by the number of input cells it covers, so padding cells take
/// no part (as TensorFlow's "SAME" average pooling).
///
/// input [batch, D, H, W, C] → output [batch, outD, outH, outW, C] (D = 1 for 2-D pooling)
package func averagePool2D(_ input: UnsafeBufferPointer<Float>, batch: Int, into output: UnsafeMutableBufferPointer<Float>,
                           geometry g: PoolingGeometry) {
    pool3D(input, batch: batch, into: output, geometry: g, average: true)
}

private func pool3D(_ input: UnsafeBufferPointer<Float>, batch: Int, into output: UnsafeMutableBufferPointer<Float>,
                    geometry g: PoolingGeometry, average: Bool) {
    guard let x = input.baseAddress, let y = output.baseAddress else { return }
    if !average, Gemm.useAVX2Kernels, g.depth.size == 1 {
        maxPoolRows(x, batch: batch, into: y, geometry: g)
        return
    }
    let channels = g.channels, width = g.columns.input, height = g.rows.input
    var out = y
    for image in 0..<batch {
        let base = x + image * g.inputCount
        for outSlice in 0..<g.depth.output {
            let (sliceStart, sliceFirst, sliceEnd) = g.depth.taps(at: outSlice)
            for outRow in 0..<g.rows.output {
                let (rowStart, rowFirst, rowEnd) = g.rows.taps(at: outRow)
                for outColumn in 0..<g.columns.output {
                    let (columnStart, columnFirst, columnEnd) = g.columns.taps(at: outColumn)
                    func cell(_ slice: Int, _ row: Int) -> UnsafePointer<Float> {
                        base + (((sliceStart + slice) * height + rowStart + row) * width + columnStart + columnFirst) * channels
                    }
                    if average {
                        out.update(repeating: 0, count: channels)
                        for tapSlice in sliceFirst..<sliceEnd {
                            for tapRow in rowFirst..<rowEnd {
                                var cell = cell(tapSlice, tapRow)
                                for _ in columnFirst..<columnEnd {
                                    for channel in 0..<channels { out[channel] += cell[channel] }
                                    cell += channels
                                }
                            }
                        }
                        let count = Float(max((sliceEnd - sliceFirst) * (rowEnd - rowFirst) * (columnEnd - columnFirst), 1))
                        for channel in 0..<channels { out[channel] /= count }
                    } else if Gemm.useAVX2Kernels, sliceEnd - sliceFirst == 1 {
                        nnb_max_window(cell(sliceFirst, rowFirst), rowEnd - rowFirst,
                                       width * channels, columnEnd - columnFirst, channels, channels, out)
                    } else {
                        out.update(repeating: -.infinity, count: channels)
                        for tapSlice in sliceFirst..<sliceEnd {
                            for tapRow in rowFirst..<rowEnd {
                                var cell = cell(tapSlice, tapRow)
                                for _ in columnFirst..<columnEnd {
                                    for channel in 0..<channels where cell[channel] > out[channel] { out[channel] = cell[channel] }  // NaN passed over, as the C kernel
                                    cell += channels
                                }
                            }
                        }
                    }
                    out += channels
                }
            }
        }
    }
}

/// Max pooling without a depth window on the AVX2 or AVX-512 kernels: each output row is one
/// `nnb_max_pool_row` call over windows laid out once per call (`MaxPoolRows`; a call per
/// window, with its taps worked out in Swift, took 5 µs for cnn_cifar's 32×32×32 pooling), the
/// rows split across the threads allowed when the work reaches `Gemm.threadedWork`. Each output
/// is computed alone, so the split changes no bit.
private func maxPoolRows(_ x: UnsafePointer<Float>, batch: Int, into y: UnsafeMutablePointer<Float>, geometry g: PoolingGeometry) {
    let rowsTotal = batch * g.depth.output * g.rows.output
    let work = ShapeMath.saturatingProduct([rowsTotal, g.columns.output, g.rows.size, g.columns.size, g.channels])
    let shared = UncheckedPool(x: x, y: y)
    MaxPoolRows(g).withRows { rows in
        runInParts(rowsTotal, work: work) { range in
            for index in range { rows.pool(shared.x, row: index, into: shared.y + index * rows.rowLength) }
        }
    }
}

/// The output rows of a max pooling without a depth window (`nnb_max_pool_row`): each row's
/// windows laid out once for all of them.
package struct MaxPoolRows {
    let geometry: PoolingGeometry
    private let offsets: [Int], counts: [Int]

    init(_ g: PoolingGeometry) {
        geometry = g
        var offsets: [Int] = [], counts: [Int] = []
        offsets.reserveCapacity(g.columns.output)
        counts.reserveCapacity(g.columns.output)
        for column in 0..<g.columns.output {
            let (start, first, end) = g.columns.taps(at: column)
            offsets.append((start + first) * g.channels)
            counts.append(end - first)
        }
        self.offsets = offsets
        self.counts = counts
    }

    /// `body` with a value that pools rows, for threads to share while the call lasts.
    func withRows<R>(_ body: (Rows) -> R) -> R {
        offsets.withUnsafeBufferPointer { offsets in
            counts.withUnsafeBufferPointer { counts in
                body(Rows(geometry: geometry, offsets: offsets.baseAddress!, counts: counts.baseAddress!))
            }
        }
    }

    struct Rows: @unchecked Sendable {
        let geometry: PoolingGeometry
        let offsets: UnsafePointer<Int>, counts: UnsafePointer<Int>

        /// Floats in one output row.
        var rowLength: Int { geometry.columns.output * geometry.channels }

        /// Output row `row` (flat over images, depth slices and rows) of input `x` into `out`.
        func pool(_ x: UnsafePointer<Float>, row index: Int, into out: UnsafeMutablePointer<Float>) {
            let g = geometry, width = g.columns.input * g.channels
            let outRow = index % g.rows.output, plane = index / g.rows.output
            let slice = plane % g.depth.output, image = plane / g.depth.output
            let (rowStart, rowFirst, rowEnd) = g.rows.taps(at: outRow)
            let (sliceStart, _, _) = g.depth.taps(at: slice)
            let corner = x + image * g.inputCount + (sliceStart * g.rows.input + rowStart + rowFirst) * width
            nnb_max_pool_row(corner, rowEnd - rowFirst, width, offsets, counts, g.columns.output, g.channels, out)
        }
    }
}

/// The input and output every row part of one pooling shares, each part writing its own rows.
private struct UncheckedPool: @unchecked Sendable {
    let x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
}

/// Mean over all steps of each sample, or over the steps `mask` marks as real when given (a row
/// with none gives NaN, 0/0, as Keras does).
///
/// input [batch, steps, C], mask [batch, steps]? → output [batch, C]
package func globalAveragePool(_ input: UnsafeBufferPointer<Float>, batch: Int, steps: Int, channels: Int,
                               mask: UnsafeBufferPointer<Bool>?, into output: UnsafeMutableBufferPointer<Float>) {
    guard let x = input.baseAddress, let y = output.baseAddress, channels > 0 else { return }
    // Double accumulation keeps long sums (56×56 feature maps) within float rounding of Keras
    // (CKernels' nnb_global_average, vectorized across channels, each channel's sum in step order).
    let sums = UnsafeMutablePointer<Double>.allocate(capacity: channels)
    defer { sums.deallocate() }
    let level = Int32(Gemm.kernelPath.rawValue)
    if let mask {
        mask.withMemoryRebound(to: UInt8.self) { flags in _ = nnb_global_average(x, batch, steps, channels, flags.baseAddress, y, sums, level) }
    } else {
        _ = nnb_global_average(x, batch, steps, channels, nil, y, sums, level)
    }
}

/// Max over all steps of each sample.
///
/// input [batch, steps, C] → output [batch, C]
package func globalMaxPool(_ input: UnsafeBufferPointer<Float>, batch: Int, steps: Int, channels: Int,
                           into output: UnsafeMutableBufferPointer<Float>) {
    guard let x = input.baseAddress, let y = output.baseAddress else { return }
    for image in 0..<batch {
        let out = y + image * channels
        out.update(repeating: -.infinity, count: channels)
        var cell = x + image * steps * channels
        for _ in 0..<steps {
            for channel in 0..<channels where cell[channel] > out[channel] { out[channel] = cell[channel] }  // NaN passed over, as the C kernel
            cell += channels
        }
    }
}

/// The bins of adaptive pooling along one axis, as Keras's TensorFlow backend places them: bin i
/// covers input cells ⌊i·input / output⌋ ..< ⌈(i + 1)·input / output⌉ (PyTorch's bins too).
package func adaptiveBins(input: Int, output: Int) -> [Range<Int>] {
    guard input > 0, output > 0 else { return [] }
    return (0..<output).map { bin in
        let start = bin * input / output
        let end = ((bin + 1) * input + output - 1) / output
        return start..<max(min(end, input), start + 1)
    }
}

/// Max or mean over each (slice, row, column) bin of a volume, channels last. A 2-D pooling has one
/// depth bin over a depth of one; a 1-D pooling also one row bin.
///
/// input [batch, D, H, W, C] → output [batch, depthBins, rowBins, columnBins, C]
package func adaptivePool3D(_ input: UnsafeBufferPointer<Float>, batch: Int, depth: Int, height: Int, width: Int, channels: Int,
                            depthBins: [Range<Int>], rowBins: [Range<Int>], columnBins: [Range<Int>], average: Bool,
                            into output: UnsafeMutableBufferPointer<Float>) {
    guard let x = input.baseAddress, var out = output.baseAddress else { return }
    for image in 0..<batch {
        let base = x + image * depth * height * width * channels
        for slices in depthBins {
            for rows in rowBins {
                for columns in columnBins {
                    out.update(repeating: average ? 0 : -.infinity, count: channels)
                    for slice in slices {
                        for row in rows {
                            var cell = base + ((slice * height + row) * width + columns.lowerBound) * channels
                            for _ in columns {
                                if average {
                                    for channel in 0..<channels { out[channel] += cell[channel] }
                                } else {
                                    for channel in 0..<channels where cell[channel] > out[channel] { out[channel] = cell[channel] }
                                }
                                cell += channels
                            }
                        }
                    }
                    if average {
                        let count = Float(slices.count * rows.count * columns.count)
                        for channel in 0..<channels { out[channel] /= count }
                    }
                    out += channels
                }
            }
        }
    }
}
