import CKernels
import Foundation
import XCTest
@testable import Builtins

/// The pool on a busy machine: a worker the scheduler puts off in the middle of an item (here, a
/// worker's item that sleeps) must not hold up later jobs. The job it stalls still completes,
/// every item once, and the jobs that follow soon after run on the caller alone.
final class ContentionTests: XCTestCase {
    /// Which thread ran each item, how many items ran, and when a worker first started one.
    final class Record: @unchecked Sendable {
        let lock = NSLock()
        let start = Date()
        var runs = 0
        var workerJoined: TimeInterval?
        func note(worker: Bool) {
            lock.lock()
            runs += 1
            if worker, workerJoined == nil { workerJoined = Date().timeIntervalSince(start) }
            lock.unlock()
        }
        var joined: TimeInterval? {
            lock.lock()
            defer { lock.unlock() }
            return workerJoined
        }
    }

    func testAStalledWorkerCostsItsItemAndThenTheCallerRunsAlone() throws {
        guard nnb_pool_threads() > 1 else { throw XCTSkip("one core: the pool has no worker to stall") }
        let caller = pthread_self()
        var stalled = false
        // A job whose items on a worker sleep 100 ms (a descheduled worker); the caller's items
        // wait (up to 20 ms) until a worker has joined, so that the worker surely holds one. The
        // stall is certain when the worker joined within 10 ms: the caller then waited far longer
        // for it than its own items took. Else (a busy machine) try again once any backoff is over.
        for _ in 0..<10 where !stalled {
            let record = Record()
            let results = Gemm.withThreads(2) {
                runConcurrently(8) { index -> Int in
                    let onWorker = pthread_equal(pthread_self(), caller) == 0
                    record.note(worker: onWorker)
                    if onWorker {
                        usleep(100_000)
                    } else {
                        while record.joined == nil && Date().timeIntervalSince(record.start) < 0.02 { usleep(50) }
                    }
                    return index * index
                }
            }
            XCTAssertEqual(results, (0..<8).map { $0 * $0 })
            XCTAssertEqual(record.runs, 8, "every item runs exactly once")
            if let joined = record.joined, joined < 0.01 { stalled = true } else { usleep(1_100_000) }
        }
        guard stalled else { throw XCTSkip("no worker joined a job promptly in 10 tries (a very busy machine)") }
        let stallEnd = Date()
        // The next job, within the pool's first backoff (16 ms), runs every item on the caller;
        // its first item gives a worker 6 ms to join, which one would without the backoff.
        let next = Record()
        let results = Gemm.withThreads(2) {
            runConcurrently(32) { index -> Int in
                let onWorker = pthread_equal(pthread_self(), caller) == 0
                next.note(worker: onWorker)
                if index == 0 && !onWorker {
                    while next.joined == nil && Date().timeIntervalSince(next.start) < 0.006 { usleep(50) }
                }
                usleep(100)
                return onWorker ? -1 : index
            }
        }
        if Date().timeIntervalSince(stallEnd) < 0.014 {
            XCTAssertEqual(results, Array(0..<32), "a job right after a stall runs on the caller alone")
        }
        // Later jobs still complete with every result in order.
        for round in 0..<50 {
            let values = Gemm.withThreads(2) { runConcurrently(16) { $0 + round } }
            XCTAssertEqual(values, (0..<16).map { $0 + round })
        }
    }

    /// With more runnable threads than cores (here a busy thread per pool thread) no job need
    /// stall, yet the caller would get a fraction of a core: the pool sees the other runnable
    /// threads (/proc/loadavg) and runs its jobs on the caller alone, and the kernels stop cutting
    /// work for threads (`Gemm.allowedThreads` is 1 meanwhile). Once the busy threads stop, the
    /// pool has its room back, though no job asked for threads meanwhile: a kernel that does not
    /// split while the pool backs off must not keep it backing off for good.
    func testOtherRunnableThreadsKeepTheCallerAloneUntilTheyStop() throws {
        guard nnb_pool_threads() > 1 else { throw XCTSkip("one core: the pool has no worker") }
        guard FileManager.default.isReadableFile(atPath: "/proc/loadavg") else { throw XCTSkip("no /proc/loadavg to count runnable threads") }
        // Any backoff from an earlier test (1 s at most) ends first; one that lasts is the machine
        // busy with other processes (a build beside the tests), which this test cannot use.
        let calm = Date()
        while nnb_pool_backing_off() != 0 && Date().timeIntervalSince(calm) < 2 { usleep(1000) }
        if nnb_pool_backing_off() != 0, Self.otherRunnableThreads() > 0 {
            throw XCTSkip("other processes' threads are runnable on this machine: the pool backs off already")
        }
        XCTAssertEqual(nnb_pool_backing_off(), 0, "no backoff before the busy threads start")
        final class Flag: @unchecked Sendable { var stop = false }
        let flag = Flag()
        let busy = (0..<nnb_pool_threads()).map { _ in
            Thread { var x = 0.0; while !flag.stop { x += 1 }; _ = x }
        }
        busy.forEach { $0.start() }
        let start = Date()
        var sawBackOff = false, threadsWhileBackingOff = 0
        while !sawBackOff && Date().timeIntervalSince(start) < 5 {
            _ = Gemm.withThreads(2) {
                runConcurrently(4) { index -> Int in
                    let begun = Date()
                    while Date().timeIntervalSince(begun) < 20e-6 {}
                    return index
                }
            }
            if nnb_pool_backing_off() != 0 {
                sawBackOff = true
                threadsWhileBackingOff = Gemm.withThreads(2) { Gemm.allowedThreads }
            }
        }
        flag.stop = true
        XCTAssertTrue(sawBackOff, "the pool never backed off with \(nnb_pool_threads()) busy threads beside it")
        if sawBackOff { XCTAssertEqual(threadsWhileBackingOff, 1) }
        // Only asking, no jobs: the room comes back within a few readings (4 ms apart), or at
        // the end of a stall's backoff (1 s at most).
        let stopped = Date()
        while nnb_pool_backing_off() != 0 && Date().timeIntervalSince(stopped) < 3 { usleep(1000) }
        if nnb_pool_backing_off() != 0, Self.otherRunnableThreads() > 0 {
            throw XCTSkip("other processes' threads became runnable on this machine meanwhile")
        }
        XCTAssertEqual(nnb_pool_backing_off(), 0, "the pool still backs off 3 s after the busy threads stopped")
    }

    /// Threads runnable on the machine now outside this process: /proc/loadavg's running count
    /// less this process's threads in state R (0 where either cannot be read).
    static func otherRunnableThreads() -> Int {
        guard let loadavg = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return 0 }
        let fields = loadavg.split(separator: " ")
        guard fields.count >= 4, let running = Int(fields[3].split(separator: "/").first ?? "") else { return 0 }
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        let ours = tasks.filter { task in
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(after: close)...].split(separator: " ").first == "R"
        }.count
        return max(0, running - ours)
    }
}
