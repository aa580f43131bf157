#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bounded HDF5 reader underneath `HDF5File`: every read of the file goes through `bytes(at:count:)`,
/// which checks the range against the file, and every structure is parsed from those checked
/// slices. Built from the HDF5 file-format specification, for the subset h5py writes for Keras.
final class HDF5Reader {
    let file: MappedFile
    let source: String
    var offsetSize = 8
    var lengthSize = 8
    var baseAddress = 0
    private(set) var rootAddress = 0
    /// Parsed object headers by address, so a header is parsed once however often it is reached.
    private var headers: [Int: HDF5ObjectHeader] = [:]
    /// A group's links by header address, and a global heap collection's objects by address:
    /// each parsed once, so looking up N members or N strings never costs N² parses.
    private var linkCache: [Int: [HDF5Group.Link]] = [:]
    private var heapCache: [Int: [Int: Range<Int>]] = [:]
    private let lock = HDF5Lock()

    /// The most structures of one kind (links, B-tree nodes, continuation blocks, heap objects)
    /// one walk visits; far past any Keras model, far below what makes a walk slow.
    static let maxItems = 1 << 20
    /// The deepest nesting of groups or B-tree levels followed.
    static let maxDepth = 64

    var size: Int { file.bytes.count }

    init(file: MappedFile, source: String) throws {
        self.file = file
        self.source = source
        try readSuperblock()
    }

    // MARK: errors and checked reads

    func error(_ at: Int, _ what: String, _ message: String) -> NNError {
        NNError(.weights, source, "HDF5: \(what) at 0x\(String(at, radix: 16)): \(message)")
    }

    /// The `count` bytes at `offset`, or an error naming `what` when they are not all in the file.
    func bytes(at offset: Int, count: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        guard offset >= 0, count >= 0, let end = HDF5Reader.add(offset, count), end <= size else {
            throw error(offset, what, "\(count) bytes at offset \(offset) run past the end of the file (\(size) bytes)")
        }
        guard count > 0, let base = file.bytes.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    static func add(_ a: Int, _ b: Int) -> Int? {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : sum
    }

    static func multiply(_ a: Int, _ b: Int) -> Int? {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : product
    }

    /// A file address (relative to the base address) as an absolute offset; nil for the
    /// undefined address (all bits set).
    func resolve(_ raw: UInt64, _ at: Int, _ what: String) throws -> Int? {
        let undefined: UInt64 = offsetSize == 8 ? UInt64.max : (UInt64(1) << UInt64(offsetSize * 8)) - 1
        if raw == undefined { return nil }
        guard raw <= UInt64(Int.max), let absolute = HDF5Reader.add(Int(raw), baseAddress), absolute < size else {
            throw error(at, what, "address \(raw) is past the end of the file (\(size) bytes)")
        }
        return absolute
    }

    /// Bytes a dataset or chunk of `count` elements of `elementSize` bytes would take, refused
    /// before anything is allocated when it overflows or exceeds what the file could hold even
    /// compressed (deflate cannot shrink data more than 1032:1).
    func checkedByteCount(_ dims: [Int], elementSize: Int, _ at: Int, _ what: String, subject: String = "the data") throws -> Int {
        var total = elementSize
        for d in dims {
            guard d >= 0, let next = HDF5Reader.multiply(total, d) else {
                throw error(at, what, "\(subject): the size \(dims) × \(elementSize) bytes overflows")
            }
            total = next
        }
        let limit = max(size, 1 << 16).multipliedReportingOverflow(by: 1032)
        guard !limit.overflow, total <= limit.partialValue else {
            throw error(at, what, "\(subject) claims \(total) bytes (shape \(dims), \(elementSize)-byte elements), more than a \(size)-byte file can hold")
        }
        return total
    }

    // MARK: superblock

    private func readSuperblock() throws {
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
        var start = 0
        var found = false
        // The superblock sits at 0, 512, 1024, 2048, ... (a user block may precede it).
        while start + 8 <= size {
            if Array(try bytes(at: start, count: 8, "superblock")) == signature { found = true; break }
            start = start == 0 ? 512 : start * 2
        }
        guard found else {
            throw error(0, "superblock", "no HDF5 signature (\\x89HDF\\r\\n\\x1a\\n) at offset 0 or any power of two from 512")
        }
        var c = HDF5Cursor(self, try bytes(at: start, count: min(size - start, 256), "superblock"), at: start, what: "superblock")
        try c.skip(8)
        let version = Int(try c.u8())
        switch version {
        case 0, 1:
            try c.skip(4)
            offsetSize = Int(try c.u8())
            lengthSize = Int(try c.u8())
            try checkSizes(start)
            try c.skip(1 + 2 + 2 + 4)
            if version == 1 { try c.skip(4) }
            baseAddress = try c.baseOffset()
            try c.skip(offsetSize * 3)           // free space, end of file, driver info
            try c.skip(offsetSize)               // root entry's link name offset
            let raw = try c.offset()
            guard let root = try resolve(raw, start, "superblock") else {
                throw error(start, "superblock", "the root group's address is undefined")
            }
            rootAddress = root
        case 2, 3:
            offsetSize = Int(try c.u8())
            lengthSize = Int(try c.u8())
            try checkSizes(start)
            try c.skip(1)
            baseAddress = try c.baseOffset()
            try c.skip(offsetSize * 2)           // superblock extension, end of file
            let raw = try c.offset()
            guard let root = try resolve(raw, start, "superblock") else {
                throw error(start, "superblock", "the root group's address is undefined")
            }
            rootAddress = root
        default:
            throw error(start, "superblock", "version \(version) is not supported (expected 0, 1, 2 or 3)")
        }
    }

    private func checkSizes(_ at: Int) throws {
        guard [2, 4, 8].contains(offsetSize), [2, 4, 8].contains(lengthSize) else {
            throw error(at, "superblock", "offsets of \(offsetSize) bytes and lengths of \(lengthSize) bytes are not supported (expected 2, 4 or 8)")
        }
    }

    // MARK: object headers

    func header(at address: Int) throws -> HDF5ObjectHeader {
        if let cached = lock.withLock({ headers[address] }) { return cached }
        let parsed = try HDF5ObjectHeader(self, address: address)
        lock.withLock { headers[address] = parsed }
        return parsed
    }

    func links(at address: Int, _ parse: () throws -> [HDF5Group.Link]) throws -> [HDF5Group.Link] {
        if let cached = lock.withLock({ linkCache[address] }) { return cached }
        let parsed = try parse()
        lock.withLock { linkCache[address] = parsed }
        return parsed
    }

    func heapObjects(at address: Int, _ parse: () throws -> [Int: Range<Int>]) throws -> [Int: Range<Int>] {
        if let cached = lock.withLock({ heapCache[address] }) { return cached }
        let parsed = try parse()
        lock.withLock { heapCache[address] = parsed }
        return parsed
    }
}

/// A minimal mutex, so `HDF5File` may be read from several threads.
final class HDF5Lock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

/// Little-endian reads from one checked slice of the file; reading past the slice is an error
/// naming the structure and its offset.
struct HDF5Cursor {
    let reader: HDF5Reader
    let data: UnsafeRawBufferPointer
    let start: Int
    let what: String
    var position = 0

    init(_ reader: HDF5Reader, _ data: UnsafeRawBufferPointer, at start: Int, what: String) {
        self.reader = reader
        self.data = data
        self.start = start
        self.what = what
    }

    var remaining: Int { data.count - position }
    var absolute: Int { start + position }

    func fail(_ message: String) -> NNError { reader.error(start, what, message) }

    mutating func need(_ count: Int) throws {
        guard count >= 0, count <= remaining else {
            throw fail("needs \(count) more bytes at offset \(absolute), only \(max(remaining, 0)) remain in the \(what)")
        }
    }

    mutating func skip(_ count: Int) throws {
        try need(count)
        position += count
    }

    mutating func u8() throws -> UInt8 {
        try need(1)
        defer { position += 1 }
        return data[position]
    }

    /// An unsigned little-endian integer of `width` bytes (1...8).
    mutating func uint(_ width: Int) throws -> UInt64 {
        try need(width)
        var value: UInt64 = 0
        for i in 0..<width { value |= UInt64(data[position + i]) << UInt64(8 * i) }
        position += width
        return value
    }

    mutating func u16() throws -> Int { Int(try uint(2)) }
    mutating func u32() throws -> Int { Int(try uint(4)) }

    /// A count or size of `width` bytes, refused when it does not fit in an Int.
    mutating func count(_ width: Int) throws -> Int {
        let at = absolute
        let value = try uint(width)
        guard value <= UInt64(Int.max >> 1) else {
            throw reader.error(at, what, "the size \(value) is too large")
        }
        return Int(value)
    }

    mutating func length() throws -> Int { try count(reader.lengthSize) }

    mutating func offset() throws -> UInt64 { try uint(reader.offsetSize) }

    /// An address resolved against the file; nil when undefined.
    mutating func address() throws -> Int? {
        let at = absolute
        return try reader.resolve(try offset(), at, what)
    }

    mutating func baseOffset() throws -> Int {
        let value = try uint(reader.offsetSize)
        guard value < UInt64(reader.size) || value == 0 else {
            throw fail("base address \(value) is past the end of the file")
        }
        return Int(value)
    }

    mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        try need(count)
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: data[position..<(position + count)])
    }

    mutating func signature(_ expected: String) throws {
        let found = try bytes(4)
        guard Array(found) == Array(expected.utf8) else {
            let text = found.map { $0 >= 32 && $0 < 127 ? String(UnicodeScalar($0)) : "?" }.joined()
            throw fail("bad signature '\(text)', expected '\(expected)'")
        }
    }

    mutating func align(_ boundary: Int, from origin: Int = 0) throws {
        let rel = position - origin
        let pad = (boundary - rel % boundary) % boundary
        try skip(min(pad, remaining))
    }
}
