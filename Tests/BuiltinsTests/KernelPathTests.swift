import CKernels
import XCTest

/// The GEMM-family kernels give the same bits on every kernel path: each output element is one
/// chain of fused multiply-adds in k's order from c's old value (or 0), then the bias, then
/// max(0, ·). Each test runs the C entry points with the level forced (`nnb_force_kernel_level`,
/// the test-only hook) on AVX2 and on AVX-512, and compares both, bit for bit, with a naive twin
/// that computes exactly that chain. Equal bits on both paths are what keep the Keras fixtures
/// and batch invariance holding on AVX-512 as they do on AVX2.
final class KernelPathTests: XCTestCase {
    /// The paths to check: AVX2 and AVX-512. Skips the test on a CPU without AVX-512.
    func paths() throws -> [Int32] {
        try XCTSkipUnless(nnb_cpu_kernel_level() >= NNB_KERNELS_AVX512,
                          "skipped: this CPU has no AVX-512, so there is no AVX-512 path to compare with the AVX2 one")
        return [NNB_KERNELS_AVX2, NNB_KERNELS_AVX512]
    }

    /// Runs `body` with every kernel at `level`, then restores the level this process chose.
    func at<R>(_ level: Int32, _ body: () -> R) -> R {
        let chosen = nnb_kernel_level()
        XCTAssertEqual(nnb_force_kernel_level(level), level, "the CPU supports level \(level)")
        defer { nnb_force_kernel_level(chosen) }
        return body()
    }

    /// Seeded (HandBuiltModels' SplitMix), so that a failure repeats.
    var generator = SplitMix(seed: 18)
    func randoms(_ count: Int) -> [Float] { generator.floats(count) }

    /// The naive twin: c's old value (or 0), one FMA per p in order, then + bias, then max(0, ·).
    static func chain(_ start: Float, _ k: Int, _ product: (Int) -> (Float, Float), bias: Float?, relu: Bool) -> Float {
        var sum = start
        for p in 0..<k {
            let (x, w) = product(p)
            sum = sum.addingProduct(x, w)
        }
        if let bias { sum += bias }
        return relu && sum < 0 ? 0 : sum
    }

    /// The first index where two results' bits differ, for the failure message.
    func assertSameBits(_ got: [Float], _ want: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        guard let index = got.indices.first(where: { $0 < want.count && got[$0].bitPattern != want[$0].bitPattern }) else { return }
        XCTFail("\(what): element \(index) is \(got[index]), the FMA chain gives \(want[index])", file: file, line: line)
    }

    /// Every row count around the block heights (5 on AVX2, 8 on AVX-512) and m = 1 (where the
    /// 16-lane row runs, nnb_rows_in_16_lanes: groups of 8, 4 and 1 panels), column counts with
    /// partial panels and with 1, 2, 3 or 5 panels, k long enough to be split in chunks
    /// (nnb_packed_k_chunk), few rows against panels past 512 KB (run panels first on AVX-512), with
    /// and without accumulation, bias and relu.
    func testPackedProductIsTheFMAChainOnEveryPath() throws {
        let shapes = [(1, 1, 1), (1, 50, 27), (1, 256, 70), (1, 213, 33), (2, 16, 3), (5, 17, 9), (7, 33, 64), (8, 32, 5), (9, 80, 31),
                      (13, 100, 12), (17, 48, 128), (24, 15, 40), (3, 256, 1100), (9, 130, 1900), (20, 640, 300)]
        for level in try paths() {
            for (m, n, k) in shapes {
                // (The long products, split in chunks, take two of the four settings: the naive twin is slow.)
                for (accumulate, withBias, relu) in [(false, false, false), (true, true, true), (false, true, false), (true, false, true)].prefix(k > 1000 ? 2 : 4) {
                    let lda = k + 3, ldc = n + 2
                    let a = randoms(m * lda), b = randoms(k * n), bias = randoms(n), old = randoms(m * ldc)
                    var packed = [Float](repeating: .nan, count: (n + 15) / 16 * 16 * k)
                    nnb_pack_panels(b, n, k, n, &packed)
                    var c = old
                    at(level) {
                        bias.withUnsafeBufferPointer { biasBuffer in
                            nnb_sgemm_packed(a, lda, packed, &c, ldc, m, n, k, accumulate ? 1 : 0, withBias ? biasBuffer.baseAddress : nil, relu ? 1 : 0)
                        }
                    }
                    var want = old
                    for i in 0..<m {
                        for j in 0..<n {
                            want[i * ldc + j] = Self.chain(accumulate ? old[i * ldc + j] : 0, k, { (a[i * lda + $0], b[$0 * n + j]) },
                                                           bias: withBias ? bias[j] : nil, relu: relu)
                        }
                    }
                    assertSameBits(c, want, "level \(level) packed \(m)×\(k)·\(k)×\(n) accumulate \(accumulate) bias \(withBias) relu \(relu)")
                }
            }
        }
    }

    /// The unpacked products: nnb_sgemm_small on strided views, and one row times a matrix read in
    /// place (nnb_row_times_matrix), columns not a multiple of 16 or 8.
    func testUnpackedProductsAreTheFMAChainOnEveryPath() throws {
        for level in try paths() {
            for (m, n, k) in [(1, 1, 1), (3, 17, 5), (8, 32, 64), (9, 100, 33), (20, 50, 7), (6, 3, 70)] {
                for accumulate in [false, true] {
                    let lda = k + 3, ldb = n + 5, ldc = n + 2
                    let a = randoms(m * lda), b = randoms(k * ldb), old = randoms(m * ldc)
                    var c = old
                    at(level) { nnb_sgemm_small(a, lda, b, ldb, &c, ldc, m, n, k, accumulate ? 1 : 0) }
                    var want = old
                    for i in 0..<m {
                        for j in 0..<n {
                            want[i * ldc + j] = Self.chain(accumulate ? old[i * ldc + j] : 0, k, { (a[i * lda + $0], b[$0 * ldb + j]) },
                                                           bias: nil, relu: false)
                        }
                    }
                    assertSameBits(c, want, "level \(level) small \(m)×\(k)·\(k)×\(n) accumulate \(accumulate)")
                }
            }
            for (n, k) in [(1, 1), (7, 3), (16, 4), (37, 9), (256, 70), (50, 6)] {
                let ldb = n + 4, x = randoms(k), b = randoms(k * ldb), bias = randoms(n), old = randoms(n)
                var y = old
                at(level) { nnb_row_times_matrix(x, b, ldb, &y, n, k, 1, bias, 1) }
                let want = (0..<n).map { j in Self.chain(old[j], k, { (x[$0], b[$0 * ldb + j]) }, bias: bias[j], relu: true) }
                assertSameBits(y, want, "level \(level) row times matrix \(k)·\(k)×\(n)")
            }
        }
    }

    /// The implicit-GEMM convolution: 3×3 'same' at stride 1 (one run per kernel row), stride 2,
    /// taps read one at a time (grouped or dilated layouts: several runs per kernel row), filters
    /// filling partial panels, pixel ranges that start mid-row and cross images, and few pixels
    /// against panels past 512 KB (run panels first on AVX-512).
    func testConvolutionIsTheFMAChainOnEveryPath() throws {
        for level in try paths() {
            // (images, height, width, channels, filters, stride, merged taps)
            for (images, height, width, channels, filters, stride, merged) in
                [(2, 5, 6, 3, 32, 1, true), (1, 7, 7, 4, 20, 2, true), (2, 4, 5, 5, 40, 1, false), (1, 6, 3, 16, 17, 1, true),
                 (1, 5, 6, 48, 400, 1, true)] {
                let paddedHeight = height + 2, paddedWidth = width + 2
                let outputHeight = (height - 1) / stride + 1, outputWidth = (width - 1) / stride + 1
                let x = randoms(images * paddedHeight * paddedWidth * channels), kernel = randoms(9 * channels * filters), bias = randoms(filters)
                var packed = [Float](repeating: .nan, count: (filters + 15) / 16 * 16 * 9 * channels)
                nnb_pack_panels(kernel, filters, 9 * channels, filters, &packed)
                let rowStep = paddedWidth * channels
                let (columnRuns, columnStep, span) = merged ? (1, 0, 3 * channels) : (3, channels, channels)
                let pixels = images * outputHeight * outputWidth, first = 3, count = pixels - 4
                var y = [Float](repeating: .nan, count: count * filters)
                at(level) {
                    bias.withUnsafeBufferPointer { bias in
                        var post = nnb_epilogue(bias: bias.baseAddress, scale: nil, shift: nil, addend: nil, addend_stride: 0,
                                                activation: Int32(NNB_ACTIVATION_RELU))
                        nnb_conv_packed(x, paddedHeight, paddedWidth, channels, outputHeight, outputWidth, stride, stride, 3, rowStep,
                                        columnRuns, columnStep, span, packed, filters, &y, filters, first, count, &post)
                    }
                }
                var want = y
                for index in 0..<count {
                    let pixel = first + index, perImage = outputHeight * outputWidth
                    let image = pixel / perImage, row = pixel % perImage / outputWidth, column = pixel % outputWidth
                    let corner = ((image * paddedHeight + row * stride) * paddedWidth + column * stride) * channels
                    for f in 0..<filters {
                        // Tap (r, s), channel c is patch element (r·3 + s)·C + c, in this order.
                        want[index * filters + f] = Self.chain(0, 9 * channels, { p in
                            let r = p / (3 * channels), s = p % (3 * channels) / channels, c = p % channels
                            return (x[corner + r * rowStep + s * channels + c], kernel[p * filters + f])
                        }, bias: bias[f], relu: true)
                    }
                }
                assertSameBits(y, want, "level \(level) convolution \(images)×\(height)×\(width)×\(channels) → \(filters), stride \(stride), merged \(merged)")
            }
        }
    }

    /// Winograd F(2×2, 3×3) runs its products on the packed product: the same bits on both paths.
    func testWinogradGivesTheSameBitsOnEveryPath() throws {
        let levels = try paths()
        let images = 2, height = 7, width = 6, channels = 19, filters = 35
        let tilesHigh = (height + 1) / 2, tilesWide = (width + 1) / 2
        let paddedHeight = 2 * tilesHigh + 2, paddedWidth = 2 * tilesWide + 2
        let x = randoms(images * paddedHeight * paddedWidth * channels), kernel = randoms(9 * channels * filters), bias = randoms(filters)
        let scale = randoms(filters), shift = randoms(filters), addend = randoms(images * height * width * filters)
        let packed = Self.winogradPanels(kernel, channels: channels, filters: filters)
        let results = levels.map { level -> [Float] in
            var y = [Float](repeating: .nan, count: images * height * width * filters)
            at(level) {
                withEpilogue(bias: bias, scale: scale, shift: shift, addend: addend, stride: filters, activation: NNB_ACTIVATION_RELU6) { post in
                    // In three calls: tiles 0..<5 × filters 0..<32, tiles 0..<5 × filters 32..<35, the other tiles × all.
                    var post = post
                    let tiles = images * tilesHigh * tilesWide
                    nnb_winograd_3x3(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, packed, nil, filters, 0, 32, &post, &y, 0, 5)
                    nnb_winograd_3x3(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, packed, nil, filters, 32, filters - 32, &post, &y, 0, 5)
                    nnb_winograd_3x3(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, packed, nil, filters, 0, filters, &post, &y, 5, tiles - 5)
                }
            }
            return y
        }
        XCTAssertFalse(results[0].contains { $0.isNaN }, "every output written")
        assertSameBits(results[1], results[0], "Winograd on AVX-512 against AVX2")
        // The epilogue in its order on the unfinished outputs (one call, no epilogue).
        var plain = [Float](repeating: .nan, count: images * height * width * filters)
        nnb_winograd_3x3(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, packed, nil, filters, 0, filters, nil, &plain, 0,
                         images * tilesHigh * tilesWide)
        let want = plain.indices.map { Self.finish(plain[$0], $0 % filters, pixel: $0 / filters, bias: bias, scale: scale, shift: shift,
                                                   addend: addend, stride: filters, relu6: true) }
        assertSameBits(results[0], want, "Winograd's epilogue")
    }

    /// Winograd reads its input in place, taps outside it zeros: on the unpadded image with its
    /// padding before (1, 1: "same"; 0, 0: "valid", an odd output's last tiles reaching past the
    /// input) it gives the bits of the same call on a zero-padded copy, pooled or not, from the
    /// transformed kernel and from the taps, on every path.
    func testWinogradReadsTheUnpaddedInputAsItsZeroPaddedCopy() throws {
        let levels = try paths()
        let images = 2, channels = 19, filters = 35
        for (height, width, pad) in [(7, 6, 1), (9, 8, 0), (4, 5, 1)] {
            let outputHeight = height + 2 * pad - 2, outputWidth = width + 2 * pad - 2
            let tilesHigh = (outputHeight + 1) / 2, tilesWide = (outputWidth + 1) / 2, tiles = images * tilesHigh * tilesWide
            let paddedHeight = 2 * tilesHigh + 2, paddedWidth = 2 * tilesWide + 2
            let x = randoms(images * height * width * channels), kernel = randoms(9 * channels * filters), bias = randoms(filters)
            var padded = [Float](repeating: 0, count: images * paddedHeight * paddedWidth * channels)
            for n in 0..<images { for i in 0..<height { for j in 0..<width { for c in 0..<channels
                where i + pad < paddedHeight && j + pad < paddedWidth {
                padded[((n * paddedHeight + i + pad) * paddedWidth + j + pad) * channels + c] = x[((n * height + i) * width + j) * channels + c]
            } } } }
            let packed = Self.winogradPanels(kernel, channels: channels, filters: filters)
            var taps = [Float](repeating: 0, count: (filters + 15) / 16 * 16 * channels * 9)
            nnb_winograd_taps(kernel, channels, filters, &taps)
            let pooledHeight = outputHeight / 2, pooledWidth = outputWidth / 2
            for level in levels {
                for fromTaps in [false, true] {
                    var want = [Float](repeating: .nan, count: images * outputHeight * outputWidth * filters), got = want
                    var wantPooled = [Float](repeating: .nan, count: images * pooledHeight * pooledWidth * filters), gotPooled = wantPooled
                    at(level) {
                        bias.withUnsafeBufferPointer { bias in packed.withUnsafeBufferPointer { packed in taps.withUnsafeBufferPointer { taps in
                            var post = nnb_epilogue(bias: bias.baseAddress, scale: nil, shift: nil, addend: nil, addend_stride: 0,
                                                    activation: Int32(NNB_ACTIVATION_RELU))
                            let k = fromTaps ? nil : packed.baseAddress, t = fromTaps ? taps.baseAddress : nil
                            nnb_winograd_3x3(padded, paddedHeight, paddedWidth, 0, 0, channels, outputHeight, outputWidth, k, t, filters,
                                             0, filters, &post, &want, 0, tiles)
                            nnb_winograd_3x3(x, height, width, pad, pad, channels, outputHeight, outputWidth, k, t, filters,
                                             0, filters, &post, &got, 0, tiles)
                            nnb_winograd_3x3_pooled(padded, paddedHeight, paddedWidth, 0, 0, channels, outputHeight, outputWidth, k, t,
                                                    filters, 0, filters, &post, &wantPooled, pooledHeight, pooledWidth, 0, tiles)
                            nnb_winograd_3x3_pooled(x, height, width, pad, pad, channels, outputHeight, outputWidth, k, t,
                                                    filters, 0, filters, &post, &gotPooled, pooledHeight, pooledWidth, 0, tiles)
                        } } }
                    }
                    let what = "level \(level), \(height)×\(width) padded \(pad), from taps \(fromTaps)"
                    XCTAssertFalse(want.contains { $0.isNaN }, "every output written, \(what)")
                    assertSameBits(got, want, what)
                    assertSameBits(gotPooled, wantPooled, "pooled, " + what)
                }
            }
        }
    }

    /// From the kernel's taps (each panel transformed in the call, up to `NNB_WINOGRAD_TAPS_BLOCK`
    /// tiles a block), Winograd gives the bits of the kernel transformed beforehand: in calls that
    /// take some of the tiles and filters, in more tiles than one block, pooled or not, on every path.
    func testWinogradFromTapsGivesTheBitsOfTheTransformedKernel() throws {
        let levels = try paths()
        // 3 images of 7 × 6 tiles: 126, two blocks in one call.
        let images = 3, height = 13, width = 12, channels = 19, filters = 35
        let tilesHigh = (height + 1) / 2, tilesWide = (width + 1) / 2, tiles = images * tilesHigh * tilesWide
        let paddedHeight = 2 * tilesHigh + 2, paddedWidth = 2 * tilesWide + 2
        XCTAssertGreaterThan(tiles, Int(NNB_WINOGRAD_TAPS_BLOCK), "more tiles than one block")
        let x = randoms(images * paddedHeight * paddedWidth * channels), kernel = randoms(9 * channels * filters), bias = randoms(filters)
        let scale = randoms(filters), shift = randoms(filters), addend = randoms(images * height * width * filters)
        let packed = Self.winogradPanels(kernel, channels: channels, filters: filters)
        var taps = [Float](repeating: .nan, count: (filters + 15) / 16 * channels * 9 * 16)
        nnb_winograd_taps(kernel, channels, filters, &taps)
        let pooledHeight = height / 2, pooledWidth = width / 2
        for level in levels {
            at(level) {
                withEpilogue(bias: bias, scale: scale, shift: shift, addend: addend, stride: filters, activation: NNB_ACTIVATION_RELU6) { post in
                    var post = post
                    var want = [Float](repeating: .nan, count: images * height * width * filters), got = want
                    nnb_winograd_3x3(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, packed, nil, filters, 0, filters, &post, &want, 0, tiles)
                    // Tiles 0..<5 × filters 0..<32 and 32..<35, then the other tiles × all.
                    nnb_winograd_3x3(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, nil, taps, filters, 0, 32, &post, &got, 0, 5)
                    nnb_winograd_3x3(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, nil, taps, filters, 32, filters - 32, &post, &got, 0, 5)
                    nnb_winograd_3x3(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, nil, taps, filters, 0, filters, &post, &got, 5, tiles - 5)
                    XCTAssertFalse(want.contains { $0.isNaN }, "every output written")
                    assertSameBits(got, want, "Winograd from taps on kernel level \(level)")
                    var pooledWant = [Float](repeating: .nan, count: images * pooledHeight * pooledWidth * filters), pooledGot = pooledWant
                    nnb_winograd_3x3_pooled(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, packed, nil, filters, 0, filters, &post,
                                            &pooledWant, pooledHeight, pooledWidth, 0, tiles)
                    nnb_winograd_3x3_pooled(x, paddedHeight, paddedWidth, 0, 0, channels, height, width, nil, taps, filters, 0, filters, &post,
                                            &pooledGot, pooledHeight, pooledWidth, 0, tiles)
                    XCTAssertFalse(pooledWant.contains { $0.isNaN }, "every pooled output written")
                    assertSameBits(pooledGot, pooledWant, "pooled Winograd from taps on kernel level \(level)")
                }
            }
        }
    }

    /// A kernel [3][3][channels][filters] transformed as a Winograd convolution reads it
    /// (`nnb_winograd_taps`, then `nnb_winograd_transform` on every panel).
    static func winogradPanels(_ kernel: [Float], channels: Int, filters: Int, pieces: [Range<Int>]? = nil) -> [Float] {
        let panels = (filters + 15) / 16
        var taps = [Float](repeating: .nan, count: panels * channels * 9 * 16)
        nnb_winograd_taps(kernel, channels, filters, &taps)
        var packed = [Float](repeating: 0, count: 16 * nnb_winograd_plane(channels, filters))
        for piece in pieces ?? [0..<panels] {
            nnb_winograd_transform(taps, channels, filters, piece.lowerBound, piece.upperBound, &packed)
        }
        return packed
    }

    /// The kernel transform U = G g Gᵀ, made on every call, against the formula in double: within
    /// one rounding to float of it, zeros past the last filter, the same bits whether the panels
    /// are transformed together or apart (each thread of a call takes some) and on every path.
    func testWinogradKernelTransformMatchesTheFormula() throws {
        guard nnb_has_avx2_fma() != 0 else { throw XCTSkip("the Winograd kernels need AVX2 and FMA") }
        let channels = 5, filters = 37, panels = (filters + 15) / 16, plane = nnb_winograd_plane(channels, filters)
        let kernel = randoms(9 * channels * filters).map { $0 * 8 }
        let whole = Self.winogradPanels(kernel, channels: channels, filters: filters)
        let apart = Self.winogradPanels(kernel, channels: channels, filters: filters, pieces: [2..<3, 0..<1, 1..<2])
        assertSameBits(apart, whole, "panels transformed apart")
        for level in try paths() {
            let here = at(level) { Self.winogradPanels(kernel, channels: channels, filters: filters) }
            assertSameBits(here, whole, "the transform on kernel level \(level)")
        }
        let g: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        var worst = 0.0
        for c in 0..<channels {
            for f in 0..<(panels * 16) {
                for i in 0..<4 {
                    for j in 0..<4 {
                        var want = 0.0
                        if f < filters {
                            for a in 0..<3 {
                                for b in 0..<3 { want += g[i][a] * Double(kernel[(a * 3 + b) * channels * filters + c * filters + f]) * g[j][b] }
                            }
                        }
                        let got = Double(whole[(i * 4 + j) * plane + (f / 16 * channels + c) * 16 + f % 16])
                        worst = max(worst, abs(got - want) / (1 + abs(want)))
                        if f >= filters { XCTAssertEqual(got, 0, "the padding past filter \(filters)") }
                    }
                }
            }
        }
        XCTAssertLessThan(worst, 1.2e-7, "U = G g Gᵀ against the formula in double, rounded once")
    }

    /// `nnb_epilogue` on one value, as the layers it stands for compute it apart: + bias (zeros for
    /// none), · scale + shift, + addend, then ReLU or ReLU6.
    static func finish(_ value: Float, _ column: Int, pixel: Int, bias: [Float], scale: [Float], shift: [Float], addend: [Float],
                       stride: Int, relu6: Bool) -> Float {
        var v = value + bias[column]
        v = v * scale[column]
        v = v + shift[column]
        v = v + addend[pixel * stride + column]
        v = v < 0 ? 0 : v
        return relu6 && 6 < v ? 6 : v
    }

    func withEpilogue<R>(bias: [Float], scale: [Float], shift: [Float], addend: [Float], stride: Int, activation: Int32,
                         _ body: (nnb_epilogue) -> R) -> R {
        bias.withUnsafeBufferPointer { bias in
            scale.withUnsafeBufferPointer { scale in
                shift.withUnsafeBufferPointer { shift in
                    addend.withUnsafeBufferPointer { addend in
                        body(nnb_epilogue(bias: bias.baseAddress, scale: scale.baseAddress, shift: shift.baseAddress,
                                          addend: addend.baseAddress, addend_stride: stride, activation: activation))
                    }
                }
            }
        }
    }

    /// The convolution's full epilogue (bias, BatchNormalization, a residual addend, ReLU6) in its
    /// store, on calls that take some of the filters (panel offsets) and patches long enough to be
    /// summed in k-chunks (whole kernel rows of a 3×3 patch; slices of a 1×1 one), against the FMA
    /// chain and then the epilogue, bit for bit, on every path.
    func testConvolutionEpilogueColumnRangesAndChunksOnEveryPath() throws {
        var reachedSix = false, reachedZero = false
        for level in try paths() {
            // (height, width, channels, filters, kernel size): k = 576, 1,152 and 600 with 1,040
            // filters pass nnb_packed_k_chunk's threshold (chunks of 256): whole kernel rows of
            // 192, pieces of kernel rows of 384, pieces of a 1×1 patch.
            for (height, width, channels, filters, size) in [(3, 4, 64, 1040, 3), (3, 3, 128, 1040, 3), (4, 3, 600, 1040, 1), (5, 5, 8, 40, 3)] {
                let pad = size / 2, paddedHeight = height + 2 * pad, paddedWidth = width + 2 * pad, k = size * size * channels
                let x = randoms(paddedHeight * paddedWidth * channels), kernel = randoms(k * filters)
                let bias = randoms(filters), scale = randoms(filters), shift = randoms(filters), addend = randoms(height * width * filters)
                var packed = [Float](repeating: .nan, count: (filters + 15) / 16 * 16 * k)
                nnb_pack_panels(kernel, filters, k, filters, &packed)
                let rowStep = paddedWidth * channels, pixels = height * width
                var y = [Float](repeating: .nan, count: pixels * filters)
                at(level) {
                    withEpilogue(bias: bias, scale: scale, shift: shift, addend: addend, stride: filters, activation: NNB_ACTIVATION_RELU6) { post in
                        packed.withUnsafeBufferPointer { panels in
                            y.withUnsafeMutableBufferPointer { out in
                                // Pixels 0..<7 in two column ranges (32 filters, the rest), then the other pixels whole.
                                for (first, count, column, columns) in [(0, 7, 0, 32), (0, 7, 32, filters - 32), (7, pixels - 7, 0, filters)] {
                                    var here = post
                                    here.bias! += column; here.scale! += column; here.shift! += column
                                    here.addend! += first * filters + column
                                    nnb_conv_packed(x, paddedHeight, paddedWidth, channels, height, width, 1, 1, size, rowStep, 1, 0,
                                                    size * channels, panels.baseAddress! + column * k, columns,
                                                    out.baseAddress! + first * filters + column, filters, first, count, &here)
                                }
                            }
                        }
                    }
                }
                var want = y
                for pixel in 0..<pixels {
                    let corner = (pixel / width * paddedWidth + pixel % width) * channels
                    for f in 0..<filters {
                        let sum = Self.chain(0, k, { p in
                            let r = p / (size * channels), s = p % (size * channels) / channels, c = p % channels
                            return (x[corner + r * rowStep + s * channels + c], kernel[p * filters + f])
                        }, bias: nil, relu: false)
                        want[pixel * filters + f] = Self.finish(sum, f, pixel: pixel, bias: bias, scale: scale, shift: shift, addend: addend,
                                                                stride: filters, relu6: true)
                    }
                }
                reachedSix = reachedSix || want.contains(6)
                reachedZero = reachedZero || want.contains(0)
                assertSameBits(y, want, "level \(level) convolution \(height)×\(width)×\(channels) → \(filters), \(size)×\(size), with its epilogue")
            }
        }
        XCTAssertTrue(reachedSix && reachedZero, "the test reaches both ReLU6 bounds")
    }
}
