import Foundation
import XCTest
@testable import ModelSpec

/// Special files given where a regular file belongs: each is refused at once, by its type.
final class FileBytesTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-filebytes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Runs `body` on a background thread and fails if it has not returned within 5 s, so a read
    /// that blocks (a FIFO) or never ends (`/dev/zero`) fails the test instead of hanging it.
    func finishes(_ what: String, file: StaticString = #filePath, line: UInt = #line, _ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            body()
            done.signal()
        }
        if done.wait(timeout: .now() + 5) == .timedOut {
            XCTFail("\(what) did not return within 5 s", file: file, line: line)
        }
    }

    /// Every reader nnbuild uses on a path: spec, weights (mapped and copied), input, .npy input.
    func assertEveryReaderRefuses(_ target: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        let readers: [(String, @Sendable (String) throws -> Void)] = [
            ("spec", { _ = try ModelDescription.load(path: $0) }),
            ("weights", { _ = try WeightStore(path: $0) }),
            ("copied weights", { _ = try WeightStore(path: $0, loading: .copy) }),
            ("input", { _ = try FileBytes.read(path: $0) }),
            (".npy input", { _ = try NpyFile(path: $0) }),
        ]
        for (name, reader) in readers {
            let outcome = Outcome()
            finishes("reading \(name) from \(target)", file: file, line: line) {
                do { try reader(target) } catch { outcome.set(error) }
            }
            guard let error = outcome.get() else {
                XCTFail("\(name): \(target) was accepted", file: file, line: line)
                continue
            }
            XCTAssertEqual((error as? NNError)?.kind, .io, "\(name): \(error)", file: file, line: line)
            XCTAssertEqual((error as? NNError)?.location, target, "\(name): \(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(fragment), "\(name): \(error)", file: file, line: line)
        }
    }

    final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private var error: Error?
        func set(_ value: Error) { lock.lock(); error = value; lock.unlock() }
        func get() -> Error? { lock.lock(); defer { lock.unlock() }; return error }
    }

    /// A mapped file is mapped in small pages only (`VmFlags` "nh" in /proc/self/smaps), so that
    /// a weight's pages released once packed stay released when a neighbour in the same 2 MB is
    /// read, where the page cache holds the file in huge folios.
    func testAMappedFileAsksForSmallPages() throws {
        #if os(Linux)
        let target = path("weights.bin")
        try Data(repeating: 7, count: 3 << 20).write(to: URL(fileURLWithPath: target))
        let mapped = try MappedFile(path: target)
        let start = UInt(bitPattern: try XCTUnwrap(mapped.bytes.baseAddress))
        // (Read to its end: a /proc file has no size for a reader that trusts one.)
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps"))
        defer { try? handle.close() }
        let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        var inMapping = false, flags: String?
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let low = UInt(line[..<dash], radix: 16), line.contains(" ") {
                inMapping = low == start
            } else if inMapping, line.hasPrefix("VmFlags:") {
                flags = String(line)
                break
            }
        }
        let found = try XCTUnwrap(flags, "the mapping at \(String(start, radix: 16)) in /proc/self/smaps")
        XCTAssertTrue(found.split(separator: " ").contains("nh"), found)
        withExtendedLifetime(mapped) {}
        #endif
    }

    func testFIFOIsRefusedWithoutBlocking() throws {
        let fifo = path("pipe")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        assertEveryReaderRefuses(fifo, "is a FIFO (named pipe), expected a regular file")
    }

    func testSymlinkToDevZeroIsRefusedAsACharacterDevice() throws {
        let link = path("zeros.npy")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/zero")
        assertEveryReaderRefuses(link, "is a character device, expected a regular file")
    }

    /// A Unix socket cannot even be opened (ENXIO); it is still named as a socket.
    func testSocketIsRefusedByType() throws {
        let socketPath = path("s.sock")
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        try XCTSkipIf(pathBytes.count >= MemoryLayout.size(ofValue: address.sun_path), "temporary path too long for a socket")
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        assertEveryReaderRefuses(socketPath, "is a socket, expected a regular file")
    }

    func testDirectoryIsRefusedByType() throws {
        let folder = path("folder.json")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        assertEveryReaderRefuses(folder, "is a directory, expected a regular file")
    }

    /// A regular file is read whole within its bound; standard input is read through a bounded
    /// stream reader (a pipe stands in for it here).
    func testRegularFilesAndStreamsAreReadWithinTheirBound() throws {
        let bytes = (0..<70_000).map { UInt8($0 % 251) }
        try Data(bytes).write(to: URL(fileURLWithPath: path("data.bin")))
        XCTAssertEqual(try FileBytes.read(path: path("data.bin")), bytes)
        XCTAssertThrowsError(try FileBytes.read(path: path("data.bin"), limit: 1000)) {
            XCTAssertEqual($0 as? NNError, NNError(.io, path("data.bin"), "the file is 70000 bytes; at most 1000 are accepted here"))
        }
        XCTAssertThrowsError(try FileBytes.read(path: path("absent"))) { XCTAssertEqual($0 as? NNError, NNError(.io, path("absent"), "no such file")) }

        func pipeHolding(_ count: Int) throws -> Int32 {
            var ends: [Int32] = [0, 0]
            XCTAssertEqual(pipe(&ends), 0)
            let payload = [UInt8](repeating: 7, count: count)
            let writeEnd = ends[1]
            Thread.detachNewThread {
                payload.withUnsafeBytes { raw in
                    var done = 0
                    while done < raw.count {
                        let wrote = write(writeEnd, raw.baseAddress! + done, raw.count - done)
                        if wrote <= 0 { break }
                        done += wrote
                    }
                }
                close(writeEnd)
            }
            return ends[0]
        }
        let within = try pipeHolding(100_000)
        defer { close(within) }
        XCTAssertEqual(try FileBytes.readStream(within, limit: 100_000, source: "<stdin>").count, 100_000)
        let over = try pipeHolding(100_001)
        defer { close(over) }
        XCTAssertThrowsError(try FileBytes.readStream(over, limit: 100_000, source: "<stdin>")) { error in
            XCTAssertEqual(error as? NNError, NNError(.io, "<stdin>", "holds more than 100000 bytes; at most 100000 are accepted here"))
        }
    }
}
