#if canImport(Glibc)
import Glibc
private let systemRead = Glibc.read
#elseif canImport(Darwin)
import Darwin
private let systemRead = Darwin.read
#endif

/// A regular file opened for reading: the one way nnbuild opens a file it reads (spec, weights,
/// input, class names, labels).
///
/// The file is opened non-blocking, so a FIFO cannot stall `open`, then `fstat`ed: anything but a
/// regular file (FIFO, directory, device, socket; a symlink to `/dev/zero` is a character device)
/// is refused by its actual type. `size` is what `fstat` reported, and nothing reads past it, even
/// if the file grows meanwhile.
final class RegularFile {
    let path: String
    let descriptor: Int32
    let size: Int

    init(path: String) throws {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            // A socket cannot be opened at all (ENXIO); still name what the path is.
            var status = stat()
            if code != ENOENT, stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFREG {
                throw NNError(.io, path, "is \(RegularFile.typeName(status.st_mode & S_IFMT)), expected a regular file")
            }
            switch code {
            case ENOENT: throw NNError(.io, path, "no such file")
            case EACCES: throw NNError(.io, path, "cannot be opened for reading (permission denied)")
            default: throw NNError(.io, path, "cannot be opened for reading (\(RegularFile.reason(code)))")
            }
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let code = errno
            close(descriptor)
            throw NNError(.io, path, "cannot read the file's type and size (\(RegularFile.reason(code)))")
        }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG else {
            close(descriptor)
            throw NNError(.io, path, "is \(RegularFile.typeName(type)), expected a regular file")
        }
        // Blocking again: a regular file never blocks, and a later read must not see EAGAIN.
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags & ~O_NONBLOCK) }
        self.path = path
        self.descriptor = descriptor
        self.size = Int(status.st_size)
    }

    deinit { close(descriptor) }

    /// Fills `buffer` from the start of the file; returns how many bytes were read (fewer than
    /// asked only when the file shrank since it was opened).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try RegularFile.readFully(descriptor, into: buffer, source: path)
    }

    /// Reads until `buffer` is full or the end of the stream, retrying interrupted reads.
    static func readFully(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, source: String) throws -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let got = systemRead(descriptor, base + done, buffer.count - done)
            if got < 0 {
                if errno == EINTR { continue }
                throw NNError(.io, source, "cannot be read (\(reason(errno)))")
            }
            if got == 0 { break }
            done += got
        }
        return done
    }

    /// "a FIFO (named pipe)", "a directory", ...: what a path names, for the refusal message.
    static func typeName(_ type: mode_t) -> String {
        switch type {
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFDIR: return "a directory"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file (type \(String(type, radix: 8)))"
        }
    }

    static func reason(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}

/// Reads a whole file into memory with a clear error when it cannot.
public enum FileBytes {
    /// The bytes of the regular file at `path`, refusing files over `limit` bytes and anything
    /// that is not a regular file.
    public static func read(path: String, limit: Int = 1 << 30) throws -> [UInt8] {
        let file = try RegularFile(path: path)
        guard file.size <= limit else {
            throw NNError(.io, path, "the file is \(file.size) bytes; at most \(limit) are accepted here")
        }
        var bytes = [UInt8](repeating: 0, count: file.size)
        let got = try bytes.withUnsafeMutableBytes { try file.read(into: $0) }
        if got < bytes.count { bytes.removeLast(bytes.count - got) }
        return bytes
    }

    /// Standard input, read to its end, refused when it holds more than `limit` bytes.
    public static func readStandardInput(limit: Int = 1 << 30) throws -> [UInt8] {
        try readStream(STDIN_FILENO, limit: limit, source: "<stdin>")
    }

    /// Reads a pipe or any stream to its end, at most `limit` bytes.
    static func readStream(_ descriptor: Int32, limit: Int, source: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        let chunk = 1 << 16
        while true {
            let room = min(chunk, limit + 1 - bytes.count)
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: room))
            let got = try bytes.withUnsafeMutableBytes { whole in
                try RegularFile.readFully(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: whole[start...]), source: source)
            }
            bytes.removeLast(room - got)
            if bytes.count > limit {
                throw NNError(.io, source, "holds more than \(limit) bytes; at most \(limit) are accepted here")
            }
            if got < room { return bytes }
        }
    }
}

/// A read-only view of a whole file: memory-mapped, or copied into memory nnbuild owns.
final class MappedFile {
    let bytes: UnsafeRawBufferPointer
    /// True when `bytes` is a mapping of the file (pages can be dropped and read back from it).
    let isFileMapping: Bool

    /// The file whose memory `bytes` lies in, for a view; nil for a file that owns its bytes.
    private var parent: MappedFile?

    /// A view of `bytes`, which lie inside `parent`'s memory (a stored member of a mapped zip), kept
    /// alive with it; nothing is copied.
    init(viewing bytes: UnsafeRawBufferPointer, of parent: MappedFile) {
        self.bytes = bytes
        isFileMapping = parent.isFileMapping
        self.parent = parent
    }

    /// Maps the regular file at `path` read-only.
    init(path: String) throws {
        let file = try RegularFile(path: path)
        if file.size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            isFileMapping = false
            return
        }
        // MAP_PRIVATE + PROT_READ: nothing nnbuild does can ever change the user's file.
        guard let address = mmap(nil, file.size, PROT_READ, MAP_PRIVATE, file.descriptor, 0), address != MAP_FAILED else {
            throw NNError(.io, path, "cannot be mapped into memory (\(RegularFile.reason(errno)))")
        }
        // Small pages only: where the page cache holds the file in huge folios (ext4 on Linux 6.18
        // after readahead), a fault mapped a whole 2 MB of it, and a weight's pages released once
        // packed (`release`) came back when a weight beside it in the same 2 MB was read (ResNet50
        // at batch 1: 14.6 MiB of the file resident, 13 of them in packed kernels, and a peak of
        // 139.6 MiB against 125.6 with the file's cache in small pages).
        #if canImport(Glibc)
        _ = madvise(address, file.size, Int32(MADV_NOHUGEPAGE))
        #endif
        bytes = UnsafeRawBufferPointer(start: address, count: file.size)
        isFileMapping = true
    }

    /// Copies the regular file at `path` into memory, so that truncating the file later cannot
    /// fault a reader (a mapping raises SIGBUS on pages past the new end).
    init(copyingFileAt path: String) throws {
        let file = try RegularFile(path: path)
        // posix_memalign reports failure where Swift's allocator would trap.
        var address: UnsafeMutableRawPointer?
        guard posix_memalign(&address, 64, max(file.size, 1)) == 0, let address else {
            throw NNError(.io, path, "cannot allocate \(file.size) bytes to copy the file into memory")
        }
        let got: Int
        do {
            got = try file.read(into: UnsafeMutableRawBufferPointer(start: address, count: file.size))
        } catch {
            free(address)
            throw error
        }
        bytes = UnsafeRawBufferPointer(start: address, count: got)
        isFileMapping = false
    }

    init(copying data: [UInt8], source: String) throws {
        var address: UnsafeMutableRawPointer?
        guard posix_memalign(&address, 64, max(data.count, 1)) == 0, let address else {
            throw NNError(.io, source, "cannot allocate \(data.count) bytes to copy the data")
        }
        let raw = UnsafeMutableRawBufferPointer(start: address, count: data.count)
        raw.copyBytes(from: data)
        bytes = UnsafeRawBufferPointer(raw)
        isFileMapping = false
    }

    /// Drops the whole pages inside `range` from resident memory; a mapping reads them back from
    /// the file if they are touched again. Memory nnbuild owns is left alone (dropping it would
    /// zero it).
    func release(_ range: Range<Int>) {
        guard isFileMapping, let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let start = (Int(bitPattern: base) + range.lowerBound + page - 1) / page * page
        let end = (Int(bitPattern: base) + range.upperBound) / page * page
        guard end > start, let address = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(address, end - start, Int32(MADV_DONTNEED))
    }

    deinit {
        guard parent == nil, let base = bytes.baseAddress else { return }
        if isFileMapping {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        } else {
            free(UnsafeMutableRawPointer(mutating: base))
        }
    }
}
