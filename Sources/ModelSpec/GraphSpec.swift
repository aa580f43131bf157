#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a tensor comes from: output `index` of call `node` of layer `layer` (Keras's `keras_history`).
public struct TensorRef: Hashable, Sendable, CustomStringConvertible {
    public var layer: String
    public var node: Int
    public var index: Int

    public init(layer: String, node: Int, index: Int) {
        self.layer = layer
        self.node = node
        self.index = index
    }

    /// The call that produces this tensor.
    public var nodeKey: NodeKey { NodeKey(layer: layer, node: node) }

    /// `['conv2d', 0, 0]`, as Keras writes it.
    public var description: String { "['\(layer)', \(node), \(index)]" }
}

/// One call of a layer: the `node`-th entry of its `inbound_nodes`.
public struct NodeKey: Hashable, Sendable, CustomStringConvertible {
    public var layer: String
    public var node: Int

    public init(layer: String, node: Int) {
        self.layer = layer
        self.node = node
    }

    public var description: String { "'\(layer)' call \(node)" }
}

/// A tensor as a call writes it: where it comes from, what Keras recorded about it, and where
/// it sits in the document.
public struct KerasTensor: Equatable, Sendable {
    public var ref: TensorRef
    /// The shape Keras recorded, batch axis included; nil when the spec records none (Keras 2).
    public var shape: [Int?]?
    public var dtype: String?
    /// The JSON path of the tensor, e.g. `config.layers[4].inbound_nodes[0].args[0][1]`.
    public var path: String

    public init(ref: TensorRef, shape: [Int?]? = nil, dtype: String? = nil, path: String) {
        self.ref = ref
        self.shape = shape
        self.dtype = dtype
        self.path = path
    }
}

/// One argument of a call: a tensor, a list or dict of arguments, or a plain JSON value
/// (a number, `null`, a string, a serialized slice).
public indirect enum CallArgument: Equatable, Sendable {
    case tensor(KerasTensor)
    case list([CallArgument])
    case dict([(String, CallArgument)])
    case value(JSONValue)

    public static func == (lhs: CallArgument, rhs: CallArgument) -> Bool {
        switch (lhs, rhs) {
        case let (.tensor(a), .tensor(b)): return a == b
        case let (.list(a), .list(b)): return a == b
        case let (.dict(a), .dict(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.value(a), .value(b)): return a == b
        default: return false
        }
    }

    /// Every tensor inside, in document order.
    public var tensors: [KerasTensor] {
        var found: [KerasTensor] = []
        collect(into: &found)
        return found
    }

    /// The same argument with every tensor replaced by `transform(tensor)`.
    public func mapTensors(_ transform: (KerasTensor) throws -> KerasTensor) rethrows -> CallArgument {
        switch self {
        case let .tensor(tensor): return .tensor(try transform(tensor))
        case let .list(items): return .list(try items.map { try $0.mapTensors(transform) })
        case let .dict(members): return .dict(try members.map { ($0, try $1.mapTensors(transform)) })
        case .value: return self
        }
    }

    func collect(into found: inout [KerasTensor]) {
        switch self {
        case let .tensor(tensor): found.append(tensor)
        case let .list(items): for item in items { item.collect(into: &found) }
        case let .dict(members): for (_, item) in members { item.collect(into: &found) }
        case .value: break
        }
    }
}

/// One call of a layer in the graph: its positional and keyword arguments as Keras wrote them.
public struct NodeSpec: Sendable {
    /// The name of the layer called.
    public var layer: String
    /// Which call of that layer this is (its `node_index`).
    public var index: Int
    public var args: [CallArgument]
    /// Keyword arguments in document order (`mask`, `training`, `initial_state`, ...).
    public var kwargs: [(String, CallArgument)]
    /// Where the call sits, e.g. `config.layers[3].inbound_nodes[1]` (the layer's path for an
    /// InputLayer or a layer of a Sequential, whose calls the document does not write).
    public var path: String

    public init(layer: String, index: Int, args: [CallArgument], kwargs: [(String, CallArgument)], path: String) {
        self.layer = layer
        self.index = index
        self.args = args
        self.kwargs = kwargs
        self.path = path
    }

    public var key: NodeKey { NodeKey(layer: layer, node: index) }

    /// The keyword argument `name`, if the call passes it.
    public func kwarg(_ name: String) -> CallArgument? {
        kwargs.first { $0.0 == name }?.1
    }

    /// Every tensor the call reads, positional then keyword, in document order.
    public var inputs: [KerasTensor] {
        var found: [KerasTensor] = []
        for argument in args { argument.collect(into: &found) }
        for (_, argument) in kwargs { argument.collect(into: &found) }
        return found
    }
}

/// A layer of a graph, with every call of it.
public struct GraphLayer: Sendable {
    public indirect enum Kind: Sendable {
        /// A layer from `keras.layers` or a registered custom layer.
        case layer
        /// A Keras 3 operation on tensors (`x + y`, `ops.mean`): `module` is `keras.src.ops.*`.
        /// Its `className` (`Add`, `Concatenate`...) may also name a layer; the module tells them apart.
        case operation(module: String)
        /// A Sequential or Functional model used as a layer.
        case model(GraphSpec)
    }

    public var spec: LayerSpec
    public var kind: Kind
    /// Its calls, by node index. An InputLayer has one call with no arguments.
    public var nodes: [NodeSpec]
    /// The node index the document gives this layer's first call (see `NodeIndexBase`).
    var documentBase = NodeIndexBase()

    public var name: String { spec.name }

    /// The module of an operation, nil for a layer or a model.
    public var operationModule: String? {
        if case let .operation(module) = kind { return module }
        return nil
    }

    /// The nested model, nil for a layer or an operation.
    public var model: GraphSpec? {
        if case let .model(graph) = kind { return graph }
        return nil
    }

    /// `layer 'add' (Add)`, `operation 'add' (Add from keras.src.ops.numpy)` or `model 'inner' (Sequential)`.
    public var label: String {
        switch kind {
        case .layer: return spec.label
        case let .operation(module): return "operation '\(spec.name)' (\(spec.className) from \(module))"
        case .model: return "model '\(spec.name)' (\(spec.className))"
        }
    }
}

/// Keras numbers the calls of a nested Functional model from 1 in some references, because the
/// model's own input-to-output call is its node 0 (`kept_nodes = 1` in functional.py's
/// get_config). Keras 3 does so in `input_layers`/`output_layers` only, for a nested
/// Functional; tf-keras everywhere, for a nested model that starts with an InputLayer.
/// GraphSpec's `TensorRef.node` always counts from 0 in the layer's `nodes`.
struct NodeIndexBase: Sendable {
    /// The first call's node index in call arguments (`keras_history`, Keras 2 inbound entries).
    var arguments = 0
    /// The first call's node index in `input_layers` / `output_layers`.
    var ends = 0
}

/// A model as a graph of layer calls: Keras 3 or Keras 2 Functional `to_json()`, or a
/// Sequential lowered to a chain (each layer reads the one before it). Text only: no shapes
/// are inferred and no layer is looked up here.
public struct GraphSpec: Sendable {
    /// The model's `class_name`: `Functional`, `Model` or `Sequential`.
    public var className: String
    public var name: String
    public var format: ModelDescription.Format
    public var kerasVersion: String?
    /// Every layer, in document order (an InputLayer synthesized for a Sequential that has
    /// none comes first).
    public var layers: [GraphLayer]
    /// The model's inputs and outputs in `config.input_layers` / `config.output_layers` order.
    public var inputs: [TensorRef]
    public var outputs: [TensorRef]
    /// Their public names: the dict key when Keras wrote a dict, else the layer's name, with
    /// `:k` for its k-th output tensor when k > 0.
    public var inputNames: [String]
    public var outputNames: [String]
    /// The calls the outputs need, each after every call it reads (Kahn's order; ties keep
    /// document order). Calls no output needs are left out.
    public var order: [NodeKey]
    /// Where this model sits: empty for the document's model, `config.layers[2]` for a nested one.
    public var path: String
    /// The file, for messages.
    public var source: String

    let layerIndex: [String: Int]

    /// The layer called `name`.
    public func layer(named name: String) -> GraphLayer? {
        layerIndex[name].map { layers[$0] }
    }

    /// The call `key`.
    public func node(_ key: NodeKey) -> NodeSpec? {
        guard let layer = layer(named: key.layer), key.node >= 0, key.node < layer.nodes.count else { return nil }
        return layer.nodes[key.node]
    }

    /// Reads a spec file as a graph.
    public static func load(path: String) throws -> GraphSpec {
        let bytes = try FileBytes.read(path: path)
        return try parse(bytes, source: path)
    }

    public static func parse(_ bytes: [UInt8], source: String) throws -> GraphSpec {
        try parse(JSONParser.parse(bytes, source: source), source: source)
    }

    public static func parse(_ text: String, source: String = "<spec>") throws -> GraphSpec {
        try parse(Array(text.utf8), source: source)
    }

    /// The graph of a parsed document.
    public static func parse(_ root: JSONValue, source: String) throws -> GraphSpec {
        try GraphReader(source: source).read(root)
    }

    /// Bounds on what a document may ask for: the file is attacker-controlled.
    public enum Limits {
        /// Models nested in models (JSON nesting, capped at 64 levels, allows about 12).
        public static let modelDepth = 8
        /// Lists and dicts nested in one call argument.
        public static let argumentDepth = 16
        public static let layers = 100_000
        public static let callsPerLayer = 10_000
        /// Calls in one graph, counting every layer's.
        public static let calls = 200_000
        /// Tensors one call reads.
        public static let tensorsPerCall = 100_000
        /// Model inputs or outputs.
        public static let inputsOrOutputs = 10_000
        /// A node or tensor index.
        public static let index = 1 << 30
    }
}

/// Turns a model document into a `GraphSpec`; every refusal names the JSON path.
struct GraphReader {
    let source: String

    func fail(_ path: String, _ message: String) -> NNError {
        NNError(.spec, path.isEmpty ? source : "\(source): \(path)", message)
    }

    static let modelClasses: Set<String> = ["Sequential", "Functional", "Model"]

    func read(_ root: JSONValue) throws -> GraphSpec {
        guard case .object = root else {
            throw fail("", "expected a JSON object describing a model, found \(root.typeDescription)")
        }
        let kerasVersion = root["keras_version"].flatMap { if case let .string(v) = $0 { return v } else { return nil } }
        let format: ModelDescription.Format
        if root["module"] != nil {
            format = .keras3
        } else if kerasVersion != nil || root["backend"] != nil {
            format = .keras2
        } else {
            format = .handwritten
        }
        // A bare {"layers": [...]} is a hand-written Sequential config, as ModelDescription accepts.
        if root["class_name"] == nil, root["layers"] != nil {
            var graph = try readSequential(config: root, configPath: "", className: "Sequential", path: "", format: format, depth: 0)
            graph.kerasVersion = kerasVersion
            return graph
        }
        var graph = try readModel(root, path: "", format: format, depth: 0)
        graph.kerasVersion = kerasVersion
        if format == .handwritten, graph.layers.contains(where: { $0.spec.config["batch_shape"] != nil }) {
            graph.format = .keras3
        }
        return graph
    }

    /// A model object `{"class_name": ..., "config": ...}` at `path`.
    func readModel(_ value: JSONValue, path: String, format: ModelDescription.Format, depth: Int) throws -> GraphSpec {
        guard depth <= GraphSpec.Limits.modelDepth else {
            throw fail(path, "models nested more than \(GraphSpec.Limits.modelDepth) deep; expected at most \(GraphSpec.Limits.modelDepth)")
        }
        let classPath = join(path, "class_name")
        let className: String
        switch value["class_name"] {
        case let .string(name)?: className = name
        case nil: throw fail(classPath, "missing; expected \"Sequential\", \"Functional\" or \"Model\"")
        case let other?: throw fail(classPath, "expected a string, found \(other.brief())")
        }
        let configPath = join(path, "config")
        let config = value["config"] ?? .object([])
        switch className {
        case "Sequential":
            return try readSequential(config: config, configPath: configPath, className: className, path: path, format: format, depth: depth)
        case "Functional", "Model":
            return try readFunctional(config: config, configPath: configPath, className: className, path: path, format: format, depth: depth)
        default:
            throw fail(classPath, "expected \"Sequential\", \"Functional\" or \"Model\", found \"\(className)\"")
        }
    }

    // MARK: Layers

    /// The layer objects of a model's layer list, with their kinds; nested models are read here.
    func readLayers(_ items: [JSONValue], layersPath: String, format: ModelDescription.Format, depth: Int) throws -> [(GraphLayer, JSONValue)] {
        guard !items.isEmpty else { throw fail(layersPath, "the model has no layers") }
        guard items.count <= GraphSpec.Limits.layers else {
            throw fail(layersPath, "the model has \(items.count) layers; at most \(GraphSpec.Limits.layers) are accepted")
        }
        let reader = SpecReader(source: source)
        var namer = DefaultNamer()
        var result: [(GraphLayer, JSONValue)] = []
        var seen: [String: String] = [:]
        for (index, item) in items.enumerated() {
            let path = "\(layersPath)[\(index)]"
            var spec = try reader.readLayer(item, path: path, namer: &namer)
            // Keras writes the layer's name beside its config too; a config without one takes it.
            if spec.config["name"] == nil, case let .string(name)? = item["name"], !name.isEmpty { spec.name = name }
            if let first = seen[spec.name] {
                throw fail(path, "layer name '\(spec.name)' is used twice (also at \(first)); Keras requires unique names")
            }
            seen[spec.name] = path
            let kind: GraphLayer.Kind
            var base = NodeIndexBase()
            if GraphReader.modelClasses.contains(spec.className), spec.config["layers"] != nil {
                kind = .model(try readModel(item, path: path, format: format, depth: depth + 1))
                if format == .keras2 {
                    if case .string("InputLayer")? = spec.config["layers"]?.firstElement?["class_name"] { base = NodeIndexBase(arguments: 1, ends: 1) }
                } else if spec.className != "Sequential" {
                    base.ends = 1
                }
            } else if case let .string(module)? = item["module"], module.hasPrefix("keras.src.ops.") || module.hasPrefix("keras.ops.") {
                kind = .operation(module: module)
            } else if GraphReader.isKerasTwoOperation(item) {
                // Keras 2's TensorFlow function on tensors, as the Keras 3 operation it equals.
                kind = .operation(module: try kerasTwoOperation(&spec, item: item, path: path).operation.module)
            } else {
                kind = .layer
            }
            result.append((GraphLayer(spec: spec, kind: kind, nodes: [], documentBase: base), item))
        }
        return result
    }

    // MARK: Sequential

    /// A Sequential model lowered to a chain: each layer's one call reads the layer before it.
    func readSequential(config: JSONValue, configPath: String, className: String, path: String,
                        format: ModelDescription.Format, depth: Int) throws -> GraphSpec {
        let items: [JSONValue]
        let layersPath: String
        switch config {
        case let .array(list):  // Keras 2.0-2.2 wrote the layer list as the config itself
            items = list
            layersPath = configPath
        case .object:
            layersPath = join(configPath, "layers")
            switch config["layers"] {
            case let .array(list)?: items = list
            case nil: throw fail(layersPath, "missing; expected the list of layers")
            case let other?: throw fail(layersPath, "expected an array of layers, found \(other.typeDescription)")
            }
        default:
            throw fail(configPath, "expected an object, found \(config.typeDescription)")
        }
        var layers = try readLayers(items, layersPath: layersPath, format: format, depth: depth).map(\.0)
        // The chain's references are made here, counted from 0, whatever the document would write.
        for index in layers.indices { layers[index].documentBase = NodeIndexBase() }
        if layers[0].spec.className != "InputLayer" {
            layers.insert(synthesizedInput(before: layers[0].spec, config: config, configPath: configPath, taken: Set(layers.map(\.name))), at: 0)
        }
        layers[0].nodes = [NodeSpec(layer: layers[0].name, index: 0, args: [], kwargs: [], path: layers[0].spec.path)]
        for index in 1..<max(layers.count, 1) {
            let previous = TensorRef(layer: layers[index - 1].name, node: 0, index: 0)
            let tensor = KerasTensor(ref: previous, shape: nil, dtype: nil, path: layers[index].spec.path)
            layers[index].nodes = [NodeSpec(layer: layers[index].name, index: 0, args: [.tensor(tensor)], kwargs: [], path: layers[index].spec.path)]
        }
        let name = stringMember(config, "name") ?? "sequential"
        let input = TensorRef(layer: layers[0].name, node: 0, index: 0)
        let output = TensorRef(layer: layers[layers.count - 1].name, node: 0, index: 0)
        return try resolve(className: className, name: name, format: format, layers: layers,
                           inputs: [(input, input.layer, layers[0].spec.path)],
                           outputs: [(output, output.layer, layers[layers.count - 1].spec.path)], path: path)
    }

    /// Keras adds an InputLayer in front of a Sequential whose first layer carries the input
    /// shape; this is that layer, named as Keras 2 names it (`dense_input`).
    func synthesizedInput(before first: LayerSpec, config: JSONValue, configPath: String, taken: Set<String>) -> GraphLayer {
        var members: [(String, JSONValue)] = []
        if let shape = first.config["batch_shape"] ?? first.config["batch_input_shape"], !shape.isNull {
            members.append(("batch_shape", shape))
        } else if case let .array(dims)? = first.config["input_shape"] ?? first.config["shape"] {
            members.append(("batch_shape", .array([.null] + dims)))
        } else if let shape = first.buildConfig?["input_shape"], !shape.isNull {
            members.append(("batch_shape", shape))
        } else if let shape = config["build_input_shape"], !shape.isNull {
            members.append(("batch_shape", shape))
        }
        if let dtype = first.config["dtype"] { members.append(("dtype", dtype)) }
        var name = "\(first.name)_input"
        var suffix = 1
        while taken.contains(name) {
            name = "\(first.name)_input_\(suffix)"
            suffix += 1
        }
        members.append(("name", .string(name)))
        let spec = LayerSpec(className: "InputLayer", name: name, config: .object(members), path: first.path)
        return GraphLayer(spec: spec, kind: .layer, nodes: [])
    }

    // MARK: Functional

    func readFunctional(config: JSONValue, configPath: String, className: String, path: String,
                        format: ModelDescription.Format, depth: Int) throws -> GraphSpec {
        guard case .object = config else {
            throw fail(configPath, "expected an object, found \(config.typeDescription)")
        }
        let layersPath = join(configPath, "layers")
        let items: [JSONValue]
        switch config["layers"] {
        case let .array(list)?: items = list
        case nil: throw fail(layersPath, "missing; expected the list of layers")
        case let other?: throw fail(layersPath, "expected an array of layers, found \(other.typeDescription)")
        }
        var layers: [GraphLayer] = []
        var total = 0
        for (layer, item) in try readLayers(items, layersPath: layersPath, format: format, depth: depth) {
            var layer = layer
            layer.nodes = try readCalls(of: layer, item: item)
            total += layer.nodes.count
            guard total <= GraphSpec.Limits.calls else {
                throw fail(layersPath, "the model has more than \(GraphSpec.Limits.calls) layer calls; at most \(GraphSpec.Limits.calls) are accepted")
            }
            layers.append(layer)
        }
        let inputs = try readEnds(config["input_layers"], path: join(configPath, "input_layers"))
        let outputs = try readEnds(config["output_layers"], path: join(configPath, "output_layers"))
        let name = stringMember(config, "name") ?? "functional"
        return try resolve(className: className, name: name, format: format, layers: layers, inputs: inputs, outputs: outputs, path: path)
    }

    /// A layer's `inbound_nodes`, Keras 3's `{"args", "kwargs"}` or Keras 2's lists of
    /// `[name, node_index, tensor_index, {kwargs}]`.
    func readCalls(of layer: GraphLayer, item: JSONValue) throws -> [NodeSpec] {
        let path = "\(layer.spec.path).inbound_nodes"
        let entries: [JSONValue]
        switch item["inbound_nodes"] {
        case nil, .null?: entries = []
        case let .array(list)?: entries = list
        case let other?: throw fail(path, "expected an array of calls, found \(other.typeDescription)")
        }
        guard entries.count <= GraphSpec.Limits.callsPerLayer else {
            throw fail(path, "\(layer.label) has \(entries.count) calls; at most \(GraphSpec.Limits.callsPerLayer) are accepted")
        }
        if entries.isEmpty, layer.spec.className == "InputLayer" {
            return [NodeSpec(layer: layer.name, index: 0, args: [], kwargs: [], path: layer.spec.path)]
        }
        if GraphReader.isKerasTwoOperation(item), case let .string(function)? = item["config"]?["function"],
           let operation = GraphReader.kerasTwoFunctions[function] {
            return try entries.enumerated().map { index, entry in
                try readKerasTwoOperationCall(entry, layer: layer, function: function, operation: operation, index: index,
                                              path: "\(path)[\(index)]")
            }
        }
        return try entries.enumerated().map { index, entry in
            let nodePath = "\(path)[\(index)]"
            switch entry {
            case .object:
                return try readKeras3Call(entry, layer: layer, index: index, path: nodePath)
            case let .array(tensors):
                return try readKeras2Call(tensors, layer: layer, index: index, path: nodePath)
            default:
                throw fail(nodePath, "expected a call ({\"args\": [...], \"kwargs\": {...}} or a list of [layer, node, tensor, {kwargs}]), found \(entry.brief())")
            }
        }
    }

    func readKeras3Call(_ entry: JSONValue, layer: GraphLayer, index: Int, path: String) throws -> NodeSpec {
        var args: [CallArgument] = []
        switch entry["args"] {
        case nil: break
        case let .array(items)?:
            args = try items.enumerated().map { try readArgument($1, path: "\(path).args[\($0)]", depth: 1) }
        case let other?: throw fail("\(path).args", "expected an array of call arguments, found \(other.typeDescription)")
        }
        var kwargs: [(String, CallArgument)] = []
        switch entry["kwargs"] {
        case nil: break
        case let .object(members)?:
            kwargs = try members.map { ($0, try readArgument($1, path: "\(path).kwargs.\($0)", depth: 1)) }
        case let other?: throw fail("\(path).kwargs", "expected an object of keyword arguments, found \(other.typeDescription)")
        }
        let node = NodeSpec(layer: layer.name, index: index, args: args, kwargs: kwargs, path: path)
        guard node.inputs.count <= GraphSpec.Limits.tensorsPerCall else {
            throw fail(path, "\(layer.label) call \(index) reads \(node.inputs.count) tensors; at most \(GraphSpec.Limits.tensorsPerCall) are accepted")
        }
        return node
    }

    /// Keras 2 wrote one entry per input tensor; a layer called on one tensor takes it alone,
    /// on several takes them as one list (as Keras 2's `unpack_singleton` did). The kwargs are
    /// the first entry's.
    func readKeras2Call(_ entries: [JSONValue], layer: GraphLayer, index: Int, path: String) throws -> NodeSpec {
        guard !entries.isEmpty else {
            throw fail(path, "\(layer.label) call \(index) reads no tensor; expected at least one [layer, node, tensor] entry")
        }
        guard entries.count <= GraphSpec.Limits.tensorsPerCall else {
            throw fail(path, "\(layer.label) call \(index) reads \(entries.count) tensors; at most \(GraphSpec.Limits.tensorsPerCall) are accepted")
        }
        var tensors: [CallArgument] = []
        var kwargs: [(String, CallArgument)] = []
        for (position, entry) in entries.enumerated() {
            let entryPath = "\(path)[\(position)]"
            guard case let .array(parts) = entry, parts.count == 3 || parts.count == 4 else {
                throw fail(entryPath, "expected [layer name, node index, tensor index, {kwargs}], found \(entry.brief())")
            }
            let ref = try readTriple(Array(parts.prefix(3)), path: entryPath)
            tensors.append(.tensor(KerasTensor(ref: ref, shape: nil, dtype: nil, path: entryPath)))
            if position == 0, parts.count == 4 {
                guard case let .object(members) = parts[3] else {
                    throw fail("\(entryPath)[3]", "expected an object of keyword arguments, found \(parts[3].typeDescription)")
                }
                kwargs = try members.map { ($0, try readArgument($1, path: "\(entryPath)[3].\($0)", depth: 1)) }
            }
        }
        let args: [CallArgument] = tensors.count == 1 ? tensors : [.list(tensors)]
        return NodeSpec(layer: layer.name, index: index, args: args, kwargs: kwargs, path: path)
    }

    /// A call argument: a `__keras_tensor__`, a list or dict of arguments, or a plain value.
    func readArgument(_ value: JSONValue, path: String, depth: Int) throws -> CallArgument {
        guard depth <= GraphSpec.Limits.argumentDepth else {
            throw fail(path, "call arguments nested more than \(GraphSpec.Limits.argumentDepth) deep; expected at most \(GraphSpec.Limits.argumentDepth)")
        }
        switch value {
        case let .array(items):
            return .list(try items.enumerated().map { try readArgument($1, path: "\(path)[\($0)]", depth: depth + 1) })
        case let .object(members):
            if case .string("__keras_tensor__")? = value["class_name"] {
                return .tensor(try readTensor(value, path: path))
            }
            if case let .string(kind)? = value["class_name"] {
                // A serialized object (`__slice__`, a dtype...): kept whole, but it must not hide
                // a tensor, or the call would read something the graph does not know about.
                try refuseHiddenTensor(value, in: kind, path: path, depth: depth)
                return .value(value)
            }
            return .dict(try members.map { ($0, try readArgument($1, path: "\(path).\($0)", depth: depth + 1)) })
        default:
            return .value(value)
        }
    }

    func refuseHiddenTensor(_ value: JSONValue, in kind: String, path: String, depth: Int) throws {
        guard depth <= GraphSpec.Limits.argumentDepth else {
            throw fail(path, "call arguments nested more than \(GraphSpec.Limits.argumentDepth) deep; expected at most \(GraphSpec.Limits.argumentDepth)")
        }
        switch value {
        case let .array(items):
            for (index, item) in items.enumerated() {
                try refuseHiddenTensor(item, in: kind, path: "\(path)[\(index)]", depth: depth + 1)
            }
        case let .object(members):
            if case .string("__keras_tensor__")? = value["class_name"] {
                throw fail(path, "a tensor inside a serialized '\(kind)' object; expected tensors only as call arguments or in lists and dicts of them")
            }
            for (key, item) in members {
                try refuseHiddenTensor(item, in: kind, path: "\(path).\(key)", depth: depth + 1)
            }
        default: break
        }
    }

    func readTensor(_ value: JSONValue, path: String) throws -> KerasTensor {
        let configPath = "\(path).config"
        guard let config = value["config"], case .object = config else {
            throw fail(configPath, "expected the tensor's config object with keras_history, found \(value["config"]?.typeDescription ?? "nothing")")
        }
        guard case let .array(parts)? = config["keras_history"] else {
            throw fail("\(configPath).keras_history", "expected [layer name, node index, tensor index], found \(config["keras_history"]?.brief() ?? "nothing")")
        }
        let ref = try readTriple(parts, path: "\(configPath).keras_history")
        var shape: [Int?]?
        if let dims = config["shape"], !dims.isNull {
            shape = try readShape(dims, path: "\(configPath).shape")
        }
        return KerasTensor(ref: ref, shape: shape, dtype: stringMember(config, "dtype"), path: path)
    }

    func readShape(_ value: JSONValue, path: String) throws -> [Int?] {
        guard case let .array(items) = value, items.count <= 64 else {
            throw fail(path, "expected an array of at most 64 sizes (integers or null), found \(value.brief())")
        }
        return try items.enumerated().map { index, item in
            switch item {
            case .null: return nil
            case let .int(size) where size >= 0 && size <= Int64(Int32.max): return Int(size)
            default: throw fail("\(path)[\(index)]", "expected a size (a non-negative integer) or null, found \(item.brief())")
            }
        }
    }

    /// `[layer name, node index, tensor index]`.
    func readTriple(_ parts: [JSONValue], path: String) throws -> TensorRef {
        guard parts.count == 3, case let .string(layer) = parts[0] else {
            throw fail(path, "expected [layer name, node index, tensor index], found \(JSONValue.array(parts).brief())")
        }
        func index(_ value: JSONValue, _ position: Int, _ what: String) throws -> Int {
            guard case let .int(number) = value, number >= 0, number <= Int64(GraphSpec.Limits.index) else {
                throw fail("\(path)[\(position)]", "expected the \(what) (an integer from 0 to \(GraphSpec.Limits.index)), found \(value.brief())")
            }
            return Int(number)
        }
        return TensorRef(layer: layer, node: try index(parts[1], 1, "node index"), index: try index(parts[2], 2, "tensor index"))
    }

    /// `config.input_layers` / `output_layers`: one triple, a list of them, or a dict of them;
    /// each with its public name and path.
    func readEnds(_ value: JSONValue?, path: String) throws -> [(TensorRef, String, String)] {
        guard let value else { throw fail(path, "missing; expected [layer name, node index, tensor index], a list or a dict of them") }
        var ends: [(TensorRef, String, String)] = []
        func named(_ ref: TensorRef) -> String { ref.index == 0 ? ref.layer : "\(ref.layer):\(ref.index)" }
        switch value {
        case let .array(items) where items.first.map({ if case .string = $0 { return true } else { return false } }) ?? false:
            let ref = try readTriple(items, path: path)
            ends.append((ref, named(ref), path))
        case let .array(items):
            guard items.count <= GraphSpec.Limits.inputsOrOutputs else {
                throw fail(path, "\(items.count) entries; at most \(GraphSpec.Limits.inputsOrOutputs) are accepted")
            }
            for (index, item) in items.enumerated() {
                guard case let .array(parts) = item else {
                    throw fail("\(path)[\(index)]", "expected [layer name, node index, tensor index], found \(item.brief())")
                }
                let ref = try readTriple(parts, path: "\(path)[\(index)]")
                ends.append((ref, named(ref), "\(path)[\(index)]"))
            }
        case let .object(members):
            guard members.count <= GraphSpec.Limits.inputsOrOutputs else {
                throw fail(path, "\(members.count) entries; at most \(GraphSpec.Limits.inputsOrOutputs) are accepted")
            }
            for (key, item) in members {
                guard case let .array(parts) = item else {
                    throw fail("\(path).\(key)", "expected [layer name, node index, tensor index], found \(item.brief())")
                }
                ends.append((try readTriple(parts, path: "\(path).\(key)"), key, "\(path).\(key)"))
            }
        default:
            throw fail(path, "expected [layer name, node index, tensor index], a list or a dict of them, found \(value.typeDescription)")
        }
        guard !ends.isEmpty else { throw fail(path, "empty; expected at least one [layer name, node index, tensor index]") }
        return ends
    }

    // MARK: Checks and order

    /// Checks every reference, then orders the calls the outputs need (Kahn). Refuses unknown
    /// layers or calls, outputs no input reaches, cycles and inputs nothing uses.
    func resolve(className: String, name: String, format: ModelDescription.Format, layers: [GraphLayer],
                 inputs: [(TensorRef, String, String)], outputs: [(TensorRef, String, String)], path: String) throws -> GraphSpec {
        var layerIndex: [String: Int] = [:]
        for (index, layer) in layers.enumerated() { layerIndex[layer.name] = index }

        /// The reference with its node index counted from 0 in the layer's calls, or the message
        /// saying why the graph has no such layer, call or output.
        func resolved(_ ref: TensorRef, inEnds: Bool) -> (TensorRef?, String?) {
            guard let index = layerIndex[ref.layer] else {
                return (nil, "refers to layer '\(ref.layer)', which is not a layer of the model; expected one of \(nameList(layers.map(\.name)))")
            }
            let layer = layers[index]
            let base = inEnds ? layer.documentBase.ends : layer.documentBase.arguments
            let count = layer.nodes.count
            guard ref.node >= base, ref.node - base < count else {
                let calls = "\(count) call\(count == 1 ? "" : "s")"
                let expected = count == 0 ? "expected a layer that is called" : "expected a node index from \(base) to \(base + count - 1)"
                let reserved = base > 0 && ref.node < base ? " (Keras counts a nested model's own call as node 0)" : ""
                return (nil, "refers to call \(ref.node) of \(layer.label), which has \(calls); \(expected)\(reserved)")
            }
            if let model = layer.model, ref.index >= model.outputs.count {
                return (nil, "refers to output \(ref.index) of \(layer.label), which has \(model.outputs.count) output\(model.outputs.count == 1 ? "" : "s")")
            }
            if layer.spec.className == "InputLayer", ref.index != 0 {
                return (nil, "refers to output \(ref.index) of \(layer.label), which has one output (index 0)")
            }
            return (TensorRef(layer: ref.layer, node: ref.node - base, index: ref.index), nil)
        }

        var layers = layers
        for position in layers.indices {
            let label = layers[position].label
            for call in layers[position].nodes.indices {
                let node = layers[position].nodes[call]
                let normalize = { (tensor: KerasTensor) throws -> KerasTensor in
                    let (ref, message) = resolved(tensor.ref, inEnds: false)
                    guard let ref else { throw fail(tensor.path, "\(label) call \(node.index) \(message ?? "")") }
                    var tensor = tensor
                    tensor.ref = ref
                    return tensor
                }
                layers[position].nodes[call].args = try node.args.map { try $0.mapTensors(normalize) }
                layers[position].nodes[call].kwargs = try node.kwargs.map { ($0, try $1.mapTensors(normalize)) }
            }
        }
        var inputs = inputs
        for position in inputs.indices {
            let (raw, endName, endPath) = inputs[position]
            let (ref, message) = resolved(raw, inEnds: true)
            guard let ref else { throw fail(endPath, "model input '\(endName)' \(message ?? "")") }
            let layer = layers[layerIndex[ref.layer] ?? 0]
            if !layer.nodes[ref.node].inputs.isEmpty {
                throw fail(endPath, "model input '\(endName)' is \(layer.label) call \(ref.node), which reads other tensors; expected an InputLayer")
            }
            inputs[position].0 = ref
        }
        var outputs = outputs
        for position in outputs.indices {
            let (raw, endName, endPath) = outputs[position]
            let (ref, message) = resolved(raw, inEnds: true)
            guard let ref else { throw fail(endPath, "model output '\(endName)' \(message ?? "")") }
            outputs[position].0 = ref
        }

        func node(_ key: NodeKey) -> NodeSpec {
            layers[layerIndex[key.layer] ?? 0].nodes[key.node]
        }
        func label(_ key: NodeKey) -> String {
            "\(layers[layerIndex[key.layer] ?? 0].label) call \(key.node)"
        }

        // The calls the outputs need, found walking back from each output (an explicit stack:
        // the graph may be deep). A needed call that reads nothing must be a model input.
        let inputKeys = Set(inputs.map(\.0.nodeKey))
        var needed = Set<NodeKey>()
        for (ref, endName, _) in outputs {
            var stack = [ref.nodeKey]
            while let key = stack.popLast() {
                guard needed.insert(key).inserted else { continue }
                let call = node(key)
                let reads = call.inputs
                if reads.isEmpty, !inputKeys.contains(key) {
                    throw fail(call.path, "model output '\(endName)' cannot be computed from the model's inputs: \(label(key)) reads no tensor and is not a model input")
                }
                for tensor in reads { stack.append(tensor.ref.nodeKey) }
            }
        }

        // Kahn's algorithm over the needed calls, ties in document order.
        var documentOrder: [NodeKey] = []
        for layer in layers {
            for call in layer.nodes where needed.contains(call.key) { documentOrder.append(call.key) }
        }
        var waiting: [NodeKey: Int] = [:]
        var consumers: [NodeKey: [NodeKey]] = [:]
        for key in documentOrder {
            let producers = Set(node(key).inputs.map(\.ref.nodeKey))
            waiting[key] = producers.count
            for producer in producers { consumers[producer, default: []].append(key) }
        }
        var order: [NodeKey] = []
        var ready = documentOrder.filter { waiting[$0] == 0 }
        var next = 0
        while next < ready.count {
            let key = ready[next]
            next += 1
            order.append(key)
            for consumer in consumers[key] ?? [] {
                waiting[consumer, default: 0] -= 1
                if waiting[consumer] == 0 { ready.append(consumer) }
            }
        }
        if order.count < documentOrder.count {
            throw cycleError(documentOrder.filter { (waiting[$0] ?? 0) > 0 }, waiting: waiting, node: node, label: label)
        }

        let outputRefs = Set(outputs.map(\.0))
        for (ref, endName, endPath) in inputs {
            let used = !(consumers[ref.nodeKey] ?? []).isEmpty || outputRefs.contains(ref)
            if !used {
                throw fail(endPath, "model input '\(endName)' (\(ref)) is used by nothing: no call the outputs need reads it")
            }
        }

        return GraphSpec(className: className, name: name, format: format, kerasVersion: nil, layers: layers,
                         inputs: inputs.map(\.0), outputs: outputs.map(\.0), inputNames: inputs.map(\.1),
                         outputNames: outputs.map(\.1), order: order, path: path, source: source, layerIndex: layerIndex)
    }

    /// Names the calls of one cycle among those Kahn could not order: from any of them, follow a
    /// producer that is also unordered until a call repeats.
    func cycleError(_ stuck: [NodeKey], waiting: [NodeKey: Int], node: (NodeKey) -> NodeSpec, label: (NodeKey) -> String) -> NNError {
        guard var key = stuck.first else { return fail("", "the graph has a cycle") }
        var seenAt: [NodeKey: Int] = [:]
        var walk: [NodeKey] = []
        while seenAt[key] == nil {
            seenAt[key] = walk.count
            walk.append(key)
            guard let producer = node(key).inputs.map(\.ref.nodeKey).first(where: { (waiting[$0] ?? 0) > 0 }) else { break }
            key = producer
        }
        // Producer before consumer, starting from the call that comes first in the document.
        var cycle = Array(walk[(seenAt[key] ?? 0)...].reversed())
        var documentPosition: [NodeKey: Int] = [:]
        for (index, call) in stuck.enumerated() { documentPosition[call] = index }
        let position = { (call: NodeKey) in documentPosition[call] ?? Int.max }
        if let first = cycle.indices.min(by: { position(cycle[$0]) < position(cycle[$1]) }) {
            cycle = Array(cycle[first...] + cycle[..<first])
        }
        let start = cycle.first ?? key
        let names = (cycle + [start]).map { "'\($0.layer)' call \($0.node)" }.joined(separator: " -> ")
        return fail(node(start).path, "\(label(start)) is part of a cycle (\(names)); expected a graph where no call reads its own output")
    }

    private func nameList(_ names: [String]) -> String {
        let shown = names.prefix(8).map { "'\($0)'" }.joined(separator: ", ")
        return names.count > 8 ? "\(shown), … (\(names.count) layers)" : shown
    }

    private func stringMember(_ value: JSONValue, _ key: String) -> String? {
        if case let .string(text)? = value[key] { return text }
        return nil
    }

    private func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : "\(a).\(b)" }
}

extension JSONValue {
    /// The first element of an array, nil otherwise.
    fileprivate var firstElement: JSONValue? {
        if case let .array(items) = self { return items.first }
        return nil
    }
}
