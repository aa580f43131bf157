#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A dense numeric array read from a `.npy` file or JSON nested arrays, held as Float.
/// `dtype` keeps what the file said (`float32`, `int32`, ...) so callers can check it.
/// An array of strings (numpy's `str` or `bytes` dtypes, JSON strings) holds them in `strings`,
/// with no `values` and the dtype `str`.
public struct NumericArray: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]
    public var dtype: String
    public var strings: [String]?

    public init(shape: [Int], values: [Float], dtype: String = "float32") {
        self.shape = shape
        self.values = values
        self.dtype = dtype
    }

    /// An array of strings, in C order.
    public init(shape: [Int], strings: [String]) {
        self.shape = shape
        self.values = []
        self.dtype = NumericArray.stringDType
        self.strings = strings
    }

    /// The dtype of an array of strings.
    public static let stringDType = "str"

    public var isIntegerType: Bool { dtype.hasPrefix("int") || dtype.hasPrefix("uint") || dtype == "bool" }
}

/// Arrays as JSON nested lists.
public enum JSONArray {
    /// Reads a rectangular nested array of numbers, or of strings with `strings` (for a model
    /// input of dtype string). Integral-only data is reported as `int64`.
    ///
    /// The shape is taken from the first element at each depth, and memory is reserved only after
    /// every element is checked against it, so it is bounded by the values actually present: a
    /// few bytes of text whose first element claims a huge size reserve nothing.
    public static func read(_ value: JSONValue, source: String, strings: Bool = false) throws -> NumericArray {
        var shape: [Int] = []
        var probe = value
        while case let .array(items) = probe {
            shape.append(items.count)
            guard let first = items.first else { break }
            probe = first
        }
        guard !shape.isEmpty else {
            throw NNError(.input, source, "expected a nested array of \(strings ? "strings" : "numbers") (a batch), found \(value.typeDescription)")
        }
        func number(_ node: JSONValue, path: @autoclosure () -> String) throws -> (value: Float, integral: Bool) {
            switch node {
            case let .int(number): return (Float(number), true)
            case let .double(number): return (Float(number), false)
            case let .string(text) where ["NaN", "nan"].contains(text): return (.nan, false)
            case let .string(text) where ["Infinity", "inf"].contains(text): return (.infinity, false)
            case let .string(text) where ["-Infinity", "-inf"].contains(text): return (-.infinity, false)
            default:
                throw NNError(.input, "\(source): \(path())", "expected a number, found \(node.typeDescription) (the array must be rectangular, of shape \(shape))")
            }
        }
        /// Visits every number in order; throws at the first element that breaks the shape.
        /// `indices` is where the walk is, made into a path only for a message.
        var indices: [Int] = []
        func path() -> String { "$" + indices.map { "[\($0)]" }.joined() }
        func walk(_ node: JSONValue, _ visit: (JSONValue) throws -> Void) throws {
            let depth = indices.count
            if depth == shape.count { return try visit(node) }
            guard case let .array(items) = node, items.count == shape[depth] else {
                throw NNError(.input, "\(source): \(path())", "expected an array of \(shape[depth]) items like its first sibling, found \(node.brief()) (the array must be rectangular)")
            }
            for (index, item) in items.enumerated() {
                indices.append(index)
                try walk(item, visit)
                indices.removeLast()
            }
        }
        func text(_ node: JSONValue, path: @autoclosure () -> String) throws -> String {
            guard case let .string(text) = node else {
                throw NNError(.input, "\(source): \(path())", "expected a string, found \(node.typeDescription) (the model's input takes strings; the array must be rectangular, of shape \(shape))")
            }
            return text
        }
        // First pass: the shape holds everywhere and every leaf is a number (or a string).
        try walk(value) { node in
            if strings { _ = try text(node, path: path()) } else { _ = try number(node, path: path()) }
        }
        // The array is rectangular, so the product is the count of numbers present; checked all
        // the same, as every size from a file is.
        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow else { throw NNError(.input, source, "the array's shape \(shape) holds too many numbers") }
            count = product
        }
        if strings {
            var texts: [String] = []
            texts.reserveCapacity(count)
            try walk(value) { node in texts.append(try text(node, path: path())) }
            return NumericArray(shape: shape, strings: texts)
        }
        var values: [Float] = []
        values.reserveCapacity(count)
        var allIntegral = true
        try walk(value) { node in
            let (number, integral) = try number(node, path: path())
            values.append(number)
            allIntegral = allIntegral && integral
        }
        return NumericArray(shape: shape, values: values, dtype: allIntegral ? "int64" : "float64")
    }

    public static func value(_ array: NumericArray) -> JSONValue {
        func build(_ axis: Int, _ offset: Int) -> JSONValue {
            if axis == array.shape.count { return .double(Double(array.values[offset])) }
            let stride = array.shape[(axis + 1)...].reduce(1, *)
            return .array((0..<array.shape[axis]).map { build(axis + 1, offset + $0 * stride) })
        }
        return build(0, 0)
    }

    /// Compact JSON text: one row per line for 2-D results, floats in shortest round-trip form;
    /// NaN and infinities, which JSON cannot express, are written as `null`.
    public static func text(_ array: NumericArray) -> String {
        var bytes: [UInt8] = []
        write(array) { bytes.append(contentsOf: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `text(array)`, handed to `emit` in pieces of about 64 KB as it is made, so that writing a
    /// large output takes the output's memory and not several times it in text (a 4 GB tensor as
    /// one String of its numbers, built from a String per number, took 24 GB).
    public static func write(_ array: NumericArray, to emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 16)
        func flush() throws {
            try buffer.withUnsafeBytes(emit)
            buffer.removeAll(keepingCapacity: true)
        }
        func put(_ text: String) throws {
            buffer.append(contentsOf: text.utf8)
            if buffer.count >= 1 << 16 { try flush() }
        }
        func build(_ axis: Int, _ offset: Int) throws {
            if axis == array.shape.count {
                let value = array.values[offset]
                return try put(value.isFinite ? "\(value)" : "null")
            }
            let stride = array.shape[(axis + 1)...].reduce(1, *)
            let separator = axis == 0 && array.shape.count > 1 ? ",\n " : ", "
            try put("[")
            for index in 0..<array.shape[axis] {
                if index > 0 { try put(separator) }
                try build(axis + 1, offset + index * stride)
            }
            try put("]")
        }
        try build(0, 0)
        try flush()
    }
}
