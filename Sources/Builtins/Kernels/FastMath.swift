import Foundation

/// Vectorized exp, sigmoid and tanh for the activation hot loops (recurrent gates above all).
///
/// exp uses Cephes's expf: range reduction by ln 2 and a degree-6 polynomial, relative error
/// about 2e-7 over the float range; sigmoid and tanh (Cephes's polynomial below 0.625) are built on it. `FastMathTests` compares each
/// with its Foundation twin.
public enum FastMath {
    public typealias Vector = SIMD8<Float>

    @inline(__always)
    public static func exp(_ value: Vector) -> Vector {
        var x = value.clamped(lowerBound: Vector(repeating: -87.3), upperBound: Vector(repeating: 88.3))
        var fx = x * 1.44269504088896341 + 0.5
        fx = fx.rounded(.down)
        x = x - fx * 0.693359375 + fx * 2.12194440e-4
        let z = x * x
        var y = Vector(repeating: 1.9875691500e-4)
        y = y * x + 1.3981999507e-3
        y = y * x + 8.3334519073e-3
        y = y * x + 4.1665795894e-2
        y = y * x + 1.6666665459e-1
        y = y * x + 5.0000001201e-1
        y = y * z + x + 1
        let exponent = SIMD8<Int32>(truncatingIfNeeded: SIMD8<Int32>(fx) &+ 127) &<< 23
        return y * unsafeBitCast(exponent, to: Vector.self)
    }

    @inline(__always)
    public static func sigmoid(_ x: Vector) -> Vector {
        1 / (1 + exp(-x))
    }

    @inline(__always)
    public static func tanh(_ x: Vector) -> Vector {
        // tanh(x) = sign(x) · (1 − e^(−2|x|)) / (1 + e^(−2|x|)), exact in sign and bounded by 1.
        let magnitude = abs(x)
        let e = exp(-2 * magnitude)
        let t = (1 - e) / (1 + e)
        // Below 0.625 the quotient loses relative precision; Cephes's tanhf polynomial is used there.
        let z = x * x
        var p = Vector(repeating: -5.70498872745e-3)
        p = p * z + 2.06390887954e-2
        p = p * z - 5.37397155531e-2
        p = p * z + 1.33314422036e-1
        p = p * z - 3.33332819422e-1
        let small = p * z * x + x
        let signed = t.replacing(with: -t, where: x .< 0)
        return signed.replacing(with: small, where: magnitude .< 0.625).replacing(with: x, where: x .!= x)
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

private func abs(_ x: FastMath.Vector) -> FastMath.Vector {
    x.replacing(with: -x, where: x .< 0)
}
