// TEMPORARY: a stand-in for ModelSpec's NpyFile and NpyWriter (branch `inputs`), with the same
// API, so the streaming commands build before that branch is merged. Delete this file once
// ModelSpec provides them.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ModelSpec

final class NpyFile: @unchecked Sendable {
    let source: String
    let shape: [Int]
    let dtype: String
    private let descr: String
    private let itemSize: Int
    private let dataOffset: Int
    private let rowElements: Int
    private let base: UnsafeMutableRawPointer
    private let size: Int

    init(path: String) throws {
        source = path
        func fail(_ message: String) -> NNError { NNError(.input, path, message) }
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw NNError(.io, path, errno == ENOENT ? "no such file" : "cannot be opened: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { throw NNError(.io, path, "is not a regular file") }
        size = Int(status.st_size)
        guard size >= 10, let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw fail("not a .npy file (too short, or it cannot be mapped)")
        }
        base = address
        let bytes = UnsafeRawBufferPointer(start: address, count: size)
        guard Array(bytes[0..<6]) == Npy.magic else { munmap(address, size); throw fail("not a .npy file (the magic string \\x93NUMPY is missing)") }
        let headerStart = bytes[6] == 1 ? 10 : 12
        let headerLength = bytes[6] == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8 : (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        guard headerStart + headerLength <= size else { munmap(address, size); throw fail("the .npy header is truncated") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        dataOffset = headerStart + headerLength
        func value(_ key: String, _ close: Character) -> String? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            let rest = header[range.upperBound...].drop { $0 == " " }
            guard let end = rest.dropFirst().firstIndex(of: close) else { return nil }
            return String(rest[rest.startIndex...end])
        }
        guard let descrText = value("descr", "'"), let shapeText = value("shape", ")"), header.contains("'fortran_order': False") else {
            munmap(address, size); throw fail("the .npy header is malformed or in Fortran order")
        }
        descr = descrText.trimmingCharacters(in: CharacterSet(charactersIn: "'"))
        itemSize = Int(descr.dropFirst(2)) ?? 0
        let kinds = ["f4": "float32", "f8": "float64", "i4": "int32", "i8": "int64", "u1": "uint8", "i1": "int8", "b1": "bool", "f2": "float16", "i2": "int16", "u2": "uint16", "u4": "uint32", "u8": "uint64"]
        guard itemSize > 0, let kind = kinds[String(descr.dropFirst())] else { munmap(address, size); throw fail("unsupported .npy dtype \(descr)") }
        dtype = kind
        shape = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        var count = 1
        for dimension in shape {
            let (next, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, dimension >= 0, next < 1 << 40 else { munmap(address, size); throw fail("the .npy shape \(shape) is too large") }
            count = next
        }
        rowElements = shape.dropFirst().reduce(1, *)
        guard size - dataOffset == count * itemSize else {
            munmap(address, size); throw fail("shape \(shape) of \(dtype) needs \(count * itemSize) bytes of data but the file holds \(size - dataOffset) (truncated?)")
        }
    }

    deinit { munmap(base, size) }

    var rowCount: Int { shape.first ?? 1 }
    var rowShape: [Int] { Array(shape.dropFirst()) }

    func rows(_ range: Range<Int>) throws -> [Float] {
        guard range.lowerBound >= 0, range.upperBound <= rowCount else {
            throw NNError(.input, source, "rows \(range.lowerBound)..<\(range.upperBound) are outside the file's \(rowCount) rows")
        }
        let count = range.count * (shape.isEmpty ? 1 : rowElements)
        let start = dataOffset + range.lowerBound * rowElements * itemSize
        // Converted by Npy.read from a one-axis .npy holding just these bytes.
        var text = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(count),), }"
        while (10 + text.utf8.count + 1) % 64 != 0 { text += " " }
        text += "\n"
        var bytes = Npy.magic + [1, 0, UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)] + Array(text.utf8)
        bytes += UnsafeRawBufferPointer(start: base + start, count: count * itemSize)
        let values = try Npy.read(bytes, source: source).values
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let low = start / page * page
        madvise(base + low, start + count * itemSize - low, MADV_DONTNEED)
        return values
    }

    func all() throws -> NumericArray { NumericArray(shape: shape, values: try rows(0..<rowCount), dtype: dtype) }
}

struct NpyWriter {
    let source: String
    let shape: [Int]
    private let descriptor: Int32
    private let total: Int
    private var written = 0

    init(descriptor: Int32, source: String, shape: [Int]) throws {
        self.descriptor = descriptor
        self.source = source
        self.shape = shape
        total = shape.reduce(1, *)
        var text = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", "))\(shape.count == 1 ? "," : "")), }"
        while (10 + text.utf8.count + 1) % 64 != 0 { text += " " }
        text += "\n"
        let bytes = Npy.magic + [1, 0, UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)] + Array(text.utf8)
        try bytes.withUnsafeBytes { try NpyWriter.writeAll(descriptor, $0, source: source) }
    }

    mutating func append(_ values: UnsafeBufferPointer<Float>) throws {
        guard values.count <= total - written else { throw NNError(.io, source, "too many values for shape \(shape)") }
        try NpyWriter.writeAll(descriptor, UnsafeRawBufferPointer(values), source: source)
        written += values.count
    }

    func finish() throws {
        guard written == total else { throw NNError(.io, source, "the .npy file of shape \(shape) needs \(total) values, but \(written) were written") }
    }

    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, source: String) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let wrote = write(descriptor, base + done, bytes.count - done)
            if wrote < 0 {
                if errno == EINTR { continue }
                throw NNError(.io, source, "cannot write the output: \(String(cString: strerror(errno)))")
            }
            done += wrote
        }
    }
}
