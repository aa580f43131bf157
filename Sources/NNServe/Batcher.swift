import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Builtins
import LayerRegistry
import ModelSpec

/// Where every prediction runs. One `predict` at a time, because the engine's thread count and
/// pool are process-wide today; safe concurrent `predict` is later work (issue 17). Each batcher
/// forms and runs its batches on its own serial queue, off Swift's cooperative pool, so a long
/// forward pass never starves the HTTP event loops, and takes this lock around the forward pass.
public enum Engine {
    static let lock = Lock()

    static func run<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// The request took longer than `--request-timeout`.
public struct DeadlineExceeded: Error, Sendable {
    public let seconds: Double
}

/// Dynamic batching for one model version. Requests arriving while a batch forms run as one
/// `predict` of up to `maxRows` rows, and each gets its own rows back; with batching off every
/// request runs alone.
///
/// When a batch forms, it is adaptive rather than a fixed wait: a request runs as soon as the
/// model is free, unless other requests to this model are already on their way (received by the
/// server, their bodies still being read or parsed: see `Arrival`); only then does the batch wait
/// for them, at most `timeout` after its first request, or until it holds `maxRows` rows. Requests
/// that come while a batch runs queue up and form the next one. So a lone request never waits for
/// the timeout, and under load batches fill by themselves while the model is busy. (TF Serving's
/// batcher always waits up to its timeout for a batch to fill; at low concurrency that wait is
/// pure latency.)
public final class Batcher: @unchecked Sendable {
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
        private let lock = Lock()
        private var continuation: CheckedContinuation<[Tensor], Error>?
        /// The deadline's timer, cancelled once the answer is in.
        private var timer: DispatchWorkItem?
        init(_ continuation: CheckedContinuation<[Tensor], Error>) { self.continuation = continuation }
        var isDone: Bool { lock.lock(); defer { lock.unlock() }; return continuation == nil }
        func setTimer(_ item: DispatchWorkItem) {
            lock.lock()
            let done = continuation == nil
            if !done { timer = item }
            lock.unlock()
            if done { item.cancel() }
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
        /// When it was queued: a batch waits at most `timeout` after its first request's.
        let queued: ContinuousClock.Instant
        var rows: Int { batches.first?.batch ?? 0 }
        /// Per-row shapes of each input: only requests with equal ones can share a batch.
        var rowShapes: [[Int]] { batches.map { Array($0.shape.dropFirst()) } }
    }

    let model: Model
    let options: Options
    /// Called with each batch's row count (for the batch-size histogram).
    let observe: @Sendable (Int) -> Void
    /// Guards `queue`, `arriving` and `draining`; signalled when either of the first two changes.
    let state = Condition()
    var queue: [Pending] = []
    /// Requests to this model received and not yet queued (or given up): what a batch may wait for.
    var arriving = 0
    var draining = false
    /// Where this model's batches form and run, one after another.
    let worker: DispatchQueue
    /// Where deadlines fire.
    static let timers = DispatchQueue(label: "nnbuild.serve.deadlines")

    public init(model: Model, options: Options, observe: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.model = model
        self.options = options
        self.observe = observe
        worker = DispatchQueue(label: "nnbuild.serve.batcher")
    }

    /// A request to this model on its way: from when the server knows which model it is for,
    /// until it is queued with `predict` or given up with `leave` (a bad body). While it exists,
    /// a forming batch may wait for it.
    public final class Arrival: @unchecked Sendable {
        let batcher: Batcher
        private var open = true
        init(_ batcher: Batcher) { self.batcher = batcher }

        /// Queues the request (see `Batcher.predict`); the arrival is then over.
        public func predict(_ batches: [Tensor], deadline: Duration) async throws -> [Tensor] {
            let announced = open
            open = false
            return try await batcher.predict(batches, deadline: deadline, announced: announced)
        }

        /// Gives the arrival up, if `predict` has not taken it; safe to call more than once.
        public func leave() {
            guard open else { return }
            open = false
            batcher.state.lock()
            batcher.arriving -= 1
            batcher.state.broadcast()
            batcher.state.unlock()
        }
    }

    /// Announces a request to this model; see `Arrival`.
    public func arrive() -> Arrival {
        state.lock()
        arriving += 1
        state.unlock()
        return Arrival(self)
    }

    /// Runs `batches` (one per model input, batch first) and returns one tensor per output,
    /// holding only this request's rows; fails with `DeadlineExceeded` after `deadline`.
    public func predict(_ batches: [Tensor], deadline: Duration) async throws -> [Tensor] {
        try await predict(batches, deadline: deadline, announced: false)
    }

    func predict(_ batches: [Tensor], deadline: Duration, announced: Bool) async throws -> [Tensor] {
        let start = ContinuousClock.now
        if let result = runAlone(batches, announced: announced) {
            let took = ContinuousClock.now - start
            guard took <= deadline else {
                let (seconds, attos) = deadline.components
                throw DeadlineExceeded(seconds: Double(seconds) + Double(attos) / 1e18)
            }
            return try result.get()
        }
        return try await withCheckedThrowingContinuation { continuation in
            let reply = Reply(continuation)
            let timer = DispatchWorkItem {
                let (seconds, attos) = deadline.components
                reply.resume(.failure(DeadlineExceeded(seconds: Double(seconds) + Double(attos) / 1e18)))
            }
            Self.timers.asyncAfter(deadline: .now() + .nanoseconds(Int(min(deadline / .nanoseconds(1), 1e15))), execute: timer)
            reply.setTimer(timer)
            state.lock()
            queue.append(Pending(batches: batches, reply: reply, queued: .now))
            if announced { arriving -= 1 }
            let start = !draining
            draining = true
            state.broadcast()
            state.unlock()
            if start { worker.async { self.drain() } }
        }
    }

    /// Runs a request at once on the calling thread when nothing could join it or run before it:
    /// this model has no batch queued or running, no other request on its way when batching is
    /// on, and the engine is free. It then skips two thread hand-offs (to the batcher's queue and
    /// back), most of what a small request costs beside its forward pass. Nil (and nothing done)
    /// otherwise. Its deadline is checked when it is done, as a forward pass cannot be stopped.
    func runAlone(_ batches: [Tensor], announced: Bool) -> Result<[Tensor], Error>? {
        state.lock()
        let others = arriving - (announced ? 1 : 0)
        guard !draining, queue.isEmpty, !options.enabled || others == 0, Engine.lock.try() else {
            state.unlock()
            return nil
        }
        draining = true
        if announced { arriving -= 1 }
        state.unlock()
        let result = Result { try forward(batches) }
        Engine.lock.unlock()
        // Requests queued meanwhile form the next batch on the batcher's queue.
        state.lock()
        let more = !queue.isEmpty
        draining = more
        state.unlock()
        if more { worker.async { self.drain() } }
        return result
    }

    /// Forms and runs batches until the queue is empty.
    func drain() {
        while let batch = next() { run(batch) }
    }

    /// The next batch, once formed; nil (and no longer draining) when the queue is empty.
    func next() -> [Pending]? {
        state.lock()
        defer { state.unlock() }
        while true {
            queue.removeAll { $0.reply.isDone }
            guard let first = queue.first else {
                draining = false
                return nil
            }
            // Wait only for requests already on their way, and only while they could fit.
            guard options.enabled, arriving > 0, queuedRows(like: first) < options.maxRows else { break }
            let until = first.queued + options.timeout
            let left = until - ContinuousClock.now
            guard left > .zero else { break }
            let (seconds, attos) = left.components
            state.wait(seconds: Double(seconds) + Double(attos) / 1e18)
        }
        return take(like: queue[0])
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

    func run(_ batch: [Pending]) {
        guard let first = batch.first else { return }
        let inputs: [Tensor]
        if batch.count == 1 {
            inputs = first.batches
        } else {
            inputs = first.batches.indices.map { index in Tensor.concatenating(batch.map { $0.batches[index] }) }
        }
        let result = Result { try Engine.run { try forward(inputs) } }
        switch result {
        case let .failure(error):
            for pending in batch { pending.reply.resume(.failure(error)) }
        case let .success(outputs):
            if batch.count == 1 { return first.reply.resume(.success(outputs)) }
            var row = 0
            for pending in batch {
                let mine = outputs.map { $0.rows(row..<(row + pending.rows)) }
                row += pending.rows
                pending.reply.resume(.success(mine))
            }
        }
    }

    /// One forward pass of a batch (one tensor per model input); the caller holds `Engine.lock`.
    func forward(_ inputs: [Tensor]) throws -> [Tensor] {
        observe(inputs.first?.batch ?? 0)
        // Rows split across threads, never more threads than rows: a row's forward pass on one
        // thread, so a small batch does not wake (and keep spinning) the pool's workers, which
        // would take the cores the server's own threads need to read and answer requests. The
        // result is the same bits on any number of threads.
        let threads = min(options.threads, max(inputs.first?.batch ?? 1, 1))
        // One input and one output: the path `nnbuild infer` takes (rows split across threads).
        guard inputs.count == 1, model.outputs.count == 1, let input = inputs.first else { return try model.predict(inputs) }
        return [try model.predict(input, threads: threads)]
    }
}
