/// One header message: its type and its body, a checked slice of the file.
struct HDF5Message {
    let type: Int
    let flags: UInt8
    let creationOrder: Int?
    let body: UnsafeRawBufferPointer
    let offset: Int
}

/// An object header (version 1 or 2) with its continuation blocks followed, each block visited
/// once (a continuation cycle is an error) and their number bounded.
struct HDF5ObjectHeader {
    let address: Int
    let messages: [HDF5Message]

    init(_ reader: HDF5Reader, address: Int) throws {
        self.address = address
        var messages: [HDF5Message] = []
        var visited: Set<Int> = [address]
        var pending: [(Int, Int)] = []
        let what = "object header"
        let first = try reader.bytes(at: address, count: 4, what)
        if Array(first) == Array("OHDR".utf8) {
            var c = HDF5Cursor(reader, try reader.bytes(at: address, count: min(reader.size - address, 64), what), at: address, what: what)
            try c.skip(4)
            let version = try c.u8()
            guard version == 2 else { throw reader.error(address, what, "version \(version) of an 'OHDR' header is not supported (expected 2)") }
            let flags = try c.u8()
            if flags & 0x20 != 0 { try c.skip(16) }
            if flags & 0x10 != 0 { try c.skip(4) }
            let chunkSize = try c.count(1 << Int(flags & 3))
            let bodyStart = c.absolute
            guard let end = HDF5Reader.add(bodyStart, chunkSize) else { throw reader.error(address, what, "size overflows") }
            _ = try reader.bytes(at: bodyStart, count: chunkSize + 4, what)
            try HDF5ObjectHeader.parseV2(reader, from: bodyStart, to: end, flags: flags, into: &messages, continuations: &pending)
            while let (next, length) = pending.popLast() {
                guard visited.insert(next).inserted else {
                    throw reader.error(next, "continuation block", "is reached twice (a continuation cycle)")
                }
                guard visited.count <= 4096 else { throw reader.error(address, what, "has more than 4096 continuation blocks") }
                var k = HDF5Cursor(reader, try reader.bytes(at: next, count: length, "continuation block"), at: next, what: "continuation block")
                try k.signature("OCHK")
                guard length >= 8 else { throw reader.error(next, "continuation block", "is \(length) bytes, too short") }
                try HDF5ObjectHeader.parseV2(reader, from: next + 4, to: next + length - 4, flags: flags, into: &messages, continuations: &pending)
            }
        } else {
            var c = HDF5Cursor(reader, try reader.bytes(at: address, count: 16, what), at: address, what: what)
            let version = try c.u8()
            guard version == 1 else {
                throw reader.error(address, what, "version \(version) is not supported (expected 1, or 'OHDR' for version 2)")
            }
            try c.skip(1)
            let count = try c.u16()
            try c.skip(4)
            let headerSize = try c.u32()
            pending.append((address + 16, headerSize))
            visited.insert(address + 16)
            var blocks = 0
            while let (next, length) = pending.popLast() {
                blocks += 1
                if blocks > 1 {
                    guard visited.insert(next).inserted else {
                        throw reader.error(next, "continuation block", "is reached twice (a continuation cycle)")
                    }
                }
                guard blocks <= 4096 else { throw reader.error(address, what, "has more than 4096 continuation blocks") }
                var k = HDF5Cursor(reader, try reader.bytes(at: next, count: length, "object header block"), at: next, what: what)
                while k.remaining >= 8 && messages.count < count {
                    let type = try k.u16()
                    let size = try k.u16()
                    let flags = try k.u8()
                    try k.skip(3)
                    let at = k.absolute
                    let body = try k.bytes(size)
                    try k.align(8)
                    if type == 0x10 {
                        pending.append(try HDF5ObjectHeader.continuation(reader, body, at))
                    }
                    messages.append(HDF5Message(type: type, flags: flags, creationOrder: nil, body: body, offset: at))
                }
            }
        }
        for m in messages where m.flags & 0x02 != 0 && [0x1, 0x3, 0x8, 0xB, 0xC].contains(m.type) {
            throw reader.error(m.offset, "object header message", "a shared message (type \(m.type)) is not supported")
        }
        self.messages = messages
    }

    private static func parseV2(_ reader: HDF5Reader, from: Int, to: Int, flags: UInt8, into messages: inout [HDF5Message], continuations: inout [(Int, Int)]) throws {
        guard to >= from else { return }
        var c = HDF5Cursor(reader, try reader.bytes(at: from, count: to - from, "object header"), at: from, what: "object header")
        let headerBytes = flags & 0x04 != 0 ? 6 : 4
        while c.remaining >= headerBytes {
            let type = Int(try c.u8())
            let size = try c.u16()
            let mflags = try c.u8()
            let order = flags & 0x04 != 0 ? try c.u16() : nil
            let at = c.absolute
            let body = try c.bytes(size)
            if type == 0x10 { continuations.append(try continuation(reader, body, at)) }
            messages.append(HDF5Message(type: type, flags: mflags, creationOrder: order, body: body, offset: at))
            guard messages.count <= HDF5Reader.maxItems else { throw reader.error(from, "object header", "has too many messages") }
        }
    }

    private static func continuation(_ reader: HDF5Reader, _ body: UnsafeRawBufferPointer, _ at: Int) throws -> (Int, Int) {
        var c = HDF5Cursor(reader, body, at: at, what: "continuation message")
        guard let target = try c.address() else { throw reader.error(at, "continuation message", "the address is undefined") }
        let length = try c.length()
        _ = try reader.bytes(at: target, count: length, "continuation block")
        return (target, length)
    }

    func first(_ type: Int) -> HDF5Message? { messages.first { $0.type == type } }
}

/// A datatype message: the subset is IEEE floats, integers, fixed-length and variable-length strings.
enum HDF5Type {
    case float(size: Int, bigEndian: Bool)
    case integer(size: Int, signed: Bool, bigEndian: Bool)
    case fixedString(size: Int)
    case variableString

    var name: String {
        switch self {
        case .float(let size, _): return "float\(size * 8)"
        case .integer(let size, let signed, _): return (signed ? "int" : "uint") + "\(size * 8)"
        case .fixedString, .variableString: return "string"
        }
    }

    /// `nested` is true for a variable-length string's base type, which may not itself be variable-length
    /// (so a hostile message cannot nest types thousands deep).
    static func parse(_ reader: HDF5Reader, _ c: inout HDF5Cursor, nested: Bool = false) throws -> (HDF5Type, Int) {
        let at = c.absolute
        let classVersion = try c.u8()
        let bits0 = try c.u8()
        let bits1 = try c.u8()
        _ = try c.u8()
        let size = try c.u32()
        let what = "datatype"
        switch classVersion & 0x0f {
        case 0:
            try c.skip(4)
            guard [1, 2, 4, 8].contains(size) else { throw reader.error(at, what, "an integer of \(size) bytes is not supported (expected 1, 2, 4 or 8)") }
            return (.integer(size: size, signed: bits0 & 0x08 != 0, bigEndian: bits0 & 0x01 != 0), size)
        case 1:
            try c.skip(4)
            let expLocation = try c.u8(), expSize = try c.u8(), mantLocation = try c.u8(), mantSize = try c.u8()
            try c.skip(4)
            let ieee: [Int: (UInt8, UInt8, UInt8, UInt8)] = [2: (10, 5, 0, 10), 4: (23, 8, 0, 23), 8: (52, 11, 0, 52)]
            guard let layout = ieee[size], layout == (expLocation, expSize, mantLocation, mantSize), bits0 & 0x40 == 0 else {
                throw reader.error(at, what, "a \(size)-byte float with exponent \(expSize) bits at \(expLocation), mantissa \(mantSize) bits is not an IEEE float16/32/64; not supported")
            }
            return (.float(size: size, bigEndian: bits0 & 0x01 != 0), size)
        case 3:
            guard size > 0 else { throw reader.error(at, what, "a fixed-length string of 0 bytes") }
            return (.fixedString(size: size), size)
        case 9:
            guard bits0 & 0x0f == 1 else { throw reader.error(at, what, "variable-length sequences are not supported (only variable-length strings)") }
            guard !nested else { throw reader.error(at, what, "a variable-length type inside a variable-length type is not supported") }
            _ = bits1
            _ = try HDF5Type.parse(reader, &c, nested: true)
            return (.variableString, size)
        default:
            let names = [2: "time", 4: "bitfield", 5: "opaque", 6: "compound", 7: "reference", 8: "enum", 10: "array"]
            throw reader.error(at, what, "class '\(names[Int(classVersion & 0x0f)] ?? "unknown \(classVersion & 0x0f)")' is not supported")
        }
    }
}

/// A dataspace message: the shape ([] for a scalar; nil for a null dataspace).
enum HDF5Dataspace {
    static func parse(_ reader: HDF5Reader, _ c: inout HDF5Cursor) throws -> [Int]? {
        let at = c.absolute
        let version = try c.u8()
        let rank = Int(try c.u8())
        let flags = try c.u8()
        guard rank <= 32 else { throw reader.error(at, "dataspace", "rank \(rank) is past the HDF5 limit of 32") }
        switch version {
        case 1: try c.skip(5)
        case 2:
            let type = try c.u8()
            if type == 2 { return nil }
        default: throw reader.error(at, "dataspace", "version \(version) is not supported (expected 1 or 2)")
        }
        var dims: [Int] = []
        for _ in 0..<rank { dims.append(try c.length()) }
        if flags & 1 != 0 { try c.skip(rank * reader.lengthSize) }
        if flags & 2 != 0 && version == 1 { try c.skip(rank * reader.lengthSize) }
        return dims
    }
}
