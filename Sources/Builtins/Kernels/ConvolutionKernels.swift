
/// The shape of a grouped 2-D convolution, channels last. A 1-D convolution is the same with a
/// height of one (`rows` a 1-cell axis with a 1-tap window).
package struct ConvolutionGeometry: Sendable, Equatable {
    package var rows: WindowAxis
    package var columns: WindowAxis
    package var channels: Int
    package var filters: Int
    package var groups: Int

    package init(rows: WindowAxis, columns: WindowAxis, channels: Int, filters: Int, groups: Int) {
        self.rows = rows
        self.columns = columns
        self.channels = channels
        self.filters = filters
        self.groups = groups
    }

    package var groupChannels: Int { channels / groups }
    package var groupFilters: Int { filters / groups }
    /// Length of one im2col row, the inner dimension of each group's GEMM: kh·kw·(channels/groups).
    package var patchSize: Int { rows.size * columns.size * groupChannels }
    package var inputCount: Int { rows.input * columns.input * channels }
    package var outputCount: Int { rows.output * columns.output * filters }
    /// A 1×1 kernel at stride 1 without padding reads the input as its own im2col matrix.
    package var isPointwise: Bool {
        rows.size == 1 && columns.size == 1 && rows.stride == 1 && columns.stride == 1
            && rows.padBefore == 0 && columns.padBefore == 0 && rows.output == rows.input && columns.output == columns.input
    }
}

/// Largest im2col buffer one call allocates, in floats (1 MB); bigger batches run in chunks of
/// output pixels. 8 MB chunks were no faster (cnn_cifar, batch 64) and, one per batch slice, put
/// peak memory at 69 MB; 1 MB gives 60 MB.
package let convolutionColumnLimit = 1 << 18

/// Grouped 2-D convolution as im2col + one GEMM per group over the whole batch (in chunks of output
/// pixels when the column buffer would pass `convolutionColumnLimit`). With `packed` the GEMM is
/// our AVX2 kernel on the weights packed at load; otherwise OpenBLAS. When more than one thread is
/// allowed (a single row) and the work reaches `splitWork` multiply-adds, the output pixels are split
/// across the threads.
///
/// input [batch, H, W, C] · kernel [kh, kw, C/groups, F] + bias [F] → output [batch, outH, outW, F]
package func convolve2D(_ input: UnsafeBufferPointer<Float>, batch: Int,
                        _ kernel: UnsafeBufferPointer<Float>, _ bias: UnsafeBufferPointer<Float>?,
                        into output: UnsafeMutableBufferPointer<Float>,
                        geometry g: ConvolutionGeometry, packed: PackedKernel? = nil, columnLimit: Int = convolutionColumnLimit,
                        splitWork: Int = Gemm.threadedWork) {
    guard let x = input.baseAddress, let w = kernel.baseAddress, let y = output.baseAddress, batch > 0 else { return }
    let pixels = batch * g.rows.output * g.columns.output
    let threads = min(Gemm.allowedThreads, pixels)
    guard threads > 1, pixels * g.patchSize * g.groupFilters >= splitWork else {
        convolvePixels(0..<pixels, x, w, bias?.baseAddress, y, geometry: g, packed: packed, columnLimit: columnLimit)
        return
    }
    let bounds = (0...threads).map { $0 * pixels / threads }
    let shared = UncheckedPointers(x: x, w: w, bias: bias?.baseAddress, y: y)
    _ = runConcurrently(threads) { part in
        convolvePixels(bounds[part]..<bounds[part + 1], shared.x, shared.w, shared.bias, shared.y, geometry: g, packed: packed,
                       columnLimit: columnLimit)
    }
}

/// The pointers every slice of one convolution reads (and writes, each its own output rows).
private struct UncheckedPointers: @unchecked Sendable {
    let x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>
}

/// Output pixels `range` (flat over batch, outH, outW) of `convolve2D`.
private func convolvePixels(_ range: Range<Int>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                            _ y: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry, packed: PackedKernel?, columnLimit: Int) {
    let filters = g.filters, groupFilters = g.groupFilters, groupChannels = g.groupChannels
    // c[m × groupFilters] (ldc = filters) = a[m × k] · the group's kernel.
    func product(_ a: UnsafePointer<Float>, lda: Int, group: Int, _ c: UnsafeMutablePointer<Float>, m: Int, k: Int) {
        Gemm.gemm(a, lda: lda, w + group * groupFilters, ldb: filters, c, ldc: filters, m: m, n: groupFilters, k: k,
                  accumulate: false, packed: packed, group: group)
    }
    // Each group's GEMM overwrites its own filter columns, so the output needs no clearing.
    if g.isPointwise {
        for group in 0..<g.groups {
            product(x + range.lowerBound * g.channels + group * groupChannels, lda: g.channels, group: group,
                    y + range.lowerBound * filters + group * groupFilters, m: range.count, k: groupChannels)
        }
    } else {
        let patch = g.patchSize
        let chunk = max(1, min(range.count, columnLimit / max(patch, 1)))
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: chunk * patch)
        defer { columns.deallocate() }
        var first = range.lowerBound
        while first < range.upperBound {
            let count = min(chunk, range.upperBound - first)
            for group in 0..<g.groups {
                im2col(x, geometry: g, group: group, pixels: first..<(first + count), into: columns)
                product(columns, lda: patch, group: group, y + first * filters + group * groupFilters, m: count, k: patch)
            }
            first += count
        }
    }
    if let bias {
        var row = y + range.lowerBound * filters
        for _ in range {
            for filter in 0..<filters { row[filter] += bias[filter] }
            row += filters
        }
    }
}

/// Copies the input patches of output pixels `pixels` (flat over batch, outH, outW) for channel
/// group `group` into rows of `columns`, each laid out (kh, kw, C/groups) like the kernel; padding
/// cells are zero.
///
/// input [batch, H, W, C] → columns [pixels.count, kh·kw·C/groups]
package func im2col(_ input: UnsafePointer<Float>, geometry g: ConvolutionGeometry, group: Int, pixels: Range<Int>,
                    into columns: UnsafeMutablePointer<Float>) {
    let rows = g.rows, cols = g.columns
    let channels = g.channels, groupChannels = g.groupChannels
    let rowLength = cols.size * groupChannels
    let outputWidth = cols.output, perImage = rows.output * cols.output
    let imageSize = rows.input * cols.input * channels
    var row = columns
    for pixel in pixels {
        let image = pixel / perImage
        let inImage = pixel - image * perImage
        let outRow = inImage / outputWidth, outColumn = inImage - outRow * outputWidth
        let base = input + image * imageSize + group * groupChannels
        let (rowStart, rowFirst, rowEnd) = rows.taps(at: outRow)
        let (columnStart, columnFirst, columnEnd) = cols.taps(at: outColumn)
        if rowFirst > 0 { row.update(repeating: 0, count: rowFirst * rowLength) }
        for tapRow in rowFirst..<rowEnd {
            let inputRow = rowStart + tapRow * rows.dilation
            let destination = row + tapRow * rowLength
            if columnFirst > 0 { destination.update(repeating: 0, count: columnFirst * groupChannels) }
            var source = base + (inputRow * cols.input + columnStart + columnFirst * cols.dilation) * channels
            if cols.dilation == 1, groupChannels == channels {
                // The taps of one kernel row are adjacent pixels: one contiguous copy.
                (destination + columnFirst * groupChannels).update(from: source, count: (columnEnd - columnFirst) * channels)
            } else {
                let step = cols.dilation * channels
                for tapColumn in columnFirst..<columnEnd {
                    (destination + tapColumn * groupChannels).update(from: source, count: groupChannels)
                    source += step
                }
            }
            if columnEnd < cols.size {
                (destination + columnEnd * groupChannels).update(repeating: 0, count: (cols.size - columnEnd) * groupChannels)
            }
        }
        if rowEnd < rows.size { (row + rowEnd * rowLength).update(repeating: 0, count: (rows.size - rowEnd) * rowLength) }
        row += g.patchSize
    }
}

/// The naive twin of `convolve2D`: a direct convolution accumulated in double precision, kept
/// for tests.
///
/// input [batch, H, W, C] · kernel [kh, kw, C/groups, F] + bias [F] → output [batch, outH, outW, F]
package func naiveConvolve2D(_ input: UnsafeBufferPointer<Float>, batch: Int,
                             _ kernel: UnsafeBufferPointer<Float>, _ bias: UnsafeBufferPointer<Float>?,
                             into output: UnsafeMutableBufferPointer<Float>, geometry g: ConvolutionGeometry) {
    let rows = g.rows, cols = g.columns
    let groupChannels = g.groupChannels, groupFilters = g.groupFilters
    for image in 0..<batch {
        for outRow in 0..<rows.output {
            for outColumn in 0..<cols.output {
                for filter in 0..<g.filters {
                    let group = filter / groupFilters
                    var sum = Double(bias?[filter] ?? 0)
                    for tapRow in 0..<rows.size {
                        let inputRow = outRow * rows.stride - rows.padBefore + tapRow * rows.dilation
                        guard inputRow >= 0, inputRow < rows.input else { continue }
                        for tapColumn in 0..<cols.size {
                            let inputColumn = outColumn * cols.stride - cols.padBefore + tapColumn * cols.dilation
                            guard inputColumn >= 0, inputColumn < cols.input else { continue }
                            for channel in 0..<groupChannels {
                                let x = input[((image * rows.input + inputRow) * cols.input + inputColumn) * g.channels + group * groupChannels + channel]
                                let w = kernel[((tapRow * cols.size + tapColumn) * groupChannels + channel) * g.filters + filter]
                                sum += Double(x) * Double(w)
                            }
                        }
                    }
                    output[((image * rows.output + outRow) * cols.output + outColumn) * g.filters + filter] = Float(sum)
                }
            }
        }
    }
}
