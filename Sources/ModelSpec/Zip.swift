import CZlib

/// A zip archive read from bytes in memory (a mapped file): its table of contents checked in full
/// when it opens, and each member extracted on request, within bounds.
///
/// Everything numpy's `np.savez` / `np.savez_compressed` and Keras's `.keras` files use is read:
/// stored and deflated members, zip64 sizes and offsets, data descriptors. Everything else is
/// refused by name (encryption, other compression methods, archives split over disks).
///
/// Nothing here trusts a number from the file: every offset and size is checked against the bytes
/// present before it is used, members may not overlap one another or the central directory, a
/// member's declared size is bounded by `limit` before any memory is reserved, and a deflate
/// stream is never inflated past its declared size nor accepted when that size is more than
/// deflate can express (1032:1), so a zip bomb is refused, not inflated.
package struct ZipArchive {
    package struct Member: Sendable, Equatable {
        package var name: String
        /// 0 stored, 8 deflate.
        package var method: Int
        package var crc: UInt32
        package var compressedSize: Int
        package var size: Int
        /// Where the member's (compressed) data starts in the archive.
        package var dataOffset: Int
    }

    /// What a deflate stream of n bytes can at most expand to: 258 bytes per 2-bit match.
    static let deflateMaximumRatio = 1032

    package let members: [Member]
    let bytes: UnsafeRawBufferPointer
    let source: String
    let kind: NNError.Kind
    /// The most bytes one member may inflate to.
    let limit: Int

    /// Parses the table of contents of the archive in `bytes`, which must outlive this value.
    /// Problems are `kind` errors (`.input` for an `.npz` input, `.weights` for a `.keras` file).
    package init(bytes: UnsafeRawBufferPointer, source: String, kind: NNError.Kind, limit: Int = 1 << 30) throws {
        self.bytes = bytes
        self.source = source
        self.kind = kind
        self.limit = limit
        members = try ZipArchive.parse(ZipReader(bytes: bytes, source: source, kind: kind))
    }

    package func member(named name: String) -> Member? {
        members.first { $0.name == name }
    }

    /// The member's bytes, inflated when deflated, its CRC-32 checked.
    package func extract(_ member: Member) throws -> [UInt8] {
        func fail(_ message: String) -> NNError { NNError(kind, "\(source): member '\(member.name)'", message) }
        guard member.size <= limit else {
            throw fail("declares \(member.size) bytes uncompressed; at most \(limit) are accepted here")
        }
        guard let base = bytes.baseAddress else { throw fail("the archive is empty") }
        let data = UnsafeRawBufferPointer(start: base + member.dataOffset, count: member.compressedSize)
        var out: [UInt8]
        switch member.method {
        case 0:
            out = Array(data)
        default:
            out = try ZipArchive.inflate(data, size: member.size, fail: fail)
        }
        try out.withUnsafeBytes { try checkCRC($0, of: member) }
        return out
    }

    /// A stored (uncompressed) member's bytes in place, in the archive's own memory, its CRC-32
    /// checked: no copy. Nil for a deflated member, which `extract` inflates.
    package func storedBytes(_ member: Member) throws -> UnsafeRawBufferPointer? {
        guard member.method == 0, let base = bytes.baseAddress else { return nil }
        let data = UnsafeRawBufferPointer(start: base + member.dataOffset, count: member.compressedSize)
        try checkCRC(data, of: member)
        return data
    }

    private func checkCRC(_ raw: UnsafeRawBufferPointer, of member: Member) throws {
        var value = crc32(0, nil, 0)
        if let start = raw.baseAddress {
            var offset = 0
            while offset < raw.count {
                let chunk = min(raw.count - offset, 1 << 30)
                value = crc32(value, start.assumingMemoryBound(to: Bytef.self) + offset, uInt(chunk))
                offset += chunk
            }
        }
        let crc = UInt32(value)
        guard crc == member.crc else {
            throw NNError(kind, "\(source): member '\(member.name)'", "CRC-32 is 0x\(String(crc, radix: 16)), the archive declares 0x\(String(member.crc, radix: 16)) (corrupt data)")
        }
    }

    /// Raw deflate into exactly `size` bytes; one byte more than declared is an error.
    static func inflate(_ data: UnsafeRawBufferPointer, size: Int, fail: (String) -> NNError) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        // One spare byte shows a stream that runs past its declared size.
        var out = [UInt8](repeating: 0, count: size + 1)
        var consumed = 0
        var produced = 0
        let status: Int32 = out.withUnsafeMutableBytes { outRaw in
            guard let outBase = outRaw.baseAddress?.assumingMemoryBound(to: Bytef.self) else { return Z_MEM_ERROR }
            let inBase = data.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
            while true {
                let inChunk = min(data.count - consumed, 1 << 30)
                let outChunk = min(outRaw.count - produced, 1 << 30)
                stream.next_in = inBase.map { $0 + consumed }
                stream.avail_in = uInt(inChunk)
                stream.next_out = outBase + produced
                stream.avail_out = uInt(outChunk)
                let result = CZlib.inflate(&stream, Z_NO_FLUSH)
                consumed += inChunk - Int(stream.avail_in)
                produced += outChunk - Int(stream.avail_out)
                if result == Z_STREAM_END { return result }
                if result != Z_OK { return result }
                if produced > size { return Z_BUF_ERROR }
                // No progress with input left and room to write: the stream is stuck.
                if Int(stream.avail_in) == inChunk, Int(stream.avail_out) == outChunk { return consumed == data.count ? Z_BUF_ERROR : Z_DATA_ERROR }
            }
        }
        if produced > size {
            throw fail("inflates past its declared size of \(size) bytes (a zip bomb or a corrupt archive); refused")
        }
        switch status {
        case Z_STREAM_END:
            guard produced == size else {
                throw fail("inflates to \(produced) bytes, the archive declares \(size)")
            }
        case Z_DATA_ERROR:
            let reason = stream.msg.map { String(cString: $0) } ?? "invalid data"
            throw fail("the deflate data is corrupt (\(reason))")
        case Z_BUF_ERROR:
            throw fail("the deflate data ends before the stream does (truncated)")
        default:
            throw fail("zlib failed with status \(status)")
        }
        out.removeLast()
        return out
    }

    static func parse(_ reader: ZipReader) throws -> [Member] {
        let size = reader.bytes.count
        // The end-of-central-directory record: 22 bytes and a comment of at most 65535 bytes,
        // whose length must reach exactly the end of the file.
        var end: Int?
        if size >= 22 {
            for position in stride(from: size - 22, through: max(0, size - 22 - 65535), by: -1)
            where try reader.u32(position) == 0x0605_4B50 && position + 22 + (try reader.u16(position + 20)) == size {
                end = position
                break
            }
        }
        guard let end else {
            throw reader.fail("not a zip archive (no end-of-central-directory record); expected a zip file, such as an .npz that np.savez writes or a .keras model that Keras saves")
        }
        let disk = try reader.u16(end + 4), directoryDisk = try reader.u16(end + 6)
        var entriesHere = try reader.u16(end + 8), entries = try reader.u16(end + 10)
        var directorySize = try reader.u32(end + 12), directoryOffset = try reader.u32(end + 16)
        guard disk == 0, directoryDisk == 0, entriesHere == entries else {
            throw reader.fail("the archive is split over several disks; only single-file archives are read")
        }
        var directoryLimit = end
        if entries == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // Zip64: a locator just before the record points at the zip64 end record.
            let locator = end - 20
            guard locator >= 0, try reader.u32(locator) == 0x0706_4B50 else {
                throw reader.fail("the end record has zip64 markers but no zip64 locator precedes it")
            }
            let record = try reader.u64(locator + 8)
            guard record <= locator - 56, try reader.u32(record) == 0x0606_4B50 else {
                throw reader.fail("the zip64 locator points at offset \(record), where no zip64 end record lies")
            }
            entriesHere = try reader.u64(record + 24)
            entries = try reader.u64(record + 32)
            directorySize = try reader.u64(record + 40)
            directoryOffset = try reader.u64(record + 48)
            guard entriesHere == entries, try reader.u32(record + 16) == 0, try reader.u32(record + 20) == 0 else {
                throw reader.fail("the archive is split over several disks; only single-file archives are read")
            }
            directoryLimit = record
        }
        guard directoryOffset <= directoryLimit, directorySize <= directoryLimit - directoryOffset else {
            throw reader.fail("the central directory (offset \(directoryOffset), \(directorySize) bytes) does not fit before its end record at offset \(directoryLimit)")
        }
        // Each entry takes at least 46 bytes, so the count is bounded by the bytes present.
        guard entries <= directorySize / 46 else {
            throw reader.fail("the archive declares \(entries) members, but its central directory of \(directorySize) bytes holds at most \(directorySize / 46)")
        }

        var members: [Member] = []
        var names = Set<String>()
        var spans: [(start: Int, end: Int, name: String)] = []
        var position = directoryOffset
        let directoryEnd = directoryOffset + directorySize
        for index in 0..<entries {
            let entry = "central directory entry \(index)"
            guard position <= directoryEnd - 46, try reader.u32(position) == 0x0201_4B50 else {
                throw reader.fail("\(entry) at offset \(position) is missing or has no central-header signature")
            }
            let flags = try reader.u16(position + 8)
            let method = try reader.u16(position + 10)
            let crc = UInt32(try reader.u32(position + 16))
            var compressed = try reader.u32(position + 20)
            var uncompressed = try reader.u32(position + 24)
            let nameLength = try reader.u16(position + 28)
            let extraLength = try reader.u16(position + 30)
            let commentLength = try reader.u16(position + 32)
            let startDisk = try reader.u16(position + 34)
            var localOffset = try reader.u32(position + 42)
            let next = position + 46 + nameLength + extraLength + commentLength
            guard next <= directoryEnd else {
                throw reader.fail("\(entry) runs past the end of the central directory")
            }
            let name = try reader.name(at: position + 46, count: nameLength, entry: entry)
            // Zip64 extra field: the 64-bit values of exactly the fields marked 0xFFFFFFFF, in order.
            if compressed == 0xFFFF_FFFF || uncompressed == 0xFFFF_FFFF || localOffset == 0xFFFF_FFFF || startDisk == 0xFFFF {
                var field = position + 46 + nameLength
                let extraEnd = field + extraLength
                var found = false
                while field + 4 <= extraEnd {
                    let id = try reader.u16(field), length = try reader.u16(field + 2)
                    guard field + 4 + length <= extraEnd else { break }
                    if id == 0x0001 {
                        var cursor = field + 4
                        func take() throws -> Int {
                            guard cursor + 8 <= field + 4 + length else {
                                throw reader.fail("member '\(name)': its zip64 extra field is \(length) bytes, too short for the sizes marked as zip64")
                            }
                            defer { cursor += 8 }
                            return try reader.u64(cursor)
                        }
                        if uncompressed == 0xFFFF_FFFF { uncompressed = try take() }
                        if compressed == 0xFFFF_FFFF { compressed = try take() }
                        if localOffset == 0xFFFF_FFFF { localOffset = try take() }
                        found = true
                        break
                    }
                    field += 4 + length
                }
                guard found else { throw reader.fail("member '\(name)': sizes are marked zip64 but it has no zip64 extra field") }
            }
            guard startDisk == 0 || startDisk == 0xFFFF else {
                throw reader.fail("member '\(name)' lies on disk \(startDisk); only single-file archives are read")
            }
            guard flags & 1 == 0 else { throw reader.fail("member '\(name)' is encrypted; encrypted archives are not read") }
            guard method == 0 || method == 8 else {
                throw reader.fail("member '\(name)' uses compression method \(method); expected 0 (stored) or 8 (deflate)")
            }
            guard names.insert(name).inserted else { throw reader.fail("member '\(name)' appears twice") }
            if method == 0, compressed != uncompressed {
                throw reader.fail("member '\(name)' is stored but declares \(compressed) bytes stored and \(uncompressed) uncompressed")
            }
            if method == 8, uncompressed / deflateMaximumRatio > compressed + 1 {
                throw reader.fail("member '\(name)' declares \(uncompressed) bytes from \(compressed) compressed, more than deflate can express (\(deflateMaximumRatio):1); a zip bomb is refused")
            }
            // The local header repeats the name; its own sizes may be zero (data descriptor) or zip64.
            guard directoryOffset >= 30, localOffset <= directoryOffset - 30,
                  try reader.u32(localOffset) == 0x0403_4B50 else {
                throw reader.fail("member '\(name)': no local header at offset \(localOffset) before the central directory")
            }
            let localNameLength = try reader.u16(localOffset + 26), localExtraLength = try reader.u16(localOffset + 28)
            let dataOffset = localOffset + 30 + localNameLength + localExtraLength
            guard dataOffset <= directoryOffset, compressed <= directoryOffset - dataOffset else {
                throw reader.fail("member '\(name)': its \(compressed) bytes of data from offset \(dataOffset) run into the central directory at \(directoryOffset)")
            }
            guard localNameLength == nameLength,
                  try reader.name(at: localOffset + 30, count: localNameLength, entry: "member '\(name)''s local header") == name else {
                throw reader.fail("member '\(name)': the local header names a different member")
            }
            guard try reader.u16(localOffset + 8) == method else {
                throw reader.fail("member '\(name)': the local header's compression method differs from the central directory's")
            }
            spans.append((localOffset, dataOffset + compressed, name))
            members.append(Member(name: name, method: method, crc: crc, compressedSize: compressed, size: uncompressed, dataOffset: dataOffset))
            position = next
        }
        // Members that share bytes are how the smallest zip bombs are built; no writer makes them.
        spans.sort { $0.start < $1.start }
        for (first, second) in zip(spans, spans.dropFirst()) where second.start < first.end {
            throw reader.fail("members '\(first.name)' and '\(second.name)' overlap in the archive (a zip bomb or a corrupt archive)")
        }
        return members
    }
}

/// Little-endian reads at checked offsets.
struct ZipReader {
    let bytes: UnsafeRawBufferPointer
    let source: String
    let kind: NNError.Kind

    func fail(_ message: String) -> NNError { NNError(kind, source, message) }

    func check(_ offset: Int, _ count: Int) throws {
        guard offset >= 0, offset <= bytes.count - count else {
            throw fail("the archive is truncated: \(count) bytes at offset \(offset) lie past its end (\(bytes.count) bytes)")
        }
    }

    func u16(_ offset: Int) throws -> Int {
        try check(offset, 2)
        return Int(bytes[offset]) | Int(bytes[offset + 1]) << 8
    }

    func u32(_ offset: Int) throws -> Int {
        try check(offset, 4)
        return (0..<4).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
    }

    /// A zip64 value; one past 2^62 cannot be an offset or size in any file.
    func u64(_ offset: Int) throws -> Int {
        try check(offset, 8)
        let value = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
        guard value < 1 << 62 else { throw fail("a zip64 size or offset at offset \(offset) is \(value), past any file") }
        return Int(value)
    }

    /// A member name: UTF-8, not empty, no NUL or backslash, not absolute, no `..` component.
    func name(at offset: Int, count: Int, entry: String) throws -> String {
        try check(offset, count)
        guard let text = String(validating: bytes[offset..<(offset + count)], as: UTF8.self) else {
            throw fail("\(entry): the member name is not valid UTF-8")
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard !text.isEmpty, !text.contains("\0"), !text.contains("\\"), !text.hasPrefix("/"), !parts.contains("..") else {
            throw fail("\(entry): the member name '\(text)' is not a plain relative path")
        }
        return text
    }
}
