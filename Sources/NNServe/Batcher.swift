import Dispatch
import Foundation
import Builtins
import LayerRegistry
import ModelSpec

/// Where every prediction runs: one serial queue off Swift's cooperative pool, so a long
/// forward pass never starves the HTTP event loops. One at a time because the engine's thread
/// count and pool are process-wide today; safe concurrent `predict` is later work (issue 17).
public enum Engine {
    static let queue = DispatchQueue(label: "nnbuild.serve.engine")

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// The request took longer than `--request-timeout`.
public struct DeadlineExceeded: Error, Sendable {
    public let seconds: Double
}

/// Dynamic batching for one model version, as TF Serving's batching does: requests arriving
/// while a batch forms (up to `maxRows` rows, or until `timeout` after its first request) run
/// as one `predict`, and each gets its own rows back. With batching off every request runs alone.
public actor Batcher {
    public struct Options: Sendable {
        public var enabled: Bool
        public var maxRows: Int
        public var timeout: Duration
        /// Threads per predict (`--threads`), used as `nnbuild infer` uses them, so a request
        /// gets what `infer` gives on the same rows.
        public var threads: Int
        public init(enabled: Bool, maxRows: Int, timeout: Duration, threads: Int) {
            self.enabled = enabled
            self.maxRows = maxRows
            self.timeout = timeout
            self.threads = threads
        }
    }

    /// Resumes a request's continuation exactly once: with its result, or with the deadline.
    final class Reply: @unchecked Sendable {
        private let lock = NSLock()
        private var continuation: CheckedContinuation<[Tensor], Error>?
        /// The deadline's sleeping task, cancelled once the answer is in.
        private var timer: Task<Void, Never>?
        init(_ continuation: CheckedContinuation<[Tensor], Error>) { self.continuation = continuation }
        var isDone: Bool { lock.lock(); defer { lock.unlock() }; return continuation == nil }
        func setTimer(_ task: Task<Void, Never>) {
            lock.lock()
            let done = continuation == nil
            if !done { timer = task }
            lock.unlock()
            if done { task.cancel() }
        }
        func resume(_ result: Result<[Tensor], Error>) {
            lock.lock()
            let pending = continuation, sleeping = timer
            continuation = nil
            timer = nil
            lock.unlock()
            sleeping?.cancel()
            pending?.resume(with: result)
        }
    }

    struct Pending {
        let batches: [Tensor]
        let reply: Reply
        var rows: Int { batches.first?.batch ?? 0 }
        /// Per-row shapes of each input: only requests with equal ones can share a batch.
        var rowShapes: [[Int]] { batches.map { Array($0.shape.dropFirst()) } }
    }

    let model: Model
    let options: Options
    /// Called with each batch's row count (for the batch-size histogram).
    let observe: @Sendable (Int) -> Void
    var queue: [Pending] = []
    var draining = false

    public init(model: Model, options: Options, observe: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.model = model
        self.options = options
        self.observe = observe
    }

    /// Runs `batches` (one per model input, batch first) and returns one tensor per output,
    /// holding only this request's rows; fails with `DeadlineExceeded` after `deadline`.
    public func predict(_ batches: [Tensor], deadline: Duration) async throws -> [Tensor] {
        try await withCheckedThrowingContinuation { continuation in
            let reply = Reply(continuation)
            queue.append(Pending(batches: batches, reply: reply))
            reply.setTimer(Task {
                guard (try? await Task.sleep(for: deadline)) != nil else { return }
                let (seconds, attos) = deadline.components
                reply.resume(.failure(DeadlineExceeded(seconds: Double(seconds) + Double(attos) / 1e18)))
            })
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
    }

    /// Forms and runs batches until the queue is empty.
    func drain() async {
        while true {
            queue.removeAll { $0.reply.isDone }
            guard let first = queue.first else { break }
            if options.enabled {
                let deadline = ContinuousClock.now + options.timeout
                while queuedRows(like: first) < options.maxRows, ContinuousClock.now < deadline {
                    try? await Task.sleep(for: min(.microseconds(100), deadline - ContinuousClock.now))
                }
            }
            let batch = take(like: first)
            await run(batch)
        }
        draining = false
    }

    func queuedRows(like first: Pending) -> Int {
        queue.filter { !$0.reply.isDone && $0.rowShapes == first.rowShapes }.reduce(0) { $0 + $1.rows }
    }

    /// The first request, and with batching on the next ones of the same row shapes that fit
    /// in `maxRows`, in arrival order.
    func take(like first: Pending) -> [Pending] {
        var taken: [Pending] = [], rest: [Pending] = [], rows = 0
        for pending in queue {
            if pending.reply.isDone { continue }
            let fits = taken.isEmpty || (options.enabled && pending.rowShapes == first.rowShapes && rows + pending.rows <= options.maxRows)
            if fits {
                taken.append(pending)
                rows += pending.rows
            } else {
                rest.append(pending)
            }
        }
        queue = rest
        return taken
    }

    func run(_ batch: [Pending]) async {
        guard let first = batch.first else { return }
        let model = self.model
        let inputs: [Tensor]
        if batch.count == 1 {
            inputs = first.batches
        } else {
            inputs = first.batches.indices.map { index in
                var shape = first.batches[index].shape
                shape[0] = batch.reduce(0) { $0 + $1.rows }
                return Tensor(shape: shape, data: batch.flatMap { $0.batches[index].data })
            }
        }
        observe(inputs.first?.batch ?? 0)
        let threads = options.threads
        let result = await Result(catching: {
            try await Engine.run {
                // One input and one output: the path `nnbuild infer` takes (rows split across threads).
                guard inputs.count == 1, model.outputs.count == 1, let input = inputs.first else { return try model.predict(inputs) }
                return [try model.predict(input, threads: threads)]
            }
        })
        switch result {
        case let .failure(error):
            for pending in batch { pending.reply.resume(.failure(error)) }
        case let .success(outputs):
            var row = 0
            for pending in batch {
                let mine = outputs.map { output -> Tensor in
                    let stride = output.shape.dropFirst().reduce(1, *)
                    var shape = output.shape
                    shape[0] = pending.rows
                    return Tensor(shape: shape, data: Array(output.data[row * stride..<(row + pending.rows) * stride]))
                }
                row += pending.rows
                pending.reply.resume(.success(mine))
            }
        }
    }
}

extension Result where Failure == Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
