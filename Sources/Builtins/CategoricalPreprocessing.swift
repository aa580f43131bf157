#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

/// How integer category indices become outputs (keras/src/utils/numerical_utils.py
/// encode_categorical_inputs): `int` the indices themselves; `one_hot` a row of `depth` per index
/// (a last axis of 1 is replaced, an index outside 0..<depth gives a row of zeros, as tf.one_hot);
/// `multi_hot` and `count` one row of `depth` per sample of one axis (1 where the index occurs, or
/// how often).
enum CategoricalOutput: String, Sendable {
    case int, oneHot = "one_hot", multiHot = "multi_hot", count, tfIdf = "tf_idf"

    /// Config `output_mode` (default `defaultMode`); `tf_idf` only for a layer with IDF weights (a lookup).
    static func read(_ context: LayerContext, default defaultMode: String, weighsByIDF: Bool = false) throws -> CategoricalOutput {
        let mode = try context.choice("output_mode", default: defaultMode, allowed: ["int", "one_hot", "multi_hot", "count", "tf_idf"])
        guard let output = CategoricalOutput(rawValue: mode), output != .tfIdf || weighsByIDF else {
            throw context.error("'output_mode' is \"\(mode)\", which only a lookup with IDF weights has; expected int, one_hot, multi_hot or count", key: "output_mode")
        }
        if try context.bool("sparse", default: false) {
            throw context.error("'sparse' is true; nnbuild computes dense tensors only", key: "sparse")
        }
        return output
    }

    /// The per-sample output shape for a per-sample input shape.
    func outputShape(_ input: [Int?], depth: Int, _ context: LayerContext) throws -> [Int?] {
        switch self {
        case .int: return input
        case .oneHot: return (input.last == 1 ? Array(input.dropLast()) : input) + [depth]
        case .multiHot, .count, .tfIdf:
            guard input.count == 1 else {
                throw context.error("output_mode '\(rawValue)' takes samples of one axis (batch, n), as Keras's bincount does, found \(describeShape(input))", key: "output_mode")
            }
            return [depth]
        }
    }
}

/// Encodes category indices (float values holding integers; `dropped` marks an index that
/// contributes nothing, Keras's mask in non-int modes). x: (batch, d...); out per `mode`
/// (`tf_idf`: the counts times `idf`, one weight per index).
func encodeCategories(_ x: Tensor, mode: CategoricalOutput, depth: Int, name: String, idf: [Float]? = nil) throws -> Tensor {
    switch mode {
    case .int: return x
    case .oneHot:
        var shape = x.shape
        if shape.count > 1, shape.last == 1 { shape.removeLast() }
        var data = [Float](repeating: 0, count: x.count * depth)
        for (i, value) in x.data.enumerated() where value >= 0 && value < Float(depth) {
            data[i * depth + Int(value)] = 1
        }
        return Tensor(shape: shape + [depth], data: data)
    case .multiHot, .count, .tfIdf:
        let batch = x.shape.first ?? 0, n = x.shape.count > 1 ? x.shape[1] : 1
        return try bags(of: (0..<batch).map { b in x.data[(b * n)..<((b + 1) * n)] }, mode: mode, depth: depth, name: name, idf: idf)
    }
}

/// One row of `depth` per sequence of indices: 1 where an index occurs (`multi_hot`), how often
/// (`count`), or that times the index's IDF weight (`tf_idf`); `droppedCategory` counts for nothing.
func bags<S: Collection>(of sequences: [S], mode: CategoricalOutput, depth: Int, name: String, idf: [Float]?) throws -> Tensor where S.Element == Float {
    var data = [Float](repeating: 0, count: sequences.count * depth)
    for (row, sequence) in sequences.enumerated() {
        for value in sequence where value != droppedCategory {
            guard value >= 0, value < Float(depth) else {
                throw NNError(.input, name, "category index \(value) is outside 0..<\(depth) (Keras's bincount fails on it too)")
            }
            let slot = row * depth + Int(value)
            data[slot] = mode == .multiHot ? 1 : data[slot] + 1
        }
    }
    if mode == .tfIdf, let idf, idf.count == depth {
        for row in sequences.indices { for index in 0..<depth { data[row * depth + index] *= idf[index] } }
    }
    return Tensor(shape: [sequences.count, depth], data: data)
}

/// The index a masked token takes in IntegerLookup's non-int modes: Keras maps it to int64's
/// maximum, which the encoding drops.
let droppedCategory = -Float.infinity

/// `Discretization` at inference: each value's bucket among `bin_boundaries` (b[i−1] ≤ x < b[i]
/// gives i, as numpy.digitize and tf's Bucketize), then encoded by `output_mode` (int, one_hot,
/// multi_hot, count) with depth len(bin_boundaries) + 1.
/// Config: `bin_boundaries` (required: an adapted layer writes them), `output_mode` ("int"),
/// `sparse` (false only); `num_bins` and `epsilon` matter only when adapting.
public struct Discretization: Layer {
    public let boundaries: [Float]
    let mode: CategoricalOutput
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        guard let boundaries = try context.numbers("bin_boundaries")?.map(Float.init) else {
            throw context.error("'bin_boundaries' is null: the layer was never adapted, and Keras cannot run it either", key: "bin_boundaries")
        }
        guard zip(boundaries, boundaries.dropFirst()).allSatisfy({ $0 <= $1 }), boundaries.allSatisfy({ !$0.isNaN }) else {
            throw context.error("'bin_boundaries' must be sorted ascending, found \(boundaries)", key: "bin_boundaries")
        }
        _ = try context.optionalInt("num_bins")
        _ = try context.optionalDouble("epsilon")
        let mode = try CategoricalOutput.read(context, default: "int")
        let shape = try mode.outputShape(context.inputShape, depth: boundaries.count + 1, context)
        try context.sampleCount(shape)
        return Discretization(boundaries: boundaries, mode: mode, outputShape: shape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var indices = input
        for i in indices.data.indices {
            // The number of boundaries ≤ x (NaN sorts past every boundary in Bucketize).
            let value = indices.data[i]
            var low = 0, high = boundaries.count
            while low < high {
                let middle = (low + high) / 2
                if boundaries[middle] <= value || value.isNaN { low = middle + 1 } else { high = middle }
            }
            indices.data[i] = Float(low)
        }
        return try encodeCategories(indices, mode: mode, depth: boundaries.count + 1, name: "Discretization")
    }
}

/// `CategoryEncoding`: integer inputs encoded by `output_mode` (one_hot, multi_hot (default),
/// count) over `num_tokens`. Config: `num_tokens`, `output_mode`, `sparse` (false only).
public struct CategoryEncoding: Layer {
    let mode: CategoricalOutput
    public let depth: Int
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        let depth = try context.positiveInt("num_tokens", maximum: 1 << 24)
        let mode = try CategoricalOutput.read(context, default: "multi_hot")
        guard mode != .int else { throw context.error("'output_mode' must be one_hot, multi_hot or count, found \"int\"", key: "output_mode") }
        let shape = try mode.outputShape(context.inputShape, depth: depth, context)
        try context.sampleCount(shape)
        return CategoryEncoding(mode: mode, depth: depth, outputShape: shape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var indices = input
        // Keras casts to int64: a fractional index truncates toward zero.
        for i in indices.data.indices where indices.data[i].isFinite { indices.data[i].round(.towardZero) }
        return try encodeCategories(indices, mode: mode, depth: depth, name: "CategoryEncoding")
    }
}

/// What Keras's IndexLookup (keras/src/layers/preprocessing/index_lookup.py) keeps of a
/// vocabulary, for IntegerLookup's integer terms and StringLookup's strings alike: the mask token
/// → 0 (int mode; dropped in the others), a vocabulary term → its position after the mask and
/// OOV slots, any other term → an OOV slot the layer picks (`oovIndex`); then `output_mode`.
/// Inverted: an index → its term, 0 → the mask token, anything else → `oovToken`.
/// Config read here: `num_oov_indices` (1), `invert` (false), `output_mode` ("int"),
/// `max_tokens`, `pad_to_max_tokens`, `sparse`; the layer reads its terms and tokens.
struct LookupVocabulary<Term: Hashable & Sendable>: Sendable {
    let table: [Term: Float]
    let vocabulary: [Term]
    let maskToken: Term?
    let oovToken: Term
    let oovCount: Int
    let oovStart: Int
    let invert: Bool
    let mode: CategoricalOutput
    let depth: Int
    /// tf_idf: each index's IDF weight.
    let idf: [Float]?

    /// `fixed` gives the OOV slots and inversion of a layer whose config has no such keys
    /// (TextVectorization: one slot, not inverted).
    init(terms given: [Term], maskToken: Term?, oovToken: Term, _ context: LayerContext, fixed: (oovCount: Int, invert: Bool)? = nil,
         describe: (Term) -> String) throws {
        var terms = given
        let oovCount = try fixed?.oovCount ?? context.int("num_oov_indices", default: 1)
        guard oovCount >= 0, oovCount <= 1 << 20 else { throw context.error("'num_oov_indices' must be 0 or more, found \(oovCount)", key: "num_oov_indices") }
        let invert = try fixed?.invert ?? context.bool("invert", default: false)
        let mode = try CategoricalOutput.read(context, default: "int", weighsByIDF: true)
        if invert, mode != .int { throw context.error("'invert' is true with output_mode '\(mode.rawValue)'; Keras allows it only with int", key: "invert") }
        let oovStart = maskToken != nil && mode == .int ? 1 : 0
        let tokenStart = oovStart + oovCount
        // A vocabulary may begin with the special tokens in order; Keras drops them.
        let special = (maskToken.map { [$0] } ?? []).prefix(oovStart) + [Term](repeating: oovToken, count: oovCount)
        let foundSpecial = terms.count >= special.count && Array(terms.prefix(special.count)) == Array(special)
        if foundSpecial { terms.removeFirst(special.count) }
        if let maskToken, terms.contains(maskToken) {
            throw context.error("'vocabulary' holds the mask token \(describe(maskToken)); Keras refuses it there", key: "vocabulary")
        }
        guard Set(terms).count == terms.count else { throw context.error("'vocabulary' holds a term twice", key: "vocabulary") }
        var depth = terms.count + tokenStart
        if try context.bool("pad_to_max_tokens", default: false), let maxTokens = try context.optionalInt("max_tokens") {
            guard maxTokens >= depth else { throw context.error("'max_tokens' \(maxTokens) is less than the vocabulary's \(depth) indices", key: "max_tokens") }
            depth = maxTokens
        } else {
            _ = try context.optionalInt("max_tokens")
        }
        var table: [Term: Float] = [:]
        for (i, term) in terms.enumerated() { table[term] = Float(tokenStart + i) }
        idf = mode == .tfIdf ? try Self.idfWeights(context, terms: given.count, front: foundSpecial ? 0 : tokenStart, depth: depth) : nil
        self.table = table
        vocabulary = terms
        self.maskToken = maskToken
        self.oovToken = oovToken
        self.oovCount = oovCount
        self.oovStart = oovStart
        self.invert = invert
        self.mode = mode
        self.depth = depth
    }

    /// The index of `key`: the mask's, a term's, or the OOV slot `oovSlot` picks among
    /// `oovCount` (called only when there are several). `name` is the layer type, for messages.
    func index(of key: Term, name: String, describe: (Term) -> String, oovSlot: (Term) -> Int) throws -> Float {
        if let maskToken, key == maskToken { return mode == .int ? 0 : droppedCategory }
        if let index = table[key] { return index }
        guard oovCount > 0 else {
            throw NNError(.input, name, "\(describe(key)) is not in the vocabulary and num_oov_indices is 0 (Keras fails too)")
        }
        return Float(oovStart + (oovCount == 1 ? 0 : oovSlot(key)))
    }

    /// tf_idf's weights, `depth` of them: from the config's `idf_weights` (one per given term, the
    /// `front` special slots before them weighted by their mean and the padding to max_tokens by 0,
    /// as Keras pads them), whose copy a `.keras` file also holds, or, for an adapted layer, that
    /// copy alone (`idf_weights`, saved under its name).
    static func idfWeights(_ context: LayerContext, terms: Int, front: Int, depth: Int) throws -> [Float] {
        guard let given = try context.numbers("idf_weights") else {
            return Array(try context.weight("idf_weights", savedUnderItsName: true, shape: [depth]).values)
        }
        guard given.count == terms else {
            throw context.error("'idf_weights' holds \(given.count) weights for \(terms) vocabulary terms; Keras requires one per term", key: "idf_weights")
        }
        context.ignoreWeight("idf_weights", savedUnderItsName: true)
        let mean = given.isEmpty ? 0 : given.reduce(0, +) / Double(given.count)
        let weights = [Double](repeating: mean, count: front) + given
        return (weights + [Double](repeating: 0, count: max(depth - weights.count, 0))).prefix(depth).map(Float.init)
    }

    /// The output shape of a lookup of each element of the layer's input, checked.
    func outputShape(_ context: LayerContext) throws -> [Int?] {
        let shape = try mode.outputShape(context.inputShape, depth: depth, context)
        try context.sampleCount(shape)
        return shape
    }

    /// The term of index `index` (an inverted lookup).
    func term(of index: Int) -> Term {
        if let maskToken, index == 0 { return maskToken }
        let position = index - oovStart - oovCount
        return position >= 0 && position < vocabulary.count ? vocabulary[position] : oovToken
    }

    /// The layer's terms: config `vocabulary` as a list (`list` reads it), or, for an adapted
    /// layer, the `.keras` file's asset `vocabulary.txt`, a term a line (`line` reads one);
    /// a file path, or neither, is refused. `layer` names the layer type for messages.
    static func terms(_ context: LayerContext, layer: String, kind: String, list: () throws -> [Term],
                      line: (_ number: Int, _ text: String) throws -> Term) throws -> [Term] {
        if case .string? = context.value("vocabulary") {
            throw context.error("'vocabulary' is a file path; nnbuild reads a vocabulary given as a list in the config", key: "vocabulary")
        }
        if context.has("vocabulary") { return try list() }
        guard let asset = context.asset("vocabulary.txt") else {
            throw context.missingKey("vocabulary", kind: kind, "'vocabulary' is null: an adapted \(layer) keeps its vocabulary in the .keras file's assets, not in the spec; run the .keras file itself, or pass vocabulary= when building the layer")
        }
        guard let text = String(validating: asset, as: UTF8.self) else {
            throw context.error("the vocabulary in the .keras file's assets is not UTF-8 text", key: "vocabulary")
        }
        return try text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map { try line($0.offset + 1, String($0.element)) }
    }
}

extension LookupVocabulary where Term == String {
    /// A string layer's terms (`terms`), and its `encoding`, which must be UTF-8.
    static func strings(_ context: LayerContext, layer: String) throws -> [String] {
        let terms = try terms(context, layer: layer, kind: "list of strings", list: { try context.stringList("vocabulary") }, line: { $1 })
        let encoding = try context.string("encoding", default: "utf-8")
        guard ["utf-8", "utf8"].contains(encoding.lowercased()) else {
            throw context.error("'encoding' is \"\(encoding)\"; nnbuild reads UTF-8 text", key: "encoding")
        }
        return terms
    }
}

/// `IntegerLookup` for integer inputs (keras/src/layers/preprocessing/integer_lookup.py), as
/// `LookupVocabulary` says: an unknown key's OOV slot among several is `key` floormod the slots,
/// or with `oov_method` farmhash its decimal form hashed as Hashing does.
/// Config: `vocabulary` (a list; an adapted layer keeps it in a .keras file's assets, read there),
/// `mask_token` (null), `oov_token` (-1), `vocabulary_dtype`, `oov_method`, `salt`, and
/// `LookupVocabulary`'s.
public struct IntegerLookup: Layer {
    let lookup: LookupVocabulary<Int64>
    /// `oov_method` farmhash: an unknown key's OOV slot from its hash, not key mod slots.
    let hashesOOV: Bool
    let salt: (UInt64, UInt64)?
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        let terms = try LookupVocabulary<Int64>.terms(context, layer: "IntegerLookup", kind: "list of integers",
                                                       list: { try context.intList("vocabulary").map(Int64.init) }) { number, text in
            guard let term = Int64(text.filter { !$0.isWhitespace }) else {
                throw context.error("the vocabulary in the .keras file's assets holds \"\(text.prefix(40))\" on line \(number); expected one integer a line", key: "vocabulary")
            }
            return term
        }
        let maskToken = try context.optionalInt("mask_token").map(Int64.init)
        let oovToken = Int64(try context.int("oov_token", default: -1))
        let hashed = try context.choice("oov_method", default: "floormod", allowed: ["floormod", "farmhash"]) == "farmhash"
        let salt = try Hashing.readSalt(context)
        _ = try context.string("vocabulary_dtype", default: "int64")
        let lookup = try LookupVocabulary(terms: terms, maskToken: maskToken, oovToken: oovToken, context, describe: { "\($0)" })
        return IntegerLookup(lookup: lookup, hashesOOV: hashed, salt: salt, outputShape: try lookup.outputShape(context))
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        for i in output.data.indices {
            let value = output.data[i]
            guard value.isFinite, Swift.abs(value) < 9.0e15 else {
                throw NNError(.input, "IntegerLookup", "input \(value) is not an integer")
            }
            let key = Int64(value.rounded(.towardZero))
            if lookup.invert {
                output.data[i] = Float(lookup.term(of: Int(key)))
                continue
            }
            let slots = Int64(lookup.oovCount)
            output.data[i] = try lookup.index(of: key, name: "IntegerLookup", describe: { "\($0)" }) { key in
                // oov_method farmhash: the key's decimal form hashed as Hashing does (SipHash with a salt).
                hashesOOV ? Int(Hashing.hash(Array(String(key).utf8), salt: salt) % UInt64(slots)) : Int(((key % slots) + slots) % slots)
            }
        }
        return try encodeCategories(output, mode: lookup.mode, depth: lookup.depth, name: "IntegerLookup", idf: lookup.idf)
    }
}

/// `StringLookup` (keras/src/layers/preprocessing/string_lookup.py) on a string input, as
/// `LookupVocabulary` says: terms compare as text, and an unknown term's OOV slot among several is
/// its FarmHash Fingerprint64 modulo the slots (`tf.strings.to_hash_bucket_fast`), or with a
/// `salt` its keyed SipHash (`to_hash_bucket_strong`). The indices come out as float32, as every
/// nnbuild tensor. An inverted lookup (indices to strings) would output strings, which nnbuild's
/// outputs are not: refused.
/// Config: `vocabulary` (a list; an adapted layer keeps it in a .keras file's assets, read there),
/// `mask_token` (null), `oov_token` ("[UNK]"), `encoding` ("utf-8"), `salt`, and
/// `LookupVocabulary`'s.
public struct StringLookup: Layer, ReadsStrings {
    let lookup: LookupVocabulary<String>
    let salt: (UInt64, UInt64)?
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        guard context.inputHoldsStrings else {
            throw context.error("reads strings, but its input holds numbers; give the model an input of dtype string (keras.Input(dtype=\"string\"))")
        }
        if try context.bool("invert", default: false) {
            throw context.error("'invert' is true: the lookup would output strings, and nnbuild's outputs are numbers", key: "invert")
        }
        let terms = try LookupVocabulary<String>.strings(context, layer: "StringLookup")
        let maskToken = try context.optionalString("mask_token")
        let oovToken = try context.string("oov_token", default: "[UNK]")
        _ = try context.string("vocabulary_dtype", default: "string")
        _ = try context.choice("oov_method", default: "floormod", allowed: ["floormod", "farmhash"])
        let lookup = try LookupVocabulary(terms: terms, maskToken: maskToken, oovToken: oovToken, context, describe: { "\"\($0)\"" })
        return StringLookup(lookup: lookup, salt: try Hashing.readSalt(context), outputShape: try lookup.outputShape(context))
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard let strings = input.strings else { throw NNError(.input, "StringLookup", "its input holds numbers; it reads strings") }
        let slots = UInt64(lookup.oovCount)
        let indices = try strings.map { term in
            try lookup.index(of: term, name: "StringLookup", describe: { "\"\($0)\"" }) { Int(Hashing.hash(Array($0.utf8), salt: salt) % slots) }
        }
        return try encodeCategories(Tensor(shape: input.shape, data: indices), mode: lookup.mode, depth: lookup.depth, name: "StringLookup", idf: lookup.idf)
    }
}

extension Builtins {
    static func registerCategoricalPreprocessing(_ registry: LayerRegistry) {
        registry.register("Discretization", origin: "builtin", summary: "Bucket index of each value among bin_boundaries, encoded.", factory: Discretization.factory)
        registry.register("CategoryEncoding", origin: "builtin", summary: "Integer categories as one-hot, multi-hot or counts.", factory: CategoryEncoding.factory)
        registry.register("IntegerLookup", origin: "builtin", summary: "Integer terms to indices (or back) over a vocabulary in the config or the .keras file's assets.", factory: IntegerLookup.factory)
        registry.register("StringLookup", origin: "builtin", summary: "Strings to indices over a vocabulary in the config or the .keras file's assets.", factory: StringLookup.factory)
    }
}
