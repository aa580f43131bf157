import Foundation
import XCTest
@testable import Builtins
import LayerRegistry

/// EinsumDense: the matrix-product kernel against its naive twin, Keras's fixture, and refusals.
final class EinsumDenseTests: XCTestCase {
    func testEveryEquationFormMatchesKeras() { assertAttentionFixtureMatchesKeras("einsum_dense") }

    /// Each letter class (shared, free, contracted, kernel-only, summed) and a permuted output.
    func testMatrixProductKernelMatchesItsNaiveTwin() throws {
        let cases: [(String, [Int], [Character: Int])] = [
            ("abc,cd->abd", [2, 3, 4], ["d": 5]),
            ("abc,cde->aedb", [2, 3, 4], ["d": 2, "e": 3]),
            ("abc,bcd->adb", [2, 3, 4], ["d": 2]),
            ("abcd,ce->aeb", [2, 3, 2, 4], ["e": 3]),
        ]
        for (equation, shape, kernelOnly) in cases {
            let (plan, _, _) = try EinsumPlan.parse(equation, rank: shape.count) { NNError(.layer, "test", $0) }
            var sizes = kernelOnly
            for (letter, size) in zip(plan.input, shape) { sizes[letter] = size }
            let kernelCount = (plan.shared + plan.contracted + plan.kernelOnly).reduce(1) { $0 * (sizes[$1] ?? 1) }
            let x = Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { Float(($0 * 7) % 11) - 5 })
            let kernel = (0..<kernelCount).map { Float(($0 * 5) % 9) / 4 - 1 }
            let fast = einsumDense(x, plan: plan, sizes: sizes, kernel: kernel)
            let naive = naiveEinsumDense(x, plan: plan, sizes: sizes, kernel: kernel)
            XCTAssertEqual(fast.shape, naive.shape, equation)
            for (a, b) in zip(fast.data, naive.data) { XCTAssertEqual(a, b, accuracy: 1e-4, equation) }
            // The packed AVX2 product, where it runs (no shared letters).
            if plan.shared.isEmpty, Gemm.useAVX2Kernels {
                let rows = plan.contracted.reduce(1) { $0 * (sizes[$1] ?? 1) }, columns = plan.kernelOnly.reduce(1) { $0 * (sizes[$1] ?? 1) }
                let packed = PackedOnDemand(Weight(name: "k", shape: [rows, columns], storage: FloatStorage(kernel)), rows: rows, columns: columns)
                let viaPacked = einsumDense(x, plan: plan, sizes: sizes, kernel: kernel, packed: packed)
                XCTAssertEqual(viaPacked.shape, naive.shape, equation)
                for (a, b) in zip(viaPacked.data, naive.data) { XCTAssertEqual(a, b, accuracy: 1e-4, "packed \(equation)") }
            }
        }
    }

    func build(_ config: String, input: String = "[null, 3, 4]") throws -> Model {
        let json = """
        {"class_name": "Sequential", "config": {"name": "s", "layers": [
          {"class_name": "InputLayer", "config": {"batch_shape": \(input), "name": "x"}},
          {"class_name": "EinsumDense", "config": \(config)}]}}
        """
        return try Model.build(try ModelDescription.parse(json, source: "test.json"), registry: .withBuiltins(), weights: nil)
    }

    func testRefusesBadConfigsNamingTheKey() {
        let refusals: [(String, String)] = [
            (#"{"name": "e", "equation": "abc,cd", "output_shape": 5}"#, "equation"),
            (#"{"name": "e", "equation": "abc,cx->abd", "output_shape": [null, 5]}"#, "neither"),
            (#"{"name": "e", "equation": "abc,cd->abd", "output_shape": [null, 5], "bias_axes": "z"}"#, "bias axis 'z'"),
            (#"{"name": "e", "equation": "abc,cd->abd", "output_shape": [null, null]}"#, "output_shape"),
            (#"{"name": "e", "equation": "abc,acd->bd", "output_shape": [5]}"#, "batch"),
            (#"{"name": "e", "equation": "aab,bc->ac", "output_shape": [5]}"#, "repeat"),
        ]
        for (config, needle) in refusals {
            XCTAssertThrowsError(try build(config), config) { error in
                let text = error.nnProblems.joined(separator: "\n")
                XCTAssertTrue(text.contains(needle), "\(config): \(text)")
            }
        }
    }
}
