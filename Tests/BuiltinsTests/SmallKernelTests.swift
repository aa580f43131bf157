import CKernels
import Foundation
import XCTest
import Builtins

/// The AVX2 + FMA kernels in CKernels against their naive twins.
final class SmallKernelTests: XCTestCase {
    override func setUpWithError() throws {
        // These call the C kernels directly, so they run whenever the CPU can (NNBUILD_KERNELS only
        // steers which path the layers take).
        try XCTSkipUnless(nnb_has_avx2_fma() != 0, "this CPU has no AVX2 + FMA; the OpenBLAS and Swift SIMD paths run instead")
    }

    /// Every edge: rows not a multiple of 4, columns not a multiple of 16, strided views, with
    /// and without accumulation.
    func testSmallGemmMatchesTheNaiveTwin() {
        var generator = SystemRandomNumberGenerator()
        let shapes = [(1, 1, 1), (2, 16, 3), (3, 17, 5), (4, 32, 64), (5, 15, 1), (7, 48, 9), (9, 100, 33), (32, 256, 64), (6, 3, 70)]
        for (m, n, k) in shapes {
            for accumulate in [false, true] {
                // Each matrix sits in a wider buffer (leading dimension past its width).
                let lda = k + 3, ldb = n + 5, ldc = n + 2
                let a = (0..<(m * lda)).map { _ in Float.random(in: -1...1, using: &generator) }
                let b = (0..<(k * ldb)).map { _ in Float.random(in: -1...1, using: &generator) }
                var fast = (0..<(m * ldc)).map { _ in Float.random(in: -1...1, using: &generator) }
                var want = fast
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = accumulate ? Double(want[i * ldc + j]) : 0
                        for p in 0..<k { sum += Double(a[i * lda + p]) * Double(b[p * ldb + j]) }
                        want[i * ldc + j] = Float(sum)
                    }
                }
                nnb_sgemm_small(a, lda, b, ldb, &fast, ldc, m, n, k, accumulate ? 1 : 0)
                // Padding between rows of c is left alone; the view itself matches.
                assertClose(fast, want, accuracy: 1e-5)
            }
        }
    }

    func testSigmoidAndTanhMatchFoundation() {
        var inputs: [Float] = stride(from: -30, through: 30, by: 0.00731).map { Float($0) }
        inputs += [0, -0.0, 1e-8, -1e-8, 100, -100, .infinity, -.infinity, 1, 2, 3]  // count not a multiple of 8
        var sigmoid = inputs, tanh = inputs
        nnb_sigmoid(&sigmoid, sigmoid.count)
        nnb_tanh(&tanh, tanh.count)
        var worstSigmoid = 0.0, worstTanh = 0.0
        for (index, x) in inputs.enumerated() {
            let s = 1 / (1 + Foundation.exp(-Double(x))), t = Foundation.tanh(Double(x))
            worstSigmoid = max(worstSigmoid, abs(Double(sigmoid[index]) - s) / max(s, 1e-30))
            worstTanh = max(worstTanh, abs(Double(tanh[index]) - t) / (1 + abs(t)))
        }
        XCTAssertLessThan(worstSigmoid, 5e-7)
        XCTAssertLessThan(worstTanh, 3e-7)
        var special: [Float] = [.nan, .nan]
        nnb_sigmoid(&special[0], 1)
        nnb_tanh(&special[1], 1)
        XCTAssertTrue(special[0].isNaN && special[1].isNaN, "NaN stays NaN")
    }

    /// The fused LSTM gate pass against the formula, including a tail that is not a multiple of 8.
    func testFusedLSTMGatesMatchTheFormula() {
        var generator = SystemRandomNumberGenerator()
        for units in [1, 8, 13, 64] {
            let z = (0..<(4 * units)).map { _ in Float.random(in: -6...6, using: &generator) }
            var c = (0..<units).map { _ in Float.random(in: -2...2, using: &generator) }
            var h = [Float](repeating: .nan, count: units)
            let previous = c
            var scratch = z  // the kernel overwrites the o quarter
            nnb_lstm_gates(&scratch, &c, &h, units)
            for u in 0..<units {
                func sigmoid(_ x: Float) -> Double { 1 / (1 + Foundation.exp(-Double(x))) }
                let cell = sigmoid(z[units + u]) * Double(previous[u]) + sigmoid(z[u]) * Foundation.tanh(Double(z[2 * units + u]))
                let out = sigmoid(z[3 * units + u]) * Foundation.tanh(cell)
                XCTAssertEqual(Double(c[u]), cell, accuracy: 1e-6 * (1 + abs(cell)), "units \(units), c[\(u)]")
                XCTAssertEqual(Double(h[u]), out, accuracy: 1e-6 * (1 + abs(out)), "units \(units), h[\(u)]")
            }
        }
    }

    /// Packing pads columns to 16: a weight it would more than double (and that is not tiny) stays
    /// unpacked, so a one-filter convolution over many channels cannot ask for 16 times its size
    /// (found by the spec fuzzer: a 622 MB kernel asked for 10 GB).
    func testPackingNeverMoreThanDoublesALargeWeight() throws {
        guard Gemm.useAVX2Kernels else { throw XCTSkip("packing happens only where the AVX2 kernels run") }
        let weights = [Float](repeating: 0.5, count: 1 << 20)
        weights.withUnsafeBufferPointer { w in
            // (Compared with nil rather than XCTAssertNil, which would print a packed megabyte.)
            XCTAssertTrue(PackedKernel(w, patch: 1 << 20, filters: 1, groups: 1) == nil, "one column: 16 times the size")
            XCTAssertTrue(PackedKernel(w, patch: 1 << 17, filters: 7, groups: 1) == nil, "seven columns: 16/7 of the size")
            XCTAssertTrue(PackedKernel(w, patch: 1 << 17, filters: 8, groups: 1) != nil, "eight columns: exactly twice")
            XCTAssertTrue(PackedKernel(w, patch: 1 << 16, filters: 16, groups: 1) != nil, "sixteen columns: no padding")
            XCTAssertTrue(PackedKernel(w, patch: 1 << 10, filters: 10, groups: 1) != nil, "small: packed whatever the padding")
        }
    }

    /// The packed kernel, overwriting and accumulating, on groups whose width is not a multiple of
    /// 16 (a partial last panel) and on strided views of a and c.
    func testPackedGemmMatchesTheNaiveTwin() throws {
        var generator = SystemRandomNumberGenerator()
        for (m, k, filters, groups) in [(1, 3, 5, 1), (2, 7, 16, 1), (6, 64, 48, 3), (11, 9, 40, 2), (32, 64, 256, 1), (5, 17, 33, 1)] {
            let columns = filters / groups
            let matrix = (0..<(k * filters)).map { _ in Float.random(in: -1...1, using: &generator) }
            let packed = try XCTUnwrap(matrix.withUnsafeBufferPointer { PackedKernel($0, patch: k, filters: filters, groups: groups) })
            let lda = k + 2, ldc = filters + 3
            let a = (0..<(m * lda)).map { _ in Float.random(in: -1...1, using: &generator) }
            for accumulate in [false, true] {
                for group in 0..<groups {
                    var fast = (0..<(m * ldc)).map { _ in Float.random(in: -1...1, using: &generator) }
                    var want = fast
                    for i in 0..<m {
                        for j in 0..<columns {
                            var sum = accumulate ? Double(want[i * ldc + group * columns + j]) : 0
                            for p in 0..<k { sum += Double(a[i * lda + p]) * Double(matrix[p * filters + group * columns + j]) }
                            want[i * ldc + group * columns + j] = Float(sum)
                        }
                    }
                    fast.withUnsafeMutableBufferPointer { c in
                        packed.multiply(a, lda: lda, group: group, into: c.baseAddress! + group * columns, ldc: ldc, m: m, accumulate: accumulate)
                    }
                    assertClose(fast, want, accuracy: 1e-5)
                }
            }
        }
    }
}
