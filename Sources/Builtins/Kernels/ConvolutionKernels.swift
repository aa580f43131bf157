import CKernels
import LayerRegistry


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
    /// The (height, width) of the zero-padded image the implicit GEMM reads: every tap of every
    /// output pixel inside; nil when the input is read in place. Saturates rather than overflows.
    /// (Winograd reads the input in place, zeros for the taps outside it.)
    package func paddedSize() -> (height: Int, width: Int)? {
        func extent(_ axis: WindowAxis) -> Int {
            let reach = ShapeMath.saturatingSum(ShapeMath.saturatingProduct([max(axis.output - 1, 0), axis.stride]), axis.span)
            return max(ShapeMath.saturatingSum(axis.padBefore, axis.input), reach)
        }
        let height = extent(rows), width = extent(columns)
        guard rows.padBefore > 0 || columns.padBefore > 0 || height > rows.input || width > columns.input else { return nil }
        return (height, width)
    }

    /// Elements of the zero-padded copy of one image (0 when the input is read in place).
    package func paddedImageCount() -> Int {
        guard let size = paddedSize() else { return 0 }
        return ShapeMath.saturatingProduct([size.height, size.width, channels])
    }

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

/// Grouped 2-D convolution, y = activation(epilogue(conv(x, kernel) + bias)), over the whole batch.
///
/// With `packed` (the kernel packed at load, where the AVX2 kernels run) it is an implicit GEMM:
/// `nnb_conv_packed` reads each output pixel's patch where it lies in the input (padded once), adds
/// the bias and applies a ReLU in the same pass, so nothing is copied into columns and the output
/// is written once. The epilogue (a folded BatchNormalization, a residual Add: `OutputEpilogue`)
/// and other activations follow block by block, while the block is still in cache.
/// Without `packed` it is im2col + one OpenBLAS GEMM per group (in chunks of output pixels when the
/// column buffer would pass `columnLimit`), bias and activation applied per chunk.
/// When more than one thread is allowed (a single row) and the work reaches `splitWork`
/// multiply-adds, the output pixels are split across the threads.
///
/// input [batch, H, W, C] · kernel [kh, kw, C/groups, F] + bias [F] → output [batch, outH, outW, F]
package func convolve2D(_ input: UnsafeBufferPointer<Float>, batch: Int,
                        _ kernel: UnsafeBufferPointer<Float>, _ bias: UnsafeBufferPointer<Float>?,
                        into output: UnsafeMutableBufferPointer<Float>,
                        geometry g: ConvolutionGeometry, activation: Activation = .linear, epilogue: OutputEpilogue = .none,
                        packed: PackedKernel? = nil, winograd: WinogradKernel? = nil, columnLimit: Int = convolutionColumnLimit,
                        splitWork: Int = convolutionThreadedWork) {
    guard let x = input.baseAddress, let w = kernel.baseAddress, let y = output.baseAddress, batch > 0 else { return }
    let splitWork = convolutionSplitWork(splitWork, geometry: g)
    if let winograd {
        winograd.convolve(x, batch: batch, bias?.baseAddress, into: y, geometry: g, activation: activation, epilogue: epilogue, splitWork: splitWork)
        return
    }
    let pixels = batch * g.rows.output * g.columns.output
    let shared = UncheckedPointers(x: x, w: w, bias: bias?.baseAddress, y: y)
    guard let packed else {
        runInParts(pixels, work: pixels * g.patchSize * g.groupFilters, splitWork: splitWork) { range in
            convolvePixels(range, shared.x, shared.w, shared.bias, shared.y, geometry: g, activation: activation, epilogue: epilogue,
                           columnLimit: columnLimit)
        }
        return
    }
    let work = pixels * g.patchSize * g.groupFilters
    withConvolutionParts(input, batch: batch, bias, into: output, geometry: g, activation: activation, epilogue: epilogue,
                         packed: packed, copySplit: work >= splitWork ? min(paddingThreadedElements, splitWork) : .max) { inStore, convolve in
        // With the epilogue in the kernel's store, a part may take some of the filters (one group
        // only: a grouped kernel's groups run one after another inside a part).
        let parts = productParts(rows: pixels, columns: g.filters, rowBlock: nnb_gemm_block_rows(),
                                 columnBlock: inStore && g.groups == 1 ? 32 : g.filters,
                                 bytesPerRow: g.patchSize * MemoryLayout<Float>.size, bytesPerColumn: g.patchSize * MemoryLayout<Float>.size,
                                 work: work, splitWork: splitWork)
        runParts(parts, convolve)
    }
}

/// `convolve2D` on the implicit GEMM (`packed`), part by part as the caller runs them: `body`
/// gets whether the epilogue runs in the kernel's store (`OutputEpilogue.withKernelForm`) and a
/// function that computes a part of the output (output pixels flat over batch, rows, columns, by
/// filters) in its place in `output`, on the thread that calls it, the input padded once for all
/// parts (on the call's threads from `copySplit` elements: `.max` where the parts run on one).
/// `convolve2D` cuts the output for its threads with it; `PooledConvolution` pools each part's
/// rows as soon as they are computed. A pixel's result is the same whatever part computes it.
func withConvolutionParts(_ input: UnsafeBufferPointer<Float>, batch: Int, _ bias: UnsafeBufferPointer<Float>?,
                          into output: UnsafeMutableBufferPointer<Float>, geometry g: ConvolutionGeometry,
                          activation: Activation, epilogue: OutputEpilogue, packed: PackedKernel, copySplit: Int,
                          _ body: (_ inStore: Bool, _ convolve: (ProductPart) -> Void) -> Void) {
    guard let x = input.baseAddress, let y = output.baseAddress, batch > 0 else { return }
    let padded = PaddedInput(x, batch: batch, geometry: g, splitFrom: copySplit)
    defer { padded.release() }
    let shared = UncheckedOutput(bias: bias?.baseAddress, y: y)
    epilogue.withKernelForm(bias: shared.bias, activation: activation, channels: g.filters) { post in
        body(post != nil) { part in
            guard !part.rows.isEmpty else { return }
            convolveImplicit(part, padded, packed, shared.bias, shared.y, geometry: g, activation: activation, epilogue: epilogue,
                             kernelEpilogue: post)
        }
    }
}

/// Below this many multiply-adds a convolution runs on one thread: a quarter of a product's
/// `Gemm.threadedWork`, since its parts are whole register blocks of one long loop each (on the
/// AMD EPYC, cnn_cifar's first layer, 0.9 M multiply-adds, went from 10 to 7 µs on two threads),
/// where lowering the threshold for every product made the Transformer's small attention
/// products 14% slower at batch 1.
let convolutionThreadedWork = Gemm.threadedWork / 4

/// Where the pool's threads sit far apart (`nnb_pool_far_apart`), a convolution that reads a
/// zero-padded copy of its input splits only from this many multiply-adds. A thread then pays a
/// cache line's round trip of 350 ns or more for each line the other wrote: on the AMD EPYC VM in
/// that placement, cnn_cifar's 3×3 convolutions (0.9 and 4.7 M multiply-adds) ran slower on two
/// threads than on one; kept on one, the model ran 9% faster there (7,990 → 8,690 samples/s, 8
/// runs each), and ResNet50 4%. With the copy made on the threads too (`PaddedInput`), the rule
/// still pays: 9,089 against 8,486 samples/s (six alternating rounds). (Keeping MobileNetV2's
/// depthwise layers on one thread too made it 13% slower there: 352 → 307.)
let farApartPaddedWork = 8 << 20

/// The work from which convolution `g` splits when asked to split from `splitWork`.
func convolutionSplitWork(_ splitWork: Int, geometry g: ConvolutionGeometry) -> Int {
    nnb_pool_far_apart() != 0 && g.paddedSize() != nil ? max(splitWork, farApartPaddedWork) : splitWork
}

/// The pointers every slice of one convolution reads (and writes, each its own output rows).
private struct UncheckedPointers: @unchecked Sendable {
    let x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>
}

/// A 2×2 max pooling at stride 2 that a Winograd convolution applies to each tile it computes
/// (`WinogradKernel.convolve`): the pooled output [batch, height, width, filters] and its size.
struct WinogradPooling: @unchecked Sendable {
    let output: UnsafeMutablePointer<Float>
    let height: Int
    let width: Int
}

/// The bias and output of a convolution (implicit GEMM or Winograd), shared by its parts (each writes its own pixels).
private struct UncheckedOutput: @unchecked Sendable {
    let bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>
}

/// The kernel a Winograd convolution's parts read in one call: transformed (`panels`), with the
/// taps they come from where each part transforms its own filters' panels into it first; or, with
/// no `panels`, the taps alone, which `nnb_winograd_3x3` transforms panel by panel as it goes.
struct WinogradPanels: @unchecked Sendable {
    let panels: UnsafePointer<Float>?
    let taps: UnsafePointer<Float>?
    let channels: Int
    let filters: Int

    /// What `nnb_winograd_3x3` takes as its `taps`: the taps when there are no panels.
    var kernelTaps: UnsafePointer<Float>? { panels == nil ? taps : nil }

    /// Transforms the panels of filters `columns` (from a multiple of 16), where the parts do.
    func prepare(_ columns: Range<Int>) {
        guard let taps, let panels else { return }
        nnb_winograd_transform(taps, channels, filters, columns.lowerBound / 16, (columns.upperBound + 15) / 16,
                               UnsafeMutablePointer(mutating: panels))
    }
}

/// The input as the implicit GEMM reads it: zero-padded so that every tap of every output pixel
/// lies inside (the input itself when no tap falls outside it).
///
/// Where the convolution runs on several threads and the copy has `splitFrom` elements or more,
/// the copy runs on them too, cut by rows (`runInParts`, the first rows on the calling thread) as
/// the convolution's parts after it are cut by output rows: each thread then reads mostly rows it
/// wrote itself. Where the two vCPUs sit far apart, a row that the other core wrote
/// comes over at about 6 GB/s against 140 written and read on one core, and MobileNetV2's Conv1
/// (a 224×224×3 image, padded below and to the right) ran no faster on two threads than on one
/// while the calling thread alone made the copy.
private struct PaddedInput: @unchecked Sendable {
    let base: UnsafePointer<Float>
    let height: Int
    let width: Int
    private let owned: UnsafeMutablePointer<Float>?

    init(_ x: UnsafePointer<Float>, batch: Int, geometry g: ConvolutionGeometry, splitFrom: Int) {
        // The layer checked this copy's size against the memory limit (Model's checkMemory) before.
        guard let size = g.paddedSize() else {
            height = g.rows.input
            width = g.columns.input
            base = x
            owned = nil
            return
        }
        height = size.height
        width = size.width
        let channels = g.channels, rowLength = g.columns.input * channels, paddedRow = size.width * channels
        let before = g.columns.padBefore * channels, after = paddedRow - before - rowLength
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: batch * height * paddedRow)
        // Each row written once: a zero row above or below an image's rows, or an input row with
        // the zeros either side of it.
        let imageRows = g.rows.input, top = g.rows.padBefore, height = size.height
        let shared = UncheckedInOut(x: x, y: buffer)
        runInParts(batch * height, work: batch * height * paddedRow, splitWork: splitFrom) { rows in
            for flat in rows {
                let image = flat / height, row = flat % height - top
                let target = shared.y + flat * paddedRow
                guard row >= 0, row < imageRows else {
                    target.initialize(repeating: 0, count: paddedRow)
                    continue
                }
                target.initialize(repeating: 0, count: before)
                (target + before).initialize(from: shared.x + (image * imageRows + row) * rowLength, count: rowLength)
                (target + before + rowLength).initialize(repeating: 0, count: after)
            }
        }
        base = UnsafePointer(buffer)
        owned = buffer
    }

    func release() { owned?.deallocate() }
}

/// Elements (256 KB) from which a padded copy is made on the convolution's threads (or from its
/// own threshold, where that is lower): a smaller copy costs less than handing half of it to the
/// other thread (cnn_cifar's, 14-41 KB, at batch 1).
let paddingThreadedElements = 1 << 16

/// A 3×3 kernel at stride 1 run as Winograd F(2×2, 3×3) (`nnb_winograd_3x3`): 16 products per
/// 2×2 output block and channel pair instead of 36. Made only where the AVX2 kernels run, for
/// kernels without dilation or groups and with at least 16 input channels and filters (below that
/// the transforms cost more than the products save).
///
/// A kernel whose output is known to be large enough (`transformsPerCall`) is kept at its own size (16
/// filters a panel, `nnb_winograd_taps`) and transformed, U = G g Gᵀ, on every call: panel by
/// panel inside `nnb_winograd_3x3`, right before the products that read it, where each part of
/// the call takes few tiles; otherwise into a scratch buffer of the whole kernel
/// (`nnb_winograd_transform`, by the parts that read each panel, or by all threads first). Any
/// other kernel is transformed once at load, with the same function, so the same bits, and takes
/// 16/9 of its size for good. Per call, the transform costs a share of the products that falls
/// with the tiles it is spread over, and the kernel is read at 9/16 of the size.
///
/// On the AVX-512 path, not for an output known to be under 8×8 (`outputSize`) with a kernel of
/// a million weights or more (`streamedWeightCount`, 4 MB: read from memory on every call at
/// batch 1), where the 16/9 more products' weights cost more than Winograd saves. One core of the
/// AMD EPYC (Zen 5), weights out of cache, direct against Winograd (transformed at load):
/// 7×7×512→512 0.96 against 1.35 ms; 14×14×256→256 0.89 and 0.89; 28×28×128→128 0.87 and 0.74;
/// 56×56×64→64 0.86 and 0.67. A 14×14 output stays Winograd although it broke even there:
/// inside a model, where the kernels prefetch the next weights, it wins. ResNet50's six
/// 14×14×256→256 layers on one thread of the AMD EPYC (Zen 5), `bench --profile --threads 1`:
/// 0.58 ms each against 0.96 direct at batch 1, 8.5 against 17.0 ms at batch 16 (whole model
/// 33.0 against 29.9 samples/s at batch 1).
package struct WinogradKernel: Sendable {
    /// The kernel as `nnb_winograd_taps` lays it out ([panels][channels][9][16]), transformed on
    /// every call, or already transformed (16 matrices `plane` floats apart).
    private enum Form: Sendable {
        case taps(AlignedFloats)
        case transformed(AlignedFloats)
    }
    private let form: Form
    let channels: Int
    let filters: Int
    /// Floats from one of the 16 transformed matrices to the next.
    var plane: Int { nnb_winograd_plane(channels, filters) }

    /// Whether a kernel of `weights` whose output spans `tiles` 2×2 tiles an image is transformed
    /// on each call: where the tiles are many (`perCallTiles`), the transform costs little against
    /// the products; where the kernel is large (`largeKernelWeights`), from fewer tiles
    /// (`largeKernelTiles`), the 7/16 of its transformed size it saves is worth the share of the
    /// products it costs.
    static func transformsPerCall(tiles: Int, weights: Int) -> Bool {
        tiles >= perCallTiles || (tiles >= largeKernelTiles && weights >= largeKernelWeights)
    }

    /// One thread of the AMD EPYC (Zen 5), ResNet50 at batch 1, `bench --profile --threads 1`,
    /// against transformed at load: its 28×28 layers (196 tiles, 128 channels) 0.49-0.51 against
    /// 0.54-0.56 ms, saving 1.75 MiB each (the transform prefetches the taps it reads from
    /// memory). cnn_cifar's 64→128 layer (16 tiles at batch 1) took 19 µs against 15 transformed
    /// per call, whole.
    static let perCallTiles = 128

    /// A 14×14 output. ResNet50's 14×14×256→256 layers (590 K weights each), one thread, as
    /// above: 0.65-0.67 against 0.59-0.63 ms (panel by panel in L2, `nnb_winograd_3x3` from the
    /// taps), saving 1.75 MiB each; the whole model's layers 28.9 against 29.0 ms (AVX2: 56.7
    /// against 56.8). cnn_cifar's 16×16×32→64 layer (64 tiles, 18 K weights) transformed per
    /// call too made it 0.98× LiteRT at batch 1 in the 23:17 run, for 72 KB.
    static let largeKernelTiles = 49
    /// 256 K weights: a kernel of 1 MiB, 1.75 MiB transformed.
    static let largeKernelWeights = 1 << 18

    /// Weights from which a small output stays direct on AVX-512 (see above); cnn_cifar's 7×7
    /// layer (74 K weights) ran its batch of 64 faster with Winograd, 1.30 against 1.55 ms.
    static let streamedWeightCount = 1 << 20

    package init?(_ kernel: UnsafeBufferPointer<Float>, geometry g: ConvolutionGeometry, outputSize: (height: Int, width: Int)? = nil) {
        if Gemm.kernelPath >= .avx512, let size = outputSize, min(size.height, size.width) < 8,
           kernel.count >= Self.streamedWeightCount { return nil }
        guard Gemm.useAVX2Kernels, let w = kernel.baseAddress, g.rows.size == 3, g.columns.size == 3, g.rows.stride == 1,
              g.columns.stride == 1, g.rows.dilation == 1, g.columns.dilation == 1, g.groups == 1,
              g.channels >= 16, g.filters >= 16 else { return nil }
        let channels = g.channels, filters = g.filters
        let count = (filters + 15) / 16 * 16 * channels * 9
        // As for PackedKernel: at most twice the kernel's own size (padded to 16 filters).
        guard count <= max(2 * 9 * channels * filters, 1 << 16) else { return nil }
        let taps = AlignedFloats(count: count) { nnb_winograd_taps(w, channels, filters, $0.baseAddress!) }
        self.channels = channels
        self.filters = filters
        if let size = outputSize,
           Self.transformsPerCall(tiles: (size.height + 1) / 2 * ((size.width + 1) / 2), weights: 9 * channels * filters) {
            form = .taps(taps)
            return
        }
        let transformedCount = 16 * nnb_winograd_plane(channels, filters)
        form = .transformed(AlignedFloats(count: transformedCount) { buffer in
            buffer.initialize(repeating: 0)
            taps.withUnsafeBufferPointer { nnb_winograd_transform($0.baseAddress!, channels, filters, 0, (filters + 15) / 16, buffer.baseAddress!) }
        })
    }

    /// Floats a call allocates for the transformed kernel (none when it was transformed at load).
    var callScratch: Int {
        if case .taps = form { return 16 * plane }
        return 0
    }

    /// Calls `body` with the kernel of one call. A kernel kept as taps goes as taps alone where
    /// each part takes few enough tiles (`fused`: at most `NNB_WINOGRAD_TAPS_BLOCK`, one block, so
    /// each panel is transformed once a part, in L2, right before its products); otherwise it is
    /// transformed into a buffer of the whole kernel. With `partsTransform`, each part is to
    /// transform its own filters' panels into it (`WinogradPanels.prepare`) before it reads them;
    /// without, the threads that `work` multiply-adds from `splitWork` take transform all of it first.
    func withPanels(fused: Bool, partsTransform: Bool, work: Int, splitWork: Int, _ body: (WinogradPanels) -> Void) {
        let channels = channels, filters = filters
        switch form {
        case .transformed(let kept):
            kept.withUnsafeBufferPointer { body(WinogradPanels(panels: $0.baseAddress!, taps: nil, channels: channels, filters: filters)) }
        case .taps(let taps) where fused:
            taps.withUnsafeBufferPointer { body(WinogradPanels(panels: nil, taps: $0.baseAddress!, channels: channels, filters: filters)) }
        case .taps(let taps):
            AlignedFloats.withScratch(16 * plane) { packed in taps.withUnsafeBufferPointer { taps in
                let all = WinogradPanels(panels: packed, taps: taps.baseAddress!, channels: channels, filters: filters)
                guard partsTransform else {
                    runInParts((filters + 15) / 16, work: work, splitWork: splitWork) { all.prepare(16 * $0.lowerBound..<16 * $0.upperBound) }
                    body(WinogradPanels(panels: packed, taps: nil, channels: channels, filters: filters))
                    return
                }
                body(all)
            } }
        }
    }

    /// Copies a layer's weight as above; its mapped pages then leave memory (only the copy is
    /// read from here on).
    package init?(_ weight: Weight, geometry g: ConvolutionGeometry, outputSize: (height: Int, width: Int)? = nil) {
        self.init(weight.values, geometry: g, outputSize: outputSize)
        weight.storage.evict()
    }

    /// `convolve2D` on this kernel: tiles split across the threads allowed when the work reaches
    /// `splitWork` multiply-adds (a batch of one; batches are split by rows before). With
    /// `pooling`, each tile's 2×2 outputs go as their max to `pooling.output` instead of to `y`
    /// (`nnb_winograd_3x3_pooled`); that needs the epilogue in the kernel's store, and where it
    /// cannot run there nothing is computed and this returns false.
    @discardableResult
    func convolve(_ x: UnsafePointer<Float>, batch: Int, _ bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>,
                  geometry g: ConvolutionGeometry, activation: Activation, epilogue: OutputEpilogue = .none,
                  pooling: WinogradPooling? = nil, splitWork: Int) -> Bool {
        let tilesHigh = (g.rows.output + 1) / 2, tilesWide = (g.columns.output + 1) / 2
        let tiles = batch * tilesHigh * tilesWide
        var computed = true
        epilogue.withKernelForm(bias: bias, activation: activation, channels: g.filters) { post in
            if pooling != nil && post == nil {
                computed = false
                return
            }
            // As convolve2D's implicit GEMM: a part may take some of the filters when the epilogue
            // runs in the kernel's store. Each filter reads 16·C transformed weights; each tile
            // writes 16·C transformed inputs and reads them back, in every part that takes some
            // of its filters: a part cut by filters transforms all its tiles. Counted once, a
            // tile weighed as much as a filter, and a 16×16×32→64 layer (cnn_cifar's second) was
            // cut by filters: 45-52 K samples/s of that layer alone on two threads, against
            // 58-62 K cut by tiles (the AMD EPYC, close placement).
            // Of what a tile reads, only its 2×2 pixels' share of the input (4·C floats: its 4×4
            // window overlaps its neighbours') comes from the layer before; its transformed input
            // is the part's own. Where the vCPUs sit far apart, that lets ResNet50's 14×14 layers
            // at batch 1 be cut by filters, each part reading half the transformed kernel.
            let bytes = 16 * g.channels * MemoryLayout<Float>.size, work = batch * g.outputCount * g.patchSize
            let parts = productParts(rows: tiles, columns: g.filters, rowBlock: nnb_gemm_block_rows(),
                                     columnBlock: post != nil ? 32 : g.filters, bytesPerRow: 2 * bytes, bytesPerColumn: bytes,
                                     inputBytesPerRow: bytes / 4, work: work, splitWork: splitWork)
            // A kernel transformed per call: parts that each take some of the filters and all the
            // tiles transform their own filters' panels, on the core that reads them next;
            // otherwise every part reads every panel, and the threads transform them all first.
            // (Where the vCPUs sit far apart, a part reading the panels the other core had
            // transformed made ResNet50 at batch 1 5-8% slower.)
            let byFilters = parts.allSatisfy { $0.rows.count == tiles }
            // From the taps themselves where each part is one block of the kernel; not without the
            // epilogue in the store, whose blocks of ~128 KB would each transform the panels again.
            let fused = post != nil && parts.allSatisfy { $0.rows.count <= Int(NNB_WINOGRAD_TAPS_BLOCK) }
            withPanels(fused: fused, partsTransform: byFilters, work: work, splitWork: splitWork) { kernel in
                let shared = UncheckedOutput(bias: bias, y: y)
                runParts(parts) { part in
                    kernel.prepare(part.columns)
                    func run(_ first: Int, _ count: Int, _ post: nnb_epilogue) {
                        var post = post
                        if let pooling {
                            nnb_winograd_3x3_pooled(x, g.rows.input, g.columns.input, g.rows.padBefore, g.columns.padBefore, g.channels,
                                                    g.rows.output, g.columns.output,
                                                    kernel.panels, kernel.kernelTaps, g.filters, part.columns.lowerBound,
                                                    part.columns.count, &post, pooling.output, pooling.height, pooling.width, first, count)
                            return
                        }
                        nnb_winograd_3x3(x, g.rows.input, g.columns.input, g.rows.padBefore, g.columns.padBefore, g.channels,
                                         g.rows.output, g.columns.output,
                                         kernel.panels, kernel.kernelTaps, g.filters, part.columns.lowerBound, part.columns.count,
                                         &post, shared.y, first, count)
                    }
                    if let post {
                        run(part.rows.lowerBound, part.rows.count, post)
                        return
                    }
                    // The bias (and a ReLU when nothing else follows) in the kernel, the rest by
                    // `finish` on blocks of about 128 KB of output (4 pixels a tile), in cache.
                    let (plain, rest) = epilogue.storeOnly(bias: shared.bias, activation: activation)
                    let block = max(1, (1 << 13) / g.filters)
                    var first = part.rows.lowerBound
                    while first < part.rows.upperBound {
                        let count = min(block, part.rows.upperBound - first)
                        run(first, count, plain)
                        Self.finishTiles(first..<(first + count), tilesWide: tilesWide, tilesHigh: tilesHigh, geometry: g) { pixels in
                            epilogue.finish(shared.y, pixels: pixels, channels: g.filters, activation: rest)
                        }
                        first += count
                    }
                }
            }
        }
        return computed
    }

    /// Calls `finish` on the runs of output pixels (flat over batch, outH, outW) that tiles
    /// `tiles` (2×2 output blocks, flat over batch, tile rows, tile columns) wrote.
    static func finishTiles(_ tiles: Range<Int>, tilesWide: Int, tilesHigh: Int, geometry g: ConvolutionGeometry,
                            _ finish: (Range<Int>) -> Void) {
        let perImage = tilesWide * tilesHigh
        var tile = tiles.lowerBound
        while tile < tiles.upperBound {
            let image = tile / perImage, tileRow = (tile % perImage) / tilesWide, firstColumn = tile % tilesWide
            let lastColumn = min(tilesWide, firstColumn + (tiles.upperBound - tile))
            let columns = (2 * firstColumn)..<min(2 * lastColumn, g.columns.output)
            for row in (2 * tileRow)..<min(2 * tileRow + 2, g.rows.output) {
                let start = (image * g.rows.output + row) * g.columns.output
                finish((start + columns.lowerBound)..<(start + columns.upperBound))
            }
            tile += lastColumn - firstColumn
        }
    }
}

/// Output pixels `part.rows` (flat over batch, outH, outW), filters `part.columns`, of `convolve2D`
/// as an implicit GEMM. With `kernelEpilogue` the kernel applies the bias, the epilogue and the
/// activation as it stores each block; without, it applies the bias (and a ReLU when nothing
/// else follows), and `epilogue.finish` the rest, block by block while each is in cache (whole
/// rows of filters then).
private func convolveImplicit(_ part: ProductPart, _ input: PaddedInput, _ packed: PackedKernel, _ bias: UnsafePointer<Float>?,
                              _ y: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry, activation: Activation,
                              epilogue: OutputEpilogue, kernelEpilogue: nnb_epilogue?) {
    // A kernel row's taps are adjacent in the input when undilated and ungrouped: one run of kw·C.
    let merged = g.columns.dilation == 1 && g.groups == 1
    let rowStep = g.rows.dilation * input.width * g.channels
    let columnRuns = merged ? 1 : g.columns.size, columnStep = g.columns.dilation * g.channels
    let span = merged ? g.columns.size * g.channels : g.groupChannels
    let range = part.rows
    packed.panels.withUnsafeBufferPointer { panels in
        // Filters part.columns of group `group` (a multiple of 16 into it, or all of them) for
        // pixels first..<first+count, then `post`.
        func product(_ first: Int, _ count: Int, group: Int, _ post: nnb_epilogue) {
            // A grouped kernel's parts hold all its filters (see convolve2D): part.columns is
            // 0..<filters there, and each group's product is groupFilters wide.
            let column = group * g.groupFilters + part.columns.lowerBound
            var here = post.at(row: first, column: column)
            nnb_conv_packed(input.base + group * g.groupChannels, input.height, input.width, g.channels,
                            g.rows.output, g.columns.output, g.rows.stride, g.columns.stride,
                            g.rows.size, rowStep, columnRuns, columnStep, span,
                            panels.baseAddress! + group * packed.groupStride + part.columns.lowerBound * packed.rows,
                            g.groups > 1 ? g.groupFilters : part.columns.count,
                            y + first * g.filters + column, g.filters, first, count, &here)
        }
        if let kernelEpilogue {
            for group in 0..<g.groups { product(range.lowerBound, range.count, group: group, kernelEpilogue) }
            return
        }
        let (plain, rest) = epilogue.storeOnly(bias: bias, activation: activation)
        // Blocks of about 128 KB of output when work follows, so that it finds them in cache.
        let block = rest == .linear && epilogue.isEmpty ? range.count : max(1, (1 << 15) / g.filters)
        var first = range.lowerBound
        while first < range.upperBound {
            let count = min(block, range.upperBound - first)
            for group in 0..<g.groups { product(first, count, group: group, plain) }
            epilogue.finish(y, pixels: first..<(first + count), channels: g.filters, activation: rest)
            first += count
        }
    }
}

/// Output pixels `range` (flat over batch, outH, outW) of `convolve2D` as im2col + OpenBLAS.
private func convolvePixels(_ range: Range<Int>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                            _ y: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry, activation: Activation,
                            epilogue: OutputEpilogue, columnLimit: Int) {
    let filters = g.filters, groupFilters = g.groupFilters, groupChannels = g.groupChannels
    // c[m × groupFilters] (ldc = filters) = a[m × k] · the group's kernel.
    func product(_ a: UnsafePointer<Float>, lda: Int, group: Int, _ c: UnsafeMutablePointer<Float>, m: Int, k: Int) {
        Gemm.gemm(a, lda: lda, w + group * groupFilters, ldb: filters, c, ldc: filters, m: m, n: groupFilters, k: k, accumulate: false)
    }
    // Bias, epilogue and activation on output pixels first..<first+count, just written.
    func finish(_ first: Int, _ count: Int) {
        var row = y + first * filters
        if let bias {
            for _ in 0..<count {
                for filter in 0..<filters { row[filter] += bias[filter] }
                row += filters
            }
        }
        epilogue.finish(y, pixels: first..<(first + count), channels: filters, activation: activation)
    }
    // Each group's GEMM overwrites its own filter columns, so the output needs no clearing.
    if g.isPointwise {
        for group in 0..<g.groups {
            product(x + range.lowerBound * g.channels + group * groupChannels, lda: g.channels, group: group,
                    y + range.lowerBound * filters + group * groupFilters, m: range.count, k: groupChannels)
        }
        finish(range.lowerBound, range.count)
        return
    }
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
        finish(first, count)
        first += count
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
