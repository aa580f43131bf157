import CZlib

/// One array of an `.npz` file, with the name numpy gives it (the member `NAME.npy` is `NAME`).
public struct NamedArray: Sendable, Equatable {
    public var name: String
    public var array: NumericArray

    public init(name: String, array: NumericArray) {
        self.name = name
        self.array = array
    }
}

/// `.npz` files: a zip of `.npy` members, as `np.savez` (stored) and `np.savez_compressed`
/// (deflate) write them. Reading goes through `ZipArchive`, so every size is bounded.
public enum Npz {
    /// True when `bytes` start as a zip archive does (a local header, or the end record of an empty one).
    public static func isNpz(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && ((bytes[2] == 3 && bytes[3] == 4) || (bytes[2] == 5 && bytes[3] == 6))
    }

    /// Reads every array of the `.npz` file at `path`, in the archive's order. Members must be
    /// `NAME.npy`; `limit` bounds the bytes all members together inflate to (the archive itself is
    /// mapped, not read into memory).
    public static func read(path: String, limit: Int = 1 << 30) throws -> [NamedArray] {
        let file = try MappedFile(path: path)
        return try read(file.bytes, source: path, limit: limit)
    }

    /// Reads an `.npz` file held in memory (standard input).
    public static func read(_ bytes: [UInt8], source: String, limit: Int = 1 << 30) throws -> [NamedArray] {
        try bytes.withUnsafeBytes { try read($0, source: source, limit: limit) }
    }

    static func read(_ bytes: UnsafeRawBufferPointer, source: String, limit: Int) throws -> [NamedArray] {
        let archive = try ZipArchive(bytes: bytes, source: source, kind: .input, limit: limit)
        // The whole archive's declared sizes are bounded before anything is inflated.
        var total = 0
        for member in archive.members {
            let (sum, overflow) = total.addingReportingOverflow(member.size)
            guard !overflow, sum <= limit else {
                throw NNError(.input, source, "the arrays declare more than \(limit) bytes together; at most \(limit) are accepted here")
            }
            total = sum
        }
        var arrays: [NamedArray] = []
        for member in archive.members {
            guard member.name.hasSuffix(".npy"), member.name.count > 4 else {
                throw NNError(.input, source, "member '\(member.name)' is not an array; an .npz holds only NAME.npy members")
            }
            let name = String(member.name.dropLast(4))
            let array = try Npy.read(try archive.extract(member), source: "\(source): array '\(name)'")
            arrays.append(NamedArray(name: name, array: array))
        }
        return arrays
    }
}

/// Writes an `.npz` file (stored members of little-endian float32 `.npy` arrays, as `np.savez`
/// writes) to a descriptor, one array at a time, then the central directory on `finish`. Zip64
/// records are written where a size or offset passes 32 bits (or always, with `forceZip64`).
public struct NpzWriter {
    public let source: String
    private let descriptor: Int32
    private let forceZip64: Bool
    private var offset = 0
    private var central: [UInt8] = []
    private var count = 0
    private var names = Set<String>()

    public init(descriptor: Int32, source: String, forceZip64: Bool = false) {
        self.descriptor = descriptor
        self.source = source
        self.forceZip64 = forceZip64
    }

    /// Appends the array as the member `NAME.npy`.
    public mutating func add(name: String, array: NumericArray) throws {
        guard !name.isEmpty, !name.contains("\0"), !name.contains("\\"), !name.hasPrefix("/"),
              !name.split(separator: "/", omittingEmptySubsequences: false).contains("..") else {
            throw NNError(.io, source, "cannot name an array '\(name)' in an .npz: expected a plain relative name")
        }
        guard names.insert(name).inserted else { throw NNError(.io, source, "the array '\(name)' is written twice") }
        let header = NpyHeader.float32Header(shape: array.shape)
        #if _endian(little)
        let values = array.values
        #else
        let values = array.values.map { Float(bitPattern: $0.bitPattern.littleEndian) }
        #endif
        var crc = header.withUnsafeBytes { crc32(0, $0.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt($0.count)) }
        values.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count, let base = raw.baseAddress {
                let chunk = min(raw.count - done, 1 << 30)
                crc = crc32(crc, base.assumingMemoryBound(to: Bytef.self) + done, uInt(chunk))
                done += chunk
            }
        }
        let size = header.count + values.count * 4
        let memberName = Array((name + ".npy").utf8)
        let zip64 = forceZip64 || size >= 0xFFFF_FFFF || offset >= 0xFFFF_FFFF
        let flags = memberName.contains { $0 >= 0x80 } ? 0x0800 : 0 // bit 11: the name is UTF-8
        var local: [UInt8] = []
        local.le(0x0403_4B50, 4); local.le(zip64 ? 45 : 20, 2); local.le(flags, 2); local.le(0, 2)
        local.le(0, 2); local.le(0x21, 2) // 1980-01-01 00:00, as a timeless archive says
        local.le(Int(crc), 4)
        local.le(zip64 ? 0xFFFF_FFFF : size, 4); local.le(zip64 ? 0xFFFF_FFFF : size, 4)
        local.le(memberName.count, 2); local.le(zip64 ? 20 : 0, 2)
        local += memberName
        if zip64 { local.le(1, 2); local.le(16, 2); local.le(size, 8); local.le(size, 8) }

        central.le(0x0201_4B50, 4); central.le(zip64 ? 45 : 20, 2); central.le(zip64 ? 45 : 20, 2)
        central.le(flags, 2); central.le(0, 2); central.le(0, 2); central.le(0x21, 2); central.le(Int(crc), 4)
        central.le(zip64 ? 0xFFFF_FFFF : size, 4); central.le(zip64 ? 0xFFFF_FFFF : size, 4)
        central.le(memberName.count, 2); central.le(zip64 ? 28 : 0, 2); central.le(0, 2); central.le(0, 2)
        central.le(0, 2); central.le(0o100644 << 16, 4); central.le(zip64 ? 0xFFFF_FFFF : offset, 4)
        central += memberName
        if zip64 { central.le(1, 2); central.le(24, 2); central.le(size, 8); central.le(size, 8); central.le(offset, 8) }

        try local.withUnsafeBytes { try NpyWriter.writeAll(descriptor, $0, source: source) }
        try header.withUnsafeBytes { try NpyWriter.writeAll(descriptor, $0, source: source) }
        try values.withUnsafeBytes { try NpyWriter.writeAll(descriptor, $0, source: source) }
        offset += local.count + size
        count += 1
    }

    /// Writes the central directory and the end record (zip64 when needed).
    public func finish() throws {
        var tail = central
        let zip64 = forceZip64 || count >= 0xFFFF || offset >= 0xFFFF_FFFF || central.count >= 0xFFFF_FFFF
        if zip64 {
            let record = offset + central.count
            tail.le(0x0606_4B50, 4); tail.le(44, 8); tail.le(45, 2); tail.le(45, 2); tail.le(0, 4); tail.le(0, 4)
            tail.le(count, 8); tail.le(count, 8); tail.le(central.count, 8); tail.le(offset, 8)
            tail.le(0x0706_4B50, 4); tail.le(0, 4); tail.le(record, 8); tail.le(1, 4)
        }
        tail.le(0x0605_4B50, 4); tail.le(0, 2); tail.le(0, 2)
        tail.le(zip64 ? 0xFFFF : count, 2); tail.le(zip64 ? 0xFFFF : count, 2)
        tail.le(zip64 ? 0xFFFF_FFFF : central.count, 4); tail.le(zip64 ? 0xFFFF_FFFF : offset, 4); tail.le(0, 2)
        try tail.withUnsafeBytes { try NpyWriter.writeAll(descriptor, $0, source: source) }
    }
}

extension Array where Element == UInt8 {
    /// Appends `value`'s low `bytes` bytes, little-endian.
    mutating func le(_ value: Int, _ bytes: Int) {
        for index in 0..<bytes { append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
}
