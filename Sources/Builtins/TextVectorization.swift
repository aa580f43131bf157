import LayerRegistry

/// `TextVectorization` (keras/src/layers/preprocessing/text_vectorization.py) on a string input:
/// each string standardized, split into tokens, joined into n-grams, and looked up in the
/// vocabulary as its StringLookup does (mask token "", OOV token "[UNK]", one OOV slot), then
/// `output_mode`: `int` the token indices, padded with 0 or cut to `output_sequence_length` (to
/// the longest row of the batch without one, as Keras pads a ragged batch); `multi_hot` or `count`
/// one row of the vocabulary's size per sample, `tf_idf` the counts times the IDF weights.
///
/// What TensorFlow does, byte for byte: `lower` lowers ASCII letters only (`tf.strings.lower`
/// without an encoding), `strip_punctuation` removes the 32 ASCII punctuation characters, the
/// whitespace split cuts at ASCII white space and drops empty tokens, the character split yields
/// Unicode code points, and n-grams of each width are listed width by width, tokens joined by a
/// space (`tf.strings.ngrams`), a row shorter than a width giving none of it.
///
/// Config: `standardize` ("lower_and_strip_punctuation", "lower", "strip_punctuation" or null),
/// `split` ("whitespace", "character" or null), `ngrams` (null, n for widths 1...n, or a list of
/// widths), `output_mode` ("int", "multi_hot", "count"), `output_sequence_length` (int mode),
/// `vocabulary` (a list, or, adapted, the .keras file's assets), `idf_weights` (tf_idf: a list,
/// or, adapted, the weights file's), `max_tokens`, `pad_to_max_tokens`, `encoding` ("utf-8");
/// `ragged`, `sparse` false.
/// A Python callable as `standardize` or `split` is code, which a spec cannot carry: refused.
public struct TextVectorization: Layer, ReadsStrings {
    enum Standardize: String { case lowerAndStrip = "lower_and_strip_punctuation", lower, strip = "strip_punctuation" }
    enum Split: String { case whitespace, character }

    let lookup: LookupVocabulary<String>
    let standardize: Standardize?
    let split: Split?
    let ngramWidths: [Int]
    /// int mode: the length every row is padded or cut to; nil pads to the batch's longest row.
    let sequenceLength: Int?
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        guard context.inputHoldsStrings else {
            throw context.error("reads strings, but its input holds numbers; give the model an input of dtype string (keras.Input(dtype=\"string\"))")
        }
        func choice<T: RawRepresentable>(_ key: String, default defaultValue: String?, _ type: T.Type) throws -> T? where T.RawValue == String {
            switch context.value(key, kind: "a string or null", default: defaultValue.map { "\"\($0)\"" } ?? "null") {
            case nil: return defaultValue.flatMap(T.init(rawValue:))
            case .null?: return nil
            case let .string(name)?:
                guard let value = T(rawValue: name) else { throw context.error("'\(key)' is \"\(name)\", which TextVectorization does not have", key: key) }
                return value
            case let other?:
                throw context.error("'\(key)' is \(other.brief()), a serialized Python function: its code is not in the spec, so nnbuild cannot run it", key: key)
            }
        }
        let standardize = try choice("standardize", default: Standardize.lowerAndStrip.rawValue, Standardize.self)
        let split = try choice("split", default: Split.whitespace.rawValue, Split.self)
        var widths: [Int] = []
        switch context.value("ngrams", kind: "an integer, a list of integers or null", default: "null") {
        case nil, .null?: break
        case let .int(n)?:
            guard n >= 1, n <= 64 else { throw context.error("'ngrams' must be from 1 to 64, found \(n)", key: "ngrams") }
            widths = Array(1...Int(n))
        case .array?:
            widths = try context.intList("ngrams")
            guard !widths.isEmpty, widths.count <= 64, widths.allSatisfy({ $0 >= 1 && $0 <= 64 }) else {
                throw context.error("'ngrams' must list 1 to 64 widths, each from 1 to 64, found \(widths.prefix(8))\(widths.count > 8 ? "… (\(widths.count))" : "")", key: "ngrams")
            }
        case let other?: throw context.error("'ngrams' must be an integer, a list of integers or null, found \(other.brief())", key: "ngrams")
        }
        if try context.bool("ragged", default: false) {
            throw context.error("'ragged' is true: the output would be a ragged tensor, and nnbuild's are dense", key: "ragged")
        }
        let terms = try LookupVocabulary<String>.strings(context, layer: "TextVectorization")
        _ = try context.optionalInt("vocabulary_size")
        let lookup = try LookupVocabulary(terms: terms, maskToken: "", oovToken: "[UNK]", context, fixed: (oovCount: 1, invert: false),
                                          describe: { "\"\($0)\"" })
        // Its StringLookup saves the same IDF weights again.
        if lookup.mode == .tfIdf { context.ignoreWeight("idf_weights", savedUnderItsName: true, ofChild: lookupChild) }
        guard lookup.mode != .oneHot else {
            throw context.error("'output_mode' is \"one_hot\", which TextVectorization does not have; expected int, multi_hot or count", key: "output_mode")
        }
        let length = try context.optionalInt("output_sequence_length")
        if let length {
            guard lookup.mode == .int else {
                throw context.error("'output_sequence_length' is set with output_mode '\(lookup.mode.rawValue)'; Keras allows it only with int", key: "output_sequence_length")
            }
            guard length >= 1 else { throw context.error("'output_sequence_length' must be at least 1, found \(length)", key: "output_sequence_length") }
        }
        let input = context.inputShape
        if split != nil, !(input.isEmpty || input == [1]) {
            throw context.error("splits strings into tokens, so its input must be (batch,) or (batch, 1) strings, found \(describeShape(input)) (Keras refuses it too)")
        }
        if split == nil, input.isEmpty {
            throw context.error("takes each string as one token ('split' is null) over the last axis of its input, found (batch,) strings; give them as (batch, n)", key: "split")
        }
        let shape: [Int?]
        switch (lookup.mode, split) {
        case (.int, .some): shape = [length]
        case (.int, nil):
            // Each string a token: the last axis's strings, or the n-grams of them.
            let tokens = input.last.flatMap { $0 }.map { last in widths.isEmpty ? last : widths.reduce(0) { $0 + max(0, last - $1 + 1) } }
            shape = input.dropLast() + [length ?? tokens]
        default:
            guard input.count <= 1 else {
                throw context.error("output_mode '\(lookup.mode.rawValue)' takes samples of one axis, found \(describeShape(input))", key: "output_mode")
            }
            shape = [lookup.depth]
        }
        try context.sampleCount(shape)
        return TextVectorization(lookup: lookup, standardize: standardize, split: split, ngramWidths: widths, sequenceLength: length, outputShape: shape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard let strings = input.strings else { throw NNError(.input, "TextVectorization", "its input holds numbers; it reads strings") }
        let batch = input.batch
        // The sequences of token indices: with a split, a row's one string cut into tokens;
        // without, each run of the input's last axis, one token a string.
        let width = split == nil ? input.shape.last ?? 1 : 1
        let count = width > 0 ? strings.count / width : 0
        // How many token indices the call may hold: what the memory limit allows, since how many
        // a string makes (its words times its n-gram widths) depends on its text, not its shape.
        let budget = KernelOptions.current.memoryLimit / MemoryLayout<Float>.size
        var made = 0
        let sequences: [[Float]] = try (0..<count).map { index in
            let texts = split == nil ? strings[(index * width)..<((index + 1) * width)].map { standardized(Array($0.utf8)) }
                                     : tokens(of: standardized(Array(strings[index].utf8)))
            var indices: [Float] = []
            try ngrams(texts) { bytes in
                made += 1
                guard made <= budget else {
                    throw NNError(.input, "TextVectorization", "the batch's strings make more than \(budget) tokens, past the memory limit of \(ShapeMath.describeBytes(budget * MemoryLayout<Float>.size)); use a smaller batch (--batch-size), shorter texts, or raise the limit (--max-memory)")
                }
                // Exactly one OOV slot: its index needs no hash.
                indices.append(try lookup.index(of: String(decoding: bytes, as: UTF8.self), name: "TextVectorization", describe: { "\"\($0)\"" }) { _ in 0 })
            }
            return indices
        }
        switch lookup.mode {
        case .int:
            // Padded with 0 or cut to the length asked, else to the longest (every one, without a split).
            let length = sequenceLength ?? sequences.map(\.count).max() ?? 0
            guard ShapeMath.saturatingProduct([sequences.count, length]) <= budget else {
                throw NNError(.input, "TextVectorization", "\(sequences.count) rows padded to \(length) tokens are past the memory limit of \(ShapeMath.describeBytes(budget * MemoryLayout<Float>.size)); use a smaller batch (--batch-size), or set output_sequence_length")
            }
            var data = [Float](repeating: 0, count: sequences.count * length)
            for (row, sequence) in sequences.enumerated() {
                for (position, index) in sequence.prefix(length).enumerated() { data[row * length + position] = index }
            }
            return Tensor(shape: (split == nil ? Array(input.shape.dropLast()) : [batch]) + [length], data: data)
        default:
            return try bags(of: sequences, mode: lookup.mode, depth: lookup.depth, name: "TextVectorization", idf: lookup.idf)
        }
    }

    /// The ASCII punctuation `strip_punctuation` removes (Python's string.punctuation).
    static let punctuation = Set(Array("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".utf8))

    /// `text`'s UTF-8 bytes as `standardize` leaves them: only ASCII bytes change, so the text stays UTF-8.
    func standardized(_ text: [UInt8]) -> [UInt8] {
        guard let standardize else { return text }
        var bytes = text
        if standardize != .strip {
            for i in bytes.indices where bytes[i] >= 0x41 && bytes[i] <= 0x5A { bytes[i] += 0x20 }
        }
        if standardize != .lower { bytes.removeAll { Self.punctuation.contains($0) } }
        return bytes
    }

    /// The tokens of one standardized string: cut at ASCII white space (no empty token), or its
    /// code points.
    func tokens(of text: [UInt8]) -> [[UInt8]] {
        switch split {
        case .whitespace?:
            return text.split { [0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D].contains($0) }.map(Array.init)
        case .character?:
            return String(decoding: text, as: UTF8.self).unicodeScalars.map { Array(String($0).utf8) }
        case nil:
            return [text]
        }
    }

    /// `tokens` as `tf.strings.ngrams` joins them for `ngramWidths` (the tokens themselves
    /// without), each handed to `body` as it is made: the n-grams of a long text are never held together.
    func ngrams(_ tokens: [[UInt8]], _ body: ([UInt8]) throws -> Void) rethrows {
        guard !ngramWidths.isEmpty else { return try tokens.forEach(body) }
        var gram: [UInt8] = []
        for width in ngramWidths where width <= tokens.count {
            for start in 0...(tokens.count - width) {
                gram.removeAll(keepingCapacity: true)
                for (offset, token) in tokens[start..<(start + width)].enumerated() {
                    if offset > 0 { gram.append(0x20) }
                    gram += token
                }
                try body(gram)
            }
        }
    }
}

/// The name of the StringLookup a TextVectorization makes (saved at `_lookup_layer`).
let lookupChild = "string_lookup"

extension Builtins {
    static func registerTextVectorization(_ registry: LayerRegistry) {
        registry.register("TextVectorization", origin: "builtin", summary: "Strings to token indices (or multi-hot, counts, TF-IDF): standardized, split, n-grams, looked up.",
                          savedChildren: .made("_lookup_layer", className: "StringLookup", name: lookupChild, when: { $0.config["output_mode"] == .string("tf_idf") }),
                          factory: TextVectorization.factory)
    }
}
