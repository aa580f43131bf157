/// What a factory reads, found by building it on probe inputs: the config keys with their types
/// and defaults, and the weights with their shapes for the probe input.
final class ConfigTrace {
    struct Key {
        var name: String
        var kind: String
        var defaultValue: String?
    }

    var keys: [Key] = []
    var missingRequired: [Key] = []
    var weights: [(String, [Int])] = []

    func note(_ key: String, kind: String, default defaultValue: String?, present: Bool) {
        // The first access wins: typed accessors built on others (positiveInt on int) note first.
        guard !keys.contains(where: { $0.name == key }) else { return }
        let entry = Key(name: key, kind: kind, defaultValue: defaultValue)
        keys.append(entry)
        if defaultValue == nil, !present { missingRequired.append(entry) }
    }

    /// `key` is required after all, of `kind`, and absent: what the factory said by
    /// `LayerContext.missingKey`, overriding a looser first access (a check that it is not a path).
    func noteMissing(_ key: String, kind: String) {
        keys.removeAll { $0.name == key }
        note(key, kind: kind, default: nil, present: false)
    }
}

/// A registered layer type described for people: `nnbuild layers NAME`.
public struct LayerDescription: Sendable {
    public struct Key: Sendable {
        public var name: String
        public var kind: String
        /// nil when the key is required.
        public var defaultValue: String?
    }

    public var name: String
    public var aliases: [String]
    public var origin: String
    public var summary: String
    public var keys: [Key]
    public var weights: [(name: String, shape: [Int])]
    /// The input shape the weights' shapes were found for, or why no probe succeeded.
    public var probe: String
}

extension LayerRegistry {
    /// Builds the factory registered as `name` on small probe inputs, filling required keys with
    /// plausible values, and reports what it read.
    public func describe(_ name: String) -> LayerDescription? {
        guard let registration = registration(named: name) else { return nil }
        var config: [(String, JSONValue)] = []
        var last = ConfigTrace()
        var probe = "no probe input built it"
        let shapes: [[Int?]] = [[6, 8], [8], [6, 6, 8], [4, 6, 6, 8], [1]]
        attempts: for _ in 0..<12 {
            var missing: [ConfigTrace.Key] = []
            // Numbers first, then strings (a layer that reads only strings: StringLookup).
            for (strings, shape) in [false, true].flatMap({ strings in shapes.map { (strings, $0) } }) {
                let trace = ConfigTrace()
                let spec = LayerSpec(className: registration.name, name: DefaultNamer.snakeCase(registration.name), config: .object(config), path: "probe")
                let context = LayerContext(spec: spec, inputShapes: [shape], inputMasks: [false], inputStrings: [strings], registry: self,
                                           scope: [spec.name], previousLabel: nil, binder: WeightBinder(store: nil), source: "probe")
                context.trace = trace
                do {
                    _ = try registration.factory(context)
                    last = trace
                    probe = "\(strings ? "string " : "")input \(describeShape(shape))"
                        + (config.isEmpty ? "" : " with " + config.map { "\($0.0)=\(JSONWriter.string($0.1))" }.joined(separator: ", "))
                    break attempts
                } catch {
                    if trace.keys.count >= last.keys.count { last = trace }
                    missing += trace.missingRequired
                }
            }
            let fillable = missing.filter { key in !config.contains { $0.0 == key.name } && ConfigTrace.plausible(key.kind) != nil }
            guard let next = fillable.first, let value = ConfigTrace.plausible(next.kind) else { break }
            config.append((next.name, value))
        }
        return LayerDescription(name: registration.name, aliases: registration.aliases, origin: registration.origin, summary: registration.summary,
                                keys: last.keys.map { LayerDescription.Key(name: $0.name, kind: $0.kind, defaultValue: $0.defaultValue) },
                                weights: last.weights.map { (name: $0.0, shape: $0.1) }, probe: probe)
    }
}

extension ConfigTrace {
    static func plausible(_ kind: String) -> JSONValue? {
        switch kind {
        case "integer": return .int(4)
        case "number": return .double(0.5)
        case "boolean": return .bool(false)
        case "list of integers": return .array([.int(-1)])
        case "list of strings": return .array([.string("a")])
        default: return kind.hasPrefix("integer or list") ? .int(2) : nil
        }
    }
}
