#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The three things the libraries took from Foundation that FoundationEssentials does not have:
// a lock, a condition, and printf-style formatting. With them here, no module imports Foundation,
// so a process running a model never loads libFoundation and ICU: about 7 MB less resident
// memory and a faster start. (FoundationEssentials still gives Data, JSON coders, FileManager,
// URL, Date and ProcessInfo.)

/// A mutual-exclusion lock (a pthread mutex), for state shared between threads.
public final class Lock: @unchecked Sendable {
    fileprivate let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
    /// Takes the lock if no one holds it; true if it did.
    public func `try`() -> Bool { pthread_mutex_trylock(mutex) == 0 }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A lock with a condition variable: `wait` releases the lock until `broadcast` (or a timeout).
public final class Condition: @unchecked Sendable {
    private let guarded = Lock()
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        #if os(Linux)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, Condition.clock)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        #else
        pthread_cond_init(condition, nil)
        #endif
    }

    #if os(Linux)
    /// The clock of the deadlines: the monotonic one, which a change of the wall clock does not move.
    private static let clock = CLOCK_MONOTONIC
    #else
    /// The clock of the deadlines: the wall clock, the only one a pthread condition waits on here.
    private static let clock = CLOCK_REALTIME
    #endif

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    public func lock() { guarded.lock() }
    public func unlock() { guarded.unlock() }
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// Waits, with the lock held, until a broadcast or until `seconds` have passed (then false).
    /// Wakes may be spurious: callers recheck their predicate, as with any condition variable.
    @discardableResult
    public func wait(seconds: Double) -> Bool {
        var now = timespec()
        clock_gettime(Condition.clock, &now)
        let wait = seconds.isNaN ? 0 : Swift.min(Swift.max(seconds, 0), 1e9)  // at most about 31 years
        let whole = wait.rounded(.down)
        var nanoseconds = Int(now.tv_nsec) + Int((wait - whole) * 1e9)
        var deadline = timespec()
        deadline.tv_sec = now.tv_sec + Int(whole) + nanoseconds / 1_000_000_000
        nanoseconds %= 1_000_000_000
        deadline.tv_nsec = nanoseconds
        return pthread_cond_timedwait(condition, guarded.mutex, &deadline) == 0
    }
}

/// `format` with C's printf conventions (`"%.3e"`, `"%9.3f"`, `"\\u%04x"`): what Foundation's
/// `String(format:)` gave, for the numbers nnbuild prints.
public func formatted(_ format: String, _ arguments: CVarArg...) -> String {
    let needed = withVaList(arguments) { vsnprintf(nil, 0, format, $0) }
    guard needed > 0 else { return "" }
    var buffer = [UInt8](repeating: 0, count: Int(needed) + 1)
    _ = buffer.withUnsafeMutableBufferPointer { bytes in
        withVaList(arguments) { vsnprintf(UnsafeMutableRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self), bytes.count, format, $0) }
    }
    return String(decoding: buffer[..<Int(needed)], as: UTF8.self)
}
