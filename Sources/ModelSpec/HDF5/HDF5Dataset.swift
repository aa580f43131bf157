#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value read from a dataset or an attribute.
public enum HDF5Value: Equatable {
    case string(String)
    case strings([String])
    case numbers(shape: [Int], values: [Double])
    /// A scalar fixed-length string that is not UTF-8.
    case bytes([UInt8])
}

/// A dataset: its shape and element type, its values read on demand.
public struct HDF5Dataset {
    let file: HDF5File
    public let path: String
    public let shape: [Int]
    /// "float16", "float32", "float64", "int8" ... "uint64", or "string".
    public let elementType: String
    let storage: HDF5Storage

    init(file: HDF5File, path: String, storage: HDF5Storage) throws {
        self.file = file
        self.path = path
        self.storage = storage
        shape = storage.shape
        elementType = storage.type.name
    }

    /// The values converted to Float32, written once into storage nnbuild owns (chunks are decoded
    /// into scratch memory and converted from there; contiguous data straight from the mapping).
    public func floats() throws -> FloatStorage {
        guard case .float = storage.type else {
            if case .integer = storage.type { return try convert() }
            throw NNError(.weights, file.reader.source, "HDF5: dataset '\(path)' holds strings, expected numbers")
        }
        return try convert()
    }

    private func convert() throws -> FloatStorage {
        _ = try file.reader.checkedByteCount(shape, elementSize: storage.elementSize, storage.at, "object header", subject: "dataset '\(path)'")
        let count = storage.elementCount
        let owner = HDF5Floats(count: count)
        guard let pointer = owner.pointer else {
            throw NNError(.weights, file.reader.source, "HDF5: dataset '\(path)': cannot allocate \(count) floats")
        }
        let type = storage.type
        let size = storage.elementSize
        if let fill = storage.fill {
            let value = fill.withUnsafeBytes { Float(HDF5Values.number($0, 0, type)) }
            pointer.update(repeating: value, count: count)
        }
        try storage.forEachRun { run, first in
            let n = run.count / size
            guard first >= 0, first + n <= count else { return }
            // Little-endian float32, what Keras writes for every weight: one byte copy, no decoding.
            if case .float(4, false) = type, UInt32(1).littleEndian == 1, let source = run.baseAddress {
                UnsafeMutableRawPointer(pointer + first).copyMemory(from: source, byteCount: n * 4)
                return
            }
            for i in 0..<n { pointer[first + i] = Float(HDF5Values.number(run, i * size, type)) }
        }
        return FloatStorage(base: UnsafePointer(pointer), count: count, owner: owner)
    }

    /// The values as numbers or strings.
    public func value() throws -> HDF5Value { try HDF5Values.value(storage) }
}

/// Floats nnbuild owns, zero-filled (calloc) so elements no chunk covers read as the fill value 0.
final class HDF5Floats {
    let pointer: UnsafeMutablePointer<Float>?
    init(count: Int) {
        pointer = calloc(max(count, 1), MemoryLayout<Float>.size)?.bindMemory(to: Float.self, capacity: max(count, 1))
    }
    deinit { free(pointer) }
}

enum HDF5Values {
    /// The most elements `value()` converts: it is for attributes and small datasets (names,
    /// configs, counts); weights go through `floats()`, which stores 4 bytes per element.
    static let maxValueElements = 1 << 22

    static func value(_ storage: HDF5Storage) throws -> HDF5Value {
        let reader = storage.reader
        guard storage.elementCount <= maxValueElements else {
            throw reader.error(storage.at, "dataset", "has \(storage.elementCount) elements; value() reads at most \(maxValueElements) (use floats() for numbers)")
        }
        let total = try reader.checkedByteCount(storage.shape, elementSize: storage.elementSize, storage.at, "object header")
        var raw = [UInt8](repeating: 0, count: total)
        if let fill = storage.fill {
            for i in 0..<total { raw[i] = fill[i % fill.count] }
        }
        try storage.forEachRun { run, first in
            let start = first * storage.elementSize
            guard start >= 0, start + run.count <= raw.count else { return }
            for i in 0..<run.count { raw[start + i] = run[i] }
        }
        let count = storage.elementCount
        let size = storage.elementSize
        return try raw.withUnsafeBytes { buffer -> HDF5Value in
            switch storage.type {
            case .float, .integer:
                return .numbers(shape: storage.shape, values: (0..<count).map { number(buffer, $0 * size, storage.type) })
            case .fixedString:
                let items = (0..<count).map { Array(buffer[($0 * size)..<($0 * size + size)].prefix { $0 != 0 }) }
                if storage.shape.isEmpty, let only = items.first {
                    guard let text = String(validating: only, as: UTF8.self) else { return .bytes(only) }
                    return .string(text)
                }
                return .strings(items.map { String(decoding: $0, as: UTF8.self) })
            case .variableString:
                var items: [String] = []
                for i in 0..<count {
                    items.append(try variableString(reader, UnsafeRawBufferPointer(rebasing: buffer[(i * size)..<(i * size + size)]), at: storage.at))
                }
                return storage.shape.isEmpty && items.count == 1 ? .string(items[0]) : .strings(items)
            }
        }
    }

    /// A variable-length string: its length, then the global heap collection and object holding it.
    static func variableString(_ reader: HDF5Reader, _ element: UnsafeRawBufferPointer, at: Int) throws -> String {
        var c = HDF5Cursor(reader, element, at: at, what: "variable-length string")
        let length = try c.u32()
        let raw = try c.offset()
        let index = try c.u32()
        if length == 0 { return "" }
        let undefined = raw == UInt64.max || (reader.offsetSize < 8 && raw == (UInt64(1) << UInt64(reader.offsetSize * 8)) - 1)
        guard !undefined, raw <= UInt64(Int.max), let collection = HDF5Reader.add(Int(raw), reader.baseAddress), collection < reader.size else {
            throw reader.error(at, "variable-length string", "points outside the global heap (collection address \(raw) is past the end of the file)")
        }
        let object = try reader.globalHeapObject(collection: collection, index: index, at: at)
        guard length <= object.count else {
            throw reader.error(at, "variable-length string", "claims \(length) bytes, its global heap object holds \(object.count)")
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: object[0..<length]), as: UTF8.self)
    }

    static func number(_ buffer: UnsafeRawBufferPointer, _ offset: Int, _ type: HDF5Type) -> Double {
        func bits(_ size: Int, _ bigEndian: Bool) -> UInt64 {
            var value: UInt64 = 0
            for i in 0..<size {
                let byte = UInt64(buffer[offset + (bigEndian ? i : size - 1 - i)])
                value = value << 8 | byte
            }
            return value
        }
        switch type {
        case .float(let size, let bigEndian):
            let b = bits(size, bigEndian)
            switch size {
            case 2: return Double(halfToFloat(UInt16(b)))
            case 4: return Double(Float(bitPattern: UInt32(b)))
            default: return Double(bitPattern: b)
            }
        case .integer(let size, let signed, let bigEndian):
            let b = bits(size, bigEndian)
            guard signed else { return Double(b) }
            let shift = UInt64(64 - size * 8)
            return Double(Int64(bitPattern: b << shift) >> Int64(shift))
        default: return 0
        }
    }

    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1f)
        let mantissa = UInt32(h & 0x3ff)
        if exponent == 0 {
            let value = Float(mantissa) * Float(sign != 0 ? -1 : 1) / Float(1 << 24)
            return value
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | mantissa << 13) }
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | mantissa << 13)
    }
}

extension HDF5Reader {
    /// Object `index` of the global heap collection at `collection`; an error when the collection
    /// is not one or holds no such object.
    func globalHeapObject(collection: Int, index: Int, at: Int) throws -> UnsafeRawBufferPointer {
        let outside = { (why: String) in self.error(at, "variable-length string", "points outside the global heap (\(why))") }
        let objects = try heapObjects(at: collection) {
            guard let head = try? bytes(at: collection, count: 8 + lengthSize, "global heap"), Array(head.prefix(4)) == Array("GCOL".utf8) else {
                throw outside("no 'GCOL' collection at 0x\(String(collection, radix: 16))")
            }
            var h = HDF5Cursor(self, head, at: collection, what: "global heap")
            try h.skip(8)
            let total = try h.length()
            guard total >= 8 + lengthSize, let whole = try? bytes(at: collection, count: total, "global heap") else {
                throw outside("the collection at 0x\(String(collection, radix: 16)) claims \(total) bytes, past the end of the file")
            }
            var c = HDF5Cursor(self, whole, at: collection, what: "global heap")
            try c.skip(8 + lengthSize)
            var objects: [Int: Range<Int>] = [:]
            while c.remaining >= 8 + lengthSize {
                let id = try c.u16()
                try c.skip(6)
                let size = try c.length()
                if id == 0 { break }
                guard size <= c.remaining else { throw c.fail("object \(id) claims \(size) bytes, past the collection's end") }
                objects[id] = c.absolute..<(c.absolute + size)
                try c.skip(size)
                try c.align(8, from: 0)
            }
            return objects
        }
        if let range = objects[index] { return try bytes(at: range.lowerBound, count: range.count, "global heap object") }
        throw outside("collection 0x\(String(collection, radix: 16)) has no object \(index)")
    }
}
