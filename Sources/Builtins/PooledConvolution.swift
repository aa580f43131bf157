import CKernels
import LayerRegistry

/// A 2-D convolution (with what it took over: a BatchNormalization, an activation) whose output
/// only a max pooling reads, Conv2D → ReLU → MaxPooling2D, a small image CNN's stage, in one pass
/// (`Conv2D.fusing`). Each part of the pooled output's rows computes the convolution rows its
/// windows cover and pools them at once, while they are in cache, in the same parallel job: no
/// second pass over the convolution's output and no second hand-off between threads (at batch 1
/// a layer takes tens of microseconds, and a hand-off a few). The convolution's output is still
/// written (the pooling reads it), each element as the layer alone computes it, and the rows are
/// pooled by the pooling layer's own row kernel (`MaxPoolRows`), so the result is the same bits
/// as the two layers'. The pooling windows must not overlap along rows (stride ≥ pool size), so
/// no convolution row is computed by two parts.
///
/// A 3×3 convolution that runs as Winograd F(2×2, 3×3) computes 2×2 blocks of outputs, just the
/// windows of a 2×2 pooling at stride 2: then each block is pooled in registers as it is stored
/// (`nnb_winograd_3x3_pooled`), and the convolution's output is never written. Where neither
/// kernel runs (the baseline kernels, or a Winograd kernel under another pooling, or an epilogue
/// the kernel's store cannot apply) the two layers run one after the other.
struct PooledConvolution: Layer, PlansMemory {
    let convolution: Conv2D
    let pooling: Pooling

    var outputShape: [Int?] { pooling.outputShape }

    func forward(_ input: Tensor) throws -> Tensor {
        if let winograd = convolution.winograd, pooling.settings.poolSize == [2, 2], pooling.settings.strides == [2, 2],
           let pooled = try pooledByTiles(input, winograd) {
            return pooled
        }
        guard Gemm.useAVX2Kernels, let packed = convolution.packed, convolution.winograd == nil else {
            return try pooling.apply(try convolution.apply(input))
        }
        let g = try convolution.checkedGeometry(input)
        let windows = try pooling.geometry(spatial: [g.rows.output, g.columns.output])
        let batch = input.batch, pooledRows = batch * windows.rows.output
        let shape = [batch, windows.rows.output, windows.columns.output, g.filters]
        let count = pooledRows * windows.columns.output * g.filters
        guard count > 0 else { return Tensor(shape: shape, data: []) }
        let convolved = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * g.outputCount)
        defer { convolved.deallocate() }
        let epilogue = OutputEpilogue(affine: convolution.normalization?.channelAffine())
        let work = ShapeMath.saturatingProduct([batch, g.outputCount, g.patchSize])
        let rowPixels = g.columns.output, imageRows = g.rows.output
        // Parts of the pooled rows, and the convolution pixels each one's windows cover: per
        // image in the part, from its first window's first row to its last window's last.
        let parts = partRanges(pooledRows, work: work, splitWork: convolutionSplitWork(convolutionThreadedWork, geometry: g))
        let pixels = parts.map { part -> Range<Int> in
            guard let last = part.last else { return 0..<0 }
            let top = windows.rows.taps(at: part.lowerBound % windows.rows.output)
            let bottom = windows.rows.taps(at: last % windows.rows.output)
            let from = (part.lowerBound / windows.rows.output * imageRows + top.start + top.first) * rowPixels
            let to = (last / windows.rows.output * imageRows + bottom.start + bottom.end) * rowPixels
            return from..<max(from, to)
        }
        let data = [Float](unsafeUninitializedCapacity: count) { pooled, initialized in
            let shared = UncheckedBands(convolved: UnsafePointer(convolved.baseAddress!), pooled: pooled.baseAddress!)
            input.data.withUnsafeBufferPointer { x in
                withConvolutionParts(x, batch: batch, convolution.bias?.values, into: convolved, geometry: g, activation: convolution.activation,
                                     epilogue: epilogue, packed: packed,
                                     copySplit: parts.count > 1 ? paddingThreadedElements : .max) { _, convolve in
                    MaxPoolRows(windows).withRows { rows in
                        runInParallel(parts.count) { part in
                            convolve(ProductPart(rows: pixels[part], columns: 0..<g.filters))
                            for row in parts[part] { rows.pool(shared.convolved, row: row, into: shared.pooled + row * rows.rowLength) }
                        }
                    }
                }
            }
            initialized = count
        }
        return Tensor(shape: shape, data: data)
    }

    /// The output pooled tile by tile in the Winograd kernel's store, or nil where its epilogue
    /// cannot run there.
    private func pooledByTiles(_ input: Tensor, _ winograd: WinogradKernel) throws -> Tensor? {
        let g = try convolution.checkedGeometry(input)
        let windows = try pooling.geometry(spatial: [g.rows.output, g.columns.output])
        let batch = input.batch, height = windows.rows.output, width = windows.columns.output
        let count = batch * height * width * g.filters
        guard count > 0 else { return Tensor(shape: [batch, height, width, g.filters], data: []) }
        let epilogue = OutputEpilogue(affine: convolution.normalization?.channelAffine())
        var computed = false
        let data = [Float](unsafeUninitializedCapacity: count) { pooled, initialized in
            input.data.withUnsafeBufferPointer { x in
                let pooling = WinogradPooling(output: pooled.baseAddress!, height: height, width: width)
                computed = winograd.convolve(x.baseAddress!, batch: batch, convolution.bias?.values.baseAddress, into: pooled.baseAddress!,
                                             geometry: g, activation: convolution.activation, epilogue: epilogue, pooling: pooling,
                                             splitWork: convolutionSplitWork(convolutionThreadedWork, geometry: g))
            }
            initialized = computed ? count : 0
        }
        return computed ? Tensor(shape: [batch, height, width, g.filters], data: data) : nil
    }

    /// The pooled output, and besides it the convolution's whole output and its padded input.
    func workingSet(input: [Int]) -> WorkingSet {
        let convolutionSet = convolution.workingSet(input: input)
        let pooled = pooling.plannedWorkingSet(input: convolutionSet.outputShape)
        return WorkingSet(outputShape: pooled.outputShape,
                          scratch: ShapeMath.saturatingSum(convolutionSet.output, convolutionSet.scratch),
                          scratchMeaning: "the convolution's output before its pooling and a zero-padded copy of the input")
    }
}

/// The convolution's output and the pooled output, shared by the parts (each writes its own rows).
private struct UncheckedBands: @unchecked Sendable {
    let convolved: UnsafePointer<Float>
    let pooled: UnsafeMutablePointer<Float>
}
