import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry
import ModelSpec

/// Matrix products, all row-major.
///
/// `gemm` is the fast path through OpenBLAS; `naiveGemm` is its twin, kept for tests.
public enum Gemm {
    /// c[m×n] = a[m×k] · b[k×n] (b given as [n×k] when `transposeB`), plus c's old value when
    /// `accumulate`.
    ///
    /// Batch-invariant: each row of c comes out the same bits whatever m is and wherever the row
    /// sits, since every row runs the same kernel (`product`) and large products split by rows.
    public static func gemm(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                            m: Int, n: Int, k: Int, transposeB: Bool = false, accumulate: Bool = false) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if !accumulate { c.update(repeating: 0, count: m * n) }
            return
        }
        product(a, lda: k, b, ldb: transposeB ? k : n, transposeB: transposeB, c, ldc: n, m: m, n: n, k: k, accumulate: accumulate)
    }

    /// c[m×n] = a[m×k] · b[k×n] (+ bias[n] on every row) (+ c), each matrix a row-major view with its
    /// own leading dimension. With `packed` (b packed at load, as `group` of a `PackedKernel`) it
    /// runs on the packed kernel, which beats OpenBLAS's sgemm and sgemv on every shape nnbuild
    /// multiplies, and adds the bias in its store.
    package static func gemm(_ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                             _ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int, accumulate: Bool,
                             bias: UnsafePointer<Float>? = nil, packed: PackedKernel? = nil, group: Int = 0) {
        guard m > 0, n > 0, k > 0 else { return }
        if let packed {
            packed.multiply(a, lda: lda, group: group, into: c, ldc: ldc, m: m, accumulate: accumulate, bias: bias)
            return
        }
        // The product, then the bias: the order of the packed kernels' store, so a layer gives the
        // same bits whether its weight was packed or not.
        product(a, lda: lda, b, ldb: ldb, transposeB: false, c, ldc: ldc, m: m, n: n, k: k, accumulate: accumulate)
        if let bias {
            for row in 0..<m {
                for column in 0..<n { c[row * ldc + column] += bias[column] }
            }
        }
    }

    /// Every unpacked product: one kernel for every row count, so that a row's result never
    /// depends on how many rows share the call. Our register-blocked kernel where the CPU allows,
    /// else the portable one (`nnb_sgemm_portable`); OpenBLAS's sgemm only when the call's
    /// settings ask for it (`ExecutionSettings.batchVariantBLAS`), since it picks its kernel, and
    /// so its summation order, by the matrices' sizes (sgemv for one row, a small-matrix kernel
    /// below a size). A transposed b is transposed first, so that it takes the same kernel. A
    /// product of `threadedWork` multiply-adds or more is split by rows across this call's threads
    /// (`KernelOptions`); OpenBLAS itself stays on one thread, never set per call, since its
    /// thread count is process-wide and concurrent callers would race on it.
    @usableFromInline
    static func product(_ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
                        _ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int, accumulate: Bool) {
        let useBLAS = KernelOptions.current.batchVariantBLAS
        if transposeB, !useBLAS {
            // b is [n × k] with row stride ldb: its transpose [k × n], then the plain product.
            var transposed = [Float](repeating: 0, count: k * n)
            for row in 0..<n {
                for column in 0..<k { transposed[column * n + row] = b[row * ldb + column] }
            }
            transposed.withUnsafeBufferPointer {
                product(a, lda: lda, $0.baseAddress!, ldb: n, transposeB: false, c, ldc: ldc, m: m, n: n, k: k, accumulate: accumulate)
            }
            return
        }
        if useBLAS { requireBLAS() }
        let pointers = UncheckedGemm(a: a, b: b, c: c)
        runInParts(m, work: m * n * k) { rows in
            let a = pointers.a + rows.lowerBound * lda, c = pointers.c + rows.lowerBound * ldc
            if useBLAS {
                _ = nnb_blas_sgemm(transposeB ? 1 : 0, rows.count, n, k, a, lda, pointers.b, ldb, accumulate ? 1 : 0, c, ldc)
            } else if useAVX2Kernels {
                nnb_sgemm_small(a, lda, pointers.b, ldb, c, ldc, rows.count, n, k, accumulate ? 1 : 0)
            } else {
                nnb_sgemm_portable(a, lda, pointers.b, ldb, c, ldc, rows.count, n, k, accumulate ? 1 : 0)
            }
        }
    }

    /// Stops the process when `batchVariantBLAS` asks for OpenBLAS and it cannot be loaded. It is
    /// loaded on first use (`nnb_blas_sgemm`, on one thread: our own threads split the products),
    /// not linked, so that the processes that never ask for it, all but this setting's, do not map
    /// it: 2.1 MB of ResNet50's peak RSS with libgfortran and libquadmath, and its thread. Without
    /// it the setting cannot be honoured, as a missing library stopped the process at start before.
    static func requireBLAS() {
        guard nnb_blas_available() == 0 else { return }
        fatalError("ExecutionSettings.batchVariantBLAS needs OpenBLAS, and libopenblas.so.0 could not be loaded (apt-get install libopenblas0)")
    }

    /// The naive twin of `gemm`, in double precision accumulation.
    public static func naiveGemm(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                 m: Int, n: Int, k: Int, transposeB: Bool = false, accumulate: Bool = false) {
        for i in 0..<m {
            for j in 0..<n {
                var sum: Double = accumulate ? Double(c[i * n + j]) : 0
                for p in 0..<k {
                    sum += Double(a[i * k + p]) * Double(transposeB ? b[j * k + p] : b[p * n + j])
                }
                c[i * n + j] = Float(sum)
            }
        }
    }

    /// The kernel path every kernel runs on (`nnb_kernel_level`): the CPU's best, or a lower one
    /// that `NNBUILD_KERNELS` forces (`baseline`, the portable OpenBLAS and Swift SIMD path, for
    /// comparing paths or testing the fallback on any machine; `avx2`; `avx512`).
    public static let kernelPath = KernelPath(rawValue: Int(nnb_kernel_level())) ?? .baseline

    /// The best path this CPU supports.
    public static let cpuKernelPath = KernelPath(rawValue: Int(nnb_cpu_kernel_level())) ?? .baseline

    /// Whether the kernels in CKernels run (AVX2 + FMA or better); else the portable path.
    public static let useAVX2Kernels = kernelPath >= .avx2

    /// Why `NNBUILD_KERNELS` (as `value`) cannot be honoured on this CPU, or nil when it can (or is
    /// unset): an unknown name, or a path this CPU lacks. The command line refuses both, rather
    /// than running silently on another path than the one asked for.
    public static func kernelRequestProblem(_ value: String?) -> String? {
        guard let value else { return nil }
        guard let wanted = KernelPath(name: value) else {
            return "NNBUILD_KERNELS is '\(value)': expected one of \(KernelPath.allCases.map(\.description).joined(separator: ", "))"
        }
        if wanted > cpuKernelPath {
            return "NNBUILD_KERNELS is '\(value)', but this CPU supports at most '\(cpuKernelPath)'"
        }
        return nil
    }

    /// The threads the current `predict` call may use (`ExecutionSettings.threads`, carried by
    /// `KernelOptions`), at most the pool's (the cores the process may use); 1 inside a task that
    /// already runs on the pool, and while the pool backs off to its caller alone on a busy
    /// machine (`nnb_pool_backing_off`), so that work is not cut into parts that one thread then
    /// runs one after another.
    static var allowedThreads: Int {
        let threads = KernelOptions.current.threads
        guard threads > 1 else { return threads }
        // No more than the pool has (its cores: a process confined to one CPU has no worker).
        return nnb_pool_backing_off() != 0 ? 1 : usableThreads(threads)
    }

    /// The threads a call asking for `requested` gets at most: no more than the cores the process
    /// may use (its affinity mask and cgroup CPU quota, as the pool counts them).
    public static func usableThreads(_ requested: Int) -> Int {
        requested > 1 ? min(requested, nnb_pool_threads()) : max(requested, 1)
    }

    /// Runs `body` with a budget of `count` threads, as a `predict` call with
    /// `ExecutionSettings(threads: count)` does: for tests of a kernel's own splitting.
    package static func withThreads<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        try KernelOptions.$current.withValue(KernelOptions.current.with(threads: count), operation: body)
    }

    /// Below this many multiply-adds a product runs on one thread: handing a recurrent step's
    /// 64×256 matrix-vector product to a second thread costs more than the product (measured:
    /// bilstm_text at batch 1 ran 25% faster on one thread), while a convolution's GEMM gains.
    public static let threadedWork = 1 << 20
}

/// The matrices the row parts of one unpacked product share, each part writing its own rows of c.
private struct UncheckedGemm: @unchecked Sendable {
    let a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
}

/// A value made at most once, when it pays: at the second call, or at the first call that asks for
/// it `now` (a large batch). Until then, and for good when `make` declines, callers take their
/// direct path. What `PackedOnDemand` and `TokenProjection` share.
final class MadeOnDemand<Value>: @unchecked Sendable {
    private let lock = Lock()
    private var value: Value?
    private var calls = 0
    private var declined = false

    func get(now: Bool, _ make: () -> Value?) -> Value? {
        lock.lock()
        defer { lock.unlock() }
        calls += 1
        if value == nil, !declined, now || calls > 1 {
            value = make()
            declined = value == nil
        }
        return value
    }
}

/// A weight matrix [rows × columns] packed on demand: at the first product of more than one row,
/// or at the second call of any size. Until then a single row is multiplied by the weight in
/// place (`nnb_row_times_matrix`, split across threads by columns), so a one-sample `nnbuild
/// infer` never pays for packing a large Dense kernel (3 ms for 6272×256 here, nearly all page
/// faults on fresh memory), while a server packs at its second request and runs faster after.
final class PackedOnDemand: @unchecked Sendable {
    private let packed = MadeOnDemand<PackedKernel>()
    let weight: Weight
    let rows: Int
    let columns: Int

    init(_ weight: Weight, rows: Int, columns: Int) {
        self.weight = weight
        self.rows = rows
        self.columns = columns
    }

    /// The packed kernel for a product of `m` rows, nil when this call should read the weight in place.
    func kernel(rows m: Int) -> PackedKernel? {
        packed.get(now: m > 1) { PackedKernel(weight, patch: rows, filters: columns, groups: 1) }
    }

    /// y[columns] = x[rows] · the weight + bias, then max(·, 0) when `relu`, reading the weight in
    /// place; split by columns across the threads allowed when it reaches `Gemm.threadedWork`.
    func rowTimesWeight(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool) {
        let n = columns, k = rows
        weight.storage.withBuffer { w in
            let pointers = UncheckedRowProduct(x: x, w: w.baseAddress!, y: y, bias: bias)
            // Parts of whole 16-column blocks, so that each keeps whole vectors.
            runInParts((n + 15) / 16, work: n * k) { blocks in
                let first = blocks.lowerBound * 16, width = min(n, blocks.upperBound * 16) - first
                guard width > 0 else { return }
                nnb_row_times_matrix(pointers.x, pointers.w + first, n, pointers.y + first, width, k, 0,
                                     pointers.bias.map { $0 + first }, relu ? 1 : 0)
            }
        }
    }
}

/// A weight matrix packed once into the panels `nnb_sgemm_packed` reads: one packing per group of
/// its (rows × columns) column blocks, instead of OpenBLAS packing the same weights on every call.
/// Convolutions pack their kernel (patch × filters per group) at load, recurrent layers their
/// input and recurrent kernels; Dense packs on demand (`PackedOnDemand`).
package struct PackedKernel: Sendable {
    let panels: AlignedFloats
    let groupStride: Int
    /// The inner dimension of each product (k) and the columns of one group (n).
    let rows: Int
    let columns: Int

    /// Packs `matrix` [rows, filters] (row-major, e.g. a kernel [kh, kw, C/groups, F] with
    /// rows = kh·kw·C/groups) as `groups` column groups of filters / groups; nil where the AVX2
    /// kernels do not run (the OpenBLAS path needs no packing).
    ///
    /// Packing pads each group's columns to a multiple of 16, so a narrow weight grows: a
    /// one-filter convolution would take 16 floats per weight (the spec fuzzer found a 622 MB
    /// kernel asking for 10 GB). A weight whose packed form would pass twice its size, and 64 K
    /// floats, is not packed, and the OpenBLAS path takes it.
    package init?(_ matrix: UnsafeBufferPointer<Float>, patch rows: Int, filters: Int, groups: Int) {
        self.init(matrix, patch: rows, filters: filters, groups: groups, packed: { _ in })
    }

    /// Packs a layer's weight as above, a block of rows at a time, and each block's mapped pages
    /// leave memory once it is packed, since only the packed copy is read from here on: the two
    /// copies never take memory at once (a Dense packed at its second call, whose weight the first
    /// read in place: ResNet50's 2048×1000 classifier, 7.8 MiB, peaked at twice that).
    package init?(_ weight: Weight, patch rows: Int, filters: Int, groups: Int) {
        self.init(weight.values, patch: rows, filters: filters, groups: groups) { done in
            weight.storage.evict((done.lowerBound * filters)..<(done.upperBound * filters))
        }
        weight.storage.evict()
    }

    /// Rows of the matrix packed at a time by `init(_:patch:filters:groups:packed:)`: 256 KB.
    static let packingBlockElements = 1 << 16

    /// Packs `matrix` a block of rows at a time, calling `packed` with each block's rows once it is.
    private init?(_ matrix: UnsafeBufferPointer<Float>, patch rows: Int, filters: Int, groups: Int, packed: (Range<Int>) -> Void) {
        guard Gemm.useAVX2Kernels, let w = matrix.baseAddress, rows > 0, filters > 0, groups > 0 else { return nil }
        let columns = filters / groups
        let groupFloats = (columns + 15) / 16 * 16 * rows
        guard groupFloats * groups <= max(2 * rows * filters, 1 << 16) else { return nil }
        self.rows = rows
        self.columns = columns
        groupStride = groupFloats
        let block = max(1, Self.packingBlockElements / filters)
        panels = AlignedFloats(count: groupFloats * groups) { buffer in
            for first in stride(from: 0, to: rows, by: block) {
                let count = min(block, rows - first)
                for group in 0..<groups {
                    nnb_pack_panel_rows(w + group * columns, filters, rows, first, count, columns, buffer.baseAddress! + group * groupFloats)
                }
                packed(first..<(first + count))
            }
        }
    }

    /// c[m × columns] (row stride ldc) = a[m × rows] (row stride lda) · group `group`, plus c's old
    /// values when `accumulate`, plus `bias` (columns values) when given, then max(·, 0) when
    /// `relu`. A product of at least `Gemm.threadedWork` multiply-adds is split across the threads
    /// allowed: by rows, or for fewer rows than threads (a batch of one) by 16-column panels.
    package func multiply(_ a: UnsafePointer<Float>, lda: Int, group: Int = 0, into c: UnsafeMutablePointer<Float>, ldc: Int,
                          m: Int, accumulate: Bool = false, bias: UnsafePointer<Float>? = nil, relu: Bool = false) {
        let panelCount = (columns + 15) / 16
        let pointers = UncheckedProduct(a: a, c: c, bias: bias)
        let work = m * columns * rows
        let byRows = work < Gemm.threadedWork || m >= Gemm.allowedThreads
        // By panels, whole groups of four: one row takes four panels at a time (eight FMA chains,
        // row_times_panels), and parts of two panels left each thread two chains, latency-bound:
        // cnn_cifar's Dense 6272×256 at batch 1 ran no faster on two threads than on one.
        let groups = (panelCount + 3) / 4
        runInParts(byRows ? m : groups, work: work) { range in
            let panels = byRows ? 0..<panelCount : min(panelCount, 4 * range.lowerBound)..<min(panelCount, 4 * range.upperBound)
            run(pointers.a, lda: lda, group: group, pointers.c, ldc: ldc, rows: byRows ? range : 0..<m, panels: panels,
                accumulate: accumulate, bias: pointers.bias, relu: relu)
        }
    }

    /// Columns `columns` (from and, but for the group's last column, to a multiple of 16) of
    /// `multiply` for every row, on this thread: the same bits as the whole product's.
    func multiply(_ a: UnsafePointer<Float>, lda: Int, group: Int = 0, into c: UnsafeMutablePointer<Float>, ldc: Int, m: Int,
                  columns: Range<Int>, accumulate: Bool = false, bias: UnsafePointer<Float>? = nil) {
        run(a, lda: lda, group: group, c, ldc: ldc, rows: 0..<m, panels: (columns.lowerBound / 16)..<((columns.upperBound + 15) / 16),
            accumulate: accumulate, bias: bias, relu: false)
    }

    /// Rows `rows` and 16-column panels `panels` of `multiply`, on this thread.
    private func run(_ a: UnsafePointer<Float>, lda: Int, group: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int, rows: Range<Int>,
                     panels: Range<Int>, accumulate: Bool, bias: UnsafePointer<Float>?, relu: Bool) {
        guard !rows.isEmpty, !panels.isEmpty else { return }
        let first = panels.lowerBound * 16, width = min(columns, panels.upperBound * 16) - first
        self.panels.withUnsafeBufferPointer { packed in
            nnb_sgemm_packed(a + rows.lowerBound * lda, lda, packed.baseAddress! + group * groupStride + first * self.rows,
                             c + rows.lowerBound * ldc + first, ldc, rows.count, width, self.rows, accumulate ? 1 : 0,
                             bias.map { $0 + first }, relu ? 1 : 0)
        }
    }
}

/// The pointers the column parts of one in-place row product share, each writing its own part of y.
private struct UncheckedRowProduct: @unchecked Sendable {
    let x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?
}

/// The pointers the slices of one packed product share, each slice writing its own part of c.
private struct UncheckedProduct: @unchecked Sendable {
    let a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?
}

/// A set of kernels, chosen at run time by what the CPU supports (`Gemm.kernelPath`).
public enum KernelPath: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    /// OpenBLAS and portable Swift SIMD code: any x86-64 or other CPU.
    case baseline = 0
    /// AVX2 + FMA kernels.
    case avx2 = 1
    /// AVX-512 (F, BW, VL, DQ) kernels.
    case avx512 = 2

    /// The path `NNBUILD_KERNELS` names, or nil.
    public init?(name: String) {
        guard let path = KernelPath.allCases.first(where: { $0.description == name }) else { return nil }
        self = path
    }

    public var description: String {
        switch self {
        case .baseline: "baseline"
        case .avx2: "avx2"
        case .avx512: "avx512"
        }
    }

    public static func < (lhs: KernelPath, rhs: KernelPath) -> Bool { lhs.rawValue < rhs.rawValue }
}
