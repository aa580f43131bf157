/// Makes a layer from its context. Every layer type, built-in or not, has one. It returns a
/// one-input `Layer` or a `NodeLayer` of several inputs or outputs.
public typealias LayerFactory = (LayerContext) throws -> any NodeLayer

/// Maps layer type names to factories. Built-ins and users' layers are registered the same way;
/// registering a name again replaces the earlier factory (so a user can override a built-in).
public final class LayerRegistry: @unchecked Sendable {
    /// One registered layer type.
    public struct Registration {
        /// The Keras `class_name` (or `registered_name`) this factory answers to.
        public var name: String
        public var aliases: [String]
        /// Where it came from: `builtin`, `user`, or a plugin's path.
        public var origin: String
        /// One sentence for `nnbuild layers`.
        public var summary: String
        /// The sub-layers Keras's saving_lib saves below this layer's own variables (LSTM's
        /// `cell`, Bidirectional's `forward_layer` and `backward_layer`): where a `.keras` file
        /// holds their weights. `.none` for a layer with no sub-layers.
        public var savedChildren: SavedChildren = .none
        public var factory: LayerFactory
    }

    private var registrations: [String: Registration] = [:]
    private var aliasTargets: [String: String] = [:]
    /// While a plugin registers: its origin, what it registered, and names it clashed on.
    private var session: (origin: String, registered: [String], conflicts: [String])?

    public init() {}

    /// Registers `factory` for layers whose `class_name` or `registered_name` is `name` or one of
    /// `aliases`, replacing any earlier registration of those names.
    public func register(_ name: String, aliases: [String] = [], origin: String = "user", summary: String = "",
                         factory: @escaping LayerFactory) {
        register(name, aliases: aliases, origin: origin, summary: summary, savedChildren: .none, factory: factory)
    }

    /// Registers a layer type that has sub-layers: `savedChildren` declares those Keras's
    /// saving_lib saves below the layer's own variables (see `SavingWalk`). A separate method, so
    /// that a plugin built against the one above still loads.
    public func register(_ name: String, aliases: [String] = [], origin: String = "user", summary: String = "",
                         savedChildren: SavedChildren, factory: @escaping LayerFactory) {
        var origin = origin
        if let current = session {
            origin = current.origin
            for taken in [name] + aliases {
                if current.registered.contains(taken) || aliases.filter({ $0 == taken }).count > 1 {
                    session?.conflicts.append("registers '\(taken)' twice")
                } else if let other = registration(named: taken), other.origin != "builtin", other.origin != "user" {
                    session?.conflicts.append("registers '\(taken)', already registered by \(other.origin)")
                }
            }
            session?.registered.append(contentsOf: [name] + aliases)
        }
        for alias in aliases { aliasTargets[alias] = name }
        aliasTargets[name] = nil
        registrations[name] = Registration(name: name, aliases: aliases, origin: origin, summary: summary,
                                           savedChildren: savedChildren, factory: factory)
    }

    func beginPluginSession(origin: String) -> String {
        session = (origin, [], [])
        return origin
    }

    func endPluginSession(_ origin: String) -> (registered: [String], conflicts: [String]) {
        defer { session = nil }
        return (session?.registered ?? [], session?.conflicts ?? [])
    }

    /// Whether any registration answers to `name`.
    public func contains(_ name: String) -> Bool { registration(named: name) != nil }

    /// The registration answering to `name` directly or by alias.
    public func registration(named name: String) -> Registration? {
        if let found = registrations[name] { return found }
        if let target = aliasTargets[name] { return registrations[target] }
        return nil
    }

    /// Every registration, sorted by name.
    public var all: [Registration] { registrations.values.sorted { $0.name < $1.name } }

    /// The name a Keras 3 operation on tensors (`keras.src.ops.*`, e.g. `x + y` is `Add`) is
    /// registered under: `ops.Add`. Operations and layers share class names (`Add`,
    /// `Concatenate`), so they are told apart by the spec's `module`, and an operation is looked up
    /// only under this name.
    public static func operationName(_ className: String) -> String { "ops.\(className)" }

    /// The registration for a layer: Keras 3's `registered_name` first, then `class_name`.
    public func registration(for spec: LayerSpec) -> Registration? {
        if let registered = spec.registeredName, let found = registration(named: registered) { return found }
        return registration(named: spec.className)
    }

    /// The sub-layers Keras's saving_lib visits below `spec`, as its registration declares them
    /// (none for a type nobody registered: building the model reports it).
    public func savedChildren(of spec: LayerSpec) throws -> [SavedChild] {
        try registration(for: spec)?.savedChildren.children(spec) ?? []
    }

    /// Builds the layer described by `context.spec`.
    public func make(_ context: LayerContext) throws -> any NodeLayer {
        guard let registration = registration(for: context.spec) else {
            let near = closestNames(to: context.spec.className)
            let hint = near.isEmpty ? "" : "; closest registered: \(near.map { "'\($0)'" }.joined(separator: ", "))"
            throw NNError(.unknownLayer, "\(context.source): \(context.spec.path).class_name",
                          "unknown layer type '\(context.spec.className)' (layer '\(context.spec.name)')\(hint). Register a factory for it, or load a plugin that does (`nnbuild layers` lists what is registered).")
        }
        return try registration.factory(context)
    }

    /// Up to three registered names closest to `name` by edit distance.
    public func closestNames(to name: String) -> [String] {
        let names = Set(registrations.keys).union(aliasTargets.keys)
        let lowered = name.lowercased()
        let scored = names.map { ($0, editDistance(lowered, $0.lowercased())) }
        let limit = max(2, name.count / 3)
        return scored.filter { $0.1 <= limit || $0.0.lowercased().contains(lowered) || lowered.contains($0.0.lowercased()) }
            .sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(3).map(\.0)
    }
}

package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
