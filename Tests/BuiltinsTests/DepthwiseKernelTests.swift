import CKernels
import XCTest
@testable import Builtins
import LayerRegistry

/// The direct depthwise kernel (CKernels' nnb_depthwise, AVX2 and AVX-512) against the portable
/// Swift path, on every kernel path this CPU has, whatever NNBUILD_KERNELS says.
final class DepthwiseKernelTests: XCTestCase {
    /// The vector paths this CPU runs; the test skips where there is none.
    private func vectorPaths() throws -> [KernelPath] {
        let paths = KernelPath.allCases.filter { $0 >= .avx2 && $0 <= Gemm.cpuKernelPath }
        if paths.isEmpty { throw XCTSkip("this CPU has no AVX2 + FMA: the direct depthwise kernel does not run") }
        return paths
    }

    /// A random depthwise problem: 1-D or 2-D, kernel 1–5, stride 1–2, dilation 1–2, same or
    /// valid, sizes up to 13 (so that 4-pixel groups, edge pixels and channel tails all occur).
    private struct Problem {
        var geometry: VolumeGeometry
        var channels: Int, multiplier: Int, batch: Int
        var x: [Float], w: [Float], bias: [Float]?
        var width: Int { channels * multiplier }

        static func random(_ generator: inout some RandomNumberGenerator, channels: [Int] = [1, 3, 8, 16, 17, 35]) -> Problem? {
            let padding: WindowPadding = Bool.random(using: &generator) ? .same : .valid
            var axes: [WindowAxis] = []
            for _ in 0..<Int.random(in: 1...2, using: &generator) {
                guard let axis = WindowAxis.place(input: Int.random(in: 1...13, using: &generator), size: Int.random(in: 1...5, using: &generator),
                                                  stride: Int.random(in: 1...2, using: &generator),
                                                  dilation: Int.random(in: 1...2, using: &generator), padding: padding) else { return nil }
                axes.append(axis)
            }
            let g = VolumeGeometry(axes)
            let c = channels.randomElement(using: &generator) ?? 1, m = Int.random(in: 1...3, using: &generator)
            let batch = Int.random(in: 1...3, using: &generator)
            return Problem(geometry: g, channels: c, multiplier: m, batch: batch,
                           x: randomFloats(batch * g.inputPixels * c, &generator), w: randomFloats(g.taps * c * m, &generator),
                           bias: Bool.random(using: &generator) ? randomFloats(c * m, &generator) : nil)
        }

        /// The output of `path` (the portable code for .baseline) over images `images` of the batch.
        func run(_ path: KernelPath, activation: Activation = .linear, normalization: ChannelScale? = nil, images: Range<Int>? = nil,
                 splitWork: Int = Gemm.threadedWork) -> [Float] {
            let images = images ?? 0..<batch
            let perImage = geometry.inputPixels * channels
            let input = Array(x[(images.lowerBound * perImage)..<(images.upperBound * perImage)])
            var y = [Float](repeating: .nan, count: images.count * geometry.outputPixels * width)
            input.withUnsafeBufferPointer { xs in w.withUnsafeBufferPointer { ws in y.withUnsafeMutableBufferPointer { ys in
                let b = bias?.withUnsafeBufferPointer { $0 }
                if path == .baseline, normalization == nil {
                    depthwiseConvolve(xs, batch: images.count, ws, b, into: ys, geometry: geometry, channels: channels,
                                      multiplier: multiplier, activation: activation, splitWork: splitWork)
                } else {
                    depthwiseConvolution(xs, batch: images.count, ws, b, into: ys, geometry: geometry, channels: channels,
                                         multiplier: multiplier, normalization: normalization, activation: activation, path: path,
                                         splitWork: splitWork)
                }
            }}}
            return y
        }

        /// Σ |x·w| + |bias| for every output (of the linear result): the scale of its rounding error.
        func magnitudes() -> [Float] {
            let absolute = Problem(geometry: geometry, channels: channels, multiplier: multiplier, batch: batch,
                                   x: x.map(abs), w: w.map(abs), bias: bias?.map(abs))
            return absolute.run(.baseline)
        }

        var description: String {
            "axes \(geometry.axes.map { "(in \($0.input) k \($0.size) s \($0.stride) d \($0.dilation) pad \($0.padBefore) out \($0.output))" }), channels \(channels), multiplier \(multiplier), batch \(batch), bias \(bias != nil)"
        }
    }

    func testDirectKernelMatchesPortablePathOnRandomConfigs() throws {
        var generator = SystemRandomNumberGenerator()
        let activations: [Activation] = [.linear, .relu, .relu6, .tanh]
        for path in try vectorPaths() {
            var checked = 0
            while checked < 150 {
                guard let problem = Problem.random(&generator) else { continue }
                let activation = activations[checked % activations.count]
                // Every third problem with a folded BatchNormalization (scales 0.5–2 keep the error bound's scale).
                let normalization = checked % 3 == 0
                    ? ChannelScale(scale: (0..<problem.width).map { _ in Float.random(in: 0.5...2, using: &generator) },
                                   shift: randomFloats(problem.width, &generator)) : nil
                let want = problem.run(.baseline, activation: activation, normalization: normalization)
                let got = problem.run(path, activation: activation, normalization: normalization,
                                      splitWork: checked % 2 == 0 ? 0 : Gemm.threadedWork)
                let scale = problem.magnitudes().map { normalization == nil ? $0 : 2 * $0 + 1 }
                XCTAssertEqual(got.count, want.count)
                // Both sum the same taps in the same order; only FMA against a multiply and an add differs.
                let worst = zip(zip(got, want), scale).map { pair, s in abs(pair.0 - pair.1) / (1 + s) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 1e-6, "\(path) \(activation): \(problem.description)")
                if !(worst <= 1e-6) { return }
                checked += 1
            }
        }
    }

    func testEachImageIsBitIdenticalWhateverBatchOrSplit() throws {
        var generator = SystemRandomNumberGenerator()
        for path in try vectorPaths() {
            var checked = 0
            while checked < 40 {
                guard var problem = Problem.random(&generator) else { continue }
                if problem.batch < 2 { continue }
                problem.batch = min(problem.batch, 3)
                let activation: Activation = checked % 2 == 0 ? .relu6 : .linear
                let whole = problem.run(path, activation: activation, splitWork: 0)
                let perImage = problem.geometry.outputPixels * problem.width
                for image in 0..<problem.batch {
                    let alone = problem.run(path, activation: activation, images: image..<(image + 1), splitWork: Int.max)
                    let inBatch = Array(whole[(image * perImage)..<((image + 1) * perImage)])
                    XCTAssertEqual(alone.map(\.bitPattern), inBatch.map(\.bitPattern), "\(path) image \(image): \(problem.description)")
                }
                checked += 1
            }
        }
    }

    /// nnb_depthwise at level baseline (its scalar loop, what a CPU without AVX2 would run if called)
    /// computes what the portable Swift path does, a multiply then an add per tap, bit for bit.
    func testScalarLevelMatchesPortablePathExactly() {
        var generator = SystemRandomNumberGenerator()
        var checked = 0
        while checked < 60 {
            guard let problem = Problem.random(&generator) else { continue }
            let g = problem.geometry, rows = g.axes[1], columns = g.axes[2]
            let want = problem.run(.baseline, activation: .relu)
            var got = [Float](repeating: .nan, count: want.count)
            problem.x.withUnsafeBufferPointer { x in problem.w.withUnsafeBufferPointer { w in got.withUnsafeMutableBufferPointer { y in
                let bias = problem.bias?.withUnsafeBufferPointer { $0.baseAddress }
                nnb_depthwise(x.baseAddress, rows.input, columns.input, problem.channels, problem.multiplier, w.baseAddress,
                              rows.size, columns.size, rows.stride, columns.stride, rows.dilation, columns.dilation,
                              rows.padBefore, columns.padBefore, rows.output, columns.output, bias, nil, nil,
                              NNB_ACTIVATION_RELU, y.baseAddress, 0, problem.batch * rows.output, NNB_KERNELS_BASELINE)
            }}}
            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), problem.description)
            checked += 1
        }
    }

    func testStoreAppliesReLU6AndKeepsNaN() throws {
        // One pixel, channels 0..<19 (a full vector and a tail on either ISA), a 1×1 kernel of 1 and
        // a bias: outputs -10, NaN, 3, 9, ... clamped to [0, 6], NaN kept.
        let channels = 19
        let axis = WindowAxis(input: 1, size: 1, stride: 1, dilation: 1, padBefore: 0, output: 1)
        let x: [Float] = (0..<channels).map { $0 == 1 ? .nan : Float($0) * 3 - 10 }
        let problem = Problem(geometry: VolumeGeometry([axis, axis]), channels: channels, multiplier: 1, batch: 1, x: x,
                              w: Array(repeating: 1, count: channels), bias: Array(repeating: 0.5, count: channels))
        let want: [Float] = x.map { $0.isNaN ? .nan : min(max($0 + 0.5, 0), 6) }
        for path in try vectorPaths() {
            let got = problem.run(path, activation: .relu6)
            XCTAssertEqual(got.map { $0.isNaN ? -1 : $0 }, want.map { $0.isNaN ? -1 : $0 }, "\(path)")
        }
    }

    /// MobileNet's block: depthwise → BatchNormalization → ReLU6 runs as one step, and computes what
    /// the three layers compute one after the other.
    func testDepthwiseAbsorbsBatchNormalizationThenReLU6() throws {
        let layers = [
            #"{"class_name": "DepthwiseConv2D", "config": {"name": "dw", "kernel_size": 3, "strides": 2, "padding": "same", "use_bias": false}}"#,
            #"{"class_name": "BatchNormalization", "config": {"name": "bn", "epsilon": 0.001}}"#,
            #"{"class_name": "ReLU", "config": {"name": "r", "max_value": 6}}"#,
            #"{"class_name": "DepthwiseConv2D", "config": {"name": "dw2", "kernel_size": 3, "depth_multiplier": 2}}"#,
            #"{"class_name": "BatchNormalization", "config": {"name": "bn2"}}"#,
            // A second BatchNormalization is not taken over: it stays a step of its own.
            #"{"class_name": "BatchNormalization", "config": {"name": "bn3"}}"#,
        ]
        var random = SplitMix(seed: 11)
        let channels = 19
        func statistics(_ name: String, _ width: Int) -> [String: ([Int], [Float])] {
            ["\(name)/gamma": ([width], random.floats(width).map { $0 + 1.5 }), "\(name)/beta": ([width], random.floats(width)),
             "\(name)/moving_mean": ([width], random.floats(width)), "\(name)/moving_variance": ([width], random.floats(width).map { $0 + 1.2 })]
        }
        var weights: [String: ([Int], [Float])] = ["dw/kernel": ([3, 3, channels, 1], random.floats(9 * channels)),
                                                   "dw2/kernel": ([3, 3, channels, 2], random.floats(18 * channels)),
                                                   "dw2/bias": ([2 * channels], random.floats(2 * channels))]
        weights.merge(statistics("bn", channels)) { $1 }
        weights.merge(statistics("bn2", 2 * channels)) { $1 }
        weights.merge(statistics("bn3", 2 * channels)) { $1 }
        let fused = try HandBuilt.model(input: [11, 9, channels], layers: layers, weights: weights)
        let apart = try HandBuilt.model(input: [11, 9, channels], layers: layers, weights: weights, fuse: false)
        XCTAssertEqual(fused.steps.map(\.nodes), [[0], [1, 2, 3], [4, 5], [6]])
        let x = Tensor(shape: [2, 11, 9, channels], data: random.floats(2 * 11 * 9 * channels).map { $0 * 4 })
        let want = try apart.predict(x), got = try fused.predict(x)
        XCTAssertEqual(got.shape, want.shape)
        // The store's FMA rounds differently from BatchNormalization's multiply and add, on values
        // up to about 100 that the last normalization can bring near 0.
        assertClose(got.data, want.data, tolerance: 1e-5)
    }

    /// AVX-512 runs the interior of rows of a 3-wide window at stride 1 or 2 by sliding it (8 or 4
    /// pixels a group, each input vector loaded once); AVX2 loads each tap. Both take every pixel's
    /// taps in the same order, so their outputs must be the same bits, with and without a folded
    /// BatchNormalization and ReLU6, for rows long enough to hold several 8-pixel groups.
    func testSlidingWindowGivesTheAVX2Bits() throws {
        let paths = try vectorPaths()
        guard paths.contains(.avx512) else { throw XCTSkip("this CPU has no AVX-512: there is no sliding-window kernel to compare") }
        var generator = SystemRandomNumberGenerator()
        for (width, stride, channels) in [(29, 1, 35), (29, 2, 64), (12, 1, 16), (40, 2, 3), (7, 1, 960)] {
            for padding in [WindowPadding.same, .valid] {
                let rows = WindowAxis.place(input: 5, size: 3, stride: 1, padding: padding)!
                let columns = WindowAxis.place(input: width, size: 3, stride: stride, padding: padding)!
                let problem = Problem(geometry: VolumeGeometry([rows, columns]), channels: channels, multiplier: 1, batch: 2,
                                      x: randomFloats(2 * 5 * width * channels, &generator), w: randomFloats(9 * channels, &generator),
                                      bias: randomFloats(channels, &generator))
                let normalization = ChannelScale(scale: randomFloats(channels, &generator), shift: randomFloats(channels, &generator))
                for (activation, scale) in [(Activation.linear, nil), (.relu6, normalization)] as [(Activation, ChannelScale?)] {
                    let wide = problem.run(.avx512, activation: activation, normalization: scale)
                    let narrow = problem.run(.avx2, activation: activation, normalization: scale)
                    XCTAssertFalse(wide.contains { $0.isNaN }, "every output written")
                    XCTAssertEqual(wide.map(\.bitPattern), narrow.map(\.bitPattern), "\(problem.description) \(activation)")
                }
            }
        }
    }

    /// The sliding groups (AVX-512 at stride 1 and 2, AVX2 at stride 1) also take a row's edge
    /// pixels (their window's first or last input column outside the input, left out) and cut
    /// each row into groups of 1 to 8 pixels, channels in sweeps of up to 192: under every padding
    /// before and after of 0–3 columns (more than one column outside falls back to pixels alone),
    /// rows of 1–17 pixels and channel counts that cut into uneven sweeps and tails, every vector
    /// path must match the portable one, and AVX-512 give the AVX2 bits, every output written.
    func testSlidingGroupsTakeEdgePixels() throws {
        let paths = try vectorPaths()
        var generator = SystemRandomNumberGenerator()
        var compared = 0
        for width in [1, 2, 3, 4, 7, 9, 14, 17] {
            for stride in [1, 2] {
                for before in 0...3 {
                    for after in 0...3 {
                        let padded = width + before + after
                        guard padded >= 3 else { continue }
                        let columns = WindowAxis(input: width, size: 3, stride: stride, dilation: 1, padBefore: before,
                                                 output: (padded - 3) / stride + 1)
                        let rows = WindowAxis(input: 3, size: 3, stride: 1, dilation: 1, padBefore: 1, output: 3)
                        let channels = [5, 48, 200, 400][compared % 4]
                        let problem = Problem(geometry: VolumeGeometry([rows, columns]), channels: channels, multiplier: 1, batch: 1,
                                              x: randomFloats(3 * width * channels, &generator), w: randomFloats(9 * channels, &generator),
                                              bias: compared % 2 == 0 ? randomFloats(channels, &generator) : nil)
                        let want = problem.run(.baseline, splitWork: Int.max)
                        let scale = problem.magnitudes()
                        var outputs: [KernelPath: [Float]] = [:]
                        for path in paths {
                            let got = problem.run(path, splitWork: Int.max)
                            XCTAssertFalse(got.contains { $0.isNaN }, "\(path) writes every output: \(problem.description)")
                            let worst = zip(zip(got, want), scale).map { pair, s in abs(pair.0 - pair.1) / (1 + s) }.max() ?? 0
                            XCTAssertLessThanOrEqual(worst, 1e-6, "\(path): \(problem.description)")
                            outputs[path] = got
                        }
                        if let wide = outputs[.avx512], let narrow = outputs[.avx2] {
                            XCTAssertEqual(wide.map(\.bitPattern), narrow.map(\.bitPattern), problem.description)
                        }
                        compared += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(compared, 200)
    }
}
