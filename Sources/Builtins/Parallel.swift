import Dispatch
import Foundation
import LayerRegistry

extension Model {
    /// Runs a batch on `threads` cores: a batch of at least two rows is split into one slice per
    /// thread, each slice run through the whole model with single-threaded BLAS (no hand-offs
    /// between layers); a single row runs with multi-threaded BLAS instead. Results equal the
    /// single-threaded run's within float rounding.
    public func predict(_ input: Tensor, threads: Int) throws -> Tensor {
        let threads = max(threads, 1)
        let rows = input.batch
        guard threads > 1, rows > 1 else {
            Gemm.setThreads(threads)
            return try predict(input)
        }
        let slices = min(threads, rows)
        let rowSize = input.sampleSize
        let bounds = (0...slices).map { $0 * rows / slices }
        var results = [Result<Tensor, Error>?](repeating: nil, count: slices)
        Gemm.setThreads(1)
        defer { Gemm.setThreads(threads) }
        results.withUnsafeMutableBufferPointer { slots in
            let slots = UncheckedBuffer(slots)
            DispatchQueue.concurrentPerform(iterations: slices) { index in
                let start = bounds[index], end = bounds[index + 1]
                let part = Tensor(shape: [end - start] + input.shape.dropFirst(),
                                  data: Array(input.data[(start * rowSize)..<(end * rowSize)]),
                                  mask: input.mask.map { Array($0[(start * input.shape[1])..<(end * input.shape[1])]) })
                slots.buffer[index] = Result { try self.predict(part) }
            }
        }
        var data: [Float] = []
        var shape: [Int] = []
        for result in results {
            guard let result else { continue }
            let part = try result.get()
            if shape.isEmpty {
                shape = part.shape
                data.reserveCapacity(rows * part.sampleSize)
            }
            data += part.data
        }
        shape[0] = rows
        return Tensor(shape: shape, data: data)
    }
}

/// Lets each concurrent slice write its own slot of one buffer.
private struct UncheckedBuffer<Element>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Element>
    init(_ buffer: UnsafeMutableBufferPointer<Element>) { self.buffer = buffer }
}
