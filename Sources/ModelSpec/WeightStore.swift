#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Float32 values that live either in a mapped weight file (zero-copy) or in memory nnbuild owns.
/// The owner reference keeps the mapping or allocation alive as long as any view of it exists.
public struct FloatStorage: @unchecked Sendable {
    public let base: UnsafePointer<Float>
    public let count: Int
    private let owner: AnyObject

    init(base: UnsafePointer<Float>, count: Int, owner: AnyObject) {
        self.base = base
        self.count = count
        self.owner = owner
    }

    /// Copies `values` into storage nnbuild owns.
    public init(_ values: [Float]) {
        let box = OwnedFloats(values)
        self.init(base: UnsafePointer(box.pointer), count: values.count, owner: box)
    }

    /// `count` zeros, for building a model without its weights. The memory comes from calloc, so
    /// pages nobody reads are never touched.
    public init(zeros count: Int) {
        let box = ZeroFloats(count: count)
        self.init(base: UnsafePointer(box.pointer), count: count, owner: box)
    }

    /// The values. The pointer is valid only while this storage (or a `Weight` holding it) is
    /// alive: keep the storage in a stored property, as layers do, or use `withBuffer`.
    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: base, count: count) }

    /// Calls `body` with the values, keeping their memory alive until it returns, so even a
    /// temporary (`store.floats(entry).withBuffer { ... }`) is safe.
    public func withBuffer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(buffer) }
    }

    public subscript(index: Int) -> Float { base[index] }

    public var array: [Float] { withBuffer { Array($0) } }

    /// True when the values are read in place from the file's bytes (mapped, or the copy a
    /// `.copy` store holds), not converted into a separate buffer.
    public var isMapped: Bool { owner is MappedFile }

    /// Says the values will not be read again soon (a layer has packed its own copy): the whole
    /// pages of mapped values leave resident memory, to be read back from the file should anything
    /// touch them again. Owned values are left alone. Only a hint: the values stay valid.
    public func evict() { evict(0..<count) }

    /// `evict` for the whole pages of values `elements` only (a layer packing its copy a block
    /// at a time lets each block go as soon as it is packed).
    public func evict(_ elements: Range<Int>) {
        guard let file = owner as? MappedFile, let start = file.bytes.baseAddress, !elements.isEmpty,
              elements.lowerBound >= 0, elements.upperBound <= count else { return }
        let offset = UnsafeRawPointer(base) - start
        file.release((offset + elements.lowerBound * MemoryLayout<Float>.stride)..<(offset + elements.upperBound * MemoryLayout<Float>.stride))
    }
}

final class OwnedFloats {
    let pointer: UnsafeMutablePointer<Float>
    init(_ values: [Float]) {
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.initialize(from: base, count: values.count) }
        }
    }
    deinit { pointer.deallocate() }
}

final class ZeroFloats {
    let pointer: UnsafeMutablePointer<Float>
    init(count: Int) {
        let raw = calloc(max(count, 1), MemoryLayout<Float>.size) ?? UnsafeMutableRawPointer.allocate(byteCount: 4, alignment: 4)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }
    deinit { free(pointer) }
}

/// The tensors of a safetensors weight blob: names, dtypes, shapes and their bytes, checked as the
/// reference reader checks them. Float32 data that is aligned is used in place from the mapping.
public final class WeightStore: @unchecked Sendable {
    /// The dtypes a weight may have. Integer tensors are read as Float (exact below 2^24): Keras
    /// keeps some state as integers, such as Normalization's int64 `count`.
    public enum DType: String, Sendable, CaseIterable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"

        public var size: Int {
            switch self {
            case .f32, .i32, .u32: return 4
            case .f16, .bf16, .i16, .u16: return 2
            case .f64, .i64, .u64: return 8
            case .i8, .u8: return 1
            }
        }

        /// "F32, F16, ... or U8", for messages.
        static var accepted: String {
            allCases.dropLast().map(\.rawValue).joined(separator: ", ") + " or " + (allCases.last?.rawValue ?? "")
        }
    }

    public struct Entry: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Byte range inside the data section (after the header).
        public var offsets: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    /// The reference reader's cap on the JSON header.
    public static let maximumHeaderSize = 100_000_000

    public let source: String
    public let entries: [Entry]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int
    private let byName: [String: Int]
    /// Values already decoded (from an HDF5 file), by entry name; empty for a safetensors blob.
    private let held: [String: FloatStorage]
    /// True when each entry's last path segment is the variable's index in its layer's creation
    /// order (`vars/<i>` of Keras's saving_lib), not its name: the binder then binds by position.
    public let isPositional: Bool
    /// A `.keras` archive's assets by their path below `assets/` (`layers/integer_lookup/
    /// vocabulary.txt`: what a layer's `save_assets` wrote, an adapted lookup's vocabulary); set
    /// once, by the archive's reader, before the store is shared.
    public internal(set) var assets: [String: [UInt8]] = [:]
    /// For a weight file on disk: the `assets` folder beside it, where `nnbuild convert` writes an
    /// archive's assets.
    public private(set) var assetFolder: String?

    /// The asset at `path` below `assets/` (from the archive, or the folder beside the weights),
    /// or nil when there is none. A path with an empty, `.` or `..` component is never read.
    public func asset(_ path: String) -> [UInt8]? {
        if let bytes = assets[path] { return bytes }
        guard let assetFolder, WeightStore.isPlainRelativePath(path) else { return nil }
        guard let file = try? MappedFile(copyingFileAt: assetFolder + "/" + path), file.bytes.count <= WeightStore.assetLimit else { return nil }
        return Array(file.bytes)
    }

    /// The most bytes of assets read (vocabularies of a few million terms).
    public static let assetLimit = 256 << 20

    /// Whether `path` is relative and names no empty, `.` or `..` component (no way out of its folder).
    public static func isPlainRelativePath(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return !path.isEmpty && !path.contains("\\") && !path.contains("\0") && parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    /// How a weight file reaches memory.
    public enum Loading: Sendable {
        /// Mapped read-only: fast to open and shared with the page cache, but truncating the file
        /// while the store is alive kills the process with SIGBUS when a lost page is read.
        case mapped
        /// Copied into memory nnbuild owns: the file can then change or vanish without harm.
        /// For long-running processes such as servers.
        case copy
    }

    /// Maps (or, with `.copy`, reads) and checks the file at `path`.
    public convenience init(path: String, loading: Loading = .mapped) throws {
        let file = loading == .copy ? try MappedFile(copyingFileAt: path) : try MappedFile(path: path)
        try self.init(file: file, source: path)
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        assetFolder = (path.hasPrefix("/") && folder.isEmpty ? "" : (folder.isEmpty ? "." : folder)) + "/assets"
    }

    /// Checks an in-memory blob (tests, or data from standard input).
    public convenience init(bytes: [UInt8], source: String = "<weights>") throws {
        try self.init(file: try MappedFile(copying: bytes, source: source), source: source)
    }

    /// A store of values already in memory (read from an HDF5 file), named by Keras variable path,
    /// or, when `positional`, by the path of the layer's names ending in the variable's index.
    package init(source: String, tensors: [(name: String, shape: [Int], values: FloatStorage)], positional: Bool) throws {
        self.source = source
        file = try MappedFile(copying: [], source: source)
        dataStart = 0
        isPositional = positional
        metadata = [:]
        var held: [String: FloatStorage] = [:]
        var entries: [Entry] = []
        for tensor in tensors {
            guard held[tensor.name] == nil else {
                throw NNError(.weights, source, "two tensors are named '\(tensor.name)'")
            }
            held[tensor.name] = tensor.values
            entries.append(Entry(name: tensor.name, dtype: .f32, shape: tensor.shape, offsets: 0..<(tensor.values.count * 4)))
        }
        self.entries = entries.sorted { $0.name < $1.name }
        self.held = held
        var byName: [String: Int] = [:]
        for (index, entry) in self.entries.enumerated() { byName[entry.name] = index }
        self.byName = byName
    }

    private init(file: MappedFile, source: String) throws {
        self.file = file
        self.source = source
        held = [:]
        isPositional = false
        let bytes = file.bytes
        func fail(_ message: String) -> NNError { NNError(.weights, source, message) }
        try FileKind.check(bytes.prefix(8), path: source, expected: .weights)

        guard bytes.count >= 8 else {
            throw fail("the file is \(bytes.count) bytes; a safetensors file starts with an 8-byte header length")
        }
        var headerLength: UInt64 = 0
        for index in 0..<8 { headerLength |= UInt64(bytes[index]) << (8 * UInt64(index)) }
        guard headerLength <= UInt64(WeightStore.maximumHeaderSize) else {
            throw fail("the header length field says \(headerLength) bytes; the largest accepted is \(WeightStore.maximumHeaderSize) (is this a safetensors file?)")
        }
        let headerSize = Int(headerLength)
        guard 8 + headerSize <= bytes.count else {
            throw fail("the header length field says \(headerSize) bytes, but only \(bytes.count - 8) bytes follow it (truncated file?)")
        }
        guard headerSize >= 2, bytes[8] == UInt8(ascii: "{") else {
            throw fail("the header does not start with '{'; expected a JSON object (is this a safetensors file?)")
        }
        let headerBytes = UnsafeBufferPointer(start: bytes.baseAddress!.advanced(by: 8).assumingMemoryBound(to: UInt8.self), count: headerSize)
        // Names are compared decoded (`\u0061` is `a`), and a name holding NUL is refused: json-c
        // would cut it there and keep only the last of two equal names.
        let header: JSONValue
        do {
            header = try JSONParser.parse(headerBytes, source: "\(source) header", refuseDuplicateKeys: true)
        } catch let error as NNError {
            throw NNError(.weights, error.location, error.message)
        }
        guard case let .object(members) = header else {
            throw fail("the header is \(header.typeDescription), expected a JSON object")
        }

        dataStart = 8 + headerSize
        let dataSize = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in members {
            let location = "tensor '\(name)'"
            if name == "__metadata__" {
                guard case let .object(pairs) = value else { throw fail("__metadata__ must be an object of strings") }
                for (key, item) in pairs {
                    guard case let .string(text) = item else { throw fail("__metadata__.\(key) must be a string, found \(item.typeDescription)") }
                    metadata[key] = text
                }
                continue
            }
            guard case .object = value else { throw fail("\(location): expected an object with dtype, shape, data_offsets") }
            guard case let .string(dtypeName)? = value["dtype"] else { throw fail("\(location): missing or non-string dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                let known = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2"]
                if known.contains(dtypeName) {
                    throw fail("\(location): dtype \(dtypeName) is not supported for weights; expected \(DType.accepted)")
                }
                throw fail("\(location): unknown dtype '\(dtypeName)'; expected \(DType.accepted)")
            }
            guard case let .array(shapeItems)? = value["shape"] else { throw fail("\(location): missing or non-array shape") }
            var shape: [Int] = []
            var elements = 1
            for item in shapeItems {
                guard case let .int(size) = item, size >= 0, size <= Int64(Int32.max) else {
                    throw fail("\(location): shape \(value["shape"]!.brief()) must hold non-negative integers")
                }
                shape.append(Int(size))
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(size))
                guard !overflow, product <= Int(Int32.max) * 4 else { throw fail("\(location): shape \(shape) holds too many elements") }
                elements = product
            }
            guard case let .array(offsetItems)? = value["data_offsets"], offsetItems.count == 2,
                  case let .int(begin) = offsetItems[0], case let .int(end) = offsetItems[1] else {
                throw fail("\(location): data_offsets must be [begin, end]")
            }
            guard begin >= 0, end >= begin else { throw fail("\(location): data_offsets [\(begin), \(end)] run backwards") }
            guard end <= Int64(dataSize) else {
                throw fail("\(location): data_offsets end at byte \(end), but the data section holds only \(dataSize) bytes (truncated file?)")
            }
            let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, byteCount == Int(end - begin) else {
                throw fail("\(location): shape \(shape) of \(dtypeName) needs \(elements) × \(dtype.size) = \(elements * dtype.size) bytes, but data_offsets [\(begin), \(end)] hold \(end - begin)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, offsets: Int(begin)..<Int(end)))
        }
        // Offsets must tile the data section from 0 with no gap or overlap, and end at end of file.
        var cursor = 0
        for entry in entries.sorted(by: { ($0.offsets.lowerBound, $0.offsets.upperBound) < ($1.offsets.lowerBound, $1.offsets.upperBound) }) {
            if entry.offsets.lowerBound != cursor {
                let what = entry.offsets.lowerBound > cursor ? "leaves a gap" : "overlaps the previous tensor"
                throw fail("tensor '\(entry.name)': data_offsets start at \(entry.offsets.lowerBound), expected \(cursor); the layout \(what)")
            }
            cursor = entry.offsets.upperBound
        }
        if cursor != dataSize {
            throw fail("the tensors cover \(cursor) bytes of data but the file holds \(dataSize) after the header (\(dataSize - cursor) trailing bytes)")
        }
        self.entries = entries.sorted { $0.name < $1.name }
        self.metadata = metadata
        var byName: [String: Int] = [:]
        for (index, entry) in self.entries.enumerated() { byName[entry.name] = index }
        self.byName = byName
    }

    public func entry(named name: String) -> Entry? {
        byName[name].map { entries[$0] }
    }

    /// The values of `entry` as Float: in place when the data is aligned float32, else converted.
    public func floats(_ entry: Entry) -> FloatStorage {
        if let values = held[entry.name] { return values }
        let start = file.bytes.baseAddress!.advanced(by: dataStart + entry.offsets.lowerBound)
        let count = entry.count
        switch entry.dtype {
        case .f32:
            if Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
                return FloatStorage(base: start.assumingMemoryBound(to: Float.self), count: count, owner: file)
            }
            return FloatStorage((0..<count).map { start.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) })
        case .f64:
            return FloatStorage((0..<count).map { Float(start.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) })
        case .f16:
            return FloatStorage((0..<count).map { WeightStore.halfToFloat(start.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) })
        case .bf16:
            return FloatStorage((0..<count).map { Float(bitPattern: UInt32(start.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16) })
        case .i64: return FloatStorage((0..<count).map { Float(Int64(littleEndian: start.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) })
        case .i32: return FloatStorage((0..<count).map { Float(Int32(littleEndian: start.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) })
        case .i16: return FloatStorage((0..<count).map { Float(Int16(littleEndian: start.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self))) })
        case .i8: return FloatStorage((0..<count).map { Float(start.load(fromByteOffset: $0, as: Int8.self)) })
        case .u64: return FloatStorage((0..<count).map { Float(UInt64(littleEndian: start.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) })
        case .u32: return FloatStorage((0..<count).map { Float(UInt32(littleEndian: start.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) })
        case .u16: return FloatStorage((0..<count).map { Float(UInt16(littleEndian: start.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) })
        case .u8: return FloatStorage((0..<count).map { Float(start.load(fromByteOffset: $0, as: UInt8.self)) })
        }
    }

    /// IEEE half to single precision, including subnormals, infinities and NaN.
    static func halfToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int(bits >> 10) & 0x1F
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            let value = Float(mantissa) * Float(sign == 0 ? 1 : -1) / 16_777_216 // 2^-24
            return value
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}
