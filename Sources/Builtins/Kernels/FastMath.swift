#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Vectorized exp, sigmoid and tanh for the activation hot loops (recurrent gates above all).
///
/// exp uses Cephes's expf: range reduction by ln 2 and a degree-6 polynomial, relative error
/// about 2e-7 over the float range; sigmoid and tanh are built on it. `FastMathTests` compares each
/// with its Foundation twin.
public enum FastMath {
    public typealias Vector = SIMD8<Float>

    @inline(__always)
    public static func exp(_ value: Vector) -> Vector {
        // Clamped so that 2^n below stays a normal float and the rounding trick stays exact.
        var x = value.replacing(with: -87.3, where: value .< -87.3).replacing(with: 88.3, where: value .> 88.3)
        // n = round(x / ln 2) by the 1.5·2^23 trick: adding it leaves n in the low mantissa bits.
        // SIMD8's generic rounded(.down) and Int32 conversion are not specialized by the compiler
        // and cost more than the whole polynomial; this stays in plain vector float arithmetic.
        let magic: Float = 12_582_912
        let shifted = x * 1.44269504088896341 + magic
        let fx = shifted - magic
        x = x - fx * 0.693359375 + fx * 2.12194440e-4
        let z = x * x
        var y = Vector(repeating: 1.9875691500e-4)
        y = y * x + 1.3981999507e-3
        y = y * x + 8.3334519073e-3
        y = y * x + 4.1665795894e-2
        y = y * x + 1.6666665459e-1
        y = y * x + 5.0000001201e-1
        y = y * z + x + 1
        // shifted's bits are 0x4B40_0000 + n; the float 2^n has bits (n + 127) << 23.
        let exponent = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- (0x4B40_0000 - 127)) &<< 23
        return y * unsafeBitCast(exponent, to: Vector.self)
    }

    @inline(__always)
    public static func sigmoid(_ x: Vector) -> Vector {
        1 / (1 + exp(-x))
    }

    @inline(__always)
    public static func tanh(_ x: Vector) -> Vector {
        // tanh(x) = 2·σ(2x) − 1: one exp and one division, no lane selects (which cost more than
        // the arithmetic on SSE). Its error is a few ulp of 1 (about 1e-7 absolute), which is the
        // measure that matters against Keras: |ours − keras| / (1 + |keras|). Saturates to ±1 and
        // keeps NaN.
        2 / (1 + exp(-2 * x)) - 1
    }

    /// Applies `function` to `count` floats in place, eight at a time, the tail padded.
    @inline(__always)
    public static func map(_ values: UnsafeMutablePointer<Float>, count: Int, _ function: (Vector) -> Vector) {
        var index = 0
        while index + 8 <= count {
            let raw = UnsafeMutableRawPointer(values + index)
            raw.storeBytes(of: function(raw.loadUnaligned(as: Vector.self)), as: Vector.self)
            index += 8
        }
        if index < count {
            var tail = Vector(repeating: 0)
            for lane in 0..<(count - index) { tail[lane] = values[index + lane] }
            let result = function(tail)
            for lane in 0..<(count - index) { values[index + lane] = result[lane] }
        }
    }
}
