@_exported import ModelSpec

/// A dense float32 array, batch axis first, channels last, in C order.
///
/// `mask`, when present, marks which time steps of a sequence are real: `batch × time` flags,
/// as made by `Embedding(mask_zero=True)` or `Masking` and consumed by recurrent and pooling layers.
///
/// `strings`, when present, holds the elements of a string tensor (a model input of dtype
/// `string`) in the same order, and `data` is empty: such a tensor reaches only layers that read
/// strings (`ReadsStrings`: StringLookup, TextVectorization, Hashing), which the model's build checks.
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]
    public var mask: [Bool]?
    public var strings: [String]?

    public init(shape: [Int], data: [Float], mask: [Bool]? = nil) {
        self.shape = shape
        self.data = data
        self.mask = mask
    }

    /// A string tensor: `strings` in C order, one per element of `shape`.
    public init(shape: [Int], strings: [String]) {
        self.shape = shape
        self.data = []
        self.strings = strings
    }

    /// Whether the tensor holds strings (`strings`) rather than numbers.
    public var holdsStrings: Bool { strings != nil }

    /// Rows `range` along the batch axis (numbers or strings, and the mask).
    public func rows(_ range: Range<Int>) -> Tensor {
        if range == 0..<batch { return self }
        let size = sampleSize
        let elements = (range.lowerBound * size)..<(range.upperBound * size)
        var part = strings.map { Tensor(shape: [range.count] + shape.dropFirst(), strings: Array($0[elements])) }
            ?? Tensor(shape: [range.count] + shape.dropFirst(), data: Array(data[elements]))
        if let mask, shape.count > 1 { part.mask = Array(mask[(range.lowerBound * shape[1])..<(range.upperBound * shape[1])]) }
        return part
    }

    /// Batches of one per-sample shape (all numbers or all strings), joined along the batch axis;
    /// masks are kept when every part has one.
    public static func concatenating(_ parts: [Tensor]) -> Tensor {
        guard parts.count > 1, let first = parts.first else { return parts.first ?? Tensor(shape: [0], data: []) }
        let shape = [parts.reduce(0) { $0 + $1.batch }] + first.shape.dropFirst()
        var joined = first.holdsStrings ? Tensor(shape: shape, strings: parts.flatMap { $0.strings ?? [] })
                                        : Tensor(shape: shape, data: parts.flatMap(\.data))
        if parts.allSatisfy({ $0.mask != nil }) { joined.mask = parts.flatMap { $0.mask ?? [] } }
        return joined
    }

    /// A tensor of zeros; fails when `shape` has a negative size or passes `ShapeMath.tensorLimit`.
    public init(zeros shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw NNError(.input, "Tensor(zeros:)", "shape \(shape) has a negative size") }
        switch ShapeMath.checkTensor(shape, what: "Tensor(zeros:)") {
        case let .success(count): self.init(shape: shape, data: [Float](repeating: 0, count: count))
        case let .failure(message): throw NNError(.input, "Tensor(zeros:)", message.text)
        }
    }

    public var batch: Int { shape.first ?? 1 }
    public var count: Int { data.count }
    public var rank: Int { shape.count }

    /// The element count of one sample (everything after the batch axis); `Int.max` when it
    /// overflows, which a tensor that passed `checkConsistent` never does.
    public var sampleSize: Int { ShapeMath.saturatingProduct(shape.dropFirst()) }

    /// Whether step `step` of row `row` is real (true when there is no mask).
    @inlinable
    public func isStepValid(row: Int, step: Int) -> Bool {
        guard let mask else { return true }
        return mask[row * shape[1] + step]
    }
}

/// A weight tensor resolved from the weight blob, read in place when possible.
public struct Weight: Sendable {
    /// The tensor's name in the weight blob, or the variable name when building without weights.
    public let name: String
    public let shape: [Int]
    public let storage: FloatStorage

    public init(name: String, shape: [Int], storage: FloatStorage) {
        self.name = name
        self.shape = shape
        self.storage = storage
    }

    /// Valid while this weight is alive (layers keep their weights in stored properties).
    public var values: UnsafeBufferPointer<Float> { storage.buffer }
    public var count: Int { storage.count }
    public subscript(index: Int) -> Float { storage[index] }
}

/// How a layer treats the sequence mask of its input.
public enum MaskBehavior: Sendable {
    /// The output carries no mask (the default, as for a Keras layer without masking support).
    case drops
    /// The output carries the input's mask unchanged (Dense on sequences, Dropout, Activation...).
    case propagates
    /// The layer sets the output's mask itself (Embedding with `mask_zero`, Masking).
    case produces
}

/// A layer of one input tensor and one output tensor: what most layers are, built-in or not.
/// It is a `NodeLayer` (the graph's protocol) through the defaults in NodeLayer.swift.
///
/// A layer is an immutable value made by its factory, which has already checked its config and
/// weights against the input shape; `forward` only runs it.
public protocol Layer: NodeLayer {
    /// Per-sample output shape for the input shape the layer was built for; nil marks a
    /// dimension known only at run time (a sequence of any length).
    var outputShape: [Int?] { get }
    /// What happens to the sequence mask. Defaults to `.drops`.
    var maskBehavior: MaskBehavior { get }
    /// Computes the output for a batch.
    func forward(_ input: Tensor) throws -> Tensor
}

extension Layer {
    public var maskBehavior: MaskBehavior { .drops }

    /// Runs `forward` and applies the layer's mask behaviour: what models and wrapper layers call.
    /// The input's data and mask must match its shape (`Tensor.checkConsistent`).
    public func apply(_ input: Tensor) throws -> Tensor {
        try input.checkConsistent("input")
        var output = try forward(input)
        switch maskBehavior {
        case .drops: output.mask = nil
        case .propagates: output.mask = input.mask
        case .produces: break
        }
        return output
    }
}

/// A layer that can run the layer after it in the same pass: a convolution applies the
/// BatchNormalization, the residual Add and the ReLU that follow it while each block of its output
/// is still in cache, instead of one more pass over memory for each. `Model.build` offers a node a
/// successor whose only input not yet computed is this node's output, when the successor is the
/// only reader of that output and it is not a model output. A fused layer must compute exactly
/// what the layers compute one after the other, mask included, or decline. The model keeps every
/// layer in its summary; only the run is fused.
///
/// A one-input layer fusing one-input successors implements `FusesNext` instead.
public protocol FusesSuccessor: NodeLayer {
    /// One layer doing `self` then `next`, which reads `self`'s output as its input `position`
    /// (its other inputs computed before), or nil to run them apart. The fused layer is called on
    /// `self`'s inputs followed by `next`'s other inputs in their order.
    func fusing(_ next: any NodeLayer, reading position: Int) -> (any NodeLayer)?
}

/// A one-input layer that can run the one-input layer after it in the same pass
/// (`FusesSuccessor` for a chain): an Embedding looks up the recurrent layer's input projections.
public protocol FusesNext: FusesSuccessor, Layer {
    /// One layer doing `self` then `next`, or nil to run them apart.
    func fusing(_ next: any Layer) -> (any Layer)?
}

extension FusesNext {
    public func fusing(_ next: any NodeLayer, reading position: Int) -> (any NodeLayer)? {
        guard position == 0, let unary = next as? any Layer else { return nil }
        return fusing(unary)
    }
}

/// Formats a per-sample shape with the batch axis as Keras prints it: `(None, 32, 32, 3)`.
public func describeShape(_ shape: [Int?]) -> String {
    let dims = ["None"] + shape.map { $0.map(String.init) ?? "None" }
    return "(" + dims.joined(separator: ", ") + (dims.count == 1 ? ",)" : ")")
}

/// A layer whose input is integer indices, such as `Embedding`: tools that make inputs (for
/// example `nnbuild bench`) draw ids in `0..<indexLimit`.
public protocol TakesIndices {
    var indexLimit: Int { get }
}

/// A layer that runs a cell over the time steps of a sequence (SimpleRNN, LSTM, GRU, or a user's
/// recurrent layer): what `Bidirectional` accepts as its halves, as Keras accepts only RNN layers.
public protocol RecurrentSequenceLayer: Layer {}
