import LayerRegistry

/// A 1×1 convolution whose output only a depthwise convolution reads, each with what it took over
/// (a BatchNormalization, an activation; a ZeroPadding2D between them, which the depthwise
/// convolution reads in place): the expansion and depthwise layers of MobileNetV2's inverted
/// residual blocks, Conv2D 1×1 → BatchNormalization → ReLU6 → (ZeroPadding2D →) DepthwiseConv2D →
/// BatchNormalization → ReLU6, in one pass (`Conv2D.fusing`).
///
/// The expanded image (MobileNetV2's 112×112×96 is 4.8 MB, larger than a core's L2) is never
/// written out whole. Each thread walks its own output rows in bands: it expands the few input
/// rows a band's windows reach into a buffer of its own (`bandBytes`), keeping the rows the next
/// band reads again, and runs the depthwise kernel over them at once, while they are in cache.
/// A band's expanded rows are the 1×1 convolution's own (the same kernel over the same pixels,
/// whose results do not depend on how many rows a call covers), and the depthwise kernel is given
/// them with its windows moved onto them (`nnb_depthwise` on a few rows, the rows above taken as
/// padding where they were), so every output is the same bits as the two layers'.
///
/// Images too small for the bands to pay (`smallestFusedImage`), images so short that the threads'
/// buffers would hold more rows than the layers apart write and two parts expand again
/// (`bufferRows`), the baseline kernels, and a padding no depthwise convolution took over run the
/// layers one after the other.
struct PointwiseDepthwise: FusesNext, PlansMemory {
    let convolution: Conv2D
    /// A ZeroPadding2D after the convolution, until the depthwise convolution after it takes it over.
    var padding: SpatialPadding?
    var depthwise: DepthwiseConvolution?

    /// An expanded image of fewer bytes runs the layers apart (`defaultSmallestFusedImage`).
    var smallestFusedImage = Self.defaultSmallestFusedImage
    /// Bytes of expanded rows a band's buffer holds, at least the rows one output row reads (`defaultBandBytes`).
    var bandBytes = Self.defaultBandBytes

    /// A quarter of the L2 of a core of the AMD EPYC (Zen 5). MobileNetV2 on one thread was as
    /// fast fusing every image or from 256 or 512 KB, within noise (the expanded image stays in L2
    /// anyway). On two threads far apart (different L3 caches) the layers apart hand each other
    /// the expanded rows around the threads' cut, which cross from the other core at about 6 GB/s:
    /// fused, each thread expands those rows itself, from the narrow input. Its 14×14 steps
    /// (301 and 452 KB) took 0.057 → 0.048 ms fused and the whole model ran 382.7 → 400.6
    /// samples/s (eight alternating rounds), level close by; its 7×7×960 steps (188 KB) ran slower
    /// fused there (0.066 → 0.076 ms: the parts of 3 and 4 rows expand 9 rows of 7).
    static let defaultSmallestFusedImage = 256 << 10
    /// MobileNetV2 at batch 1 on one thread of the AMD EPYC (Zen 5), `bench --profile`: its
    /// first expansion and depthwise pair (112×112×16 → 96, then 3×3 at stride 2) took 0.32 ms in
    /// bands of 64 or 192 KB (a convolution call for every output row or two), 0.29 in 384 KB,
    /// 0.28 in 768 KB, 0.31 in 1 MB, 0.39 in one band of the whole image, against 0.378 apart;
    /// the whole model ran fastest, 7% over the layers apart, at 384 KB.
    static let defaultBandBytes = 384 << 10

    /// `convolution` followed by `next` (a depthwise convolution, or a zero padding that one may
    /// follow), or nil when the convolution is not a 1×1 one at stride 1 on the packed kernel.
    init?(_ convolution: Conv2D, then next: any Layer) {
        guard convolution.settings.kernelSize == [1, 1], convolution.settings.strides == [1, 1], convolution.settings.groups == 1,
              convolution.packed != nil, convolution.winograd == nil else { return nil }
        self.convolution = convolution
        if let depthwise = next as? DepthwiseConvolution, depthwise.shape.inputSize.count == 2 {
            self.depthwise = depthwise
        } else if let padding = next as? SpatialPadding, padding.amounts.count == 2, padding.amounts.allSatisfy({ $0.0 >= 0 && $0.1 >= 0 }) {
            self.padding = padding
        } else {
            return nil
        }
    }

    var outputShape: [Int?] { depthwise?.outputShape ?? padding?.outputShape ?? convolution.outputShape }

    /// Takes over the depthwise convolution after a padding (which it then reads in place), and
    /// after that what the depthwise convolution takes over (`DepthwiseConvolution.fusing`). A
    /// padding that another layer takes over instead (a max pooling that reads it in place) goes
    /// to that layer, which runs after the convolution in the same step (`LayerPair`).
    func fusing(_ next: any Layer) -> (any Layer)? {
        var fused = self
        if let depthwise {
            guard let extended = depthwise.fusing(next) as? DepthwiseConvolution else { return nil }
            fused.depthwise = extended
            return fused
        }
        guard let padding, let taken = padding.fusing(next) else { return nil }
        guard let depthwise = taken as? DepthwiseConvolution else { return LayerPair(first: convolution, second: taken) }
        fused.depthwise = depthwise
        fused.padding = nil
        return fused
    }

    func forward(_ input: Tensor) throws -> Tensor {
        guard let depthwise else {
            let convolved = try convolution.apply(input)
            return try padding?.apply(convolved) ?? convolved
        }
        return try inBands(input, depthwise) ?? depthwise.apply(convolution.apply(input))
    }

    /// The step run in bands, or nil where the layers run one after the other (see above).
    private func inBands(_ input: Tensor, _ depthwise: DepthwiseConvolution) throws -> Tensor? {
        guard Gemm.useAVX2Kernels, let packed = convolution.packed else { return nil }
        let g = try convolution.checkedGeometry(input)
        let expanded = [input.batch, g.rows.output, g.columns.output, g.filters]
        let width = depthwise.shape.channels * depthwise.shape.multiplier
        guard g.isPointwise, g.outputCount > 0, let windows = try depthwise.windows(over: expanded), depthwise.kernel.count > 0,
              DepthwiseRows.runs(windows, width: width, path: Gemm.kernelPath),
              ShapeMath.saturatingProduct([g.outputCount, MemoryLayout<Float>.size]) >= smallestFusedImage else { return nil }
        let batch = input.batch, rows = windows.axes[1], columns = windows.axes[2]
        let shape = [batch, rows.output, columns.output, width]
        let outputRow = columns.output * width, count = batch * rows.output * outputRow
        guard count > 0 else { return Tensor(shape: shape, data: []) }
        let inputRow = g.columns.input * g.channels, expandedRow = g.columns.output * g.filters
        // A band's output rows, and the expanded rows the most any band reads.
        let span = rows.span
        let bandRows = min(max(1, (bandBytes / (expandedRow * MemoryLayout<Float>.size) - span) / rows.stride + 1), rows.output)
        let work = ShapeMath.saturatingSum(ShapeMath.saturatingProduct([batch, g.outputCount, g.channels]),
                                           ShapeMath.saturatingProduct([batch, windows.outputPixels, windows.taps, width]))
        // Cut by the threads' speeds, or evenly where an uneven cut's longest part would take the
        // buffers past what the memory plan allows them (a short image).
        let fitting = [true, false].lazy.compactMap { byShares -> (parts: [Range<Int>], bufferRows: Int)? in
            let parts = Self.parts(images: batch, rows: rows.output, work: work, byShares: byShares)
            return Self.bufferRows(parts: parts, bandRows: bandRows, stride: rows.stride, span: span,
                                   expandedRows: batch * g.rows.input, imageRows: g.rows.input).map { (parts, $0) }
        }
        guard let (parts, bufferRows) = fitting.first else { return nil }
        let epilogue = OutputEpilogue(affine: convolution.normalization?.channelAffine())
        let data = [Float](unsafeUninitializedCapacity: count) { output, initialized in
            input.data.withUnsafeBufferPointer { x in
                withDepthwiseRows(depthwise.kernel.values, depthwise.bias?.values, geometry: windows, channels: depthwise.shape.channels,
                                  multiplier: depthwise.shape.multiplier, normalization: depthwise.normalization,
                                  activation: depthwise.activation, path: Gemm.kernelPath) { depthwiseRows in
                    let shared = UncheckedInOut(x: x.baseAddress!, y: output.baseAddress!)
                    runInParallel(parts.count, weights: parts.map { Double($0.count) }) { part in
                        AlignedFloats.withScratch(bufferRows * expandedRow) { buffer in
                            // The image and rows the buffer holds, from its start.
                            var held = (image: -1, rows: 0..<0)
                            var flat = parts[part].lowerBound
                            while flat < parts[part].upperBound {
                                let image = flat / rows.output, first = flat % rows.output
                                let last = min(first + bandRows, rows.output, first + parts[part].upperBound - flat)
                                // The expanded rows this band's windows reach inside the image.
                                let low = min(max(first * rows.stride - rows.padBefore, 0), rows.input)
                                let high = min(max((last - 1) * rows.stride - rows.padBefore + span, low), rows.input)
                                var from = low
                                if held.image == image, held.rows.contains(low) {
                                    // The rows the last band read that this one reads again move to the front.
                                    from = min(held.rows.upperBound, high)
                                    UnsafeMutableRawPointer(buffer).copyMemory(from: buffer + (low - held.rows.lowerBound) * expandedRow,
                                                                               byteCount: (from - low) * expandedRow * MemoryLayout<Float>.size)
                                }
                                if from < high {
                                    let sub = ConvolutionGeometry(rows: WindowAxis(input: high - from, size: 1, stride: 1, dilation: 1, padBefore: 0, output: high - from),
                                                                  columns: g.columns, channels: g.channels, filters: g.filters, groups: 1)
                                    convolve2D(UnsafeBufferPointer(start: shared.x + (image * g.rows.input + from) * inputRow, count: (high - from) * inputRow),
                                               batch: 1, convolution.kernel.values, convolution.bias?.values,
                                               into: UnsafeMutableBufferPointer(start: buffer + (from - low) * expandedRow, count: (high - from) * expandedRow),
                                               geometry: sub, activation: convolution.activation, epilogue: epilogue, packed: packed, splitWork: .max)
                                }
                                held = (image, low..<high)
                                // The band's windows, moved onto the rows in the buffer.
                                var local = rows
                                local.input = high - low
                                local.padBefore = rows.padBefore + low - first * rows.stride
                                local.output = last - first
                                depthwiseRows.run(buffer, rows: local, first: 0, count: last - first, into: shared.y + flat * outputRow)
                                flat += last - first
                            }
                        }
                    }
                }
            }
            initialized = count
        }
        return Tensor(shape: shape, data: data)
    }

    /// The parts of the output rows (flat over `images` of `rows` rows) the threads take: whole
    /// images when there are at least as many as threads, else one run of rows per thread (each
    /// expands the rows above its first band again, so the fewer the better), cut `byShares` of
    /// the threads' measured speeds (`shareBoundaries`) or evenly; one part below
    /// `convolutionThreadedWork`.
    static func parts(images: Int, rows: Int, work: Int, byShares: Bool = true) -> [Range<Int>] {
        let threads = Gemm.allowedThreads, total = images * rows
        guard threads > 1, work >= convolutionThreadedWork, total > 1 else { return [0..<total] }
        if images >= threads {
            let parts = min(images, threads * partsPerThread)
            return (0..<parts).map { ($0 * images / parts * rows)..<(($0 + 1) * images / parts * rows) }
        }
        let parts = min(threads, total)
        guard byShares else { return evenRanges(total, parts: parts) }
        let boundaries = shareBoundaries(units: total, pieces: parts)
        return (0..<parts).map { boundaries[$0]..<boundaries[$0 + 1] }
    }

    /// The expanded rows each part's buffer holds (one band of the part's output rows, and the
    /// rows above and below them its windows reach: `span` rows for one output row, `stride` more
    /// for each other), or nil when the parts' buffers together would hold more than the
    /// `expandedRows` the layers apart make and the rows two parts expand again
    /// (`rowsExpandedAgain`, what `workingSet` counts): an image of a few rows cut between many
    /// threads runs the layers apart.
    static func bufferRows(parts: [Range<Int>], bandRows: Int, stride: Int, span: Int, expandedRows: Int, imageRows: Int) -> Int? {
        let partRows = min(bandRows, parts.lazy.map { $0.count }.max() ?? 1)
        let rows = min(ShapeMath.saturatingSum(ShapeMath.saturatingProduct([partRows - 1, stride]), span), imageRows)
        guard ShapeMath.saturatingProduct([parts.count, rows]) <= ShapeMath.saturatingSum(expandedRows, rowsExpandedAgain(span: span)) else {
            return nil
        }
        return rows
    }

    /// The expanded rows beyond the expanded batch that the bands' buffers may hold together: the
    /// rows above two parts' first bands, expanded again (the two threads of a batch-1 call on a
    /// short image, whose buffers each hold their part's rows and those its windows reach).
    static func rowsExpandedAgain(span: Int) -> Int { ShapeMath.saturatingProduct([2, span]) }

    /// The depthwise output, and besides it what the layers apart take (the expanded image, which
    /// the bands never hold whole, but which a small image, or the baseline kernels, still writes)
    /// and the rows the bands may expand again.
    func workingSet(input: [Int]) -> WorkingSet {
        let convolutionSet = convolution.workingSet(input: input)
        let last = depthwise.map { $0.workingSet(input: convolutionSet.outputShape) }
            ?? padding.map { $0.plannedWorkingSet(input: convolutionSet.outputShape) }
        guard let last else { return convolutionSet }
        var scratch = ShapeMath.saturatingSum(convolutionSet.output, convolutionSet.scratch)
        let expanded = convolutionSet.outputShape
        if let depthwise, expanded.count == 4, let windows = try? depthwise.windows(over: expanded), windows.axes.count == 3 {
            scratch = ShapeMath.saturatingSum(scratch, ShapeMath.saturatingProduct([Self.rowsExpandedAgain(span: windows.axes[1].span),
                                                                                     expanded[2], expanded[3]]))
        }
        return WorkingSet(outputShape: last.outputShape, scratch: scratch, scratchMeaning: "the 1×1 convolution's output")
    }
}

/// Two layers that run one after the other as one step, the second on the first's output: what a
/// fusion that took a layer for a successor it then did not meet leaves (a 1×1 convolution that
/// took a ZeroPadding2D for a depthwise convolution, and met a max pooling that reads the padding
/// in place).
struct LayerPair: FusesNext, PlansMemory {
    let first: any Layer
    let second: any Layer

    var outputShape: [Int?] { second.outputShape }

    /// The second layer takes over what it would after it (a convolution the BatchNormalization
    /// and activation after it), the first kept as is.
    func fusing(_ next: any Layer) -> (any Layer)? {
        guard let fused = fusion(of: second, then: next) else { return nil }
        return LayerPair(first: first, second: fused)
    }

    func forward(_ input: Tensor) throws -> Tensor { try second.apply(try first.apply(input)) }

    /// The second layer's output, and besides it the first's output and both layers' scratch.
    func workingSet(input: [Int]) -> WorkingSet {
        let firstSet = first.plannedWorkingSet(input: input), secondSet = second.plannedWorkingSet(input: firstSet.outputShape)
        return WorkingSet(outputShape: secondSet.outputShape, scratch: ShapeMath.saturatingSum(firstSet.output, firstSet.scratch, secondSet.scratch),
                          scratchMeaning: "the first layer's output")
    }
}

/// `first` then `second` as one layer: `first`'s fusion with it, or else the two as a `LayerPair`
/// (a channels-first run's layers, a Pipeline's).
func chained(_ first: any Layer, _ second: any Layer) -> any Layer {
    fusion(of: first, then: second) ?? LayerPair(first: first, second: second)
}

/// `first` then `second`, both of one input, as the one layer `first` makes when it takes `second`
/// over (`FusesSuccessor`: a convolution the BatchNormalization or activation after it), or nil.
func fusion(of first: any Layer, then second: any Layer) -> (any Layer)? {
    (first as? any FusesSuccessor)?.fusing(second, reading: 0) as? any Layer
}
