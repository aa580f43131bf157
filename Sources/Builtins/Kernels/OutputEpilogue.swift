import CKernels
import LayerRegistry

/// What a convolution does to each block of its output right after its kernel wrote it (bias
/// included), while the block is still in cache, before the activation: the work of the layers it
/// took over (`FusesNext`), with the same operations in the same order as those layers, so that
/// the fused run is bit-identical to the layers run one after the other.
///
/// 1. `affine`: y·scale[c] + shift[c] per channel, a BatchNormalization at inference folded as
///    `BatchNormalization.forward` folds and applies it;
/// 2. `addends`: a residual Add, y the input at `position` of the sum
///    a₀ + a₁ + … summed left to right, as `ElementwiseMerge` sums inputs of one shape.
///
/// The addends point at tensors of the output's shape that outlive the call.
package struct OutputEpilogue: @unchecked Sendable {
    package var affine: (scale: [Float], shift: [Float])?
    package var addends: [UnsafePointer<Float>]
    package var position: Int
    /// Elements each addend holds.
    package var addendCount: Int

    package init(affine: (scale: [Float], shift: [Float])? = nil, addends: [UnsafePointer<Float>] = [], position: Int = 0,
                 addendCount: Int = 0) {
        self.affine = affine
        self.addends = addends
        self.position = position
        self.addendCount = addendCount
    }

    /// Fails unless every addend holds the `outputCount` elements of an output of shape `shape`.
    package func check(outputCount: Int, shape: [Int]) throws {
        guard addends.isEmpty || addendCount == outputCount else {
            throw NNError(.input, "call", "a fused sum's other inputs have \(addendCount) elements, expected \(outputCount) (shape \(shape))")
        }
    }

    package static let none = OutputEpilogue()

    package var isEmpty: Bool { affine == nil && addends.isEmpty }

    /// Applies the epilogue, then `activation`, to output pixels `pixels` of `y` (pixels of
    /// `channels` values each, flat over the batch).
    package func finish(_ y: UnsafeMutablePointer<Float>, pixels: Range<Int>, channels: Int, activation: Activation) {
        let start = pixels.lowerBound * channels, count = pixels.count * channels
        guard count > 0 else { return }
        let block = y + start
        if fusedPass(block, start: start, pixels: pixels.count, channels: channels, activation: activation) { return }
        if let (scale, shift) = affine, scale.count == channels, shift.count == channels {
            scale.withUnsafeBufferPointer { scale in
                shift.withUnsafeBufferPointer { shift in
                    var row = block
                    for _ in 0..<pixels.count {
                        for c in 0..<channels { row[c] = row[c] * scale[c] + shift[c] }
                        row += channels
                    }
                }
            }
        }
        if !addends.isEmpty {
            // The sum's terms in order, y among them at `position`.
            var terms = addends.map { UnsafePointer($0 + start) }
            terms.insert(UnsafePointer(block), at: min(max(position, 0), terms.count))
            if terms.count == 2 {
                let a = terms[0], b = terms[1]
                for i in 0..<count { block[i] = a[i] + b[i] }
            } else {
                let first = terms[0]
                for i in 0..<count {
                    var value = first[i]
                    for term in terms.dropFirst() { value += term[i] }
                    block[i] = value
                }
            }
        }
        activation.apply(UnsafeMutableBufferPointer(start: block, count: count), axisLength: channels)
    }
}

extension OutputEpilogue {
    /// `finish` in one pass over the block instead of one per stage, for the common cases: the
    /// normalization and at most one addend, then nothing, ReLU or ReLU6. Each element goes through
    /// the same operations in the same order as the stages apart (y·scale + shift, then the sum of
    /// two terms, which is the same either way round, then max / min as `Activation.apply` does),
    /// so the result is bit-identical. False, touching nothing, for any other case.
    @inline(__always)
    fileprivate func fusedPass(_ block: UnsafeMutablePointer<Float>, start: Int, pixels: Int, channels: Int,
                               activation: Activation) -> Bool {
        guard addends.count <= 1, activation == .linear || activation == .relu || activation == .relu6 else { return false }
        guard let (scale, shift) = affine, scale.count == channels, shift.count == channels else { return false }
        let addend = addends.first.map { $0 + start }
        return scale.withUnsafeBufferPointer { scale in
            shift.withUnsafeBufferPointer { shift in
                guard let s = scale.baseAddress, let t = shift.baseAddress else { return false }
                switch (addend, activation) {
                case (nil, .relu6): Self.pass(block, pixels, channels) { c, v in Swift.min(Swift.max(v * s[c] + t[c], 0), 6) }
                case (nil, .relu): Self.pass(block, pixels, channels) { c, v in Swift.max(v * s[c] + t[c], 0) }
                case (nil, _): Self.pass(block, pixels, channels) { c, v in v * s[c] + t[c] }
                case let (a?, .relu6): Self.pass(block, pixels, channels, a) { c, v, b in Swift.min(Swift.max((v * s[c] + t[c]) + b, 0), 6) }
                case let (a?, .relu): Self.pass(block, pixels, channels, a) { c, v, b in Swift.max((v * s[c] + t[c]) + b, 0) }
                case let (a?, _): Self.pass(block, pixels, channels, a) { c, v, b in (v * s[c] + t[c]) + b }
                }
                return true
            }
        }
    }

    @inline(__always)
    private static func pass(_ block: UnsafeMutablePointer<Float>, _ pixels: Int, _ channels: Int, _ f: (Int, Float) -> Float) {
        var row = block
        for _ in 0..<pixels {
            for c in 0..<channels { row[c] = f(c, row[c]) }
            row += channels
        }
    }

    @inline(__always)
    private static func pass(_ block: UnsafeMutablePointer<Float>, _ pixels: Int, _ channels: Int, _ addend: UnsafePointer<Float>,
                             _ f: (Int, Float, Float) -> Float) {
        var row = block, other = addend
        for _ in 0..<pixels {
            for c in 0..<channels { row[c] = f(c, row[c], other[c]) }
            row += channels
            other += channels
        }
    }
}

nonisolated(unsafe) private let noElement = UnsafeMutablePointer<Float>.allocate(capacity: 1)

/// Calls `body` with the base address of each array, in order, all valid during the call (an
/// empty array gives a pointer to no element, never read).
package func withBaseAddresses<Result>(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) throws -> Result) rethrows -> Result {
    var pointers: [UnsafePointer<Float>] = []
    pointers.reserveCapacity(arrays.count)
    func next(_ index: Int) throws -> Result {
        guard index < arrays.count else { return try body(pointers) }
        return try arrays[index].withUnsafeBufferPointer { buffer in
            pointers.append(buffer.baseAddress ?? UnsafePointer(noElement))
            return try next(index + 1)
        }
    }
    return try next(0)
}

extension OutputEpilogue {
    /// `bias`, this epilogue and then `activation`, as the kernels apply them to each result in
    /// their store (`nnb_epilogue`, the same operations in the same order as `finish`), passed to
    /// `body`; nil when the kernels cannot (more than one addend, or an activation other than
    /// ReLU and ReLU6), and the caller runs `finish` after the kernel instead.
    package func withKernelForm<Result>(bias: UnsafePointer<Float>?, activation: Activation, channels: Int,
                                        _ body: (nnb_epilogue?) -> Result) -> Result {
        let code: Int32
        switch activation {
        case .linear: code = Int32(NNB_ACTIVATION_LINEAR)
        case .relu: code = Int32(NNB_ACTIVATION_RELU)
        case .relu6: code = Int32(NNB_ACTIVATION_RELU6)
        default: return body(nil)
        }
        guard addends.count <= 1 else { return body(nil) }
        let addend = addends.first, stride = addend == nil ? 0 : channels
        guard let (scale, shift) = affine else {
            return body(nnb_epilogue(bias: bias, scale: nil, shift: nil, addend: addend, addend_stride: stride, activation: code))
        }
        guard scale.count == channels, shift.count == channels else { return body(nil) }
        return scale.withUnsafeBufferPointer { scale in
            shift.withUnsafeBufferPointer { shift in
                body(nnb_epilogue(bias: bias, scale: scale.baseAddress, shift: shift.baseAddress, addend: addend,
                                  addend_stride: stride, activation: code))
            }
        }
    }
}

extension OutputEpilogue {
    /// Where `withKernelForm` gives nil: what the kernel's store still does (the bias, and a ReLU
    /// when nothing else follows it), and the activation `finish` applies after this epilogue.
    package func storeOnly(bias: UnsafePointer<Float>?, activation: Activation) -> (post: nnb_epilogue, rest: Activation) {
        let relu = activation == .relu && isEmpty
        return (nnb_epilogue(bias: bias, scale: nil, shift: nil, addend: nil, addend_stride: 0,
                             activation: Int32(relu ? NNB_ACTIVATION_RELU : NNB_ACTIVATION_LINEAR)),
                relu ? .linear : activation)
    }
}

extension nnb_epilogue {
    /// This epilogue for the results from row `row` and column `column` of its product on
    /// (`nnb_epilogue_at`, which the kernels use too).
    package func at(row: Int, column: Int) -> nnb_epilogue {
        withUnsafePointer(to: self) { nnb_epilogue_at($0, row, column) }
    }
}
