import LayerRegistry

/// A constant that broadcasts against every sample as numpy broadcasts it: `shape` has the
/// sample's rank (batch excluded) and each of its dimensions is 1 or the sample's size there.
struct SampleConstant: Sendable, Equatable {
    let shape: [Int]
    let values: [Float]

    /// The constant repeated over a whole sample of `sampleShape`, in C order.
    func expanded(to sampleShape: [Int], layer: String) throws -> [Float] {
        guard sampleShape.count == shape.count,
              zip(shape, sampleShape).allSatisfy({ $0 == 1 || $0 == $1 }) else {
            throw NNError(.input, "input", "\(layer): expects samples whose axes are 1 or match its constant's \(shape), found \(describeShape(sampleShape.map { $0 }))")
        }
        var strides = [Int](repeating: 0, count: shape.count)
        var stride = 1
        for axis in shape.indices.reversed() {
            strides[axis] = shape[axis] == 1 ? 0 : stride
            stride *= shape[axis]
        }
        let count = sampleShape.reduce(1, *)
        var result = [Float](repeating: 0, count: count)
        var coordinate = [Int](repeating: 0, count: shape.count)
        var source = 0
        for index in 0..<count {
            result[index] = values[source]
            var axis = shape.count - 1
            while axis >= 0 {
                coordinate[axis] += 1
                source += strides[axis]
                if coordinate[axis] < sampleShape[axis] { break }
                source -= strides[axis] * coordinate[axis]
                coordinate[axis] = 0
                axis -= 1
            }
        }
        return result
    }
}

/// A number, or a (nested, rectangular) list of numbers, at config key `key`; Keras 3 may wrap a
/// NumPy array as `{"class_name": "__numpy__", "config": {"value": ..., "dtype": ...}}`.
/// Returns the array's shape and its values in C order.
func constantArray(_ context: LayerContext, _ key: String) throws -> (shape: [Int], values: [Float]) {
    guard var value = context.value(key) else { throw context.error("missing required key '\(key)'", key: key) }
    if case .object = value, case let .string(kind)? = value["class_name"], kind == "__numpy__" || kind == "__tensor__",
       let wrapped = value["config"]?["value"] {
        value = wrapped
    }
    func fail() -> NNError {
        context.error("'\(key)' must be a number or a rectangular list of numbers, found \(value.brief())", key: key)
    }
    var values: [Float] = []
    func walk(_ item: JSONValue, depth: Int) throws -> [Int] {
        switch item {
        case let .int(number): values.append(Float(number)); return []
        case let .double(number): values.append(Float(number)); return []
        case let .array(items):
            guard depth < 8 else { throw fail() }
            var inner: [Int]?
            for element in items {
                let found = try walk(element, depth: depth + 1)
                guard inner == nil || inner == found else { throw fail() }
                inner = found
            }
            guard let inner else { return [0] }
            return [items.count] + inner
        default:
            throw fail()
        }
    }
    let shape = try walk(value, depth: 0)
    guard !values.isEmpty else { throw context.error("'\(key)' must hold at least one number, found \(value.brief())", key: key) }
    return (shape, values)
}

/// Aligns an array of `shape` with the layer's input by numpy's rule (trailing axes first): each
/// of its dimensions must be 1 or the input's size there. A leading axis that would meet the
/// batch axis must be 1.
func broadcastAgainstInput(_ context: LayerContext, key: String, shape: [Int], values: [Float]) throws -> SampleConstant {
    let input = context.inputShape
    func fail(_ why: String) -> NNError {
        let shown = "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
        return context.error("'\(key)' of shape \(shown) does not broadcast against the input \(describeShape(input)): \(why)", key: key)
    }
    var aligned = shape
    if aligned.count == input.count + 1 {
        guard aligned[0] == 1 else { throw fail("its first axis would meet the batch axis, so it must be 1") }
        aligned.removeFirst()
    }
    guard aligned.count <= input.count else { throw fail("it has more axes than the input") }
    aligned = [Int](repeating: 1, count: input.count - aligned.count) + aligned
    for (axis, size) in aligned.enumerated() where size != 1 {
        guard let known = input[axis] else { throw fail("input axis \(axis + 1) has no known size to match its \(size)") }
        guard known == size else { throw fail("its \(size) on input axis \(axis + 1) is neither 1 nor \(known)") }
    }
    return SampleConstant(shape: aligned, values: values)
}

/// `Rescaling`: y = x · scale + offset, with `scale` and `offset` broadcast against the input as
/// NumPy broadcasts them (a scalar, a per-channel list, or any array whose trailing axes match).
///
/// Config: `scale` (required), `offset` (0). The mask passes through.
public struct Rescaling: Layer {
    let scale: SampleConstant
    let offset: SampleConstant
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        func constant(_ key: String, default defaultValue: Float? = nil) throws -> SampleConstant {
            switch context.value(key) {
            case .array?, .object?, .string?, .bool?:
                let (shape, values) = try constantArray(context, key)
                return try broadcastAgainstInput(context, key: key, shape: shape, values: values)
            default:
                let value = try context.float(key, default: defaultValue)
                return SampleConstant(shape: context.inputShape.map { _ in 1 }, values: [value])
            }
        }
        return Rescaling(scale: try constant("scale"), offset: try constant("offset", default: 0), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let sample = Array(input.shape.dropFirst())
        let scales = try scale.expanded(to: sample, layer: "Rescaling")
        let offsets = try offset.expanded(to: sample, layer: "Rescaling")
        var output = input
        output.data.withUnsafeMutableBufferPointer { y in
            affinePerSample(y, scales, offsets)
        }
        return output
    }
}

/// y[s, j] = y[s, j] · scale[j] + offset[j] for every sample s; y holds whole samples of scale.count.
func affinePerSample(_ y: UnsafeMutableBufferPointer<Float>, _ scale: [Float], _ offset: [Float]) {
    let size = scale.count
    guard size > 0 else { return }
    var start = 0
    while start + size <= y.count {
        for j in 0..<size { y[start + j] = y[start + j] * scale[j] + offset[j] }
        start += size
    }
}

/// `Normalization`: y = (x − mean) / max(√variance, 1e-7), or with `invert`
/// y = mean + x · max(√variance, 1e-7).
///
/// Config: `axis` (-1; an integer, a list, or null / `[]` for one mean over everything): the axes
/// kept, each with its own statistics; `invert` (false); `mean` and `variance` (null). When both are
/// given in the config they are constants (a scalar, or an array aligned with the last kept axes);
/// otherwise they are the weights `mean` and `variance`, of the kept axes' shape, as `adapt()`
/// leaves them (Keras's int64 `count` is read past: inference does not use it). The mask passes
/// through.
public struct Normalization: Layer {
    let mean: SampleConstant
    let deviation: SampleConstant
    public let invert: Bool
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    static func factory(_ context: LayerContext) throws -> any Layer {
        let input = context.inputShape
        let kept = try keptAxes(context)
        let broadcastShape = try input.indices.map { kept.contains($0) ? try context.inputDimension($0) : 1 }
        let invert = try context.bool("invert", default: false)
        let mean: SampleConstant, variance: SampleConstant
        switch (context.has("mean"), context.has("variance")) {
        case (true, true):
            mean = try statistic(context, "mean", kept: kept, broadcastShape: broadcastShape)
            variance = try statistic(context, "variance", kept: kept, broadcastShape: broadcastShape)
            guard mean.shape == variance.shape else {
                throw context.error("'mean' and 'variance' must have the same shape, found \(mean.shape) and \(variance.shape)", key: "variance")
            }
        case (false, false):
            let weightShape = kept.map { broadcastShape[$0] }
            mean = SampleConstant(shape: broadcastShape, values: try context.weight("mean", shape: weightShape).storage.array)
            variance = SampleConstant(shape: broadcastShape, values: try context.weight("variance", shape: weightShape).storage.array)
            context.ignoreWeight("count")
        case (true, false):
            throw context.error("'mean' is given but 'variance' is not; give both, or neither to read them from the weights", key: "variance")
        case (false, true):
            throw context.error("'variance' is given but 'mean' is not; give both, or neither to read them from the weights", key: "mean")
        }
        let epsilon: Float = 1e-7  // keras.backend.epsilon()
        let deviation = SampleConstant(shape: variance.shape, values: variance.values.map { max($0.squareRoot(), epsilon) })
        return Normalization(mean: mean, deviation: deviation, invert: invert, outputShape: input)
    }

    /// The per-sample axes whose positions keep their own statistics (`axis` counts the batch as 0).
    static func keptAxes(_ context: LayerContext) throws -> [Int] {
        let rank = context.inputShape.count + 1
        let raw: [Int]
        switch context.value("axis") {
        case nil: raw = [try context.int("axis", default: -1)]
        case .null?: raw = []
        case .array?: raw = try context.intList("axis")
        default: raw = [try context.int("axis")]
        }
        let axes = raw.map { $0 < 0 ? $0 + rank : $0 }
        guard axes.allSatisfy({ $0 >= 1 && $0 < rank }), Set(axes).count == axes.count else {
            throw context.error("'axis' must name distinct axes in [-\(rank), \(rank)) other than the batch axis 0 of an input of rank \(rank), found \(context.value("axis")?.brief() ?? "-1")", key: "axis")
        }
        return axes.sorted().map { $0 - 1 }
    }

    /// `mean` or `variance` from the config, placed as Keras's `build` places it: a scalar fills
    /// every kept position; an array's axes go, from the last, onto the last kept axes.
    static func statistic(_ context: LayerContext, _ key: String, kept: [Int], broadcastShape: [Int]) throws -> SampleConstant {
        let (shape, values) = try constantArray(context, key)
        if shape.isEmpty {
            return SampleConstant(shape: broadcastShape.map { _ in 1 }, values: values)
        }
        guard shape.count <= kept.count else {
            throw context.error("'\(key)' has \(shape.count) axes; expected at most one per kept axis (\(kept.count), from 'axis')", key: key)
        }
        var expanded = broadcastShape.map { _ in 1 }
        for i in 1...shape.count { expanded[kept[kept.count - i]] = shape[shape.count - i] }
        for (axis, size) in expanded.enumerated() where size != 1 && size != broadcastShape[axis] {
            throw context.error("'\(key)' has \(size) values on input axis \(axis + 1), expected 1 or \(broadcastShape[axis]) (input \(describeShape(context.inputShape)))", key: key)
        }
        return SampleConstant(shape: expanded, values: values)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let sample = Array(input.shape.dropFirst())
        let means = try mean.expanded(to: sample, layer: "Normalization")
        let deviations = try deviation.expanded(to: sample, layer: "Normalization")
        var output = input
        output.data.withUnsafeMutableBufferPointer { y in
            normalizePerSample(y, means, deviations, invert: invert)
        }
        return output
    }
}

/// y[s, j] = (y[s, j] − mean[j]) / deviation[j], or with `invert` mean[j] + y[s, j] · deviation[j],
/// for every sample s; y holds whole samples of mean.count.
func normalizePerSample(_ y: UnsafeMutableBufferPointer<Float>, _ mean: [Float], _ deviation: [Float], invert: Bool) {
    let size = mean.count
    guard size > 0 else { return }
    var start = 0
    while start + size <= y.count {
        if invert {
            for j in 0..<size { y[start + j] = mean[j] + y[start + j] * deviation[j] }
        } else {
            for j in 0..<size { y[start + j] = (y[start + j] - mean[j]) / deviation[j] }
        }
        start += size
    }
}

extension Builtins {
    static func registerPreprocessing(_ registry: LayerRegistry) {
        registry.register("Rescaling", origin: "builtin", summary: "x · scale + offset, scale and offset scalar or broadcast per channel.",
                          factory: Rescaling.factory)
        registry.register("Normalization", origin: "builtin",
                          summary: "(x − mean) / √variance per kept axis (or its inverse), from adapt()'s weights or the config.",
                          factory: Normalization.factory)
    }
}
