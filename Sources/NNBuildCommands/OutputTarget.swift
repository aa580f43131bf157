#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import ModelSpec

/// Where a command writes its result, decided once before any work starts. Every command that
/// writes a file goes through here, so one set of rules protects the user's files:
///
/// - `-` (or `-.npy`, or no path) is standard output;
/// - a symlink is followed to its target;
/// - a character device (`/dev/null`, `/dev/full`) or a FIFO is written straight into, never replaced;
/// - a regular file (or nothing) is replaced atomically: the result goes to `.NAME.nnbuild-tmp-PID`
///   beside the target, which takes the old file's mode (and owner, as root) and is then renamed
///   over it; the temporary file is removed on error, SIGINT and SIGTERM, and stale ones left by
///   dead processes are removed on the next write to the same output;
/// - anything else (a directory, a block device, a socket) is refused, and so is any file the
///   command reads (compared by device and inode).
struct OutputTarget {
    enum Kind {
        case standardOutput
        /// A character device or a FIFO: opened and written in place.
        case inPlace
        /// A regular file or nothing: written beside and renamed over.
        case replaced(existing: stat?)
    }

    /// The path as the user gave it, for messages (`-` for standard output).
    let name: String
    /// The path with every symlink followed: what is written or renamed over.
    let resolved: String
    let kind: Kind

    /// Resolves `path` (nil, `-` or `-.npy` means standard output) and refuses it when it is a file the
    /// command reads: `reads` pairs a role ("input", "weights", ...) with a path (nil when unused).
    init(_ path: String?, reads: [(role: String, path: String?)]) throws {
        guard let path, path != "-", path != "-.npy" else {
            name = "-"
            resolved = "-"
            kind = .standardOutput
            return
        }
        name = path
        resolved = try OutputTarget.followLinks(path)
        var status = stat()
        guard stat(resolved, &status) == 0 else {
            let code = errno
            guard code == ENOENT else { throw NNError(.io, path, "cannot write the output: \(OutputTarget.reason(code))") }
            kind = .replaced(existing: nil)
            return
        }
        for (role, readPath) in reads {
            guard let readPath, readPath != "-" else { continue }
            var read = stat()
            if stat(readPath, &read) == 0, read.st_dev == status.st_dev, read.st_ino == status.st_ino {
                throw NNError(.io, path, "--output names the \(role) file '\(readPath)', which this command reads; choose another output path")
            }
        }
        switch status.st_mode & S_IFMT {
        case S_IFREG: kind = .replaced(existing: status)
        case S_IFCHR, S_IFIFO: kind = .inPlace
        case S_IFDIR: throw NNError(.io, path, "is a directory, expected a file path for the output")
        case S_IFBLK: throw NNError(.io, path, "is a block device; the output can be a regular file, a character device or a FIFO")
        case S_IFSOCK: throw NNError(.io, path, "is a socket; the output can be a regular file, a character device or a FIFO")
        default: throw NNError(.io, path, "is not a regular file; the output can be a regular file, a character device or a FIFO")
        }
    }

    /// The final path a chain of symlinks leads to (the last one may name a file not yet made).
    static func followLinks(_ path: String) throws -> String {
        var current = path
        for _ in 0..<40 {
            var status = stat()
            guard lstat(current, &status) == 0, status.st_mode & S_IFMT == S_IFLNK else { return current }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(current, &buffer, buffer.count - 1)
            guard count >= 0 else { throw NNError(.io, path, "cannot read the symlink '\(current)': \(reason(errno))") }
            let target = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            current = target.hasPrefix("/") ? target : directory(of: current) + "/" + target
        }
        throw NNError(.io, path, "too many levels of symbolic links")
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// The temporary file a replaced output is written to, beside its target.
    var temporaryPath: String { OutputTarget.temporaryPrefix(for: resolved) + String(getpid()) }

    static func temporaryPrefix(for path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let folder = directory(of: path)
        return (folder == "/" ? "" : folder) + "/." + base + ".nnbuild-tmp-"
    }

    /// Removes temporary files of this output left by processes that no longer run.
    func removeStaleTemporaries() {
        let prefix = OutputTarget.temporaryPrefix(for: resolved)
        let folder = OutputTarget.directory(of: resolved)
        let namePrefix = String(prefix.dropFirst(folder == "/" ? 1 : folder.count + 1))  // ".NAME.nnbuild-tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for entry in names where entry.hasPrefix(namePrefix) {
            guard let pid = pid_t(entry.dropFirst(namePrefix.count)), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) == -1, errno == ESRCH { unlink(folder + "/" + entry) }
        }
    }

    /// Opens the output for writing; the caller writes, then commits (or discards on error).
    func open() throws -> OutputSink {
        switch kind {
        case .standardOutput:
            fflush(stdout)
            return OutputSink(name: name, descriptor: 1, temporary: nil, destination: nil)
        case .inPlace:
            let descriptor = Glibc.open(resolved, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw NNError(.io, name, "cannot open the output for writing: \(OutputTarget.reason(errno))") }
            return OutputSink(name: name, descriptor: descriptor, temporary: nil, destination: nil)
        case let .replaced(existing):
            removeStaleTemporaries()
            let temporary = temporaryPath
            TemporaryCleanup.register(temporary)
            unlink(temporary)
            let descriptor = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            guard descriptor >= 0 else {
                let code = errno
                TemporaryCleanup.unregister()
                throw NNError(.io, name, "cannot create the temporary file '\(temporary)': \(OutputTarget.reason(code))")
            }
            let sink = OutputSink(name: name, descriptor: descriptor, temporary: temporary, destination: resolved)
            if let existing {
                // Owner first: changing the owner clears set-id bits that fchmod then restores.
                if geteuid() == 0, fchown(descriptor, existing.st_uid, existing.st_gid) != 0 {
                    let code = errno
                    sink.discard()
                    throw NNError(.io, name, "cannot give the new output the old file's owner: \(OutputTarget.reason(code))")
                }
                if fchmod(descriptor, existing.st_mode & 0o7777) != 0 {
                    let code = errno
                    sink.discard()
                    throw NNError(.io, name, "cannot give the new output the old file's mode: \(OutputTarget.reason(code))")
                }
            }
            return sink
        }
    }
}

/// An open output. Written bytes reach the target only at `commit` when it is a regular file.
final class OutputSink {
    let name: String
    let descriptor: Int32
    private var temporary: String?
    private let destination: String?
    private var closed = false

    init(name: String, descriptor: Int32, temporary: String?, destination: String?) {
        self.name = name
        self.descriptor = descriptor
        self.temporary = temporary
        self.destination = destination
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var base = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let written = Glibc.write(descriptor, base, left)
            if written < 0 {
                if errno == EINTR { continue }
                throw NNError(.io, name, "cannot write the output: \(OutputTarget.reason(errno))")
            }
            left -= written
            base += written
        }
    }

    /// Closes the output; a regular file's temporary copy is renamed over the target.
    func commit() throws {
        if descriptor != 1, !closed {
            closed = true
            if close(descriptor) != 0 {
                let code = errno
                discard()
                throw NNError(.io, name, "cannot write the output: \(OutputTarget.reason(code))")
            }
        }
        guard let temporary, let destination else { return }
        guard rename(temporary, destination) == 0 else {
            let code = errno
            discard()
            throw NNError(.io, name, "cannot move the finished output into place: \(OutputTarget.reason(code))")
        }
        self.temporary = nil
        TemporaryCleanup.unregister()
    }

    /// Abandons the output: a temporary file is removed and the target is left as it was.
    func discard() {
        if descriptor != 1, !closed {
            closed = true
            close(descriptor)
        }
        if let temporary {
            unlink(temporary)
            self.temporary = nil
            TemporaryCleanup.unregister()
        }
    }
}

/// The temporary output file to remove if SIGINT or SIGTERM arrives while it exists. The handler
/// only calls async-signal-safe functions (unlink, signal, raise) on a C string made beforehand.
nonisolated(unsafe) private var pendingTemporary: UnsafeMutablePointer<CChar>? = nil
nonisolated(unsafe) private var handlersInstalled = false

enum TemporaryCleanup {
    static func register(_ path: String) {
        unregister()
        pendingTemporary = strdup(path)
        guard !handlersInstalled else { return }
        handlersInstalled = true
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { received in
                if let path = pendingTemporary { unlink(path) }
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }

    static func unregister() {
        let path = pendingTemporary
        pendingTemporary = nil
        free(path)
    }
}
