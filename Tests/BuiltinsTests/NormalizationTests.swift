import CKernels
import XCTest
@testable import Builtins
import LayerRegistry

final class NormalizationTests: XCTestCase {
    func testBatchNormalizationUsesMovingStatistics() throws {
        // (x − mean) / √(var + eps) · gamma + beta with mean 1, var 4 − eps, gamma 2, beta 0.5.
        let model = try buildSingle(#"{"class_name": "BatchNormalization", "config": {"name": "bn", "epsilon": 0.001}}"#, input: [1],
                                    weights: [("bn/gamma", [1], [2]), ("bn/beta", [1], [0.5]), ("bn/moving_mean", [1], [1]), ("bn/moving_variance", [1], [3.999])])
        assertClose(try model.predict(Tensor(shape: [2, 1], data: [1, 5])).data, [0.5, 4.5])
    }

    func testBatchNormalizationOnANonLastAxis() throws {
        let model = try buildSingle(#"{"class_name": "BatchNormalization", "config": {"name": "bn", "axis": 1, "center": false, "scale": false, "epsilon": 0}}"#, input: [2, 2],
                                    weights: [("bn/moving_mean", [2], [1, 2]), ("bn/moving_variance", [2], [1, 4])])
        assertClose(try model.predict(Tensor(shape: [1, 2, 2], data: [1, 3, 4, 6])).data, [0, 2, 1, 2])
    }

    func testLayerAndRMSNormalization() throws {
        let layer = try buildSingle(#"{"class_name": "LayerNormalization", "config": {"center": false, "scale": false, "epsilon": 0}}"#, input: [2])
        assertClose(try layer.predict(Tensor(shape: [1, 2], data: [1, 3])).data, [-1, 1])
        let rms = try buildSingle(#"{"class_name": "RMSNormalization", "config": {"name": "r", "epsilon": 0}}"#, input: [2], weights: [("r/scale", [2], [1, 2])])
        assertClose(try rms.predict(Tensor(shape: [1, 2], data: [3, 4])).data, [3 / Float(12.5).squareRoot(), 8 / Float(12.5).squareRoot()])
    }

    func testBadAxisIsRefused() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "BatchNormalization", "config": {"axis": 3}}"#, input: [2])) { error in
            XCTAssertTrue("\(error)".contains("'axis' must name distinct axes"), "\(error)")
        }
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "LayerNormalization", "config": {"epsilon": -1}}"#, input: [2]))
    }

    func testNormalizationFixturesMatchKeras() {
        for name in ["batchnorm", "layernorm", "rmsnorm"] { assertMatchesKeras(name) }
    }

    /// LayerNormalization's rows (nnb_layer_norm) give the same bits on every kernel path this CPU
    /// has, for lengths with and without a tail past a multiple of 8 or 16, with and without γ
    /// and β, and match the formula in double within float rounding.
    func testLayerNormRowsAreTheSameBitsOnEveryPath() {
        var generator = SystemRandomNumberGenerator()
        let paths = KernelPath.allCases.filter { $0 <= Gemm.cpuKernelPath }
        for length in [1, 3, 7, 8, 9, 15, 16, 17, 31, 128, 130] {
            for (useGamma, useBeta) in [(true, true), (true, false), (false, true), (false, false)] {
                let rows = 3
                let x = randomFloats(rows * length, &generator).map { $0 * 10 + 3 }
                let gamma = useGamma ? randomFloats(length, &generator) : nil, beta = useBeta ? randomFloats(length, &generator) : nil
                var outputs: [[Float]] = []
                for path in paths {
                    var y = x
                    y.withUnsafeMutableBufferPointer { y in
                        let g = gamma?.withUnsafeBufferPointer { $0 }, b = beta?.withUnsafeBufferPointer { $0 }
                        layerNormalizeRows(y, length: length, epsilon: 1e-3, gamma: g, beta: b, path: path)
                    }
                    outputs.append(y)
                }
                for (path, y) in zip(paths, outputs) {
                    XCTAssertEqual(y.map(\.bitPattern), outputs[0].map(\.bitPattern), "\(path) against \(paths[0]), length \(length)")
                }
                for row in 0..<rows {
                    let values = x[(row * length)..<((row + 1) * length)].map(Double.init)
                    let mean = values.reduce(0, +) / Double(length)
                    let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(length)
                    for j in 0..<length {
                        var want = (values[j] - mean) / (variance + 1e-3).squareRoot()
                        if let gamma { want *= Double(gamma[j]) }
                        if let beta { want += Double(beta[j]) }
                        let got = Double(outputs[0][row * length + j])
                        XCTAssertLessThanOrEqual(abs(got - want) / (1 + abs(want)), 1e-5, "length \(length), row \(row), element \(j)")
                    }
                }
            }
        }
    }
}
