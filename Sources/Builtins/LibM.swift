#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C math library (through Swift's Glibc or Darwin overlay, as Foundation re-exported it) by a
/// name no layer's own `exp`, `log` or `tanh` (an activation case, a method) can shadow. Float
/// forms of each function the layers use, and the Double forms they use.
@usableFromInline enum LibM {
    @inlinable static func atan(_ x: Float) -> Float { libm_atan(x) }
    @inlinable static func cos(_ x: Float) -> Float { libm_cos(x) }
    @inlinable static func cosh(_ x: Float) -> Float { libm_cosh(x) }
    @inlinable static func erf(_ x: Float) -> Float { libm_erf(x) }
    @inlinable static func erf(_ x: Double) -> Double { libm_erf(x) }
    @inlinable static func exp(_ x: Float) -> Float { libm_exp(x) }
    @inlinable static func exp2(_ x: Float) -> Float { libm_exp2(x) }
    @inlinable static func expm1(_ x: Float) -> Float { libm_expm1(x) }
    @inlinable static func log(_ x: Float) -> Float { libm_log(x) }
    @inlinable static func log(_ x: Double) -> Double { libm_log(x) }
    @inlinable static func log10(_ x: Float) -> Float { libm_log10(x) }
    @inlinable static func log1p(_ x: Float) -> Float { libm_log1p(x) }
    @inlinable static func log2(_ x: Float) -> Float { libm_log2(x) }
    @inlinable static func sin(_ x: Float) -> Float { libm_sin(x) }
    @inlinable static func sinh(_ x: Float) -> Float { libm_sinh(x) }
    @inlinable static func tan(_ x: Float) -> Float { libm_tan(x) }
    @inlinable static func tanh(_ x: Float) -> Float { libm_tanh(x) }
    @inlinable static func pow(_ x: Float, _ y: Float) -> Float { libm_pow(x, y) }
    @inlinable static func pow(_ x: Double, _ y: Double) -> Double { libm_pow(x, y) }
}

// Outside the enum, where the overlay's names are not shadowed by its members.
@inlinable func libm_atan(_ x: Float) -> Float { atan(x) }
@inlinable func libm_cos(_ x: Float) -> Float { cos(x) }
@inlinable func libm_cosh(_ x: Float) -> Float { cosh(x) }
@inlinable func libm_erf(_ x: Float) -> Float { erf(x) }
@inlinable func libm_erf(_ x: Double) -> Double { erf(x) }
@inlinable func libm_exp(_ x: Float) -> Float { exp(x) }
@inlinable func libm_exp2(_ x: Float) -> Float { exp2(x) }
@inlinable func libm_expm1(_ x: Float) -> Float { expm1(x) }
@inlinable func libm_log(_ x: Float) -> Float { log(x) }
@inlinable func libm_log(_ x: Double) -> Double { log(x) }
@inlinable func libm_log10(_ x: Float) -> Float { log10(x) }
@inlinable func libm_log1p(_ x: Float) -> Float { log1p(x) }
@inlinable func libm_log2(_ x: Float) -> Float { log2(x) }
@inlinable func libm_sin(_ x: Float) -> Float { sin(x) }
@inlinable func libm_sinh(_ x: Float) -> Float { sinh(x) }
@inlinable func libm_tan(_ x: Float) -> Float { tan(x) }
@inlinable func libm_tanh(_ x: Float) -> Float { tanh(x) }
@inlinable func libm_pow(_ x: Float, _ y: Float) -> Float { pow(x, y) }
@inlinable func libm_pow(_ x: Double, _ y: Double) -> Double { pow(x, y) }
