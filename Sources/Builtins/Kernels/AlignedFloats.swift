/// Floats that start on a 64-byte boundary: a cache line, and one AVX-512 vector.
///
/// The GEMM kernels stream their packed panels 16 floats (64 bytes) at a time. A Swift array's
/// elements start 32 bytes into a block glibc aligns to 16 only (48 bytes past a page for a
/// mapped one), so in an array every other such load straddled two cache lines. On the AMD EPYC
/// (Zen 5) that cost nothing measurable; on the Intel Xeon (family 6, model 207) a split load
/// costs a second L1 access, and a one-row product over 192 KB of panels read from L2 (gru_text's
/// recurrent step) took 3.0 µs where aligned panels take 2.0 (AVX2) or 1.6 (AVX-512).
package final class AlignedFloats: @unchecked Sendable {
    static let alignment = 64
    /// The block malloc gave (freed at deinit), and the first float on a line inside it.
    private let block: UnsafeMutablePointer<Float>
    private let base: UnsafeMutablePointer<Float>
    let count: Int

    /// `count` floats that `fill` initializes (all of them) before anything reads them.
    init(count: Int, _ fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        (block, base) = Self.lineAligned(count)
        self.count = count
        fill(UnsafeMutableBufferPointer(start: base, count: count))
    }

    deinit { block.deallocate() }

    /// A block of malloc's with room for `count` floats from a 64-byte line on, and that line.
    /// (Not posix_memalign: its carved-off remainders left the heap fragmented while running, and
    /// ResNet50's peak memory rose 3 MB.)
    private static func lineAligned(_ count: Int) -> (block: UnsafeMutablePointer<Float>, first: UnsafeMutablePointer<Float>) {
        let lanes = alignment / MemoryLayout<Float>.stride
        let block = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1) + lanes - 1)
        let misalignment = Int(bitPattern: block) % alignment / MemoryLayout<Float>.stride
        return (block, block + (misalignment == 0 ? 0 : lanes - misalignment))
    }

    /// Runs `body` with `count` uninitialized floats on a 64-byte boundary, a kernel's scratch
    /// that its vector loads and stores stream through (freed after).
    static func withScratch<Result>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> Result) rethrows -> Result {
        let (block, first) = lineAligned(count)
        defer { block.deallocate() }
        return try body(first)
    }

    /// The floats, copied into an array.
    var array: [Float] { withUnsafeBufferPointer { Array($0) } }

    /// Whether the first float starts on a 64-byte boundary (always, by construction).
    var isLineAligned: Bool { Int(bitPattern: base) % Self.alignment == 0 }

    func withUnsafeBufferPointer<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result {
        try body(UnsafeBufferPointer(start: base, count: count))
    }
}
