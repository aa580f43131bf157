import CKernels
import Foundation
import LayerRegistry

/// Runs `count` independent tasks on the threads `Gemm.setThreads` allows: concurrently, each
/// with single-threaded BLAS, when more than one is allowed; else in order. A task that runs
/// inside another (a Bidirectional half inside a batch slice) sees one thread and runs in order,
/// so threads never nest. Results come back in task order; the first error is rethrown.
///
/// The threads are CKernels' pool (`nnb_parallel_for`), whose workers spin briefly between jobs:
/// at batch 1 a model runs a parallel step every few tens of microseconds, and waking a parked
/// thread for each (as Dispatch's concurrentPerform did) cost about as much as the step.
public func runConcurrently<T>(_ count: Int, _ task: (Int) throws -> T) throws -> [T] {
    let threads = Gemm.allowedThreads
    guard threads > 1, count > 1 else { return try (0..<count).map(task) }
    var results = [Result<T, Error>?](repeating: nil, count: count)
    Gemm.setThreads(1)
    Gemm.useThreads(forWork: 0)  // settled here, so the concurrent tasks never change it
    defer { Gemm.setThreads(threads) }
    results.withUnsafeMutableBufferPointer { slots in
        let slots = UncheckedSendable(slots)
        // Each task writes only its own slot.
        let body: (Int) -> Void = { index in slots.value[index] = Result { try task(index) } }
        withoutActuallyEscaping(body) { body in
            withUnsafePointer(to: body) { pointer in
                nnb_parallel_for(count, threads, { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }, UnsafeMutableRawPointer(mutating: pointer))
            }
        }
    }
    // nnb_parallel_for has run every task, so every slot is filled.
    return try results.compactMap { $0 }.map { try $0.get() }
}

/// Runs `body` over 0..<count: as one contiguous part per allowed thread when `work` (the
/// multiply-adds it stands for) reaches `splitWork`, else in one call on this thread. How the
/// kernels split a single row's work: a convolution's pixels or tiles, a product's rows or panels.
func runInParts(_ count: Int, work: Int, splitWork: Int = Gemm.threadedWork, _ body: (Range<Int>) -> Void) {
    let parts = min(Gemm.allowedThreads, count)
    guard parts > 1, work >= splitWork else {
        body(0..<count)
        return
    }
    let bounds = (0...parts).map { $0 * count / parts }
    _ = runConcurrently(parts) { part in body(bounds[part]..<bounds[part + 1]) }
}

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
    /// Runs a batch on `threads` cores: a batch of at least two rows is split into one slice per
    /// thread, each slice run through the whole model with single-threaded BLAS (no hand-offs
    /// between layers); a single row runs with multi-threaded BLAS for large products and lets
    /// layers with independent halves (Bidirectional) run them concurrently. Results equal the
    /// single-threaded run's within float rounding.
    /// The batch is checked whole (data against shape, and every layer's memory for the whole
    /// batch, since the slices run at once) before it is split.
    public func predict(_ input: Tensor, threads: Int, settings: ExecutionSettings? = nil) throws -> Tensor {
        try checkInput(input)
        Gemm.setThreads(threads)
        let rows = input.batch
        let slices = min(max(threads, 1), rows)
        guard slices > 1 else { return try predict(input, settings: settings) }
        try requireSingleInputOutput()
        try planMemory([input.shape], settings)
        let rowSize = input.sampleSize
        let bounds = (0...slices).map { $0 * rows / slices }
        let parts = try runConcurrently(slices) { index in
            let start = bounds[index], end = bounds[index + 1]
            let part = Tensor(shape: [end - start] + input.shape.dropFirst(),
                              data: Array(input.data[(start * rowSize)..<(end * rowSize)]),
                              mask: input.mask.map { Array($0[(start * input.shape[1])..<(end * input.shape[1])]) })
            return try self.predict(part, settings: settings)
        }
        var data: [Float] = []
        data.reserveCapacity(rows * parts[0].sampleSize)
        for part in parts { data += part.data }
        return Tensor(shape: [rows] + parts[0].shape.dropFirst(), data: data)
    }
}

/// Hands a value to concurrent tasks that each touch only their own part of it.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
