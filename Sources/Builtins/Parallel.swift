import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

/// Runs `count` independent tasks on the threads this `predict` call allows (`KernelOptions`, from
/// `ExecutionSettings.threads`): concurrently when more than one is allowed, else in order. Inside
/// a task the budget is 1, so a task that asks for threads itself (a Bidirectional half inside a
/// batch slice) runs in order, and threads never nest. Results come back in task order; the first
/// error is rethrown.
///
/// The threads are CKernels' pool (`nnb_parallel_for`): each takes the next task no one has
/// started, so a worker that the scheduler puts off costs only what it has started. Its workers
/// spin briefly between jobs: at batch 1 a model runs a parallel step every few tens of
/// microseconds, and waking a parked thread for each (as Dispatch's concurrentPerform did) cost
/// about as much as the step.
public func runConcurrently<T>(_ count: Int, _ task: (Int) throws -> T) throws -> [T] {
    // While the pool runs jobs on its caller alone (a stall, or other processes' threads on the
    // cores) the tasks run in order here, as with one thread allowed, without binding options
    // or calling into the pool.
    let threads = Gemm.allowedThreads
    guard threads > 1, count > 1 else { return try (0..<count).map(task) }
    var results = [Result<T, Error>?](repeating: nil, count: count)
    results.withUnsafeMutableBufferPointer { slots in
        let slots = UncheckedSendable(slots)
        // Each task writes only its own slot.
        onPool(count, threads: threads) { index in slots.value[index] = Result { try task(index) } }
    }
    // nnb_parallel_for has run every task, so every slot is filled.
    return try results.compactMap { $0 }.map { try $0.get() }
}

/// `runConcurrently` for tasks that return nothing and cannot fail (a kernel's parts): no array
/// of results to allocate and read back, once per layer at batch 1.
func runInParallel(_ count: Int, _ task: (Int) -> Void) {
    runInParallel(count, weights: nil, task)
}

/// `runInParallel` with each task's work (`weights`, one per task, in any unit): tasks cut by
/// `shareBoundaries`, one per thread, which the pool then times to learn the threads' speeds.
func runInParallel(_ count: Int, weights: [Double]?, _ task: (Int) -> Void) {
    let threads = Gemm.allowedThreads
    guard threads > 1, count > 1 else {
        for index in 0..<count { task(index) }
        return
    }
    onPool(count, threads: threads, weights: weights?.count == count ? weights : nil, task)
}

/// Runs `task` for 0..<count on up to `threads` of the pool's threads (`nnb_parallel_for`), each
/// with this call's options but one thread: bound once around the job on this thread, and on a
/// pool worker (where task-local values start unset) only when they differ from the unset ones.
/// Binding a task-local value allocates; once per task, a worker's allocations and the caller's
/// met on one malloc lock, and each wait for it put a thread to sleep (MobileNetV2 and cnn_cifar
/// at batch 1).
private func onPool(_ count: Int, threads: Int, weights: [Double]? = nil, _ task: (Int) -> Void) {
    let inner = KernelOptions.current.with(threads: 1)
    KernelOptions.$current.withValue(inner) {
        let body: (Int) -> Void = { index in
            if KernelOptions.current == inner {
                task(index)
            } else {
                KernelOptions.$current.withValue(inner) { task(index) }
            }
        }
        withoutActuallyEscaping(body) { body in
            withUnsafePointer(to: body) { pointer in
                let run: nnb_task = { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }
                if let weights {
                    weights.withUnsafeBufferPointer { nnb_parallel_for_weighted(count, threads, run, UnsafeMutableRawPointer(mutating: pointer), $0.baseAddress) }
                } else {
                    nnb_parallel_for(count, threads, run, UnsafeMutableRawPointer(mutating: pointer))
                }
            }
        }
    }
}

/// Runs `body` over 0..<count: in contiguous parts, a few per allowed thread (so that a thread
/// the scheduler puts off leaves small parts for the others to take), when `work` (the
/// multiply-adds it stands for) reaches `splitWork`, else in one call on this thread. How the
/// kernels split a single row's work: a convolution's pixels or tiles, a product's rows or panels.
/// Every kernel computes each output element in the same order whatever range it is given, so
/// the split never changes a result.
func runInParts(_ count: Int, work: Int, splitWork: Int = Gemm.threadedWork, _ body: (Range<Int>) -> Void) {
    let parts = partRanges(count, work: work, splitWork: splitWork)
    guard parts.count > 1 else {
        body(0..<count)
        return
    }
    runInParallel(parts.count) { part in body(parts[part]) }
}

/// The contiguous parts `runInParts` cuts 0..<count into, in order (one when it runs unsplit).
func partRanges(_ count: Int, work: Int, splitWork: Int = Gemm.threadedWork) -> [Range<Int>] {
    // (The work first: asking the pool costs a clock read, and a recurrent step's products, too
    // small to split, ask at every step.)
    guard work >= splitWork, count > 1 else { return [0..<count] }
    let threads = Gemm.allowedThreads
    let parts = min(threads * partsPerThread, count)
    guard threads > 1, parts > 1 else { return [0..<count] }
    return evenRanges(count, parts: parts)
}

/// 0..<count cut into `parts` contiguous runs, in order, their sizes at most one apart.
func evenRanges(_ count: Int, parts: Int) -> [Range<Int>] {
    (0..<parts).map { ($0 * count / parts)..<(($0 + 1) * count / parts) }
}

/// For step in 0..<steps: `part(step, p)` for every p in 0..<parts, then `end(step)` on this
/// thread, each step's parts after the previous step's end (`nnb_parallel_steps`): a recurrence's
/// steps, cut by units across the threads allowed, with one worker joining for the whole
/// sequence rather than a job per step. Alone (one thread allowed, the pool busy or backing
/// off) the parts run in order on this thread. With `tuning` (the call site's), the steps run as
/// a team or alone, whichever it has timed faster for `key` (`nnb_parallel_steps`). Returns how
/// many parts a worker ran.
@discardableResult
package func runSteps(_ steps: Int, parts: Int, tuning: StepTuning? = nil, key: Int = 0, _ part: (Int, Int) -> Void,
                      end: (Int) -> Void) -> Int {
    withoutActuallyEscaping(part) { part in
        withoutActuallyEscaping(end) { end in
            var bodies = StepBodies(part: part, end: end)
            return withUnsafeMutablePointer(to: &bodies) { pointer in
                nnb_parallel_steps(steps, parts, Gemm.allowedThreads, { context, step, part in
                    context!.assumingMemoryBound(to: StepBodies.self).pointee.part(step, part)
                }, { context, step in
                    context!.assumingMemoryBound(to: StepBodies.self).pointee.end(step)
                }, pointer, tuning?.timings, key)
            }
        }
    }
}

/// A call site's timings of its steps as a team and alone (`runSteps`): C memory, read and
/// written by the pool under its lock only.
package final class StepTuning: @unchecked Sendable {
    let timings: UnsafeMutablePointer<nnb_step_tuning>

    package init() {
        timings = .allocate(capacity: 1)
        timings.initialize(to: nnb_step_tuning())
    }

    deinit { timings.deallocate() }
}

/// What `runSteps` hands the pool: the parts (run on any thread) and the end of each step.
private struct StepBodies {
    let part: (Int, Int) -> Void
    let end: (Int) -> Void
}

/// Where to cut `units` into `pieces` runs, one per thread of this call (`pieces` equal to
/// `Gemm.allowedThreads`): in proportion to the threads' speeds as the pool has measured them
/// (`nnb_pool_share`), each run at least one unit where there are as many; `pieces + 1`
/// boundaries from 0 to `units`. Piece i goes to seat i (the caller, then the workers), as the
/// pool hands a job of one item per thread out. Tasks cut so run through
/// `runInParallel(_:weights:_:)`, which lets the pool time them.
func shareBoundaries(units: Int, pieces: Int) -> [Int] {
    guard pieces > 1 else { return [0, units] }
    var boundaries = [0], share = 0.0
    for piece in 1..<pieces {
        share += nnb_pool_share(piece - 1, pieces)
        let lowest = boundaries[piece - 1] + (units >= pieces ? 1 : 0)
        let highest = units - (units >= pieces ? pieces - piece : 0)
        boundaries.append(min(max(Int((share * Double(units)).rounded()), lowest), highest))
    }
    boundaries.append(units)
    return boundaries
}

/// A part of a product's output: some of its rows (output pixels, Winograd tiles, batch rows)
/// times some of its columns (filters).
struct ProductPart: Sendable {
    let rows: Range<Int>
    let columns: Range<Int>
}

/// Cuts a product's output, `rows` × `columns`, into parts for this call's threads (a few per
/// thread, as `runInParts`, or one per thread for a small product), or one part when one thread is allowed or the product is under
/// `splitWork` multiply-adds. Every part but the last along each axis is a whole number of
/// `rowBlock` rows and `columnBlock` columns, so the kernels run no partial register block
/// inside it. Of the cuts into r row slices × c column slices, it takes the one whose largest part
/// takes least time: its share of the multiply-adds, and what it reads, the weights of its
/// columns (`bytesPerColumn` each) and the inputs of its rows (`bytesPerRow` each). So a large layer on a small
/// image (ResNet50's last stage at batch 1: 49 pixels, 4 MB of weights) is cut by its filters,
/// and each thread streams its half of the weights once, where a cut by pixels had every part
/// stream all of them; a large image on a small kernel is cut by its pixels.
/// `columnBlock` equal to `columns` keeps the columns whole. `inputBytesPerRow` is what of a row's
/// reading comes from the layer before (`bytesPerRow` unless said otherwise: a Winograd tile's
/// transformed input, most of its bytes, is made and read by the part itself).
func productParts(rows: Int, columns: Int, rowBlock: Int, columnBlock: Int, bytesPerRow: Int, bytesPerColumn: Int,
                  inputBytesPerRow: Int? = nil, work: Int, splitWork: Int = Gemm.threadedWork) -> [ProductPart] {
    let whole = [ProductPart(rows: 0..<rows, columns: 0..<columns)]
    guard work >= splitWork, rows > 0, columns > 0 else { return whole }
    let threads = Gemm.allowedThreads
    guard threads > 1 else { return whole }
    // Where the threads sit far apart (`nnb_pool_far_apart`: different L3 caches), a part that
    // takes some of the columns reads every row of the input, half of it written by the other
    // core in the layer before, and writes lines of every output row, which the next layer's parts
    // read across again. There a cut by columns pays only when the weights outweigh the input
    // (`farApartColumnCut`).
    let columnBlock = nnb_pool_far_apart() != 0
        && Double(columns) * Double(bytesPerColumn) < farApartColumnCut * Double(rows) * Double(inputBytesPerRow ?? bytesPerRow)
        ? columns : columnBlock
    let rowUnits = (rows + max(rowBlock, 1) - 1) / max(rowBlock, 1)
    let columnUnits = (columns + max(columnBlock, 1) - 1) / max(columnBlock, 1)
    // One part a thread below 16 M multiply-adds: MobileNetV2's layers at batch 1 (a few
    // million each, tens of microseconds) ran 6% faster cut in two than in eight.
    let target = threads * (work < smallProductWork ? 1 : partsPerThread)
    // Enough parts for every thread and half the target, where the units allow as many.
    let least = min(max(threads, target / 2), rowUnits * columnUnits)
    guard least > 1 else { return whole }
    func slice(_ piece: Int, of count: Int, units: Int, block: Int, into pieces: Int) -> Range<Int> {
        min(count, piece * units / pieces * block)..<min(count, (piece + 1) * units / pieces * block)
    }
    func slices(_ count: Int, units: Int, block: Int, into pieces: Int) -> [Range<Int>] {
        (0..<pieces).map { slice($0, of: count, units: units, block: block, into: pieces) }
    }
    // The largest of those slices, without an array (the search below runs for every layer).
    func largest(_ count: Int, units: Int, block: Int, into pieces: Int) -> Int {
        var most = 0
        for piece in 0..<pieces { most = max(most, slice(piece, of: count, units: units, block: block, into: pieces).count) }
        return most
    }
    // The cut whose largest part takes least time, a part's time being its multiply-adds plus
    // what it reads at `multiplyAddsPerByte`.
    var best: (cut: (rows: Int, columns: Int), cost: Double)?
    for rowCut in 1...min(target, rowUnits) {
        let columnCut = min(columnUnits, max(1, target / rowCut))
        guard rowCut * columnCut >= least else { continue }
        let partRows = largest(rows, units: rowUnits, block: rowBlock, into: rowCut)
        let partColumns = largest(columns, units: columnUnits, block: columnBlock, into: columnCut)
        let multiplyAdds = Double(work) * Double(partRows) / Double(rows) * Double(partColumns) / Double(columns)
        let bytes = Double(partRows) * Double(bytesPerRow) + Double(partColumns) * Double(bytesPerColumn)
        let cost = multiplyAdds + multiplyAddsPerByte * bytes
        if best == nil || cost < best!.cost { best = ((rowCut, columnCut), cost) }
    }
    guard let cut = best?.cut else { return whole }
    // One part a thread along one axis: cut by the threads' speeds (`shareBoundaries`).
    func shared(_ count: Int, units: Int, block: Int) -> [Range<Int>] {
        let boundaries = shareBoundaries(units: units, pieces: threads)
        return (0..<threads).map { min(count, boundaries[$0] * block)..<min(count, boundaries[$0 + 1] * block) }
    }
    if target == threads, cut.rows * cut.columns == threads, cut.rows == 1 || cut.columns == 1 {
        return cut.columns == 1 ? shared(rows, units: rowUnits, block: max(rowBlock, 1)).map { ProductPart(rows: $0, columns: 0..<columns) }
            : shared(columns, units: columnUnits, block: max(columnBlock, 1)).map { ProductPart(rows: 0..<rows, columns: $0) }
    }
    let rowSlices = slices(rows, units: rowUnits, block: rowBlock, into: cut.rows)
    let columnSlices = slices(columns, units: columnUnits, block: columnBlock, into: cut.columns)
    return rowSlices.flatMap { rows in columnSlices.map { ProductPart(rows: rows, columns: $0) } }
}

/// Runs `body` on each part, concurrently on the threads allowed when there are several.
func runParts(_ parts: [ProductPart], _ body: (ProductPart) -> Void) {
    guard parts.count > 1 else {
        parts.forEach(body)
        return
    }
    runInParallel(parts.count, weights: parts.map { Double($0.rows.count) * Double($0.columns.count) }) { body(parts[$0]) }
}

/// Where the threads sit far apart, `productParts` cuts by columns only when the weights take at
/// least this many times the bytes of the input rows: MobileNetV2's last 1×1 convolutions
/// (7×7 pixels, 1.2-1.6 MB of weights, 6 to 25 times their input) ran faster cut by filters,
/// its 14×14 expansions (weights 2 to 3 times their input) cut by pixels.
let farApartColumnCut = 4.0

/// How `productParts` weighs a byte read against a multiply-add: a core runs about 100 G of them a
/// second and reads about 25 GB/s from L3 (the AMD EPYC).
let multiplyAddsPerByte = 4.0

/// Below this many multiply-adds `productParts` cuts a product into one part per thread.
let smallProductWork = 16 << 20

/// Parts per thread in `runInParts`: enough that a late thread's loss is small, few enough that
/// each part keeps whole register tiles.
let partsPerThread = 4

/// `runConcurrently` for tasks that cannot fail.
public func runConcurrently<T>(_ count: Int, _ task: (Int) -> T) -> [T] {
    do {
        return try runConcurrently(count, { (index: Int) throws -> T in task(index) })
    } catch {
        // Unreachable: no task throws, and runConcurrently rethrows only what a task threw.
        return []
    }
}

extension Model {
    /// Runs a batch on `threads` cores: a batch of at least two rows is split into slices
    /// (`sliceCount`), each slice run through the whole model on one thread (no hand-offs between
    /// layers); a single row runs on `threads` threads inside large products and lets layers with
    /// independent halves (Bidirectional) run them concurrently. Results are the same bits as a
    /// single-threaded run's, and each row's the same whatever batch it is in.
    /// The batch is checked whole (data against shape, and every layer's memory for the whole
    /// batch, since the slices run at once) before it is split.
    public func predict(_ input: Tensor, threads: Int, settings: ExecutionSettings? = nil) throws -> Tensor {
        try checkInput(input)
        var settings = settings ?? self.settings
        settings.threads = max(threads, 1)
        let rows = input.batch
        guard rows > 1 else { return try predict(input, settings: settings) }
        try requireSingleInputOutput()
        // One walk checks the whole batch's memory (the slices run at once) and gives its largest
        // value, of which a row holds a batch's share.
        let rowElements = try planMemory([input.shape], settings) / rows
        let slices = Model.sliceCount(rows: rows, threads: settings.threads, rowElements: rowElements)
        guard slices > 1 else { return try predict(input, settings: settings) }
        var sliceSettings = settings
        sliceSettings.threads = 1
        let bounds = (0...slices).map { $0 * rows / slices }
        let parts = try KernelOptions.$current.withValue(KernelOptions(settings)) {
            try runConcurrently(slices) { index in
                try self.predict(input.rows(bounds[index]..<bounds[index + 1]), settings: sliceSettings)
            }
        }
        var data: [Float] = []
        data.reserveCapacity(rows * parts[0].sampleSize)
        for part in parts { data += part.data }
        return Tensor(shape: [rows] + parts[0].shape.dropFirst(), data: data)
    }
}

extension Model {
    /// How many slices `predict(_:threads:)` cuts a batch of `rows` into: one per thread at least,
    /// more when every slice keeps `minimumSliceRows` rows, up to `partsPerThread` per thread. A
    /// thread that the scheduler puts off (another process on its core) then holds up a part of
    /// its share, not all of it, while the others take the slices it has not started; and slices
    /// stay large enough that a recurrent step's product still spreads its weights over many rows.
    ///
    /// And, on any number of threads, enough slices that no value a slice passes between layers
    /// outgrows `sliceValueElements` (a row's largest value holds `rowElements`): a layer then
    /// reads its input from cache, where its previous layer left it, instead of memory. At batch
    /// 16 MobileNetV2's largest value was 77 MB per slice of 8 rows, each layer a pass over memory
    /// for its slice, and it ran slower per row than at batch 1.
    package static func sliceCount(rows: Int, threads: Int, rowElements: Int = 0) -> Int {
        let byThreads = threads <= 1 ? 1 : min(rows, threads * partsPerThread, max(threads, rows / minimumSliceRows))
        let rowsPerSlice = max(1, sliceValueElements / max(rowElements, 1))
        return max(byThreads, min(rows, (rows + rowsPerSlice - 1) / rowsPerSlice))
    }

    /// Rows a slice keeps at least, where the batch allows more slices than threads: slices of 16
    /// rows ran gru_text and bilstm_text at batch 64 up to 30% slower than slices of 64 (one
    /// thread, loaded machine), so a batch of 64 on two threads stays in two slices.
    static let minimumSliceRows = 32

    /// Elements (4 MB of floats) a slice's largest value may hold before the batch is cut into
    /// more slices: with the layer's input beside it, it stays in L3 (32 MB on the AMD EPYC
    /// measured, shared by its cores), one slice per thread at a time.
    package static let sliceValueElements = 1 << 20
}

/// A kernel's input and output, handed to concurrent parts that each write only their own rows
/// of the output.
struct UncheckedInOut: @unchecked Sendable {
    let x: UnsafePointer<Float>
    let y: UnsafeMutablePointer<Float>
}

/// Hands a value to concurrent tasks that each touch only their own part of it.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
