import Foundation
import XCTest
import Builtins

/// The vectorized exp, sigmoid and tanh against their Foundation twins.
final class FastMathTests: XCTestCase {
    /// Worst |fast − slow| / |slow| over the range, or with `againstOne` the project's own measure
    /// |fast − slow| / (1 + |slow|), for functions bounded by 1 whose error is absolute.
    func compare(_ fast: (FastMath.Vector) -> FastMath.Vector, _ slow: (Double) -> Double, range: ClosedRange<Float>, relative: Double,
                 againstOne: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        var worst = 0.0
        var inputs: [Float] = stride(from: range.lowerBound, through: range.upperBound, by: (range.upperBound - range.lowerBound) / 100_000).map { $0 }
        inputs += [0, -0.0, 1e-8, -1e-8, 1e-3, -1e-3, range.lowerBound, range.upperBound]
        for start in stride(from: 0, to: inputs.count - 8, by: 8) {
            let x = FastMath.Vector(inputs[start..<(start + 8)])
            let y = fast(x)
            for lane in 0..<8 {
                let want = slow(Double(x[lane]))
                worst = max(worst, abs(Double(y[lane]) - want) / (againstOne ? 1 + abs(want) : max(abs(want), 1e-30)))
            }
        }
        XCTAssertLessThan(worst, relative, file: file, line: line)
    }

    func testExp() { compare(FastMath.exp, Foundation.exp, range: -87...88, relative: 3e-7) }
    func testSigmoid() { compare(FastMath.sigmoid, { 1 / (1 + Foundation.exp(-$0)) }, range: -40...40, relative: 5e-7) }
    func testTanh() { compare(FastMath.tanh, Foundation.tanh, range: -20...20, relative: 3e-7, againstOne: true) }

    func testSpecialValues() {
        let y = FastMath.tanh(FastMath.Vector(.nan, .infinity, -.infinity, 100, -100, 0, 1, -1))
        XCTAssertTrue(y[0].isNaN)
        XCTAssertEqual(y[1], 1)
        XCTAssertEqual(y[2], -1)
        XCTAssertEqual(FastMath.sigmoid(FastMath.Vector(repeating: -1000))[0], 0, accuracy: 1e-30)
        XCTAssertEqual(FastMath.sigmoid(FastMath.Vector(repeating: 1000))[0], 1)
    }
}
