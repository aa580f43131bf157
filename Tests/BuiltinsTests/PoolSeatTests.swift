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

/// Jobs cut into one part per thread follow the threads' speeds (pool.c): the pool times each
/// weighed job in which every thread ran its own part, and `nnb_pool_share` gives the faster
/// thread the larger share, as `shareBoundaries` cuts.
final class PoolShareTests: XCTestCase {
    func testSharesCutEveryUnitIntoNonEmptyRunsInOrder() {
        for pieces in 1...5 {
            XCTAssertEqual((0..<pieces).map { nnb_pool_share($0, pieces) }.reduce(0, +), 1, accuracy: 1e-9)
            for units in [0, 1, 2, 3, 7, 25, 196] {
                let boundaries = shareBoundaries(units: units, pieces: pieces)
                XCTAssertEqual(boundaries.count, max(pieces, 1) + 1)
                XCTAssertEqual(boundaries.first, 0)
                XCTAssertEqual(boundaries.last, units)
                XCTAssertEqual(boundaries, boundaries.sorted(), "\(units) units into \(pieces)")
                if units >= pieces {
                    XCTAssertTrue(zip(boundaries, boundaries.dropFirst()).allSatisfy { $0 < $1 }, "every run holds a unit: \(boundaries)")
                }
            }
        }
    }

    /// Two parts of equal weight, the worker's taking `workerSeconds` and the caller's
    /// `callerSeconds`; returns how many the worker ran (the others were samples of nothing: the
    /// caller took the worker's part too).
    private func weighedJobs(_ count: Int, callerSeconds: Double, workerSeconds: Double) -> Int {
        let caller = pthread_self()
        var onWorker = 0
        for _ in 0..<count {
            let ran = Starts()
            Gemm.withThreads(2) {
                runInParallel(2, weights: [1, 1]) { index in
                    ran.note(index, onWorker: pthread_equal(pthread_self(), caller) == 0)
                    let until = Date().addingTimeInterval(index == 1 ? workerSeconds : callerSeconds)
                    while Date() < until {}
                }
            }
            if ran.items.contains(where: { $0.index == 1 && $0.onWorker }) { onWorker += 1 }
        }
        return onWorker
    }

    private typealias Starts = PoolSeatTests.Starts

    func testTheSlowerThreadGetsTheSmallerShareAndEqualThreadsEqualOnes() throws {
        guard nnb_pool_threads() > 1 else { throw XCTSkip("one core: the pool has no worker") }
        // The worker's part takes twice the caller's: the worker looks half as fast.
        let slow = weighedJobs(400, callerSeconds: 40e-6, workerSeconds: 80e-6)
        guard slow >= 150 else { throw XCTSkip("the worker ran only \(slow) of 400 parts (a busy machine)") }
        XCTAssertGreaterThan(nnb_pool_share(0, 2), 0.6, "the caller, twice as fast, gets the larger share")
        XCTAssertLessThan(nnb_pool_share(1, 2), 0.4)
        let boundaries = shareBoundaries(units: 100, pieces: 2)
        XCTAssertGreaterThan(boundaries[1], 60, "the caller's run is the longer: \(boundaries)")
        // Equal parts again: the shares come back.
        let even = weighedJobs(400, callerSeconds: 40e-6, workerSeconds: 40e-6)
        guard even >= 150 else { throw XCTSkip("the worker ran only \(even) of 400 parts (a busy machine)") }
        XCTAssertEqual(nnb_pool_share(0, 2), 0.5, accuracy: 0.08)
    }
}
