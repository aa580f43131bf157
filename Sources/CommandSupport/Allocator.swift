#if canImport(Glibc)
import Glibc
#endif

/// How the command line sets glibc's allocator for its two phases, whose needs are opposite.
///
/// Loading makes blocks that live as long as the model (packed weights, Winograd transforms)
/// beside large temporaries (a transform before it is packed). There every block of 128 KB or more
/// gets its own mapping, returned to the system as soon as it is freed; in the heap, a freed
/// temporary stayed resident as a hole the later, larger blocks did not fit in (ResNet50: 37 MB,
/// a fifth of its peak).
///
/// Running makes and frees the same outputs on every call, and glibc maps any block over 32 MB
/// (its highest threshold) on its own: MobileNetV2's outputs at batch 16 (77 MB) were mapped
/// fresh and their pages faulted in, zeroed, on every call. While running no new mapping is
/// made (`M_MMAP_MAX` 0): a freed output stays in the heap for the next call's, and the heap's
/// free top is returned past the trim threshold (256 MB), so what stays is bounded by the largest
/// call's working set.
///
/// A command that runs one call at a time keeps one arena (`M_ARENA_MAX` 1): a batch's slices run
/// on the pool's workers, and in an arena of its own each worker's slice output (in a heap of at
/// most 64 MB, or mapped past that) was made afresh and dropped on every call. `serve` keeps
/// glibc's arenas, one per thread up to 8 a core, for its concurrent requests; there a thread's
/// block too large for its arena is still mapped (glibc's fallback).
package enum Allocator {
    /// The settings for the start of the process, which loads a model first; `oneArena` for a
    /// command that runs one call at a time (every command but `serve`).
    package static func start(oneArena: Bool) {
        _ = glibcMallopt(mallocTrimThreshold, 256 << 20)
        if oneArena { _ = glibcMallopt(mallocArenaMax, 1) }
        setLoading()
    }

    /// Runs `body`, which loads a model, with loading's settings, then sets running's.
    package static func loading<Result>(_ body: () throws -> Result) rethrows -> Result {
        setLoading()
        defer {
            setRunning()
            // The heap's holes that loading's temporaries left (parsed JSON, names, shape lists)
            // go back to the system: ResNet50's peak RSS 148.5 → 147.3 MB, no slower to load.
            _ = glibcMallocTrim(0)
        }
        return try body()
    }

    static func setLoading() {
        _ = glibcMallopt(mallocMmapMax, 65536)  // glibc's default
        _ = glibcMallopt(mallocMmapThreshold, 128 << 10)
    }

    static func setRunning() {
        _ = glibcMallopt(mallocMmapThreshold, 32 << 20)
        _ = glibcMallopt(mallocMmapMax, 0)
    }

    // malloc.h's parameter numbers (malloc.h is not part of the Glibc module).
    static let mallocTrimThreshold: Int32 = -1
    static let mallocMmapThreshold: Int32 = -3
    static let mallocMmapMax: Int32 = -4
    static let mallocArenaMax: Int32 = -8
}

/// glibc's mallopt.
@_silgen_name("mallopt")
package func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// glibc's malloc_trim: returns the free pages of every arena (inside the heap as well as at its top).
@_silgen_name("malloc_trim")
package func glibcMallocTrim(_ pad: Int) -> Int32
