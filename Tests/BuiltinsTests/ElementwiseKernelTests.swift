import CKernels
import Foundation
import XCTest

/// The element-wise C kernels (sigmoid, tanh, the fused LSTM and GRU gates, max pooling's window)
/// on each vector path: the AVX-512 kernels give the AVX2 kernels' bits on every input (they run
/// the same operations, 16 lanes instead of 8), a tail lane equals a full vector's, and both paths
/// stay within a stated error of a double-precision reference.
final class ElementwiseKernelTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(nnb_has_avx2_fma() != 0, "this CPU has no AVX2 + FMA: the C kernels do not run here (the Swift SIMD path does)")
    }

    /// The level the process chose (NNBUILD_KERNELS or the CPU's best), restored after each test.
    let chosen = nnb_kernel_level()

    override func tearDown() {
        nnb_force_kernel_level(chosen)
    }

    /// The paths this CPU can run, AVX2 first.
    var paths: [Int32] {
        nnb_cpu_kernel_level() >= NNB_KERNELS_AVX512 ? [NNB_KERNELS_AVX2, NNB_KERNELS_AVX512] : [NNB_KERNELS_AVX2]
    }

    func requireAVX512() throws {
        try XCTSkipUnless(nnb_cpu_kernel_level() >= NNB_KERNELS_AVX512,
                          "this CPU has no AVX-512 (F, BW, VL, DQ): only the AVX2 kernels run here, and the comparison with them is skipped")
    }

    /// Runs `body` with the element-wise kernels at `level`.
    func at<R>(_ level: Int32, _ body: () -> R) -> R {
        XCTAssertEqual(nnb_force_kernel_level(level), level, "level \(level) refused")
        defer { nnb_force_kernel_level(chosen) }
        return body()
    }

    /// Values that probe every branch of exp's clamp and rounding: signed zeros, NaN, infinities,
    /// subnormals, the clamp's edges, huge and tiny magnitudes, and random bit patterns (every
    /// exponent, both signs, NaNs with payloads), 1,001 in all: not a multiple of 8 or 16.
    func probeValues() -> [Float] {
        var values: [Float] = [0, -0.0, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
                               .leastNormalMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                               1e-30, -1e-30, 1e-7, -1e-7, 0.5, -0.5, 1, -1, 9, -9, 20, -20, 43.65, -43.65, 44.15, -44.15,
                               87.3, -87.3, 88.3, -88.3, 88.8, -88.8, 100, -100, 1e10, -1e10, 1e30, -1e30]
        var generator = SplitMix(seed: 18)
        while values.count < 600 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()))) }
        while values.count < 1001 { values.append(Float(Double(generator.next() % 2_000_001) / 100_000 - 10)) }
        return values
    }

    /// Same bits, or both NaN.
    func assertSameBits(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        for index in a.indices where !(a[index].bitPattern == b[index].bitPattern || (a[index].isNaN && b[index].isNaN)) {
            XCTFail("\(what)[\(index)]: \(a[index]) (bits \(String(a[index].bitPattern, radix: 16))) against \(b[index]) (bits \(String(b[index].bitPattern, radix: 16)))",
                    file: file, line: line)
            return
        }
    }

    func testSigmoidAndTanhGiveTheAVX2BitsOnTheAVX512Path() throws {
        try requireAVX512()
        let inputs = probeValues()
        for (name, kernel) in [("sigmoid", nnb_sigmoid), ("tanh", nnb_tanh)] as [(String, (UnsafeMutablePointer<Float>, Int) -> Void)] {
            var narrow = inputs, wide = inputs
            at(NNB_KERNELS_AVX2) { kernel(&narrow, narrow.count) }
            at(NNB_KERNELS_AVX512) { kernel(&wide, wide.count) }
            assertSameBits(wide, narrow, name)
        }
    }

    /// Each value is computed the same way whatever the count and wherever it sits in the array:
    /// every prefix of every length 1...40 from every offset 0...16 gives the whole array's bits,
    /// and elements past the count are left alone.
    func testTailLanesEqualFullVectorLanes() {
        let inputs = Array(probeValues().prefix(64))
        for path in paths {
            for (name, kernel) in [("sigmoid", nnb_sigmoid), ("tanh", nnb_tanh)] as [(String, (UnsafeMutablePointer<Float>, Int) -> Void)] {
                var whole = inputs
                at(path) { kernel(&whole, whole.count) }
                for offset in 0...16 {
                    for count in 1...40 {
                        var part = inputs
                        at(path) { part.withUnsafeMutableBufferPointer { kernel($0.baseAddress! + offset, count) } }
                        assertSameBits(Array(part[offset..<(offset + count)]), Array(whole[offset..<(offset + count)]),
                                       "\(name), path \(path), offset \(offset), count \(count)")
                        assertSameBits(Array(part[(offset + count)...]), Array(inputs[(offset + count)...]),
                                       "\(name), path \(path): past the count, offset \(offset), count \(count)")
                    }
                }
            }
        }
    }

    /// Against double precision over the probe values. sigmoid: within 4 ulp of the true value
    /// for x > −87.3 (below, exp's clamp holds e^-x at e^87.3, so σ(x) stays at about 2^-126,
    /// above its true value but under 2^-125); tanh: within 4 ulp of 1 (5e-7), the measure that
    /// matters against Keras, |ours − keras| / (1 + |keras|). NaN gives NaN, and the infinities
    /// give the limits.
    func testSigmoidAndTanhAgainstDoublePrecision() {
        let inputs = probeValues()
        for path in paths {
            var sigmoid = inputs, tanh = inputs
            at(path) {
                nnb_sigmoid(&sigmoid, sigmoid.count)
                nnb_tanh(&tanh, tanh.count)
            }
            for (index, x) in inputs.enumerated() {
                if x.isNaN {
                    XCTAssertTrue(sigmoid[index].isNaN && tanh[index].isNaN, "path \(path): NaN stays NaN")
                    continue
                }
                let s = 1 / (1 + Foundation.exp(-Double(x))), t = Foundation.tanh(Double(x))
                if x > -87.3 {
                    XCTAssertLessThanOrEqual(abs(Double(sigmoid[index]) - s), 4 * Double(Float(s).ulp), "path \(path): σ(\(x)) = \(sigmoid[index]), expected \(s)")
                } else {
                    XCTAssertLessThan(Double(sigmoid[index]), 0x1p-125, "path \(path): σ(\(x)) = \(sigmoid[index]), expected \(s)")
                    XCTAssertGreaterThanOrEqual(sigmoid[index], 0, "path \(path): σ(\(x))")
                }
                XCTAssertLessThanOrEqual(abs(Double(tanh[index]) - t), 4 * Double(Float(1).ulp), "path \(path): tanh(\(x)) = \(tanh[index]), expected \(t)")
            }
            let at = { (value: Float) in inputs.firstIndex(of: value)! }
            XCTAssertEqual(sigmoid[at(.infinity)], 1)
            XCTAssertEqual(sigmoid[at(-.infinity)], 0, accuracy: 0x1p-125)
            XCTAssertEqual(tanh[at(.infinity)], 1)
            XCTAssertEqual(tanh[at(-.infinity)], -1)
        }
    }

    /// The fused LSTM pass: the AVX-512 kernel gives the AVX2 kernel's c and h, for unit counts
    /// around both vector widths, with huge, infinite and NaN pre-activations. (z is scratch: what
    /// its last quarter holds afterwards is not part of the result.)
    func testLSTMGatesGiveTheAVX2BitsOnTheAVX512Path() throws {
        try requireAVX512()
        let probes = probeValues()
        var generator = SplitMix(seed: 4)
        for units in [1, 5, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 128] {
            let z = (0..<(4 * units)).map { index in index % 3 == 0 ? probes[Int(generator.next() % UInt64(probes.count))] : generator.uniform(-8, 8) }
            let c = (0..<units).map { _ in generator.uniform(-3, 3) }
            var results: [[Float]] = []
            for path in [NNB_KERNELS_AVX2, NNB_KERNELS_AVX512] {
                var scratch = z, cell = c, h = [Float](repeating: 7, count: units)
                at(path) { nnb_lstm_gates(&scratch, &cell, &h, units) }
                results.append(cell + h)
            }
            assertSameBits(results[1], results[0], "LSTM gates, \(units) units")
        }
    }

    /// The fused GRU pass (reset_after=True): against Keras's formula in double precision
    /// (within 1e-6 · (1 + |value|)) on both paths, the AVX-512 kernel giving the AVX2 kernel's
    /// bits, and each row's h' the same whether the row runs alone or inside a longer row set.
    func testGRUGatesMatchTheFormulaAndAgreeAcrossPaths() {
        var generator = SplitMix(seed: 3)
        for units in [1, 3, 8, 13, 16, 17, 40, 128] {
            let x = (0..<(3 * units)).map { _ in generator.uniform(-6, 6) }
            let r = (0..<(3 * units)).map { _ in generator.uniform(-6, 6) }
            let h = (0..<units).map { _ in generator.uniform(-1, 1) }
            var results: [[Float]] = []
            for path in paths {
                var projected = x, state = h
                at(path) { nnb_gru_gates(&projected, r, &state, units) }
                for u in 0..<units {
                    func sigmoid(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
                    let z = sigmoid(Double(x[u]) + Double(r[u])), reset = sigmoid(Double(x[units + u]) + Double(r[units + u]))
                    let candidate = Foundation.tanh(Double(x[2 * units + u]) + reset * Double(r[2 * units + u]))
                    let want = z * Double(h[u]) + (1 - z) * candidate
                    XCTAssertEqual(Double(state[u]), want, accuracy: 1e-6 * (1 + abs(want)), "path \(path), \(units) units, h[\(u)]")
                    XCTAssertEqual(Double(projected[u]), z, accuracy: 1e-6, "path \(path), \(units) units, z[\(u)]")
                    XCTAssertEqual(Double(projected[2 * units + u]), candidate, accuracy: 1e-6, "path \(path), \(units) units, ĥ[\(u)]")
                }
                results.append(projected + state)
            }
            if results.count == 2 { assertSameBits(results[1], results[0], "GRU gates, \(units) units") }
        }
    }

    /// A saturated update gate (z = 1) keeps h exactly, and NaN in a gate's input gives NaN in h'
    /// (as Keras's z·h + (1 − z)·ĥ does, even at z = 1: 0·NaN is NaN).
    func testGRUGatesKeepASaturatedStateAndNaN() {
        for path in paths {
            let units = 19
            var x = [Float](repeating: 0, count: 3 * units), r = [Float](repeating: 0, count: 3 * units)
            var h = (0..<units).map { Float($0) * 0.037 - 0.3 }
            let previous = h
            for u in 0..<units { x[u] = 100 }  // z = σ(100) = 1
            x[2 * units + 4] = .nan  // ĥ of unit 4
            r[units + 7] = .nan  // the reset gate of unit 7
            r[18] = .nan  // z of unit 18, in the tail of both vector widths
            at(path) { nnb_gru_gates(&x, r, &h, units) }
            for u in 0..<units {
                if [4, 7, 18].contains(u) {
                    XCTAssertTrue(h[u].isNaN, "path \(path): unit \(u) has a NaN gate input, so h' is NaN; found \(h[u])")
                } else {
                    XCTAssertEqual(h[u].bitPattern, previous[u].bitPattern, "path \(path): unit \(u) with z = 1 keeps its state, found \(h[u])")
                }
            }
        }
    }

    /// Max over windows of many shapes and channel counts (every tail of 16 and 64), cells holding
    /// NaN, ±0 and −∞: the AVX-512 kernel gives the AVX2 kernel's bits, and both give the naive
    /// twin's value (NaN passed over, an empty window −∞).
    func testMaxWindowGivesTheAVX2BitsOnTheAVX512Path() {
        var generator = SplitMix(seed: 7)
        let specials: [Float] = [.nan, 0, -0.0, -.infinity, .infinity, -1e30]
        for channels in [1, 3, 8, 15, 16, 17, 31, 32, 48, 63, 64, 65, 100, 128, 129] {
            for (rows, columns) in [(0, 2), (1, 1), (2, 2), (3, 3), (2, 5)] {
                let columnStep = channels + 3, rowStep = columnStep * (columns + 1)
                let input = (0..<(rowStep * max(rows, 1))).map { _ in
                    generator.next() % 5 == 0 ? specials[Int(generator.next() % UInt64(specials.count))] : generator.uniform(-4, 4)
                }
                var want = [Float](repeating: -.infinity, count: channels)
                for c in 0..<channels {
                    for r in 0..<rows {
                        for q in 0..<columns where input[r * rowStep + q * columnStep + c] > want[c] { want[c] = input[r * rowStep + q * columnStep + c] }
                    }
                }
                var results: [[Float]] = []
                for path in paths {
                    var out = [Float](repeating: 42, count: channels + 1)
                    at(path) { nnb_max_window(input, rows, rowStep, columns, columnStep, channels, &out) }
                    XCTAssertEqual(out[channels], 42, "path \(path): the kernel wrote past the channels")
                    for c in 0..<channels where out[c] != want[c] {
                        XCTFail("path \(path), \(channels) channels, window \(rows)×\(columns): channel \(c) is \(out[c]), expected \(want[c])")
                        break
                    }
                    results.append(out)
                }
                if results.count == 2 { assertSameBits(results[1], results[0], "max window, \(channels) channels, \(rows)×\(columns)") }
            }
        }
    }

    /// gelu (exact, Keras's default) against double precision, x/2 · (1 + erf(x/√2)) with erfc on
    /// the negative side: within 2e-7 · (1 + |gelu|) everywhere (the fixtures' measure; about 2
    /// ulp of 1), and within 1e-5 relative for −9 ≤ x < 0, where the value is small but must not
    /// be lost to cancellation. NaN and −∞ give NaN, ∞ gives ∞, −0 gives −0; the AVX-512 kernel
    /// gives the AVX2 kernel's bits, a tail lane a full vector's.
    func testGeluAgainstDoublePrecisionAndAcrossPaths() {
        let inputs = probeValues() + stride(from: -12, through: 12, by: 0.0137).map { Float($0) }
        var results: [[Float]] = []
        for path in paths {
            var y = inputs
            at(path) { nnb_gelu(&y, y.count) }
            for (index, x) in inputs.enumerated() {
                let v = Double(x)
                let want = v >= 0 ? 0.5 * v * (2 - Foundation.erfc(v / 2.0.squareRoot())) : 0.5 * v * Foundation.erfc(-v / 2.0.squareRoot())
                if x.isNaN || x == -.infinity {
                    XCTAssertTrue(y[index].isNaN, "path \(path): gelu(\(x)) = \(y[index]), expected NaN as Keras gives")
                } else if x == .infinity {
                    XCTAssertEqual(y[index], .infinity, "path \(path)")
                } else {
                    XCTAssertLessThanOrEqual(abs(Double(y[index]) - want), 2e-7 * (1 + abs(want)), "path \(path): gelu(\(x)) = \(y[index]), expected \(want)")
                    if x >= -9, x < 0, abs(want) >= Double(Float.leastNormalMagnitude) {
                        XCTAssertLessThanOrEqual(abs(Double(y[index]) - want) / abs(want), 1e-5, "path \(path): gelu(\(x)) = \(y[index]), expected \(want)")
                    }
                }
            }
            XCTAssertEqual(y[inputs.firstIndex(of: 0)! + 1].bitPattern, (-0.0 as Float).bitPattern, "path \(path): gelu(−0) is −0")
            var prefix = Array(inputs.prefix(37))
            at(path) { nnb_gelu(&prefix, 37) }
            assertSameBits(prefix, Array(y.prefix(37)), "gelu, path \(path): a tail of 37")
            results.append(y)
        }
        if results.count == 2 { assertSameBits(results[1], results[0], "gelu") }
    }

    /// Softmax and log-softmax over rows of many lengths (every tail of 8 and 16), values up to
    /// ±60 and masked-out −1e9 entries, against double precision: softmax within 4e-7 + |x − max|
    /// · 2^-24 relative where the value is over 1e-30 (the second term is float's rounding of x −
    /// max, which Keras's float arithmetic has too), log-softmax within 2e-6 · (1 + |value|); each
    /// row's bits the same alone or among other rows, and the AVX-512 kernel giving the AVX2
    /// kernel's bits.
    func testSoftmaxAgainstDoublePrecisionAndAcrossPaths() {
        var generator = SplitMix(seed: 12)
        for length in [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 128, 129] {
            let rows = 5
            let input = (0..<(rows * length)).map { index -> Float in
                index % 11 == 3 ? -1e9 : generator.uniform(-60, 60)
            }
            for log in [false, true] {
                var results: [[Float]] = []
                for path in paths {
                    var y = input
                    at(path) { nnb_softmax(&y, rows, length, log ? 1 : 0) }
                    for row in 0..<rows {
                        let x = input[(row * length)..<((row + 1) * length)].map(Double.init)
                        let peak = x.max()!
                        let sum = x.reduce(0) { $0 + Foundation.exp($1 - peak) }
                        for i in 0..<length {
                            let got = Double(y[row * length + i])
                            if log {
                                let want = x[i] - peak - Foundation.log(sum)
                                XCTAssertLessThanOrEqual(abs(got - want), 2e-6 * (1 + abs(want)), "path \(path), length \(length), row \(row), [\(i)]: log-softmax \(got), expected \(want)")
                            } else {
                                let want = Foundation.exp(x[i] - peak) / sum
                                if want > 1e-30 {
                                    XCTAssertLessThanOrEqual(abs(got - want) / want, 4e-7 + abs(x[i] - peak) * 0x1p-24, "path \(path), length \(length), row \(row), [\(i)]: softmax \(got), expected \(want)")
                                } else {
                                    XCTAssertTrue(want == 0 ? got == 0 : got < 1e-30, "path \(path), length \(length), row \(row), [\(i)]: softmax \(got), expected \(want)")
                                }
                            }
                        }
                        var alone = Array(input[(row * length)..<((row + 1) * length)])
                        at(path) { nnb_softmax(&alone, 1, length, log ? 1 : 0) }
                        assertSameBits(alone, Array(y[(row * length)..<((row + 1) * length)]), "path \(path), length \(length): row \(row) alone")
                    }
                    results.append(y)
                }
                if results.count == 2 { assertSameBits(results[1], results[0], "softmax (log \(log)), length \(length)") }
            }
        }
    }

    /// Rows the vector kernels must not run through exp's clamp give what the scalar formula
    /// (and Keras) gives: ∞ in a row makes its own entry NaN and the others 0, a row of −∞ is NaN,
    /// NaN anywhere makes the row NaN, and −∞ among numbers, or a masked-out −1e9, gives exactly
    /// 0 (not exp's clamped 2^−126 over the sum).
    func testSoftmaxOfInfiniteAndNaNRows() {
        for path in paths {
            var rows: [Float] = [.infinity, 1, 2, -.infinity, -.infinity, -.infinity, .nan, 1, 2, -.infinity, 0, 1, -1e9, 0, 1]
            at(path) { nnb_softmax(&rows, 5, 3, 0) }
            XCTAssertTrue(rows[0].isNaN, "path \(path): softmax of ∞ among numbers, found \(rows[0])")
            XCTAssertEqual(Array(rows[1...2]), [0, 0], "path \(path): the numbers beside ∞")
            XCTAssertTrue(rows[3...5].allSatisfy(\.isNaN), "path \(path): a row of −∞, found \(rows[3...5])")
            XCTAssertTrue(rows[6...8].allSatisfy(\.isNaN), "path \(path): a row holding NaN, found \(rows[6...8])")
            XCTAssertEqual(rows[9], 0, "path \(path): −∞ beside numbers gives 0, found \(rows[9])")
            XCTAssertEqual(Double(rows[11]), 1 / (1 + Foundation.exp(-1.0)), accuracy: 1e-7, "path \(path)")
            XCTAssertEqual(rows[12], 0, "path \(path): a masked-out −1e9 gives 0, found \(rows[12])")
        }
    }

    /// The hook refuses what cannot run: a level above this CPU's changes nothing.
    func testForcingALevelTheCPULacksIsRefused() {
        XCTAssertEqual(nnb_force_kernel_level(nnb_cpu_kernel_level() + 1), chosen, "a refused level changes nothing")
        XCTAssertEqual(nnb_force_kernel_level(NNB_KERNELS_AVX2), NNB_KERNELS_AVX2)
        XCTAssertEqual(nnb_force_kernel_level(chosen), chosen)
    }
}

private extension SplitMix {
    /// A float in low..<high, on a grid of 2^-24 of the range.
    mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * Float(next() >> 40) / Float(1 << 24)
    }
}
