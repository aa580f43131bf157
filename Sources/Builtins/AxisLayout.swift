#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

/// How a sample's elements fall into groups that share statistics (LayerNormalization's
/// normalized axes, GroupNormalization's groups, Softmax's axes) and into parameter slots (gamma
/// and beta), for ANY set of axes: the one mechanism behind normalizing or taking a softmax over
/// axes that are not the last ones. Each element's group and parameter index are linear in its
/// coordinates, so a walk over the sample in memory order carries both along.
struct AxisLayout: Sendable, Equatable {
    /// The sample's shape (batch axis excluded).
    let dims: [Int]
    /// Each axis's stride in the group index: 0 along the reduced axes.
    let groupStrides: [Int]
    /// Each axis's stride in the parameter index: 0 along axes the parameters do not vary on.
    let parameterStrides: [Int]
    let groupCount: Int
    let sampleSize: Int
    /// Whether the reduced axes are the trailing ones and the parameters run along exactly them
    /// (or along no axis): then each group is one contiguous run and the contiguous kernels apply.
    let isTrailing: Bool

    /// Groups vary along every axis not in `reduced`; parameters along the axes in `parameterAxes`
    /// (sample axes, 0-based). The caller has checked the products of `dims` (ShapeMath).
    init(dims: [Int], reduced: Set<Int>, parameterAxes: Set<Int>) {
        self.dims = dims
        var groupStrides = [Int](repeating: 0, count: dims.count), parameterStrides = groupStrides
        var group = 1, parameter = 1
        for axis in dims.indices.reversed() {
            if !reduced.contains(axis) { groupStrides[axis] = group; group *= dims[axis] }
            if parameterAxes.contains(axis) { parameterStrides[axis] = parameter; parameter *= dims[axis] }
        }
        self.groupStrides = groupStrides
        self.parameterStrides = parameterStrides
        groupCount = group
        sampleSize = ShapeMath.saturatingProduct(dims)  // the sizes of a tensor that exists
        let firstReduced = dims.count - reduced.count
        isTrailing = reduced == Set(firstReduced..<dims.count) && (parameterAxes.isEmpty || parameterAxes == reduced)
    }

    /// Calls body(offset, group, parameter) for every element of one sample, in memory order.
    @inline(__always)
    func walk(_ body: (Int, Int, Int) -> Void) {
        guard sampleSize > 0 else { return }
        var coordinates = [Int](repeating: 0, count: dims.count)
        var group = 0, parameter = 0
        let last = dims.count - 1
        for offset in 0..<sampleSize {
            body(offset, group, parameter)
            var axis = last
            while axis >= 0 {
                coordinates[axis] += 1
                group += groupStrides[axis]
                parameter += parameterStrides[axis]
                if coordinates[axis] < dims[axis] { break }
                group -= groupStrides[axis] * dims[axis]
                parameter -= parameterStrides[axis] * dims[axis]
                coordinates[axis] = 0
                axis -= 1
            }
        }
    }
}

/// Normalization over the groups of `layout`, in place, sample after sample:
/// y = (x − c·mean) · rsqrt(var + epsilon) · gamma[p] + beta[p], where mean and var are the group's
/// (var around the mean when `varianceAroundMean`, else mean(x²)) and c = `centered`.
/// x: (batch, layout.dims...) flat; gamma, beta: layout's parameter count, or nil.
func normalizeGroups(_ x: UnsafeMutableBufferPointer<Float>, layout: AxisLayout, epsilon: Float, centered: Bool,
                     varianceAroundMean: Bool, gamma: UnsafeBufferPointer<Float>?, beta: UnsafeBufferPointer<Float>?) {
    let size = layout.sampleSize, groups = layout.groupCount
    guard size > 0, let base = x.baseAddress else { return }
    var sum = [Double](repeating: 0, count: groups), squares = sum, counts = sum
    var start = 0
    while start + size <= x.count {
        let sample = base + start
        for g in 0..<groups { sum[g] = 0; squares[g] = 0; counts[g] = 0 }
        layout.walk { offset, group, _ in sum[group] += Double(sample[offset]); counts[group] += 1 }
        var mean = sum
        for g in 0..<groups { mean[g] = varianceAroundMean ? sum[g] / counts[g] : 0 }
        layout.walk { offset, group, _ in
            let d = Double(sample[offset]) - mean[group]
            squares[group] += d * d
        }
        var inverse = [Float](repeating: 0, count: groups), shift = inverse
        for g in 0..<groups {
            inverse[g] = Float(1 / (squares[g] / counts[g] + Double(epsilon)).squareRoot())
            shift[g] = centered ? Float(mean[g]) : 0
        }
        layout.walk { offset, group, parameter in
            var value = (sample[offset] - shift[group]) * inverse[group]
            if let gamma { value *= gamma[parameter] }
            if let beta { value += beta[parameter] }
            sample[offset] = value
        }
        start += size
    }
}

/// The same over contiguous groups of `length` (the trailing-axes case), parameters per position.
/// x: (rows, length) flat; gamma, beta: (length,) or nil.
func normalizeRows(_ x: UnsafeMutableBufferPointer<Float>, length: Int, epsilon: Float, centered: Bool,
                   varianceAroundMean: Bool, gamma: UnsafeBufferPointer<Float>?, beta: UnsafeBufferPointer<Float>?) {
    let n = length
    guard n > 0 else { return }
    var start = 0
    while start + n <= x.count {
        var mean = 0.0
        if varianceAroundMean {
            for i in 0..<n { mean += Double(x[start + i]) }
            mean /= Double(n)
        }
        var variance = 0.0
        for i in 0..<n {
            let d = Double(x[start + i]) - mean
            variance += d * d
        }
        variance /= Double(n)
        let inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
        let shift = centered ? Float(mean) : 0
        for i in 0..<n {
            var value = (x[start + i] - shift) * inverse
            if let gamma { value *= gamma[i] }
            if let beta { value += beta[i] }
            x[start + i] = value
        }
        start += n
    }
}

/// Softmax-like functions (softmax, log-softmax, sparsemax) over the reduced axes of `layout`, in
/// place: each group's elements are gathered, transformed as one row, and scattered back.
/// x: (batch, layout.dims...) flat.
func applyOverGroups(_ x: UnsafeMutableBufferPointer<Float>, layout: AxisLayout, _ activation: Activation) {
    let size = layout.sampleSize, groups = layout.groupCount
    guard size > 0, groups > 0, let base = x.baseAddress else { return }
    let length = size / groups
    // Within a sample, the k-th element met of each group is that group's k-th row entry.
    var rows = [Float](repeating: 0, count: size), filled = [Int](repeating: 0, count: groups)
    var start = 0
    while start + size <= x.count {
        let sample = base + start
        for g in 0..<groups { filled[g] = 0 }
        layout.walk { offset, group, _ in rows[group * length + filled[group]] = sample[offset]; filled[group] += 1 }
        activation.apply(&rows, axisLength: length)
        for g in 0..<groups { filled[g] = 0 }
        layout.walk { offset, group, _ in sample[offset] = rows[group * length + filled[group]]; filled[group] += 1 }
        start += size
    }
}
