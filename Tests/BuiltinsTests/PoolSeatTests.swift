import CKernels
import Foundation
import XCTest
@testable import Builtins

/// The pool cuts a job's items into one contiguous range per thread (pool.c): a thread starts with
/// its own range and takes from the others' only once its own is taken. So a worker's first item
/// is always in its own range, and with two threads the kernels' parts (a layer's output rows in
/// order) split the same way in every layer: each thread mostly reads rows it wrote itself.
final class PoolSeatTests: XCTestCase {
    /// When each item started (a sequence number) and on which thread.
    final class Starts: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
        var items: [(sequence: Int, index: Int, onWorker: Bool)] = []
        func note(_ index: Int, onWorker: Bool) {
            lock.lock()
            items.append((next, index, onWorker))
            next += 1
            lock.unlock()
        }
    }

    func testAWorkerStartsWithTheSecondHalfOfTheItems() throws {
        guard nnb_pool_threads() > 1 else { throw XCTSkip("one core: the pool has no worker") }
        let caller = pthread_self()
        var joined = 0
        // Up to 40 jobs of 8 items of about 50 µs each; a worker that wakes in time joins. (An
        // earlier test may have left the pool backing off for up to a second: hence the pauses.)
        for attempt in 0..<40 where joined < 5 {
            let starts = Starts()
            let results = Gemm.withThreads(2) {
                runConcurrently(8) { index -> Int in
                    starts.note(index, onWorker: pthread_equal(pthread_self(), caller) == 0)
                    let until = Date().addingTimeInterval(50e-6)
                    while Date() < until {}
                    return index + 1
                }
            }
            XCTAssertEqual(results, Array(1...8))
            XCTAssertEqual(starts.items.map(\.index).sorted(), Array(0..<8), "every item runs exactly once")
            guard let first = starts.items.filter(\.onWorker).min(by: { $0.sequence < $1.sequence }) else {
                if attempt % 10 == 9 { usleep(1_100_000) }
                continue
            }
            joined += 1
            XCTAssertGreaterThanOrEqual(first.index, 4, "the worker's first item is in its own range, 4..<8: \(starts.items)")
        }
        guard joined > 0 else { throw XCTSkip("no worker joined a job in 40 tries (a very busy machine)") }
    }
}

/// The pool measures a cache line's round trip between the caller and its first worker on every
/// 64th job (pool.c), and that figure decides `nnb_pool_far_apart`: after a few hundred jobs with a
/// worker spinning for them, a window of samples has completed, with a round trip a core-to-core
/// handoff can take (tens of nanoseconds to a few microseconds), and the far-apart flag agrees
/// with it.
final class PoolRoundTripTests: XCTestCase {
    func testTheRoundTripIsMeasuredAndDecidesFarApart() throws {
        guard nnb_pool_threads() > 1 else { throw XCTSkip("one core: the pool has no worker") }
        // Short jobs back to back keep the worker spinning between them; 4 windows' worth.
        for _ in 0..<(64 * 4 * 4) {
            Gemm.withThreads(2) {
                runInParallel(2) { _ in
                    var sum = 0.0
                    for i in 0..<200 { sum += Double(i) }
                    XCTAssertEqual(sum, 19900)
                }
            }
            if nnb_pool_round_trip() > 0 { break }
        }
        let trip = nnb_pool_round_trip()
        guard trip > 0 else { throw XCTSkip("no round trip sampled: the worker was never there (a busy machine)") }
        XCTAssertGreaterThan(trip, 10e-9, "a cache line between two cores takes more than 10 ns")
        XCTAssertLessThan(trip, 5e-6, "a sample waits 5 µs at most")
        XCTAssertEqual(nnb_pool_far_apart(), trip > 270e-9 ? 1 : 0)
    }
}
