/// A sub-layer Keras's saving_lib visits below a layer, under one of the layer's attributes
/// (`cell`, `forward_layer`, `layer`), or a list of them (StackedRNNCells' `cells`).
public struct SavedChild: Sendable {
    public enum Kind: Sendable {
        case layer(LayerSpec)
        /// A list: saving_lib names each item by its class in snake_case, numbered when repeated.
        case list([LayerSpec])
    }

    public var attribute: String
    public var kind: Kind

    public init(_ attribute: String, _ kind: Kind) {
        self.attribute = attribute
        self.kind = kind
    }
}

/// Which sub-layers a layer type's saving_lib walk visits, read from the layer's config: declared
/// where the layer type is registered, so that the walk holds no knowledge of any layer type.
public struct SavedChildren: Sendable {
    public let children: @Sendable (LayerSpec) throws -> [SavedChild]
    /// The Python class saving_lib names the layer by in a list, when the config's `class_name`
    /// is another spelling (Keras writes `GroupQueryAttention` for `GroupedQueryAttention`).
    public var className: String?

    public init(_ children: @escaping @Sendable (LayerSpec) throws -> [SavedChild]) {
        self.children = children
    }

    /// The same sub-layers, the layer being of Python class `name` (see `className`).
    public func savedAs(_ name: String) -> SavedChildren {
        var copy = self
        copy.className = name
        return copy
    }

    /// A layer with no sub-layers (its own variables only): every plain layer, and a plugin's.
    public static let none = SavedChildren { _ in [] }

    /// The layer given at config key `key` (TimeDistributed's `layer`), saved under `attribute`.
    public static func nested(_ attribute: String, key: String) -> SavedChildren {
        SavedChildren { spec in [SavedChild(attribute, .layer(try SavingWalk.nestedSpec(spec, key: key)))] }
    }

    /// The layers listed at config key `key` (StackedRNNCells' `cells`), saved under `attribute`.
    public static func nestedList(_ attribute: String, key: String) -> SavedChildren {
        SavedChildren { spec in
            guard case let .array(items)? = spec.config[key] else {
                throw NNError(.spec, "\(spec.path).config.\(key)", "\(spec.label): expected a list of layer objects (the sub-layers its weights are saved under)")
            }
            return [SavedChild(attribute, .list(try items.enumerated().map { index, item in
                try SavingWalk.nestedSpec(item, in: spec, key: "\(key)[\(index)]")
            }))]
        }
    }

    /// A sub-layer the layer makes itself and its config does not hold (LSTM's `cell`, an
    /// LSTMCell named `lstm_cell`), present when `when` says so (MultiHeadAttention's gate).
    public static func made(_ attribute: String, className: String, name: String,
                            when: (@Sendable (LayerSpec) -> Bool)? = nil) -> SavedChildren {
        SavedChildren { spec in
            guard when?(spec) ?? true else { return [] }
            return [SavedChild(attribute, .layer(LayerSpec(className: className, name: name, config: .object([]), path: spec.path)))]
        }
    }

    /// Both declarations' sub-layers (the walk visits them in saving_lib's order, not this one).
    public static func + (lhs: SavedChildren, rhs: SavedChildren) -> SavedChildren {
        SavedChildren { spec in try lhs.children(spec) + rhs.children(spec) }
    }
}

/// Where Keras 3's saving_lib saves each layer's variables in a weights file
/// (`model.weights.h5`), computed from the config the way saving_lib walks the model
/// (`keras/src/saving/saving_lib.py`, `_save_state`), never from the names in the file:
///
/// - a model saves its `layers` list first: a Sequential's without its InputLayer, a
///   Functional's with its InputLayers and without operations on tensors;
/// - a list's items are named by their class in snake_case (`to_snake_case`), numbered when
///   repeated (`dense`, `dense_1`): a nested Sequential named `inner` is at `layers/sequential`,
///   and the second Dense at `layers/dense_1` whatever its name;
/// - then every attribute holding a sub-layer, in sorted order with private ones (`_name`) last
///   (`_walk_saveable`), each under its attribute's name (`forward_layer`, `cell`);
/// - a layer's variables are `<its path>/vars/<i>`, numbered in creation order; a layer reached
///   twice (shared) is saved once, at the first path.
public enum SavingWalk {
    /// One layer's place in the file.
    public struct Place: Sendable, Equatable {
        /// Its group in the file: `layers/sequential/layers/dense` (empty for the root model).
        public var group: String
        /// The names of the models and layers enclosing it, then its own: how the model being
        /// built scopes its weights (`inner/dense_7`, `bidirectional/forward_gru/gru_cell`).
        public var names: [String]
        /// The Keras variable path its variables start with, as Keras names them in the model
        /// it loads from the file (`dense_7`, `forward_gru/gru_cell`, `multi_head_attention/query`):
        /// a variable is scoped by the layers being built when it is made. Loading builds each
        /// layer of a model, and each sub-layer whose config carries a `build_config`, on its own
        /// (its scope is its name alone); a sub-layer its parent makes (LSTM's cell,
        /// MultiHeadAttention's projections) is built inside its parent's scope.
        public var variablePath: String
        /// The layer, for messages: `layer 'dense_7' (Dense)`.
        public var label: String
    }

    /// The deepest nesting of layers the walk follows.
    static let maximumDepth = 64

    /// Every layer of `graph` (the file's model) with its place in the weights file, in
    /// saving_lib's order; `children` gives each layer type's sub-layers, `className` the Python
    /// class a config's `class_name` makes (saving_lib names list items by the class, and Keras
    /// writes `GroupQueryAttention` for the class `GroupedQueryAttention`): by default the
    /// `class_name`, which is the class's name for a user's layer.
    public static func places(_ graph: GraphSpec, className: (LayerSpec) -> String = { $0.className },
                              children: (LayerSpec) throws -> [SavedChild]) throws -> [Place] {
        var places: [Place] = []
        let root = Place(group: "", names: [], variablePath: "", label: "model '\(graph.name)' (\(graph.className))")
        places.append(root)
        try withoutActuallyEscaping(className) { className in
            try withoutActuallyEscaping(children) { children in
                try Walk(className: className, children: children).model(graph, at: root, depth: 0, into: &places)
            }
        }
        return places
    }

    private struct Walk {
        let className: (LayerSpec) -> String
        let children: (LayerSpec) throws -> [SavedChild]

        func model(_ graph: GraphSpec, at place: Place, depth: Int, into places: inout [Place]) throws {
            guard depth < maximumDepth else {
                throw NNError(.spec, graph.source, "the model nests layers more than \(maximumDepth) deep")
            }
            // Sequential.layers leaves out the InputLayer at the bottom of the stack; Functional.layers
            // keeps every Layer and leaves out operations on tensors (`x + y`).
            var layers = graph.layers.filter { $0.operationModule == nil }
            if graph.className == "Sequential", layers.first?.spec.className == "InputLayer" { layers.removeFirst() }
            var used: [String: Int] = [:]
            for layer in layers {
                let type = layer.model == nil ? className(layer.spec) : layer.spec.className
                let group = SavingWalk.join(place.group, "layers", SavingWalk.uniqueName(DefaultNamer.snakeCase(type), &used))
                let names = place.names + [layer.name]
                if let inner = layer.model {
                    // A nested model builds its own layers in its own scope, whatever encloses it.
                    let nested = Place(group: group, names: names, variablePath: "", label: layer.label)
                    places.append(nested)
                    try model(inner, at: nested, depth: depth + 1, into: &places)
                } else {
                    let own = Place(group: group, names: names, variablePath: layer.name, label: layer.label)
                    try self.layer(layer.spec, at: own, depth: depth + 1, into: &places)
                }
            }
        }

        func layer(_ spec: LayerSpec, at place: Place, depth: Int, into places: inout [Place]) throws {
            guard depth < maximumDepth else {
                throw NNError(.spec, spec.path, "\(spec.label): sub-layers nest more than \(maximumDepth) deep")
            }
            places.append(place)
            // dir() order, with private attributes last (saving_lib's `_name_key`).
            let sorted = try children(spec).sorted { SavingWalk.sortKey($0.attribute) < SavingWalk.sortKey($1.attribute) }
            for child in sorted {
                switch child.kind {
                case let .layer(sub):
                    try visit(sub, group: SavingWalk.join(place.group, child.attribute), parent: place, depth: depth, into: &places)
                case let .list(items):
                    var used: [String: Int] = [:]
                    for sub in items {
                        let name = SavingWalk.uniqueName(DefaultNamer.snakeCase(className(sub)), &used)
                        let group = SavingWalk.join(place.group, child.attribute, name)
                        try visit(sub, group: group, parent: place, depth: depth, into: &places)
                    }
                }
            }
        }

        func visit(_ sub: LayerSpec, group: String, parent: Place, depth: Int, into places: inout [Place]) throws {
            let scope = sub.buildConfig == nil ? SavingWalk.join(parent.variablePath, sub.name) : sub.name
            let place = Place(group: group, names: parent.names + [sub.name], variablePath: scope, label: sub.label)
            try layer(sub, at: place, depth: depth + 1, into: &places)
        }
    }

    /// saving_lib's `_get_unique_name`: `dense`, then `dense_1`, `dense_2`.
    static func uniqueName(_ name: String, _ used: inout [String: Int]) -> String {
        if let count = used[name] {
            used[name] = count + 1
            return "\(name)_\(count + 1)"
        }
        used[name] = 0
        return name
    }

    static func sortKey(_ attribute: String) -> String { attribute.hasPrefix("_") ? "~" + attribute : attribute }

    static func join(_ parts: String...) -> String { parts.filter { !$0.isEmpty }.joined(separator: "/") }

    /// The layer object at config key `key` of `spec` (`{"class_name": ..., "config": {...}}`).
    public static func nestedSpec(_ spec: LayerSpec, key: String) throws -> LayerSpec {
        guard let raw = spec.config[key], !raw.isNull else {
            throw NNError(.spec, "\(spec.path).config.\(key)", "\(spec.label): missing required key '\(key)' (a nested layer)")
        }
        return try nestedSpec(raw, in: spec, key: key)
    }

    static func nestedSpec(_ raw: JSONValue, in spec: LayerSpec, key: String) throws -> LayerSpec {
        let path = "\(spec.path).config.\(key)"
        guard case .object = raw, case let .string(className)? = raw["class_name"] else {
            throw NNError(.spec, path, "\(spec.label): '\(key)' must be a layer object with class_name and config, found \(raw.brief())")
        }
        let config = raw["config"] ?? .object([])
        var name = DefaultNamer.snakeCase(className)
        if case let .string(value)? = config["name"], !value.isEmpty { name = value }
        var registered: String?
        if case let .string(value)? = raw["registered_name"] { registered = value }
        return LayerSpec(className: className, registeredName: registered, name: name, config: config, path: path,
                         buildConfig: raw["build_config"].flatMap { $0.isNull ? nil : $0 })
    }
}
