#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// A checked `.npy` preamble and header: what the data is and where it lies. Every reader
/// (`Npy.read`, `NpyFile`) goes through `parse`, which checks the whole header and that the data
/// is exactly as long as the shape says.
struct NpyHeader: Sendable, Equatable {
    /// Element types nnbuild reads, by their numpy names; `unicode` (`<U7`: UTF-32 code units,
    /// zero-padded) and `bytes` (`|S7`: UTF-8, zero-padded) hold strings.
    enum Element: String, Sendable {
        case float32, float64, float16, int8, uint8, bool, int16, uint16, int32, uint32, int64, uint64
        case unicode = "str", bytes

        var holdsStrings: Bool { self == .unicode || self == .bytes }
    }

    /// The longest string element accepted, in characters (`<U`) or bytes (`|S`).
    static let longestString = 1 << 20

    var shape: [Int]
    var element: Element
    var itemSize: Int
    var bigEndian: Bool
    /// Where the data starts: the preamble plus the header.
    var dataOffset: Int
    /// Elements in one row (`shape.dropFirst()`), and in the whole array.
    var rowElements: Int
    var count: Int

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] // \x93NUMPY

    /// The numpy format's own limit for the header of a version 1 file is 65535 bytes; version 2
    /// and 3 allow 4 GB, which no real array needs.
    static let maximumHeaderLength = 1 << 20

    /// Parses the file in `bytes` (the whole file: the data-size check needs its length).
    static func parse(_ bytes: UnsafeRawBufferPointer, source: String) throws -> NpyHeader {
        func fail(_ message: String) -> NNError { NNError(.input, source, message) }
        guard bytes.count >= 6, magic.indices.allSatisfy({ bytes[$0] == magic[$0] }) else {
            throw fail("not a .npy file (the magic string \\x93NUMPY is missing)")
        }
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
        guard headerLength <= maximumHeaderLength else {
            throw fail("the .npy header says it is \(headerLength) bytes; the largest accepted is \(maximumHeaderLength)")
        }
        guard headerStart + headerLength <= bytes.count else {
            throw fail("the .npy header says \(headerLength) bytes but the file is \(bytes.count) bytes (truncated?)")
        }
        guard let base = bytes.baseAddress else { throw fail("the .npy file is empty") }
        let text = UnsafeBufferPointer(start: (base + headerStart).assumingMemoryBound(to: UInt8.self), count: headerLength)
        if major == 3, let bad = JSONParser.firstInvalidUTF8(text) {
            throw fail("the .npy header is not valid UTF-8 (at byte \(bad) of the header)")
        }
        var header = try parseDict(text, source: source)
        header.dataOffset = headerStart + headerLength
        let available = bytes.count - header.dataOffset
        let needed = header.count * header.itemSize
        guard available == needed else {
            let why = available < needed ? "truncated?" : "trailing bytes"
            throw fail("shape \(header.shape) of \(header.element.rawValue) needs \(needed) bytes of data but the file holds \(available) (\(why))")
        }
        return header
    }

    /// Checks the header dict: exactly the keys `descr`, `fortran_order` and `shape`, each of its
    /// type; a repeated key takes the last value, as Python's `literal_eval` does.
    static func parseDict(_ text: UnsafeBufferPointer<UInt8>, source: String) throws -> NpyHeader {
        func fail(_ message: String) -> NNError { NNError(.input, source, message) }
        var reader = PythonLiteral(text: text, source: source)
        let (members, end) = try reader.dict()
        // numpy pads with spaces and ends the header with a newline; nothing else may follow.
        for offset in end..<text.count where text[offset] != 0x20 && !(text[offset] == 0x0A && offset == text.count - 1) {
            throw fail("the .npy header's padding holds byte 0x\(text[offset] < 0x10 ? "0" : "")\(String(text[offset], radix: 16, uppercase: true)) at offset \(offset); expected only spaces and a final newline")
        }
        var values: [String: PythonLiteral.Value] = [:]
        let expected = ["descr", "fortran_order", "shape"]
        for (key, value) in members {
            guard expected.contains(key) else {
                throw fail("the .npy header has an unknown key '\(key)'; expected exactly 'descr', 'fortran_order' and 'shape'")
            }
            values[key] = value
        }
        for key in expected where values[key] == nil {
            throw fail("the .npy header is malformed: the key '\(key)' is missing; expected {'descr': ..., 'fortran_order': ..., 'shape': (...)}")
        }
        guard case let .bool(fortran)? = values["fortran_order"] else {
            throw fail("the .npy header's 'fortran_order' must be True or False, found \(values["fortran_order"].map(\.description) ?? "nothing")")
        }
        guard case let .string(descr)? = values["descr"] else {
            throw fail("unsupported .npy dtype \(values["descr"].map(\.description) ?? "nothing"); expected a string such as '<f4'")
        }
        guard case let .tuple(shape)? = values["shape"] else {
            throw fail("the .npy header's 'shape' must be a tuple of sizes such as (2, 3), found \(values["shape"].map(\.description) ?? "nothing")")
        }
        guard !fortran else { throw fail("the array is in Fortran order; save it in C order (np.ascontiguousarray)") }
        let (element, itemSize, bigEndian) = try self.element(descr, fail: fail)
        // Every partial product stays far from overflow, so row arithmetic never traps.
        var product = 1
        for size in shape where size != 0 {
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            guard !overflow, next <= (1 << 48) / itemSize else {
                throw fail("the .npy shape \(shape) holds too many elements; the largest accepted is \((1 << 48) / itemSize)")
            }
            product = next
        }
        let rowElements = shape.dropFirst().reduce(1, *)
        let count = shape.contains(0) ? 0 : product
        return NpyHeader(shape: shape, element: element, itemSize: itemSize, bigEndian: bigEndian, dataOffset: 0,
                         rowElements: rowElements, count: count)
    }

    static func element(_ descr: String, fail: (String) -> NNError) throws -> (Element, Int, Bool) {
        let table: [String: (Element, Int)] = [
            "f4": (.float32, 4), "f8": (.float64, 8), "f2": (.float16, 2),
            "i1": (.int8, 1), "u1": (.uint8, 1), "b1": (.bool, 1), "i2": (.int16, 2), "u2": (.uint16, 2),
            "i4": (.int32, 4), "u4": (.uint32, 4), "i8": (.int64, 8), "u8": (.uint64, 8),
        ]
        guard let order = descr.first, ["<", ">", "|", "="].contains(order) else {
            throw fail("unsupported .npy dtype '\(descr)'; expected a float or integer type such as <f4 or <i4, or strings such as <U8")
        }
        let code = descr.dropFirst()
        if let kind = code.first, kind == "U" || kind == "S" {
            guard let length = Int(code.dropFirst()), length >= 1, length <= longestString else {
                throw fail("unsupported .npy dtype '\(descr)': strings of 1 to \(longestString) \(kind == "U" ? "characters" : "bytes") are read, such as <U8 or |S8")
            }
            return kind == "U" ? (.unicode, 4 * length, order == ">") : (.bytes, length, false)
        }
        guard let (element, size) = table[String(code)] else {
            throw fail("unsupported .npy dtype '\(descr)'; expected a float or integer type such as <f4 or <i4, or strings such as <U8")
        }
        return (element, size, order == ">")
    }

    /// `count` string elements at `base`, each without the zero padding numpy stores (as numpy
    /// strips it); text that is not valid Unicode (UTF-8 for `|S`) is refused, naming its element.
    func strings(_ base: UnsafeRawPointer, count: Int, first: Int, source: String) throws -> [String] {
        var texts: [String] = []
        texts.reserveCapacity(count)
        for index in 0..<count {
            let element = base + index * itemSize
            if self.element == .bytes {
                var length = itemSize
                while length > 0, element.load(fromByteOffset: length - 1, as: UInt8.self) == 0 { length -= 1 }
                let bytes = UnsafeBufferPointer(start: element.assumingMemoryBound(to: UInt8.self), count: length)
                if let bad = JSONParser.firstInvalidUTF8(bytes) {
                    throw NNError(.input, source, "string element \(first + index) is not valid UTF-8 (at byte \(bad)); nnbuild reads |S arrays as UTF-8 text")
                }
                texts.append(String(decoding: bytes, as: UTF8.self))
            } else {
                var scalars = String.UnicodeScalarView()
                var units = itemSize / 4
                func unit(_ at: Int) -> UInt32 {
                    let raw = element.loadUnaligned(fromByteOffset: at * 4, as: UInt32.self)
                    return bigEndian ? UInt32(bigEndian: raw) : UInt32(littleEndian: raw)
                }
                while units > 0, unit(units - 1) == 0 { units -= 1 }
                for at in 0..<units {
                    guard let scalar = Unicode.Scalar(unit(at)) else {
                        throw NNError(.input, source, "string element \(first + index) holds \(unit(at)), which is not a Unicode code point (character \(at))")
                    }
                    scalars.append(scalar)
                }
                texts.append(String(scalars))
            }
        }
        return texts
    }

    /// `count` elements at `base`, converted to Float.
    func convert(_ base: UnsafeRawPointer, count: Int) -> [Float] {
        let bigEndian = self.bigEndian
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            func fill<T: FixedWidthInteger>(_: T.Type, _ map: (T) -> Float) {
                let size = MemoryLayout<T>.size
                for index in 0..<count {
                    let raw = base.loadUnaligned(fromByteOffset: index * size, as: T.self)
                    buffer[index] = map(bigEndian ? T(bigEndian: raw) : T(littleEndian: raw))
                }
            }
            switch element {
            case .float32: fill(UInt32.self) { Float(bitPattern: $0) }
            case .float64: fill(UInt64.self) { Float(Double(bitPattern: $0)) }
            case .float16: fill(UInt16.self) { WeightStore.halfToFloat($0) }
            case .int8: fill(UInt8.self) { Float(Int8(bitPattern: $0)) }
            case .uint8, .bool: fill(UInt8.self) { Float($0) }
            case .int16: fill(UInt16.self) { Float(Int16(bitPattern: $0)) }
            case .uint16: fill(UInt16.self) { Float($0) }
            case .int32: fill(UInt32.self) { Float(Int32(bitPattern: $0)) }
            case .uint32: fill(UInt32.self) { Float($0) }
            case .int64: fill(UInt64.self) { Float(Int64(bitPattern: $0)) }
            case .uint64: fill(UInt64.self) { Float($0) }
            case .unicode, .bytes: for index in 0..<count { buffer[index] = .nan }
            }
            initialized = count
        }
    }

    /// The preamble and header numpy writes for little-endian float32 data of `shape`: version 1,
    /// or version 2 when the header does not fit 65535 bytes; the data starts 64-byte aligned.
    static func float32Header(shape: [Int]) -> [UInt8] { header(descr: "<f4", shape: shape) }

    /// The preamble and header for data of numpy type `descr` and `shape`, as `float32Header`.
    static func header(descr: String, shape: [Int]) -> [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
        var preamble = 10
        if dict.utf8.count + 1 + 63 > 65535 { preamble = 12 }
        dict += String(repeating: " ", count: (64 - (preamble + dict.utf8.count + 1) % 64) % 64) + "\n"
        let length = dict.utf8.count
        let lengthBytes = (0..<(preamble - 8)).map { UInt8((length >> (8 * $0)) & 0xFF) }
        return magic + [preamble == 10 ? 1 : 2, 0] + lengthBytes + Array(dict.utf8)
    }
}

/// The subset of Python literal syntax a `.npy` header uses: a dict of string keys whose values are
/// strings ('...' or "..."), True/False, or tuples of integers, with optional trailing commas and
/// any white space between tokens.
struct PythonLiteral {
    enum Value: Equatable {
        case string(String)
        case bool(Bool)
        case tuple([Int])

        var description: String {
            switch self {
            case let .string(text): return "the string '\(text)'"
            case let .bool(flag): return flag ? "True" : "False"
            case let .tuple(items): return "the tuple (\(items.map(String.init).joined(separator: ", "))\(items.count == 1 ? "," : ""))"
            }
        }
    }

    let text: UnsafeBufferPointer<UInt8>
    let source: String
    var index = 0

    init(text: UnsafeBufferPointer<UInt8>, source: String) {
        self.text = text
        self.source = source
    }

    func fail(_ expected: String) -> NNError {
        // Control and non-ASCII bytes shown as \xNN, so the message stays on one line.
        let excerpt = text[index..<min(index + 12, text.count)].map { byte in
            (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16, uppercase: true)
        }.joined()
        let found = index < text.count ? "'\(excerpt)'" : "the end of the header"
        return NNError(.input, source, "the .npy header is malformed: expected \(expected) at offset \(index), found \(found)")
    }

    var current: UInt8? { index < text.count ? text[index] : nil }

    mutating func skipSpace() {
        while let byte = current, [0x20, 0x09, 0x0A, 0x0D].contains(byte) { index += 1 }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws {
        skipSpace()
        guard current == byte else { throw fail(what) }
        index += 1
    }

    /// The dict's members in order, and the offset just past its closing brace.
    mutating func dict() throws -> ([(String, Value)], Int) {
        try expect(UInt8(ascii: "{"), "'{' opening the header dict")
        var members: [(String, Value)] = []
        while true {
            skipSpace()
            if current == UInt8(ascii: "}") { index += 1; break }
            guard current == UInt8(ascii: "'") || current == UInt8(ascii: "\"") else { throw fail("a quoted key or '}'") }
            let key = try string()
            try expect(UInt8(ascii: ":"), "':' after the key '\(key)'")
            members.append((key, try value()))
            skipSpace()
            if current == UInt8(ascii: ",") { index += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}' after the value of '\(key)'")
            break
        }
        return (members, index)
    }

    mutating func value() throws -> Value {
        skipSpace()
        switch current {
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "("): return .tuple(try tuple())
        case UInt8(ascii: "T"), UInt8(ascii: "F"):
            for (word, flag) in [("True", true), ("False", false)] where matches(word) {
                index += word.utf8.count
                return .bool(flag)
            }
            throw fail("a string, True, False or a tuple")
        default: throw fail("a string, True, False or a tuple")
        }
    }

    func matches(_ word: String) -> Bool {
        let bytes = Array(word.utf8)
        guard index + bytes.count <= text.count, Array(text[index..<(index + bytes.count)]) == bytes else { return false }
        // `Trueish` is a name, not True.
        guard index + bytes.count < text.count else { return true }
        let next = text[index + bytes.count]
        let continuesName = next == UInt8(ascii: "_") || (0x30...0x39).contains(next) || (0x41...0x5A).contains(next) || (0x61...0x7A).contains(next)
        return !continuesName
    }

    /// A quoted string without escapes (numpy never writes one).
    mutating func string() throws -> String {
        guard let quote = current else { throw fail("a quoted string") }
        let start = index + 1
        var end = start
        while end < text.count, text[end] != quote {
            guard text[end] != UInt8(ascii: "\\"), text[end] != 0x0A else {
                index = end
                throw fail("the end of the string (escapes and line breaks are not supported in a .npy header)")
            }
            end += 1
        }
        guard end < text.count else { index = end; throw fail("the closing quote") }
        index = end + 1
        return String(decoding: text[start..<end], as: UTF8.self)
    }

    /// `()`, `(3,)`, `(2, 3)`, `(2, 3,)`; `(3)` is an integer in Python, not a tuple.
    mutating func tuple() throws -> [Int] {
        index += 1
        var items: [Int] = []
        var sawComma = false
        while true {
            skipSpace()
            if current == UInt8(ascii: ")") {
                guard items.count != 1 || sawComma else { throw fail("',' after the single size (Python writes a 1-tuple as (3,))") }
                index += 1
                return items
            }
            items.append(try integer())
            skipSpace()
            if current == UInt8(ascii: ",") { index += 1; sawComma = true; continue }
            guard current == UInt8(ascii: ")") else { throw fail("',' or ')' in the shape tuple") }
        }
    }

    /// A non-negative decimal integer (Python 2's `L` suffix allowed, as numpy allows it).
    mutating func integer() throws -> Int {
        if current == UInt8(ascii: "-") { throw fail("a non-negative size") }
        let start = index
        var value = 0
        while let byte = current, (0x30...0x39).contains(byte) {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = times.addingReportingOverflow(Int(byte - 0x30))
            guard !overflow1, !overflow2 else { index = start; throw fail("a size below 2^63") }
            value = next
            index += 1
        }
        guard index > start else { throw fail("an integer size") }
        if current == UInt8(ascii: "L") { index += 1 }
        return value
    }
}

/// `.npy` reading and writing (format versions 1-3, C order).
public enum Npy {
    public static let magic: [UInt8] = NpyHeader.magic

    public static func isNpy(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 6 && Array(bytes[0..<6]) == magic
    }

    /// Reads a whole `.npy` file held in memory.
    public static func read(_ bytes: [UInt8], source: String) throws -> NumericArray {
        try bytes.withUnsafeBytes { raw in
            let header = try NpyHeader.parse(raw, source: source)
            if header.element.holdsStrings {
                let texts = try raw.baseAddress.map { try header.strings($0 + header.dataOffset, count: header.count, first: 0, source: source) } ?? []
                return NumericArray(shape: header.shape, strings: texts)
            }
            let values = raw.baseAddress.map { header.convert($0 + header.dataOffset, count: header.count) } ?? []
            return NumericArray(shape: header.shape, values: values, dtype: header.element.rawValue)
        }
    }

    /// A `.npy` file of little-endian float32 values, or for an array of strings numpy's `<U`
    /// (UTF-32, each string padded with zeros to the longest).
    public static func encode(_ array: NumericArray) -> [UInt8] {
        if let strings = array.strings {
            let width = max(1, strings.map(\.unicodeScalars.count).max() ?? 1)
            var out = NpyHeader.header(descr: "<U\(width)", shape: array.shape)
            out.reserveCapacity(out.count + strings.count * width * 4)
            for text in strings {
                let scalars = text.unicodeScalars.map(\.value) + [UInt32](repeating: 0, count: width - text.unicodeScalars.count)
                for scalar in scalars { withUnsafeBytes(of: scalar.littleEndian) { out.append(contentsOf: $0) } }
            }
            return out
        }
        var out = NpyHeader.float32Header(shape: array.shape)
        #if _endian(little)
        array.values.withUnsafeBytes { out.append(contentsOf: $0) }
        #else
        out.reserveCapacity(out.count + array.values.count * 4)
        for value in array.values {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        }
        #endif
        return out
    }
}

/// A `.npy` file mapped read-only, converted to Float a few rows at a time, so a large input costs
/// one batch of memory rather than the whole file. The header is checked in full when it opens.
public final class NpyFile: @unchecked Sendable {
    /// The path, for messages.
    public let source: String
    public let shape: [Int]
    /// The element type the file holds (`float32`, `int64`, ..., `str` for strings), as `Npy.read` says.
    public let dtype: String
    private let header: NpyHeader
    private let file: MappedFile

    /// Maps the regular file at `path` (FIFOs, devices and directories are refused) and checks it.
    public init(path: String) throws {
        file = try MappedFile(path: path)
        header = try NpyHeader.parse(file.bytes, source: path)
        source = path
        shape = header.shape
        dtype = header.element.holdsStrings ? NumericArray.stringDType : header.element.rawValue
    }

    /// Rows along the first axis: `shape[0]`, or 1 for a 0-d array.
    public var rowCount: Int { shape.first ?? 1 }

    /// The shape of one row: `shape.dropFirst()`.
    public var rowShape: [Int] { Array(shape.dropFirst()) }

    /// Whether the file holds strings (`<U`, `|S`): read them with `stringRows`.
    public var holdsStrings: Bool { header.element.holdsStrings }

    /// The values of `range`'s rows as Float, in C order. The file's pages they came from are then
    /// released, so reading a file row by row never holds it all in memory.
    public func rows(_ range: Range<Int>) throws -> [Float] {
        guard !holdsStrings else { throw NNError(.input, source, "holds strings (dtype \(dtype)), not numbers") }
        return try read(range) { header.convert($0, count: $1) }
    }

    /// `range`'s rows of a file of strings, in C order, released as `rows` releases them.
    public func stringRows(_ range: Range<Int>) throws -> [String] {
        guard holdsStrings else { throw NNError(.input, source, "holds \(dtype) numbers, not strings") }
        return try read(range) { try header.strings($0, count: $1, first: range.lowerBound * header.rowElements, source: source) }
    }

    /// `convert` of the elements of `range`'s rows, whose pages are then released.
    private func read<T>(_ range: Range<Int>, _ convert: (UnsafeRawPointer, Int) throws -> [T]) throws -> [T] {
        guard range.lowerBound >= 0, range.upperBound <= rowCount else {
            throw NNError(.input, source, "rows \(range.lowerBound)..<\(range.upperBound) are outside the file's \(rowCount) rows")
        }
        let count = range.count * header.rowElements
        guard count > 0, let base = file.bytes.baseAddress else { return [] }
        let start = header.dataOffset + range.lowerBound * header.rowElements * header.itemSize
        let values = try convert(base + start, count)
        file.release(start..<(start + count * header.itemSize))
        return values
    }

    /// The rows in `range` as an array of `rowShape` rows (numbers or strings).
    public func array(_ range: Range<Int>) throws -> NumericArray {
        let shape = [range.count] + rowShape
        return holdsStrings ? NumericArray(shape: shape, strings: try stringRows(range))
                            : NumericArray(shape: shape, values: try rows(range), dtype: dtype)
    }

    /// The whole array.
    public func all() throws -> NumericArray {
        var whole = try array(0..<rowCount)
        whole.shape = shape
        return whole
    }
}

/// Writes a little-endian float32 `.npy` file to a descriptor as the values arrive: the header for
/// the full shape first, then `append` per batch, then `finish` to check that every value came.
public struct NpyWriter {
    public let source: String
    public let shape: [Int]
    private let descriptor: Int32
    private let total: Int
    private var written = 0

    /// Writes the header (format version 1, or 2 for a header over 65535 bytes) for `shape`.
    public init(descriptor: Int32, source: String, shape: [Int]) throws {
        var total = 1
        for size in shape {
            let (next, overflow) = total.multipliedReportingOverflow(by: size)
            guard size >= 0, !overflow, next <= Int.max / 4 else {
                throw NNError(.io, source, "cannot write a .npy file of shape \(shape): the sizes must be non-negative and hold fewer than \(Int.max / 4) values")
            }
            total = next
        }
        self.descriptor = descriptor
        self.source = source
        self.shape = shape
        self.total = total
        let header = NpyHeader.float32Header(shape: shape)
        try header.withUnsafeBytes { try NpyWriter.writeAll(descriptor, $0, source: source) }
    }

    /// Writes the next values, in C order.
    public mutating func append(_ values: UnsafeBufferPointer<Float>) throws {
        guard values.count <= total - written else {
            throw NNError(.io, source, "cannot append \(values.count) values: \(written) of the \(total) that shape \(shape) holds are already written")
        }
        #if _endian(little)
        try NpyWriter.writeAll(descriptor, UnsafeRawBufferPointer(values), source: source)
        #else
        let little = values.map { $0.bitPattern.littleEndian }
        try little.withUnsafeBytes { try NpyWriter.writeAll(descriptor, $0, source: source) }
        #endif
        written += values.count
    }

    /// Checks that exactly as many values were written as the shape holds.
    public func finish() throws {
        guard written == total else {
            throw NNError(.io, source, "the .npy file of shape \(shape) needs \(total) values, but \(written) were written")
        }
    }

    /// write(2) until every byte is out, retrying interrupted and partial writes.
    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, source: String) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let wrote = systemWrite(descriptor, base + done, bytes.count - done)
            if wrote < 0 {
                if errno == EINTR { continue }
                throw NNError(.io, source, "cannot write the output (\(String(cString: strerror(errno))))")
            }
            guard wrote > 0 else { throw NNError(.io, source, "cannot write the output (the write made no progress)") }
            done += wrote
        }
    }
}
