import Foundation

/// A dense numeric array read from a `.npy` file or JSON nested arrays, held as Float.
/// `dtype` keeps what the file said (`float32`, `int32`, ...) so callers can check it.
public struct NumericArray: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]
    public var dtype: String

    public init(shape: [Int], values: [Float], dtype: String = "float32") {
        self.shape = shape
        self.values = values
        self.dtype = dtype
    }

    public var isIntegerType: Bool { dtype.hasPrefix("int") || dtype.hasPrefix("uint") || dtype == "bool" }
}

/// `.npy` reading and writing (format versions 1-3, C order).
public enum Npy {
    public static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] // \x93NUMPY

    public static func isNpy(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 6 && Array(bytes[0..<6]) == magic
    }

    public static func read(_ bytes: [UInt8], source: String) throws -> NumericArray {
        func fail(_ message: String) -> NNError { NNError(.input, source, message) }
        guard isNpy(bytes) else { throw fail("not a .npy file (the magic string \\x93NUMPY is missing)") }
        guard bytes.count >= 10 else { throw fail("the .npy file is truncated inside its preamble") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("the .npy file is truncated inside its preamble") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw fail(".npy format version \(major) is not supported; expected 1, 2 or 3")
        }
        guard headerStart + headerLength <= bytes.count, headerLength <= 1 << 20 else {
            throw fail("the .npy header says \(headerLength) bytes but the file is \(bytes.count) bytes (truncated?)")
        }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard let descr = dictValue(header, "descr"), let fortran = dictValue(header, "fortran_order"), let shapeText = dictValue(header, "shape") else {
            throw fail("the .npy header is malformed: expected {'descr': ..., 'fortran_order': ..., 'shape': (...)}, found \(header.trimmingCharacters(in: .whitespacesAndNewlines).prefix(80))")
        }
        guard fortran == "False" else { throw fail("the array is in Fortran order; save it in C order (np.ascontiguousarray)") }
        let descrText = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        let dimsText = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
        var shape: [Int] = []
        for part in dimsText.split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let size = Int(trimmed), size >= 0 else { throw fail("the .npy shape \(shapeText) is malformed") }
            shape.append(size)
        }
        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, product < 1 << 34 else { throw fail("the .npy shape \(shape) is too large") }
            count = product
        }
        let (dtype, itemSize, bigEndian) = try element(descrText, fail: fail)
        let dataStart = headerStart + headerLength
        let needed = count * itemSize
        guard bytes.count - dataStart >= needed else {
            throw fail("shape \(shape) of \(dtype) needs \(needed) bytes of data but the file holds \(bytes.count - dataStart) (truncated?)")
        }
        guard bytes.count - dataStart == needed else {
            throw fail("shape \(shape) of \(dtype) needs \(needed) bytes of data but the file holds \(bytes.count - dataStart) (trailing bytes)")
        }
        let values: [Float] = bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!.advanced(by: dataStart)
            return (0..<count).map { index in
                let offset = index * itemSize
                func load<T: FixedWidthInteger>(_ type: T.Type) -> T {
                    let value = base.loadUnaligned(fromByteOffset: offset, as: T.self)
                    return bigEndian ? T(bigEndian: value) : T(littleEndian: value)
                }
                switch dtype {
                case "float32": return Float(bitPattern: load(UInt32.self))
                case "float64": return Float(Double(bitPattern: load(UInt64.self)))
                case "float16": return WeightStore.halfToFloat(load(UInt16.self))
                case "int8": return Float(Int8(bitPattern: load(UInt8.self)))
                case "uint8", "bool": return Float(load(UInt8.self))
                case "int16": return Float(Int16(bitPattern: load(UInt16.self)))
                case "uint16": return Float(load(UInt16.self))
                case "int32": return Float(Int32(bitPattern: load(UInt32.self)))
                case "uint32": return Float(load(UInt32.self))
                case "int64": return Float(Int64(bitPattern: load(UInt64.self)))
                default: return Float(load(UInt64.self))
                }
            }
        }
        return NumericArray(shape: shape, values: values, dtype: dtype)
    }

    private static func element(_ descr: String, fail: (String) -> NNError) throws -> (String, Int, Bool) {
        guard descr.count >= 3 else { throw fail("unsupported .npy dtype '\(descr)'") }
        let order = descr.first!
        let code = String(descr.dropFirst())
        let bigEndian = order == ">"
        let table: [String: (String, Int)] = [
            "f4": ("float32", 4), "f8": ("float64", 8), "f2": ("float16", 2),
            "i1": ("int8", 1), "u1": ("uint8", 1), "b1": ("bool", 1), "i2": ("int16", 2), "u2": ("uint16", 2),
            "i4": ("int32", 4), "u4": ("uint32", 4), "i8": ("int64", 8), "u8": ("uint64", 8),
        ]
        guard ["<", ">", "|", "="].contains(order), let (name, size) = table[code] else {
            throw fail("unsupported .npy dtype '\(descr)'; expected a float or integer type such as <f4 or <i4")
        }
        return (name, size, bigEndian)
    }

    /// The text of `key`'s value in a Python dict literal (a tuple or a quoted string or a word).
    private static func dictValue(_ header: String, _ key: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[keyRange.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[rest.startIndex...close])
        }
        if let quote = rest.first, quote == "'" || quote == "\"" {
            let body = rest.dropFirst()
            guard let close = body.firstIndex(of: quote) else { return nil }
            return String(body[body.startIndex..<close])
        }
        let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
        return String(rest[rest.startIndex..<end]).trimmingCharacters(in: .whitespaces)
    }

    /// A version 1.0 `.npy` file of little-endian float32 values.
    public static func encode(_ array: NumericArray) -> [UInt8] {
        let dims = array.shape.map(String.init).joined(separator: ", ") + (array.shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out = magic + [1, 0]
        let length = header.utf8.count
        out += [UInt8(length & 0xFF), UInt8(length >> 8)]
        out += Array(header.utf8)
        out.reserveCapacity(out.count + array.values.count * 4)
        for value in array.values {
            let bits = value.bitPattern.littleEndian
            out += [UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF), UInt8(bits >> 24)]
        }
        return out
    }
}

/// Arrays as JSON nested lists.
public enum JSONArray {
    /// Reads a rectangular nested array of numbers. Integral-only data is reported as `int64`.
    public static func read(_ value: JSONValue, source: String) throws -> NumericArray {
        var shape: [Int] = []
        var probe = value
        while case let .array(items) = probe {
            shape.append(items.count)
            guard let first = items.first else { break }
            probe = first
        }
        var values: [Float] = []
        values.reserveCapacity(shape.reduce(1, *))
        var allIntegral = true
        func walk(_ node: JSONValue, depth: Int, path: String) throws {
            if depth == shape.count {
                switch node {
                case let .int(number): values.append(Float(number))
                case let .double(number):
                    allIntegral = false
                    values.append(Float(number))
                case let .string(text) where ["NaN", "nan"].contains(text): allIntegral = false; values.append(.nan)
                case let .string(text) where ["Infinity", "inf"].contains(text): allIntegral = false; values.append(.infinity)
                case let .string(text) where ["-Infinity", "-inf"].contains(text): allIntegral = false; values.append(-.infinity)
                default:
                    throw NNError(.input, "\(source): \(path)", "expected a number, found \(node.typeDescription) (the array must be rectangular, of shape \(shape))")
                }
                return
            }
            guard case let .array(items) = node, items.count == shape[depth] else {
                throw NNError(.input, "\(source): \(path)", "expected an array of \(shape[depth]) items like its first sibling, found \(node.brief()) (the array must be rectangular)")
            }
            for (index, item) in items.enumerated() { try walk(item, depth: depth + 1, path: "\(path)[\(index)]") }
        }
        guard !shape.isEmpty else {
            throw NNError(.input, source, "expected a nested array of numbers (a batch), found \(value.typeDescription)")
        }
        try walk(value, depth: 0, path: "$")
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

    /// Compact JSON text: one row per line for 2-D results, floats in shortest round-trip form.
    public static func text(_ array: NumericArray) -> String {
        func number(_ value: Float) -> String {
            if value.isNaN { return "NaN" }
            if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
            return "\(value)"
        }
        func build(_ axis: Int, _ offset: Int) -> String {
            if axis == array.shape.count { return number(array.values[offset]) }
            let stride = array.shape[(axis + 1)...].reduce(1, *)
            let items = (0..<array.shape[axis]).map { build(axis + 1, offset + $0 * stride) }
            return "[" + items.joined(separator: axis == 0 && array.shape.count > 1 ? ",\n " : ", ") + "]"
        }
        return build(0, 0)
    }
}
