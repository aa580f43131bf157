import Foundation
import XCTest
@testable import ModelSpec
#if canImport(Glibc)
import Glibc
#endif

/// Loading a `.keras` file holds its weights about once: the issue's bound is twice their bytes.
final class KerasLoadMemoryTests: CLITestCase {
    /// Loading a `.keras` file takes less than twice its weights' bytes (beyond what the binary
    /// needs for a tiny model), stored as Keras writes it or deflated as a user's zip tool does.
    func testLoadingAnArchiveTakesLessThanTwiceItsWeights() throws {
        try requireMeasurableResidentMemory()
        let inputs = 2500, units = 4000
        let weights = (inputs * units + units) * 4
        let (_, baseline) = try Self.peakResident(["validate", SavingWalkFileTests.walk("renamed.keras")])
        for deflated in [false, true] {
            let big = path(deflated ? "big-deflated.keras" : "big.keras")
            try Self.writeEnlargedTemplate(to: big, inputs: inputs, units: units, deflated: deflated)
            let (status, peak) = try Self.peakResident(["validate", big])
            XCTAssertEqual(status, 0, big)
            XCTAssertLessThan(peak - baseline, 2 * weights,
                              "\(deflated ? "deflated" : "stored"): loading \(weights >> 20) MB of weights took \((peak - baseline) >> 20) MB more than a tiny model")
        }
    }

    /// Runs nnbuild with `arguments`, output discarded: its exit status and peak resident bytes.
    static func peakResident(_ arguments: [String]) throws -> (Int32, Int) {
        let argv = ([CLITests.binary.path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        guard posix_spawn(&pid, CLITests.binary.path, &actions, nil, argv, environ) == 0 else {
            throw NNError(.io, CLITests.binary.path, "cannot be started")
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0, errno == EINTR {}
        return (status, usage.ru_maxrss * 1024)
    }

    /// Writes walk/dense_template.keras (a Dense 37 → 41 saved by Keras) grown to `inputs` →
    /// `units` at `path`: its config's sizes, its datasets' dims and layouts patched, the values
    /// appended. Written piece by piece, so that this process stays small: a child started by
    /// posix_spawn shares its memory until exec, and the kernel counts that in the child's peak.
    static func writeEnlargedTemplate(to path: String, inputs: Int, units: Int, deflated: Bool) throws {
        let template = try FileBytes.read(path: SavingWalkFileTests.walk("dense_template.keras"))
        var members: [(String, [UInt8])] = []
        try template.withUnsafeBytes { raw in
            let archive = try ZipArchive(bytes: raw, source: "template", kind: .spec)
            for member in archive.members { members.append((member.name, try archive.extract(member))) }
        }
        func u64(_ value: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(value).littleEndian, Array.init) }
        func replace(_ bytes: inout [UInt8], _ pattern: [UInt8], _ with: [UInt8]) -> Int {
            var found = 0
            var at = 0
            while at + pattern.count <= bytes.count {
                if Array(bytes[at..<(at + pattern.count)]) == pattern {
                    bytes.replaceSubrange(at..<(at + with.count), with: with)
                    found += 1
                    at += pattern.count
                } else {
                    at += 1
                }
            }
            return found
        }
        let value = withUnsafeBytes(of: Float(0.001).bitPattern.littleEndian, Array.init)
        let row = [[UInt8]](repeating: value, count: units).flatMap { $0 }
        var pieces: [(String, [UInt8], repeats: Int, tail: Int)] = []
        for (name, original) in members {
            var bytes = original
            var repeats = 0, tail = 0
            if name == "config.json" {
                let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "[null, 37]", with: "[null, \(inputs)]")
                    .replacingOccurrences(of: "\"units\": 41", with: "\"units\": \(units)")
                bytes = Array(text.utf8)
            } else if name == "model.weights.h5" {
                let end = bytes.count, kernelBytes = inputs * units * 4
                XCTAssertEqual(replace(&bytes, u64(37) + u64(41), u64(inputs) + u64(units)), 2, "the kernel's dims and maximum dims")
                let space: [UInt8] = [1, 1, 1, 0, 0, 0, 0, 0]
                XCTAssertEqual(replace(&bytes, space + u64(41) + u64(41), space + u64(units) + u64(units)), 1, "the bias's dims")
                // Contiguous layouts (version 3, class 1): address then size.
                for (size, address, newSize) in [(37 * 41 * 4, end, kernelBytes), (41 * 4, end + kernelBytes, units * 4)] {
                    let found = bytes.indices.filter { at in
                        at + 18 <= bytes.count && bytes[at] == 3 && bytes[at + 1] == 1 && Array(bytes[(at + 10)..<(at + 18)]) == u64(size)
                    }
                    XCTAssertEqual(found.count, 1, "the layout of the dataset of \(size) bytes")
                    if let at = found.first { bytes.replaceSubrange((at + 2)..<(at + 18), with: u64(address) + u64(newSize)) }
                }
                bytes.replaceSubrange(40..<48, with: u64(end + kernelBytes + units * 4))  // superblock 0's end-of-file address
                (repeats, tail) = (inputs, units * 4)
            }
            pieces.append((name, bytes, repeats, tail))
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw NNError(.io, path, "cannot be written")
        }
        defer { try? handle.close() }
        func u16(_ value: Int) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8 & 0xff)] }
        func u32(_ value: Int) -> [UInt8] { u16(value & 0xffff) + u16(value >> 16 & 0xffff) }
        var offset = 0, directory: [UInt8] = []
        func emit(_ bytes: [UInt8]) {
            handle.write(Data(bytes))
            offset += bytes.count
        }
        for (name, head, repeats, tail) in pieces {
            // The member's bytes: `head`, `repeats` rows, then `tail` zero bytes.
            func each(_ body: ([UInt8]) -> Void) {
                body(head)
                for _ in 0..<repeats { body(row) }
                if tail > 0 { body([UInt8](repeating: 0, count: tail)) }
            }
            var crc: UInt32 = 0xFFFF_FFFF
            var size = 0
            each { bytes in
                crc = crc32(bytes, crc)
                size += bytes.count
            }
            crc ^= 0xFFFF_FFFF
            // Deflate in stored blocks of at most 65535 bytes: 5 bytes of header each.
            let blocks = max(1, (size + 65534) / 65535)
            let stored = deflated ? size + 5 * blocks : size
            let parts: [[UInt8]] = [u16(20), u16(0), u16(deflated ? 8 : 0), u16(0), u16(0x21), u32(Int(crc)), u32(stored),
                                    u32(size), u16(name.utf8.count), u16(0)]
            let fields = Array(parts.joined())
            let central: [[UInt8]] = [u32(0x02014b50), u16(20), fields, u16(0), u16(0), u16(0), u32(0), u32(offset), Array(name.utf8)]
            directory += central.joined()
            let local: [[UInt8]] = [u32(0x04034b50), fields, Array(name.utf8)]
            emit(Array(local.joined()))
            guard deflated else {
                each { emit($0) }
                continue
            }
            var pending: [UInt8] = [], done = 0
            func flush(_ count: Int) {
                done += count
                let header: [[UInt8]] = [[done == size ? 1 : 0], u16(count), u16(~count & 0xffff)]
                emit(Array(header.joined()) + pending[0..<count])
                pending.removeFirst(count)
            }
            each { bytes in
                pending += bytes
                while pending.count >= 65535, done + 65535 < size { flush(65535) }
            }
            while done < size || size == 0 {
                flush(min(65535, pending.count))
                if size == 0 { break }
            }
        }
        let start = offset
        emit(directory)
        let end: [[UInt8]] = [u32(0x06054b50), u16(0), u16(0), u16(pieces.count), u16(pieces.count), u32(directory.count), u32(start), u16(0)]
        emit(Array(end.joined()))
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        (0..<8).reduce(UInt32(n)) { c, _ in c & 1 == 1 ? 0xEDB88320 ^ (c >> 1) : c >> 1 }
    }

    /// Continues the CRC-32 register `crc` (started at 0xFFFFFFFF) over `data`.
    static func crc32(_ data: [UInt8], _ crc: UInt32) -> UInt32 {
        var crc = crc
        crcTable.withUnsafeBufferPointer { table in
            data.withUnsafeBufferPointer { buffer in
                for byte in buffer { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
            }
        }
        return crc
    }
}
