import CKernels
import XCTest
@testable import Builtins
import LayerRegistry

final class ConvolutionTests: XCTestCase {
    // MARK: - Hand-computed values

    /// x = 1…9 as a 3×3 image, kernel [[1, 2], [3, 4]], bias 1.
    private func conv2D(padding: String, strides: Int = 1) throws -> Tensor {
        let layer = #"{"class_name": "Conv2D", "config": {"name": "conv", "filters": 1, "kernel_size": 2, "strides": \#(strides), "padding": "\#(padding)"}}"#
        let model = try HandBuilt.model(input: [3, 3, 1], layers: [layer],
                                        weights: ["conv/kernel": ([2, 2, 1, 1], [1, 2, 3, 4]), "conv/bias": ([1], [1])])
        return try HandBuilt.run(model, shape: [1, 3, 3, 1], (1...9).map(Float.init))
    }

    func testConv2DValid() throws {
        let y = try conv2D(padding: "valid")
        XCTAssertEqual(y.shape, [1, 2, 2, 1])
        // 1·1 + 2·2 + 4·3 + 5·4 = 37, then + bias.
        assertClose(y.data, [38, 48, 68, 78])
    }

    func testConv2DSameEvenKernelPadsBottomRight() throws {
        let y = try conv2D(padding: "same")
        XCTAssertEqual(y.shape, [1, 3, 3, 1])
        // The one padding row and column go after the input: the last column sees x[·, 2] and zeros.
        assertClose(y.data, [38, 48, 3 + 18 + 1,
                             68, 78, 6 + 27 + 1,
                             7 + 16 + 1, 8 + 18 + 1, 9 + 1])
    }

    func testConv2DSameStrideTwo() throws {
        // ceil(3/2) = 2 outputs; total padding (2-1)·2 + 2 - 3 = 1, all after.
        let y = try conv2D(padding: "same", strides: 2)
        XCTAssertEqual(y.shape, [1, 2, 2, 1])
        assertClose(y.data, [38, 3 + 18 + 1, 7 + 16 + 1, 9 + 1])
    }

    private func conv1D(_ options: String, input: [Float] = [1, 2, 3, 4]) throws -> Tensor {
        let layer = #"{"class_name": "Conv1D", "config": {"name": "conv", "filters": 1, "kernel_size": 2, "use_bias": false, \#(options)}}"#
        // Tap 0 weighs 10, tap 1 weighs 1.
        let model = try HandBuilt.model(input: [nil, 1], layers: [layer], weights: ["conv/kernel": ([2, 1, 1], [10, 1])])
        return try HandBuilt.run(model, shape: [1, input.count, 1], input)
    }

    func testConv1DCausal() throws {
        let y = try conv1D(#""padding": "causal""#)
        // y[t] = 10·x[t-1] + x[t], with x[-1] = 0.
        assertClose(y.data, [1, 12, 23, 34])
    }

    func testConv1DCausalDilated() throws {
        let y = try conv1D(#""padding": "causal", "dilation_rate": 2"#)
        assertClose(y.data, [1, 2, 13, 24])
    }

    func testConv1DCausalStrided() throws {
        let y = try conv1D(#""padding": "causal", "strides": 2"#, input: [1, 2, 3, 4, 5])
        // Outputs at t = 0, 2, 4.
        XCTAssertEqual(y.shape, [1, 3, 1])
        assertClose(y.data, [1, 23, 45])
    }

    func testConv1DValidAndSameOnRunTimeLength() throws {
        assertClose(try conv1D(#""padding": "valid""#).data, [12, 23, 34])
        // Same with an even kernel: the padding step goes after the input.
        assertClose(try conv1D(#""padding": "same""#).data, [12, 23, 34, 40])
        assertClose(try conv1D(#""padding": "valid""#, input: [5, 6]).data, [56])
    }

    func testGroupsUseTheirOwnChannels() throws {
        // Two groups of one channel each, a 1×1 kernel: filter 0 sees channel 0 only, filter 1 channel 1 only.
        let layer = #"{"class_name": "Conv2D", "config": {"name": "conv", "filters": 2, "kernel_size": 1, "groups": 2}}"#
        let model = try HandBuilt.model(input: [1, 2, 2], layers: [layer],
                                        weights: ["conv/kernel": ([1, 1, 1, 2], [2, 3]), "conv/bias": ([2], [0.5, -0.5])])
        let y = try HandBuilt.run(model, shape: [1, 1, 2, 2], [1, 10, 2, 20])
        assertClose(y.data, [2.5, 29.5, 4.5, 59.5])
    }

    func testActivationAppliesOverFilters() throws {
        let layer = #"{"class_name": "Conv1D", "config": {"name": "conv", "filters": 2, "kernel_size": 1, "use_bias": false, "activation": "softmax"}}"#
        let model = try HandBuilt.model(input: [2, 1], layers: [layer], weights: ["conv/kernel": ([1, 1, 2], [1, 0])])
        let y = try HandBuilt.run(model, shape: [1, 2, 1], [0, log(3)])
        assertClose(y.data, [0.5, 0.5, 0.75, 0.25])
    }

    // MARK: - Fast kernel against its naive twin

    func testIm2colGemmMatchesNaiveTwinOnRandomShapes() {
        var random = SplitMix(seed: 42)
        var checked = 0
        for trial in 0..<150 {
            let groups = [1, 1, 2, 3].randomElement(using: &random) ?? 1
            let channels = groups * Int.random(in: 1...3, using: &random)
            let filters = groups * Int.random(in: 1...3, using: &random)
            let oneD = trial % 3 == 0
            let kernelHeight = oneD ? 1 : Int.random(in: 1...4, using: &random)
            let kernelWidth = Int.random(in: 1...4, using: &random)
            let dilated = Bool.random(using: &random)
            let strideHeight = dilated || oneD ? 1 : Int.random(in: 1...3, using: &random)
            let strideWidth = dilated ? 1 : Int.random(in: 1...3, using: &random)
            let dilationHeight = dilated && !oneD ? Int.random(in: 1...3, using: &random) : 1
            let dilationWidth = dilated ? Int.random(in: 1...3, using: &random) : 1
            let paddings: [WindowPadding] = oneD ? [.valid, .same, .causal] : [.valid, .same]
            let padding = paddings.randomElement(using: &random) ?? .valid
            let height = oneD ? 1 : Int.random(in: 1...9, using: &random)
            let width = Int.random(in: 1...11, using: &random)
            let batch = Int.random(in: 1...3, using: &random)
            guard let rows = WindowAxis.place(input: height, size: kernelHeight, stride: strideHeight, dilation: dilationHeight, padding: oneD ? .valid : padding),
                  let columns = WindowAxis.place(input: width, size: kernelWidth, stride: strideWidth, dilation: dilationWidth, padding: padding) else {
                continue
            }
            let geometry = ConvolutionGeometry(rows: rows, columns: columns, channels: channels, filters: filters, groups: groups)
            let input = random.floats(batch * geometry.inputCount)
            let kernel = random.floats(kernelHeight * kernelWidth * geometry.groupChannels * filters)
            let bias: [Float]? = Bool.random(using: &random) ? random.floats(filters) : nil
            // ReLU runs inside the AVX2 kernel; other activations after it, block by block.
            let activation = [Activation.linear, .relu, .sigmoid, .elu(alpha: 0.5)].randomElement(using: &random) ?? .linear
            let count = batch * geometry.outputCount
            var fast = [Float](repeating: .nan, count: count), chunked = fast, naive = fast, packedOut = fast, split = fast
            input.withUnsafeBufferPointer { x in
                kernel.withUnsafeBufferPointer { w in
                    let b = bias?.withUnsafeBufferPointer { $0 }
                    fast.withUnsafeMutableBufferPointer { convolve2D(x, batch: batch, w, b, into: $0, geometry: geometry, activation: activation) }
                    // A tiny column budget forces one output pixel per GEMM, exercising the chunked path.
                    chunked.withUnsafeMutableBufferPointer {
                        convolve2D(x, batch: batch, w, b, into: $0, geometry: geometry, activation: activation, columnLimit: 1)
                    }
                    naive.withUnsafeMutableBufferPointer {
                        naiveConvolve2D(x, batch: batch, w, b, into: $0, geometry: geometry)
                        activation.apply($0, axisLength: filters)
                    }
                    // The weights packed for the AVX2 implicit GEMM (where it runs), and the output
                    // pixels split across two threads at any size.
                    let packed = PackedKernel(w, patch: geometry.patchSize, filters: filters, groups: groups)
                    packedOut.withUnsafeMutableBufferPointer {
                        convolve2D(x, batch: batch, w, b, into: $0, geometry: geometry, activation: activation, packed: packed)
                    }
                    Gemm.withThreads(2) {
                        split.withUnsafeMutableBufferPointer {
                            convolve2D(x, batch: batch, w, b, into: $0, geometry: geometry, activation: activation, packed: packed,
                                       columnLimit: 7, splitWork: 0)
                        }
                    }
                }
            }
            let description = "trial \(trial): \(geometry), \(activation)"
            XCTAssertFalse(fast.contains(where: \.isNaN), "unwritten output in \(description)")
            XCTAssertFalse(split.contains(where: \.isNaN), "unwritten output (split) in \(description)")
            assertClose(fast, naive, tolerance: 1e-5, description)
            assertClose(chunked, naive, tolerance: 1e-5, description)
            assertClose(packedOut, naive, tolerance: 1e-5, "packed: " + description)
            assertClose(split, naive, tolerance: 1e-5, "split: " + description)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 100, "too few random shapes fit their kernels")
    }

    /// Which 3×3 layers take Winograd on AVX-512 (`WinogradKernel`'s doc comment has the
    /// measurements): a 14×14 output keeps it even with ResNet50's 590 K weights, a 7×7 output
    /// with a million weights stays direct, and a 7×7 output with few weights keeps it. On the
    /// AVX2 path every one of them takes Winograd; on the portable path none does.
    func testWinogradStaysDirectOnlyForSmallOutputsWithStreamedKernels() throws {
        func takesWinograd(side: Int, channels: Int) -> Bool {
            let axis = WindowAxis.place(input: side, size: 3, stride: 1, padding: .same)!
            let geometry = ConvolutionGeometry(rows: axis, columns: axis, channels: channels, filters: channels, groups: 1)
            let kernel = [Float](repeating: 0.5, count: 9 * channels * channels)
            return kernel.withUnsafeBufferPointer { WinogradKernel($0, geometry: geometry, outputSize: (side, side)) } != nil
        }
        let path = "on the \(Gemm.kernelPath) path"
        XCTAssertEqual(takesWinograd(side: 14, channels: 256), Gemm.useAVX2Kernels, "ResNet50's 14×14×256 layers, \(path)")
        XCTAssertEqual(takesWinograd(side: 56, channels: 64), Gemm.useAVX2Kernels, "ResNet50's 56×56×64 layers, \(path)")
        XCTAssertEqual(takesWinograd(side: 7, channels: 512), Gemm.kernelPath == .avx2, "ResNet50's 7×7×512 layers, \(path)")
        XCTAssertEqual(takesWinograd(side: 7, channels: 96), Gemm.useAVX2Kernels, "a 7×7 layer of 83 K weights, in cache, \(path)")
    }

    func testWinogradMatchesNaiveTwinOnRandomShapes() throws {
        var random = SplitMix(seed: 11)
        var checked = 0
        for trial in 0..<40 {
            let channels = Int.random(in: 16...37, using: &random), filters = Int.random(in: 16...41, using: &random)
            let padding: WindowPadding = Bool.random(using: &random) ? .same : .valid
            let height = Int.random(in: 1...9, using: &random), width = Int.random(in: 1...9, using: &random)
            let batch = Int.random(in: 1...3, using: &random)
            guard let rows = WindowAxis.place(input: height, size: 3, stride: 1, padding: padding),
                  let columns = WindowAxis.place(input: width, size: 3, stride: 1, padding: padding) else { continue }
            let geometry = ConvolutionGeometry(rows: rows, columns: columns, channels: channels, filters: filters, groups: 1)
            let input = random.floats(batch * geometry.inputCount), kernel = random.floats(9 * channels * filters)
            let bias: [Float]? = Bool.random(using: &random) ? random.floats(filters) : nil
            let activation = [Activation.linear, .relu, .tanh].randomElement(using: &random) ?? .linear
            let count = batch * geometry.outputCount
            var naive = [Float](repeating: .nan, count: count), fast = naive, split = naive
            try input.withUnsafeBufferPointer { x in
                try kernel.withUnsafeBufferPointer { w in
                    let b = bias?.withUnsafeBufferPointer { $0 }
                    naive.withUnsafeMutableBufferPointer {
                        naiveConvolve2D(x, batch: batch, w, b, into: $0, geometry: geometry)
                        activation.apply($0, axisLength: filters)
                    }
                    guard let winograd = WinogradKernel(w, geometry: geometry) else {
                        // Only where the AVX2 kernels run.
                        throw XCTSkip("Winograd needs the AVX2 kernels")
                    }
                    fast.withUnsafeMutableBufferPointer {
                        convolve2D(x, batch: batch, w, b, into: $0, geometry: geometry, activation: activation, winograd: winograd)
                    }
                    Gemm.withThreads(2) {
                        split.withUnsafeMutableBufferPointer {
                            convolve2D(x, batch: batch, w, b, into: $0, geometry: geometry, activation: activation, winograd: winograd, splitWork: 0)
                        }
                    }
                }
            }
            let description = "trial \(trial): \(geometry), \(activation)"
            XCTAssertFalse(fast.contains(where: \.isNaN), "unwritten output in \(description)")
            // Winograd's transforms round differently from a direct sum: 1e-5 of the output's scale.
            assertClose(fast, naive, tolerance: 1e-5, description)
            assertClose(split, naive, tolerance: 1e-5, "split: " + description)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 25)
    }

    /// Which Winograd kernels are transformed on each call: many tiles, or a large kernel from a
    /// 14×14 output (ResNet50's 14×14×256→256); cnn_cifar's 16×16×32→64 and any 7×7 output keep
    /// the transform made at load.
    func testWinogradTransformsPerCallWhereTilesAreManyOrTheKernelLarge() {
        XCTAssertTrue(WinogradKernel.transformsPerCall(tiles: 14 * 14, weights: 9 * 128 * 128), "28×28×128→128")
        XCTAssertTrue(WinogradKernel.transformsPerCall(tiles: 7 * 7, weights: 9 * 256 * 256), "14×14×256→256")
        XCTAssertFalse(WinogradKernel.transformsPerCall(tiles: 8 * 8, weights: 9 * 32 * 64), "16×16×32→64")
        XCTAssertFalse(WinogradKernel.transformsPerCall(tiles: 4 * 4, weights: 9 * 512 * 512), "7×7×512→512")
    }

    /// A kernel whose output is known to be large keeps its taps and is transformed on every call
    /// (`WinogradKernel.transformsPerCall`): panel by panel inside the kernel where a part takes few
    /// tiles, else whole, by each part for its own filters or by all threads first. The same bits
    /// as the kernel transformed at load, on one thread or two, cut either way.
    func testWinogradTransformedPerCallGivesTheBitsOfTheKernelTransformedAtLoad() throws {
        var random = SplitMix(seed: 29)
        // 13×13 and 14×14 with a large kernel: 49 tiles an image, one block of `nnb_winograd_3x3`
        // from the taps at batch 1 (each panel transformed in it); 23-26: 144-169 tiles, the
        // whole kernel first.
        for trial in 0..<8 {
            let large = trial % 2 == 0
            let side = large ? Int.random(in: 13...14, using: &random) : Int.random(in: 23...26, using: &random)
            let channels = large ? 64 : Int.random(in: 16...24, using: &random)
            let filters = large ? [456, 470].randomElement(using: &random)! : [16, 35, 64, 70].randomElement(using: &random)!
            let batch = Int.random(in: 1...2, using: &random)
            let axis = try XCTUnwrap(WindowAxis.place(input: side, size: 3, stride: 1, padding: .same))
            let geometry = ConvolutionGeometry(rows: axis, columns: axis, channels: channels, filters: filters, groups: 1)
            let input = random.floats(batch * geometry.inputCount), kernel = random.floats(9 * channels * filters), bias = random.floats(filters)
            let count = batch * geometry.outputCount
            var atLoad = [Float](repeating: .nan, count: count), perCall = atLoad, perCallSplit = atLoad
            try input.withUnsafeBufferPointer { x in
                try kernel.withUnsafeBufferPointer { w in
                    let b = bias.withUnsafeBufferPointer { $0 }
                    guard let kept = WinogradKernel(w, geometry: geometry),
                          let transformedEachCall = WinogradKernel(w, geometry: geometry, outputSize: (side, side)) else {
                        throw XCTSkip("Winograd needs the AVX2 kernels")
                    }
                    XCTAssertEqual(kept.callScratch, 0, "no output size: transformed at load")
                    XCTAssertEqual(transformedEachCall.callScratch, 16 * transformedEachCall.plane,
                                   "\(side)×\(side): \(((side + 1) / 2) * ((side + 1) / 2)) tiles, transformed on each call")
                    atLoad.withUnsafeMutableBufferPointer {
                        convolve2D(x, batch: batch, w, b, into: $0, geometry: geometry, activation: .relu, winograd: kept)
                    }
                    perCall.withUnsafeMutableBufferPointer {
                        convolve2D(x, batch: batch, w, b, into: $0, geometry: geometry, activation: .relu, winograd: transformedEachCall)
                    }
                    Gemm.withThreads(2) {
                        perCallSplit.withUnsafeMutableBufferPointer {
                            convolve2D(x, batch: batch, w, b, into: $0, geometry: geometry, activation: .relu,
                                       winograd: transformedEachCall, splitWork: 0)
                        }
                    }
                }
            }
            let description = "trial \(trial): \(batch)×\(side)×\(side)×\(channels) → \(filters)"
            XCTAssertFalse(atLoad.contains(where: \.isNaN), "unwritten output in \(description)")
            XCTAssertEqual(perCall.map(\.bitPattern), atLoad.map(\.bitPattern), "one thread: " + description)
            XCTAssertEqual(perCallSplit.map(\.bitPattern), atLoad.map(\.bitPattern), "two threads: " + description)
        }
    }

    func testWindowPlacementMatchesTensorFlow() {
        // same: ceil(in/stride) outputs, padding (out-1)·stride + span - in, the smaller half first.
        XCTAssertEqual(WindowAxis.place(input: 7, size: 4, stride: 2, padding: .same),
                       WindowAxis(input: 7, size: 4, stride: 2, dilation: 1, padBefore: 1, output: 4))
        XCTAssertEqual(WindowAxis.place(input: 5, size: 3, stride: 1, dilation: 2, padding: .same)?.padBefore, 2)
        XCTAssertEqual(WindowAxis.place(input: 6, size: 1, stride: 4, padding: .same)?.padBefore, 0)
        XCTAssertEqual(WindowAxis.place(input: 10, size: 3, stride: 3, dilation: 2, padding: .causal),
                       WindowAxis(input: 10, size: 3, stride: 3, dilation: 2, padBefore: 4, output: 4))
        XCTAssertEqual(WindowAxis.place(input: 9, size: 3, stride: 2, dilation: 2, padding: .valid)?.output, 3)
        XCTAssertNil(WindowAxis.place(input: 4, size: 3, stride: 1, dilation: 2, padding: .valid))
    }

    /// A weight is packed a block of rows at a time (`PackedKernel.packingBlockElements`), each
    /// block's mapped pages let go as soon as it is packed: the panels are those one pass of
    /// `nnb_pack_panels` makes, for one group and for several, over one block and over many; and
    /// they start on a cache line (`AlignedFloats`).
    func testPackingABlockOfRowsAtATimeGivesThePanelsOfOnePass() throws {
        guard Gemm.useAVX2Kernels else { throw XCTSkip("packing happens only where the AVX2 kernels run") }
        var random = SplitMix(seed: 91)
        for (rows, filters, groups) in [(300, 300, 1), (300, 300, 2), (7, 40, 1), (2048, 100, 4)] {
            XCTAssertGreaterThan(rows * filters, groups == 4 ? 2 * PackedKernel.packingBlockElements : 0)
            let matrix = random.floats(rows * filters)
            let columns = filters / groups, stride = (columns + 15) / 16 * 16 * rows
            var want = [Float](repeating: .nan, count: stride * groups)
            matrix.withUnsafeBufferPointer { w in
                for group in 0..<groups { nnb_pack_panels(w.baseAddress! + group * columns, filters, rows, columns, &want[group * stride]) }
            }
            let fromMatrix = matrix.withUnsafeBufferPointer { PackedKernel($0, patch: rows, filters: filters, groups: groups) }
            let weight = Weight(name: "w", shape: [rows, filters], storage: FloatStorage(matrix))
            let fromWeight = PackedKernel(weight, patch: rows, filters: filters, groups: groups)
            XCTAssertEqual(fromMatrix?.panels.array, want, "\(rows)×\(filters) in \(groups)")
            XCTAssertEqual(fromWeight?.panels.array, want, "\(rows)×\(filters) in \(groups)")
            // The kernels stream the panels 64 bytes at a time: each load one cache line.
            XCTAssertEqual(fromMatrix?.panels.isLineAligned, true, "\(rows)×\(filters) in \(groups)")
            XCTAssertEqual(fromWeight?.panels.isLineAligned, true, "\(rows)×\(filters) in \(groups)")
            XCTAssertEqual(weight.storage.array, matrix, "the weight's values stay readable")
        }
    }

    // MARK: - Errors

    private let conv2DLayer = #"{"class_name": "Conv2D", "config": {"name": "conv", "filters": 4, "kernel_size": 3}}"#

    func testConv2DAfterFlattenNamesTheShapeAndTheLayerBefore() throws {
        let flatten = #"{"class_name": "Flatten", "config": {"name": "flatten"}}"#
        let message = try XCTUnwrap(HandBuilt.buildError(input: [4, 4, 1], layers: [flatten, conv2DLayer]))
        XCTAssertTrue(message.contains("layer 'conv' (Conv2D): expects input of shape (batch, height, width, channels), found (None, 16) from layer 'flatten' (Flatten)"), message)
    }

    func testKernelLargerThanInputIsAClearError() throws {
        let message = try XCTUnwrap(HandBuilt.buildError(input: [2, 5, 1], layers: [conv2DLayer]))
        XCTAssertTrue(message.contains("config.kernel_size"), message)
        XCTAssertTrue(message.contains("the kernel spans 3 rows but the input has 2 with padding \"valid\""), message)
        // Same padding makes it fit.
        let same = #"{"class_name": "Conv2D", "config": {"name": "conv", "filters": 4, "kernel_size": 3, "padding": "same"}}"#
        XCTAssertNil(HandBuilt.buildError(input: [2, 5, 1], layers: [same]))
        let dilated = #"{"class_name": "Conv1D", "config": {"name": "conv", "filters": 1, "kernel_size": 3, "dilation_rate": 3}}"#
        let dilatedMessage = try XCTUnwrap(HandBuilt.buildError(input: [6, 1], layers: [dilated]))
        XCTAssertTrue(dilatedMessage.contains("the kernel spans 7 steps (kernel_size 3, dilation_rate 3) but the input has 6"), dilatedMessage)
    }

    func testRunTimeSequenceShorterThanKernelThrows() throws {
        let model = try HandBuilt.model(input: [nil, 1], layers: [#"{"class_name": "Conv1D", "config": {"name": "conv", "filters": 1, "kernel_size": 4}}"#])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 3, 1], [1, 2, 3])) { error in
            XCTAssertTrue("\(error)".contains("the kernel spans 4 steps but the input has 3"), "\(error)")
        }
    }

    func testConfigErrorsNameTheKey() throws {
        let cases: [(String, String, String)] = [
            (#""filters": 4, "kernel_size": 3, "data_format": "channels_middle""#, "config.data_format", "found \"channels_middle\""),
            (#""filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": [1, 2]"#, "config.dilation_rate", "strides [2, 2] together with dilation_rate [1, 2]"),
            (#""filters": 3, "kernel_size": 1, "groups": 2"#, "config.groups", "'filters' (3) must be divisible by 'groups' (2)"),
            (#""filters": 4, "kernel_size": 1, "groups": 4"#, "config.groups", "the input's 2 channels must be divisible by 'groups' (4)"),
            (#""filters": 4, "kernel_size": [3, 3, 3]"#, "config.kernel_size", "must be an integer or a list of 2 integers, found"),
            (#""filters": 4, "kernel_size": 0"#, "config.kernel_size", "must hold positive integers"),
            (#""filters": 4, "kernel_size": 3, "padding": "causal""#, "config.padding", #"must be one of "valid", "same", found "causal""#),
            (#""kernel_size": 3"#, "config.filters", "missing required key 'filters'"),
            (#""filters": 268435456, "kernel_size": 1"#, "config.filters", "more than the limit of 2^31"),
        ]
        for (config, location, text) in cases {
            let layer = #"{"class_name": "Conv2D", "config": {"name": "conv", \#(config)}}"#
            let message = try XCTUnwrap(HandBuilt.buildError(input: [5, 5, 2], layers: [layer]), config)
            XCTAssertTrue(message.contains(location), "\(config): \(message)")
            XCTAssertTrue(message.contains(text), "\(config): \(message)")
        }
    }

    func testMisShapedKernelIsReported() throws {
        let layer = #"{"class_name": "Conv2D", "config": {"name": "conv", "filters": 2, "kernel_size": 2, "groups": 2}}"#
        XCTAssertThrowsError(try HandBuilt.model(input: [3, 3, 4], layers: [layer],
                                                 weights: ["conv/kernel": ([2, 2, 4, 2], Array(repeating: 0, count: 32)), "conv/bias": ([2], [0, 0])])) { error in
            XCTAssertTrue("\(error)".contains("weight 'kernel' ('conv/kernel') has shape [2, 2, 4, 2], expected [2, 2, 2, 2]"), "\(error)")
        }
    }

    // MARK: - Keras fixtures

    func testKerasConv2DValid() { assertMatchesKeras("conv2d_valid") }
    func testKerasConv2DSameOdd() { assertMatchesKeras("conv2d_same_odd") }
    func testKerasConv2DSameEven() { assertMatchesKeras("conv2d_same_even") }
    func testKerasConv2DStrides() { assertMatchesKeras("conv2d_strides") }
    func testKerasConv2DRect() { assertMatchesKeras("conv2d_rect") }
    func testKerasConv2DDilation() { assertMatchesKeras("conv2d_dilation") }
    func testKerasConv2DGroups() { assertMatchesKeras("conv2d_groups") }
    func testKerasConv1D() { assertMatchesKeras("conv1d") }

    func testMoreKerasCases() throws {
        try assertMatchesKerasWherePresent(["conv2d_valid_relu", "conv2d_same_even_strides", "conv2d_same_odd_stride", "conv2d_same_kernel_larger",
                     "conv2d_dilation_same", "conv2d_dilation_valid", "conv2d_dilation_sparse", "conv2d_groups_same",
                     "conv2d_groups_depthwise", "conv2d_nobias_strides", "conv2d_pointwise_groups", "conv2d_pointwise_stride",
                     "conv2d_softmax", "conv2d_lora", "conv1d_valid", "conv1d_same_even", "conv1d_causal_dilation",
                     "conv1d_causal_strides", "conv1d_groups", "conv1d_unknown_length", "conv1d_dilation_sparse",
                     "conv1d_lora_alpha", "cnn_pipeline", "text_cnn"])
    }
}
