#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ModelSpec

/// Checked sizes: every element count, byte size and scratch size that derives from a spec, a
/// weight header or an input goes through here, so that overflow is detected and the limits are
/// applied in one place, with an error that says who asked for how much.
///
/// Limits:
/// - a sample (one row of a tensor, batch axis excluded) holds at most `sampleLimit` values
///   (2^31, 8 GiB of float32); every layer's input and output shape is checked against it when the
///   model is built, so a factory's products over its input axes cannot overflow;
/// - a tensor (batch included) holds at most `tensorLimit` values (2^36);
/// - what a layer allocates for one call (its output and scratch) is checked against the memory
///   limit of the `ExecutionSettings` in force: for one sample when the model is built, and for
///   the actual batch before every layer runs.
public enum ShapeMath {
    /// Largest element count of one sample (batch axis excluded).
    public static let sampleLimit = 1 << 31
    /// Largest element count of one tensor (batch axis included).
    public static let tensorLimit = 1 << 36

    /// The product of `dims`, nil when a size is negative or the product overflows `Int`.
    /// (Inlinable, so that callers in other modules get it specialized for their sequence: as a
    /// generic call it went through the sequence's witnesses, once per layer call.)
    @inlinable
    public static func product<S: Sequence>(_ dims: S) -> Int? where S.Element == Int {
        var count = 1
        for size in dims {
            guard size >= 0 else { return nil }
            let (next, overflow) = count.multipliedReportingOverflow(by: size)
            if overflow { return nil }
            count = next
        }
        return count
    }

    /// The product of `dims`, `Int.max` when it overflows: for estimates compared against a limit.
    @inlinable
    public static func saturatingProduct<S: Sequence>(_ dims: S) -> Int where S.Element == Int {
        product(dims) ?? Int.max
    }

    /// `a + b`, `Int.max` when it overflows.
    public static func saturatingSum(_ values: Int...) -> Int {
        var total = 0
        for value in values {
            let (next, overflow) = total.addingReportingOverflow(max(value, 0))
            if overflow { return Int.max }
            total = next
        }
        return total
    }

    /// The element count of a per-sample shape (unknown axes count as 1), or a message saying
    /// that it is larger than `sampleLimit`: "the output would hold 2^40 values per sample
    /// (shape (None, 1048576, 1048576)), more than the limit of 2^31".
    public static func checkSample(_ shape: [Int?], what: String) -> Result<Int, SizeMessage> {
        // (Every layer's call checks its shapes: the count comes without an array on the way.)
        if let count = product(shape.lazy.map { $0 ?? 1 }), count <= sampleLimit { return .success(count) }
        let known = shape.map { $0 ?? 1 }
        return .failure(SizeMessage(text: "\(what) would hold \(describeCount(known)) values per sample (shape \(describeShape(shape))), more than the limit of \(describeCount([sampleLimit]))"))
    }

    /// `checkSample` for a shape of known sizes (a tensor's, batch axis dropped).
    public static func checkSample<S: Collection>(known shape: S, what: String) -> Result<Int, SizeMessage> where S.Element == Int {
        if let count = product(shape), count <= sampleLimit { return .success(count) }
        return checkSample(shape.map { Optional($0) }, what: what)
    }

    /// The element count of a whole tensor shape, or a message when it passes `tensorLimit`.
    public static func checkTensor(_ shape: [Int], what: String) -> Result<Int, SizeMessage> {
        if let count = product(shape), count <= tensorLimit { return .success(count) }
        return .failure(SizeMessage(text: "\(what) would hold \(describeCount(shape)) values (shape \(shape)), more than the limit of \(describeCount([tensorLimit]))"))
    }

    /// A product for people: `2^40`, `3·2^20`, `12345`, or `about 1.3e+25` past `Int`.
    public static func describeCount(_ dims: [Int]) -> String {
        guard let count = product(dims) else {
            let approximate = dims.reduce(1.0) { $0 * Double(max($1, 0)) }
            return "about 2^\(Int(approximate.exponent))"
        }
        guard count >= 1 << 20 else { return "\(count)" }
        let zeros = count.trailingZeroBitCount
        let odd = count >> zeros
        if odd == 1 { return "2^\(zeros)" }
        if odd < 1000, zeros >= 10 { return "\(odd)·2^\(zeros)" }
        return "\(count)"
    }

    /// The bytes of `elements` float32 values, `Int.max` past `Int`.
    public static func floatBytes(_ elements: Int) -> Int {
        elements > Int.max / 4 ? Int.max : max(elements, 0) * 4
    }

    /// A byte count for people, in binary units: `4.0 GiB`.
    public static func describeBytes(_ bytes: Int) -> String {
        if bytes == Int.max { return "more than 8 EiB" }
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) bytes" : "\(formatted("%.1f", value)) \(units[unit])"
    }

    /// The text of a size check that failed, to be wrapped in an `NNError` naming where.
    public struct SizeMessage: Error, Sendable {
        public let text: String
    }
}

extension LayerContext {
    /// The element count of a per-sample shape this layer computes (`what`: "the output",
    /// "the target shape"...), failing with the layer, the sizes and the limit when it is larger
    /// than `ShapeMath.sampleLimit`. Unknown axes count as 1.
    @discardableResult
    public func sampleCount(_ shape: [Int?], of what: String = "the output", key: String? = nil) throws -> Int {
        switch ShapeMath.checkSample(shape, what: what) {
        case let .success(count): return count
        case let .failure(message): throw error(message.text, key: key)
        }
    }

    /// The element count of input axes `axes` (indices into the per-sample shape), which must be known.
    public func inputCount(axes: some Sequence<Int>) throws -> Int {
        let dims = try axes.map { try inputDimension($0) }
        // Written out rather than as an array's description, which looks up conformances at run
        // time: every Dense and Reshape of a model's build paid for it before it was needed.
        return try sampleCount(dims, of: "the input axes [\(axes.map { String($0 + 1) }.joined(separator: ", "))]")
    }
}

extension ShapeMath {
    /// Run-time twin of `LayerContext.sampleCount`: the per-sample count of `shape`, or an input
    /// error at `location` (a layer's label).
    @discardableResult
    public static func sampleCount(_ shape: [Int], of what: String = "the output", at location: String) throws -> Int {
        switch checkSample(known: shape, what: what) {
        case let .success(count): return count
        case let .failure(message): throw NNError(.input, location, message.text)
        }
    }
}
