#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ArgumentParser
import ModelSpec

/// The accepted range of every numeric argument, in one place. A value outside its range is a
/// usage error (exit 64) that names the range, checked in `validate()` before anything runs, so
/// no later arithmetic (a batch's element count, seconds as nanoseconds) can overflow.
package enum ArgumentBounds {
    /// --threads.
    package static let threads = 1...1024
    /// Rows run at once: --batch-size, and each of bench's --batch sizes.
    package static let rows = 1...(1 << 20)
    /// --top-k.
    package static let topK = 1...(1 << 20)
    /// eval --digits.
    package static let digits = 0...17
    /// bench --seconds: above zero, at most a day.
    package static let seconds = 0.0...86_400.0
    /// compare --tolerance.
    package static let tolerance = 0.0...1e30

    package static func check(_ value: Int, _ flag: String, _ range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ValidationError("\(flag) must be between \(range.lowerBound) and \(range.upperBound), found \(value)")
        }
    }

    /// A finite value inside `range`; with `open`, the lower bound itself is excluded.
    package static func check(_ value: Double, _ flag: String, _ range: ClosedRange<Double>, aboveLowerBound open: Bool = false) throws {
        let inside = value.isFinite && range.contains(value) && !(open && value == range.lowerBound)
        guard inside else {
            let lower = open ? "above \(range.lowerBound)" : "at least \(range.lowerBound)"
            throw ValidationError("\(flag) must be \(lower) and at most \(range.upperBound), found \(value)")
        }
    }

    /// A comma-separated list of integers, every element parsed and inside `range`.
    package static func list(_ text: String, _ flag: String, _ range: ClosedRange<Int>) throws -> [Int] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
        return try items.enumerated().map { index, item in
            guard let value = Int(item) else {
                throw ValidationError("\(flag) takes integers separated by commas; element \(index + 1) of '\(text)' is '\(item)', not an integer")
            }
            try check(value, flag, range)
            return value
        }
    }
}
