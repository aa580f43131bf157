#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One layer of a Sequential model as written in the spec: its type, its name, and its raw
/// Keras config. Factories read the config through `LayerContext`, which knows Keras defaults.
public struct LayerSpec: Sendable {
    /// The Keras `class_name`, e.g. `Conv2D`.
    public var className: String
    /// Keras 3's `registered_name` for custom classes (`my_package>ScaledTanh`), when present.
    public var registeredName: String?
    /// The layer's name: from the config, or Keras's default (`dense`, `dense_1`, ...).
    public var name: String
    /// The `config` object (an empty object when the spec omits it).
    public var config: JSONValue
    /// Where the layer sits in the document, e.g. `config.layers[3]`.
    public var path: String
    /// Keras 3's `build_config`, which records the input shape the layer was built for.
    public var buildConfig: JSONValue?

    public init(className: String, registeredName: String? = nil, name: String, config: JSONValue, path: String,
                buildConfig: JSONValue? = nil) {
        self.buildConfig = buildConfig
        self.className = className
        self.registeredName = registeredName
        self.name = name
        self.config = config
        self.path = path
    }

    /// `layer 'conv2d_1' (Conv2D)`, the prefix of every message about this layer.
    public var label: String { "layer '\(name)' (\(className))" }
}

extension LayerSpec {
    /// The layer's dtype policy name (`float32`, `mixed_float16`, ...) from Keras 2's plain string
    /// or Keras 3's `DTypePolicy` object; nil when the config names none.
    public var dtypePolicy: String? {
        switch config["dtype"] {
        case let .string(name)?: return name
        case let policy?:
            if case let .string(name)? = policy["config"]?["name"] { return name }
            return nil
        case nil: return nil
        }
    }
}

/// A model description: where the JSON came from, the input it takes, its layers, and the model as
/// a graph of layer calls (`graph`: a Sequential lowered to a chain, or a Functional model).
public struct ModelDescription: Sendable {
    public enum Format: String, Sendable {
        case keras3 = "Keras 3"
        case keras2 = "Keras 2"
        case handwritten = "hand-written"
    }

    public var name: String
    public var format: Format
    public var kerasVersion: String?
    /// Per-sample input shape (batch axis excluded); nil marks a dimension known only at run time.
    public var inputShape: [Int?]
    /// The input dtype named by the spec (`float32` unless it says otherwise).
    public var inputDType: String
    /// Every layer, in order, including an explicit `InputLayer`.
    public var layers: [LayerSpec]
    /// The file the description was read from, for messages.
    public var source: String
    /// The model as a graph: what `Model.build` runs.
    public var graph: GraphSpec

    /// Reads a spec file (Keras 3 or Keras 2 `to_json()`, or hand-written).
    public static func load(path: String) throws -> ModelDescription {
        let bytes = try FileBytes.read(path: path)
        return try parse(bytes, source: path)
    }

    public static func parse(_ bytes: [UInt8], source: String) throws -> ModelDescription {
        try FileKind.check(bytes.prefix(8), path: source, expected: .modelSpec)
        let root = try JSONParser.parse(bytes, source: source)
        return try SpecReader(source: source).read(root)
    }

    /// The per-sample input shape and dtype an `InputLayer` (or a first layer carrying
    /// `input_shape`) declares.
    public static func inputSignature(of layer: LayerSpec, source: String) throws -> ([Int?], String) {
        try SpecReader(source: source).inputSignature(layers: [layer], config: .object([]), configPath: "")
    }

    public static func parse(_ text: String, source: String = "<spec>") throws -> ModelDescription {
        try parse(Array(text.utf8), source: source)
    }
}

extension ModelDescription {
    /// The description of a graph: its name and layers, and its first input's shape and dtype.
    public init(graph: GraphSpec) throws {
        guard let first = graph.inputs.first.flatMap({ graph.layer(named: $0.layer) }) else {
            throw NNError(.spec, "\(graph.source): config.input_layers", "the model has no input")
        }
        let (shape, dtype) = try ModelDescription.inputSignature(of: first.spec, source: graph.source)
        self.init(name: graph.name, format: graph.format, kerasVersion: graph.kerasVersion, inputShape: shape,
                  inputDType: dtype, layers: graph.layers.map(\.spec), source: graph.source, graph: graph)
    }
}

/// Turns the JSON document into a `ModelDescription`, with errors that name the JSON path.
struct SpecReader {
    let source: String

    func fail(_ path: String, _ message: String) -> NNError {
        NNError(.spec, path.isEmpty ? source : "\(source): \(path)", message)
    }

    func read(_ root: JSONValue) throws -> ModelDescription {
        guard case .object = root else {
            throw fail("", "expected a JSON object describing a Sequential model, found \(root.typeDescription)")
        }
        // A bare {"layers": [...]} is accepted as a hand-written Sequential config too.
        let className: String
        switch root["class_name"] {
        case let .string(name)?: className = name
        case nil where root["layers"] != nil: className = "Sequential"
        case nil: throw fail("class_name", "missing; expected \"Sequential\"")
        case let other?: throw fail("class_name", "expected a string, found \(other.typeDescription)")
        }
        if ["Functional", "Model"].contains(className) {
            return try ModelDescription(graph: GraphReader(source: source).read(root))
        }
        guard className == "Sequential" else {
            throw fail("class_name", "expected \"Sequential\", \"Functional\" or \"Model\", found \"\(className)\"")
        }
        let config = root["class_name"] == nil ? root : (root["config"] ?? .object([]))
        let configPath = root["class_name"] == nil ? "" : "config"
        let layersValue: JSONValue
        let layersPath: String
        if case .array = config {
            // Keras 2.0-2.2 wrote the layer list directly as the config.
            layersValue = config
            layersPath = configPath
        } else if case .object = config {
            guard let layers = config["layers"] else {
                throw fail(join(configPath, "layers"), "missing; expected the list of layers")
            }
            layersValue = layers
            layersPath = join(configPath, "layers")
        } else {
            throw fail(configPath, "expected an object, found \(config.typeDescription)")
        }
        guard case let .array(items) = layersValue else {
            throw fail(layersPath, "expected an array of layers, found \(layersValue.typeDescription)")
        }
        guard !items.isEmpty else { throw fail(layersPath, "the model has no layers") }

        var namer = DefaultNamer()
        var layers: [LayerSpec] = []
        for (index, item) in items.enumerated() {
            let path = "\(layersPath)[\(index)]"
            layers.append(try readLayer(item, path: path, namer: &namer))
        }
        for duplicate in Dictionary(grouping: layers, by: \.name).values where duplicate.count > 1 {
            throw fail(duplicate[1].path, "layer name '\(duplicate[1].name)' is used twice (also at \(duplicate[0].path)); Keras requires unique names")
        }

        let kerasVersion = root["keras_version"].flatMap { if case let .string(v) = $0 { return v } else { return nil } }
        let format: ModelDescription.Format
        if root["module"] != nil || layers.contains(where: { $0.config["batch_shape"] != nil }) {
            format = .keras3
        } else if kerasVersion != nil || root["backend"] != nil {
            format = .keras2
        } else {
            format = .handwritten
        }
        let name = config["name"].flatMap { if case let .string(v) = $0 { return v } else { return nil } } ?? "sequential"
        let (shape, dtype) = try inputSignature(layers: layers, config: config, configPath: configPath)
        let graph = try GraphReader(source: source).read(root)
        return ModelDescription(name: name, format: format, kerasVersion: kerasVersion, inputShape: shape,
                                inputDType: dtype, layers: layers, source: source, graph: graph)
    }

    func readLayer(_ item: JSONValue, path: String, namer: inout DefaultNamer) throws -> LayerSpec {
        guard case .object = item else {
            throw fail(path, "expected a layer object with class_name and config, found \(item.typeDescription)")
        }
        guard let classValue = item["class_name"] else { throw fail(path, "missing class_name") }
        guard case let .string(className) = classValue, !className.isEmpty else {
            throw fail("\(path).class_name", "expected a non-empty string, found \(classValue.brief())")
        }
        let config = item["config"] ?? .object([])
        guard case .object = config else {
            throw fail("\(path).config", "expected an object, found \(config.typeDescription)")
        }
        var registered: String?
        if case let .string(value)? = item["registered_name"] { registered = value }
        let name: String
        switch config["name"] {
        case let .string(value)? where !value.isEmpty: name = value
        case nil, .null?: name = namer.next(for: className)
        case let other?: throw fail("\(path).config.name", "expected a non-empty string, found \(other.brief())")
        }
        return LayerSpec(className: className, registeredName: registered, name: name, config: config, path: path,
                         buildConfig: item["build_config"])
    }

    /// The per-sample input shape and dtype, from wherever this spec dialect puts them.
    func inputSignature(layers: [LayerSpec], config: JSONValue, configPath: String) throws -> ([Int?], String) {
        let first = layers[0]
        let firstConfig = "\(first.path).config"
        var shape: [Int?]?
        for key in ["batch_shape", "batch_input_shape"] {
            if shape == nil, let value = first.config[key], !value.isNull {
                shape = Array(try dims(value, path: "\(firstConfig).\(key)").dropFirst())
            }
        }
        for key in ["input_shape", "shape"] where shape == nil {
            if let value = first.config[key], !value.isNull {
                shape = try dims(value, path: "\(firstConfig).\(key)")
            }
        }
        if shape == nil, let build = first.buildConfig, let value = build["input_shape"], !value.isNull {
            shape = Array(try dims(value, path: "\(first.path).build_config.input_shape").dropFirst())
        }
        if shape == nil, let value = config["build_input_shape"], !value.isNull {
            shape = Array(try dims(value, path: join(configPath, "build_input_shape")).dropFirst())
        }
        guard let shape else {
            throw fail(first.path, "cannot tell the model's input shape: start the model with an InputLayer with \"batch_shape\" (e.g. [null, 28, 28, 1]), or give the first layer \"batch_input_shape\" or \"input_shape\"")
        }
        var dtype = "float32"
        switch first.config["dtype"] {
        case let .string(name)?: dtype = name
        case let policy? where policy["config"]?["name"] != nil:
            if case let .string(name)? = policy["config"]?["name"] { dtype = name }
        default: break
        }
        if first.className != "InputLayer", !["float16", "float32", "float64", "bfloat16", "int32", "int64", "mixed_float16", "mixed_bfloat16"].contains(dtype) {
            dtype = "float32"
        }
        if dtype.hasPrefix("mixed_") { dtype = "float32" }
        return (shape, dtype)
    }

    func dims(_ value: JSONValue, path: String) throws -> [Int?] {
        guard case let .array(items) = value else {
            throw fail(path, "expected an array of sizes (integers or null), found \(value.brief())")
        }
        return try items.enumerated().map { index, item in
            switch item {
            case .null: return nil
            case let .int(size) where size > 0 && size <= Int64(Int32.max): return Int(size)
            case let .double(size) where size > 0 && size <= Double(Int32.max) && size.rounded() == size: return Int(size)
            default: throw fail("\(path)[\(index)]", "expected a positive size or null, found \(item.brief())")
            }
        }
    }

    private func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : "\(a).\(b)" }
}

/// Keras's default layer names: the snake_case class name, then `_1`, `_2`, ... for repeats.
public struct DefaultNamer {
    var used: [String: Int] = [:]

    public init() {}

    public mutating func next(for className: String) -> String {
        let base = DefaultNamer.snakeCase(className)
        let count = used[base, default: 0]
        used[base] = count + 1
        return count == 0 ? base : "\(base)_\(count)"
    }

    /// Keras's `to_snake_case`: `Conv2D` → `conv2d`, `SimpleRNN` → `simple_rnn`, `ReLU` → `re_lu`.
    /// Its two substitutions, `(.)([A-Z][a-z]+)` → `\1_\2` then `([a-z])([A-Z])` → `\1_\2`, are
    /// done by hand on code points, as the regular expressions match: compiling them cost a cold
    /// start about a millisecond, on every load (weights are found by these names).
    public static func snakeCase(_ name: String) -> String {
        let kept = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" }.unicodeScalars)
        func upper(_ text: [Unicode.Scalar], _ index: Int) -> Bool { index < text.count && ("A"..."Z").contains(text[index]) }
        func lower(_ text: [Unicode.Scalar], _ index: Int) -> Bool { index < text.count && ("a"..."z").contains(text[index]) }
        // Any code point, then a capital and one or more lower-case letters: an underscore between.
        var words: [Unicode.Scalar] = []
        words.reserveCapacity(kept.count + 4)
        var index = 0
        while index < kept.count {
            guard upper(kept, index + 1), lower(kept, index + 2) else {
                words.append(kept[index])
                index += 1
                continue
            }
            var end = index + 3
            while lower(kept, end) { end += 1 }
            words.append(kept[index])
            words.append("_")
            words += kept[(index + 1)..<end]
            index = end
        }
        // A lower-case letter, then a capital: an underscore between.
        var result = String.UnicodeScalarView()
        index = 0
        while index < words.count {
            result.append(words[index])
            if lower(words, index), upper(words, index + 1) {
                result.append("_")
                result.append(words[index + 1])
                index += 2
            } else {
                index += 1
            }
        }
        return String(result).lowercased()
    }
}
