import CJSONC

/// A parsed JSON document, as a plain Swift value. json-c does the parsing; nothing else in
/// nnbuild touches json-c.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// Keys keep their document order.
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The member `key` of an object, or nil (also nil when this is not an object).
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The JSON type name used in error messages ("a string", "an array", ...).
    public var typeDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int: return "an integer"
        case .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// A short rendering of the value for messages, cut at `limit` characters.
    public func brief(limit: Int = 40) -> String {
        let text = JSONWriter.string(self)
        return text.count > limit ? String(text.prefix(limit)) + "…" : text
    }
}

/// Parses JSON text with json-c.
public enum JSONParser {
    /// Deepest nesting accepted. Keras configs nest about a dozen levels.
    public static let maximumDepth: Int32 = 64

    /// Parses `bytes` as one JSON document. `source` names the file in errors, which carry
    /// line:column for syntax errors.
    public static func parse(_ bytes: [UInt8], source: String, refuseDuplicateKeys: Bool = false) throws -> JSONValue {
        try bytes.withUnsafeBufferPointer { try parse($0, source: source, refuseDuplicateKeys: refuseDuplicateKeys) }
    }

    public static func parse(_ text: String, source: String, refuseDuplicateKeys: Bool = false) throws -> JSONValue {
        try parse(Array(text.utf8), source: source, refuseDuplicateKeys: refuseDuplicateKeys)
    }

    /// `refuseDuplicateKeys` makes a key that appears twice in one object an error; otherwise the
    /// last one wins, as in Python's `json`. A key holding NUL is always an error.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, source: String, refuseDuplicateKeys: Bool = false) throws -> JSONValue {
        guard bytes.count < Int(Int32.max) else {
            throw NNError(.json, source, "the document is \(bytes.count) bytes; the largest accepted is \(Int32.max)")
        }
        if let bad = firstInvalidUTF8(bytes) {
            let (line, column) = lineColumn(bytes, offset: bad)
            throw NNError(.json, "\(source):\(line):\(column)", "the text is not valid UTF-8")
        }
        guard let tokener = json_tokener_new_ex(maximumDepth) else {
            throw NNError(.io, source, "could not allocate a JSON parser")
        }
        defer { json_tokener_free(tokener) }
        json_tokener_set_flags(tokener, Int32(JSON_TOKENER_STRICT))
        let root = bytes.baseAddress.map { base in
            base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                json_tokener_parse_ex(tokener, $0, Int32(bytes.count))
            }
        } ?? nil
        let status = json_tokener_get_error(tokener)
        let consumed = Int(json_tokener_get_parse_end(tokener))
        if root == nil || status != json_tokener_success {
            if root != nil { json_object_put(root) }
            let offset = min(consumed, bytes.count)
            let (line, column) = lineColumn(bytes, offset: offset)
            let reason: String
            switch status {
            case json_tokener_continue: reason = "the document ends early (unclosed bracket, brace or string)"
            case json_tokener_error_depth: reason = "JSON nested deeper than \(maximumDepth) levels"
            case json_tokener_success: reason = "the document is empty"
            default: reason = String(cString: json_tokener_error_desc(status))
            }
            throw NNError(.json, "\(source):\(line):\(column)", "invalid JSON: \(reason)")
        }
        defer { json_object_put(root) }
        if let problem = JSONKeys.check(bytes, refuseDuplicates: refuseDuplicateKeys) {
            let (line, column) = lineColumn(bytes, offset: problem.offset)
            throw NNError(.json, "\(source):\(line):\(column)", problem.message)
        }
        // Anything but white space after the value is an error too.
        var rest = consumed
        while rest < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[rest]) { rest += 1 }
        if rest < bytes.count {
            let (line, column) = lineColumn(bytes, offset: rest)
            throw NNError(.json, "\(source):\(line):\(column)", "invalid JSON: unexpected text after the document")
        }
        return convert(root)
    }

    private static func convert(_ object: OpaquePointer?) -> JSONValue {
        guard let object else { return .null }
        switch json_object_get_type(object) {
        case json_type_null: return .null
        case json_type_boolean: return .bool(json_object_get_boolean(object) != 0)
        case json_type_int: return .int(json_object_get_int64(object))
        case json_type_double:
            let value = json_object_get_double(object)
            return .double(value)
        case json_type_string:
            let length = Int(json_object_get_string_len(object))
            guard let pointer = json_object_get_string(object) else { return .string("") }
            let buffer = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: length)
            return .string(String(decoding: buffer, as: UTF8.self))
        case json_type_array:
            let count = json_object_array_length(object)
            var items: [JSONValue] = []
            items.reserveCapacity(count)
            for index in 0..<count { items.append(convert(json_object_array_get_idx(object, index))) }
            return .array(items)
        case json_type_object:
            var members: [(String, JSONValue)] = []
            var iterator = json_object_iter_begin(object)
            let end = json_object_iter_end(object)
            var endIterator = end
            while json_object_iter_equal(&iterator, &endIterator) == 0 {
                let name = String(cString: json_object_iter_peek_name(&iterator))
                members.append((name, convert(json_object_iter_peek_value(&iterator))))
                json_object_iter_next(&iterator)
            }
            return .object(members)
        default:
            return .null
        }
    }

    /// 1-based line and column of byte `offset`.
    static func lineColumn(_ bytes: UnsafeBufferPointer<UInt8>, offset: Int) -> (Int, Int) {
        var line = 1
        var column = 1
        for index in 0..<min(offset, bytes.count) {
            if bytes[index] == 0x0A {
                line += 1
                column = 1
            } else if bytes[index] & 0xC0 != 0x80 {
                column += 1
            }
        }
        return (line, column)
    }

    /// The offset of the first byte that is not well-formed UTF-8 as RFC 3629 defines it: no
    /// overlong forms (C0 AF, E0 80 AF), no encoded surrogates (ED A0 80), nothing above U+10FFFF
    /// (F4 90 80 80).
    static func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            if lead < 0x80 { index += 1; continue }
            // RFC 3629 section 4: the range of the second byte depends on the first.
            let length: Int
            var second: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; second = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; second = 0x80...0x9F
            case 0xF0: length = 4; second = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; second = 0x80...0x8F
            default: return index
            }
            guard index + length <= bytes.count, second.contains(bytes[index + 1]) else { return index }
            for next in 2..<length where bytes[index + next] & 0xC0 != 0x80 { return index }
            index += length
        }
        return nil
    }
}

/// Object keys checked on the text, decoded. json-c ends a key at its first NUL (so `"a\u0000x"`
/// would become `a`) and keeps only the last of duplicate keys, so neither is visible after
/// parsing. Keys are compared after their escapes are decoded: `"\u0061"` is `"a"`.
enum JSONKeys {
    struct Problem: Error {
        var offset: Int
        var message: String
    }

    /// The first key holding NUL or an unpaired surrogate escape, or, with `refuseDuplicates`, the
    /// first key that appears twice in one object. `bytes` must be valid JSON.
    static func check(_ bytes: UnsafeBufferPointer<UInt8>, refuseDuplicates: Bool) -> Problem? {
        // One frame per open container: the keys seen so far (objects), and the key it sits under.
        // Keys are compared as Swift compares strings (canonical equivalence: "é" written as one
        // scalar or as "e" and a combining accent are one name), since that is how nnbuild looks
        // names up afterwards; each is kept with its bytes to say when the spellings differ.
        var frames: [(keys: [String: [UInt8]], name: String?)] = []
        var pendingName: String?
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                let start = index
                let decoded: [UInt8]
                do {
                    (decoded, index) = try decodeString(bytes, from: index)
                } catch let problem as Problem {
                    return problem
                } catch {
                    return Problem(offset: start, message: "\(error)")
                }
                var after = index
                while after < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[after]) { after += 1 }
                guard after < bytes.count, bytes[after] == UInt8(ascii: ":"), !frames.isEmpty else { continue }
                let name = String(decoding: decoded, as: UTF8.self)
                if decoded.contains(0) {
                    return Problem(offset: start, message: "key '\(name.replacingNUL)' holds a NUL character (\\u0000); keys may not")
                }
                if refuseDuplicates {
                    if let earlier = frames[frames.count - 1].keys.updateValue(decoded, forKey: name) {
                        let container = frames.compactMap(\.name).map { "'\($0)'" }.joined(separator: " → ")
                        let spelling = earlier == decoded ? "" : " (spelt with other Unicode code points that compare equal)"
                        return Problem(offset: start, message: "key '\(name)' appears twice" + (container.isEmpty ? " at the top level" : " in \(container)") + spelling)
                    }
                }
                pendingName = name
                index = after + 1
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                frames.append((keys: [:], name: pendingName))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !frames.isEmpty { frames.removeLast() }
            case 0x20, 0x09, 0x0A, 0x0D:
                index += 1
                continue
            default:
                break
            }
            pendingName = nil
            index += 1
        }
        return nil
    }

    /// Decodes the JSON string starting at the quote at `start` to UTF-8; returns it and the
    /// offset just past the closing quote.
    static func decodeString(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) throws -> ([UInt8], Int) {
        var out: [UInt8] = []
        var index = start + 1
        func hex4(_ at: Int) throws -> UInt32 {
            guard at + 4 <= bytes.count else { throw Problem(offset: at, message: "a \\u escape is cut short") }
            var value: UInt32 = 0
            for byte in bytes[at..<(at + 4)] {
                guard let digit = Character(UnicodeScalar(byte)).hexDigitValue else {
                    throw Problem(offset: at, message: "a \\u escape needs four hex digits")
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { return (out, index + 1) }
            guard byte == UInt8(ascii: "\\"), index + 1 < bytes.count else {
                out.append(byte)
                index += 1
                continue
            }
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let escapeStart = index - 2
                var scalar = try hex4(index)
                index += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let followedByEscape = index + 1 < bytes.count && bytes[index] == UInt8(ascii: "\\") && bytes[index + 1] == UInt8(ascii: "u")
                    let low = followedByEscape ? try hex4(index + 2) : 0
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw Problem(offset: escapeStart, message: "a key holds an unpaired surrogate escape (\\u\(String(scalar, radix: 16))); keys must be valid Unicode")
                    }
                    scalar = 0x10000 + (scalar - 0xD800) << 10 + (low - 0xDC00)
                    index += 6
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw Problem(offset: escapeStart, message: "a key holds an unpaired surrogate escape (\\u\(String(scalar, radix: 16))); keys must be valid Unicode")
                }
                if let unicode = Unicode.Scalar(scalar) { out.append(contentsOf: Array(String(unicode).utf8)) }
            default: out.append(escape) // \" \\ \/
            }
        }
        return (out, index)
    }
}

extension String {
    /// The text with NUL shown as `\u0000`, for messages.
    var replacingNUL: String { split(separator: "\u{0}", omittingEmptySubsequences: false).joined(separator: "\\u0000") }
}

/// Writes JSON text. Floats use Swift's shortest round-tripping form.
public enum JSONWriter {
    public static func string(_ value: JSONValue) -> String {
        var out = ""
        write(value, into: &out)
        return out
    }

    static func write(_ value: JSONValue, into out: inout String) {
        switch value {
        case .null: out += "null"
        case let .bool(flag): out += flag ? "true" : "false"
        case let .int(number): out += String(number)
        // JSON has no NaN or infinity: they are written as null, so every parser accepts the text.
        case let .double(number): out += number.isFinite ? "\(number)" : "null"
        case let .string(text): out += quote(text)
        case let .array(items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += ", " }
                write(item, into: &out)
            }
            out += "]"
        case let .object(members):
            out += "{"
            for (index, (key, item)) in members.enumerated() {
                if index > 0 { out += ", " }
                out += quote(key) + ": "
                write(item, into: &out)
            }
            out += "}"
        }
    }

    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(s.value, radix: 16).count) + String(s.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
