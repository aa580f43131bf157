import CKernels
import XCTest
@testable import Builtins
import LayerRegistry

/// OpenBLAS, loaded on first use (blas.c), for the products `ExecutionSettings.batchVariantBLAS`
/// sends to it.
final class BLASTests: XCTestCase {
    func testBatchVariantBLASMatchesTheNaiveTwin() throws {
        try XCTSkipUnless(nnb_blas_available() != 0, "libopenblas.so.0 is not installed")
        var random = SplitMix(seed: 5)
        for (m, n, k) in [(1, 1, 1), (1, 1000, 2048), (3, 17, 5), (9, 100, 33), (64, 64, 300)] {
            for transposeB in [false, true] {
                for accumulate in [false, true] {
                    let a = random.floats(m * k), b = random.floats(k * n), start = random.floats(m * n)
                    var got = start, want = start
                    KernelOptions.$current.withValue(KernelOptions(threads: 2, batchVariantBLAS: true)) {
                        Gemm.gemm(a, b, &got, m: m, n: n, k: k, transposeB: transposeB, accumulate: accumulate)
                    }
                    Gemm.naiveGemm(a, b, &want, m: m, n: n, k: k, transposeB: transposeB, accumulate: accumulate)
                    assertClose(got, want, tolerance: 1e-5, "\(m)×\(k)·\(k)×\(n), transposeB \(transposeB), accumulate \(accumulate)")
                }
            }
        }
    }
}
