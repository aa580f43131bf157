import ModelSpec

/// Matches the weights layers ask for with the tensors in the blob, and collects every problem
/// (missing, mis-shaped, ambiguous, unused) so that they are reported together.
///
/// A request names its scope (the names of the models enclosing the layer, then the layer's name,
/// then nested sub-layer names) and a variable
/// (`kernel`). A tensor matches when its path, split on `/` with Keras 2's `:0` dropped, ends with
/// the variable and holds the innermost scope name as an earlier segment. That accepts Keras 3
/// (`sequential/lstm/lstm_cell/kernel`), Keras 2 (`lstm/lstm_cell/kernel:0`), a model rebuilt from
/// JSON (`forward_lstm/lstm_cell/kernel`) and hand-written blobs (`lstm/kernel`), and a nested
/// model's layers however Keras wrote their path (`inner_sequential/inner_dense1/kernel` for a
/// Sequential in a Functional, plain `inner_dense/kernel` for a Functional in a Sequential, the
/// model's scope being the earlier, optional segments). Among several
/// matches, those holding more of the scope win, then those with the fewest extra segments; a tie
/// left after that is reported as ambiguous rather than guessed.
final class WeightBinder {
    let store: WeightStore?
    private(set) var problems: [NNError] = []
    private var used: Set<String> = []
    /// Weights already bound, by scope and variable: a shared layer's later calls, and a nested
    /// model called several times, get the same tensor (one set of weights, several nodes).
    private var bound: [String: Weight] = [:]
    /// Each weight bound, once, by its Keras variable path (by scope and variable without a store,
    /// or for a weight the store lacks), in the order layers asked for them.
    private(set) var variables: [(path: String, weight: Weight)] = []
    /// For a positional store (a Keras 3 `.keras` or `.weights.h5`, whose variables are numbered
    /// `vars/<i>` in the order the layer creates them): how many variables each scope has asked
    /// for so far, and the index given to each variable already asked for.
    private var nextIndex: [String: Int] = [:]
    private var indexOf: [String: String] = [:]
    private var paths: [(name: String, segments: [String])] = []
    /// Largest tensor a layer may declare, in elements (1 GiB of float32).
    static let maximumElements = 1 << 28

    /// For a store from Keras's saving_lib: the place of each layer in the file, by its group.
    private var places: [String: SavingWalk.Place] = [:]
    /// For a store of named weights: every layer's place, to give each weight the Keras variable
    /// path of the model Keras loads (a legacy `.h5` records the paths of the model that saved it:
    /// `sequential/bidirectional/forward_lstm/lstm_cell/kernel:0` is `forward_lstm/lstm_cell/kernel`).
    private var named: [SavingWalk.Place] = []

    /// A binder for `store`. A store from Keras's saving_lib (a `.keras` file or `.weights.h5`)
    /// holds each variable under its path in the file (`layers/dense_1/vars/0`): `graph`, walked
    /// as saving_lib walked the model with each layer type's declared sub-layers from `registry`,
    /// says which layer each group belongs to. A group holding variables that no layer is saved
    /// at is refused, naming the path.
    convenience init(store: WeightStore?, graph: GraphSpec, registry: LayerRegistry) throws {
        self.init(store: store)
        guard let store else { return }
        func walk() throws -> [SavingWalk.Place] {
            try SavingWalk.places(graph, className: { registry.registration(for: $0)?.savedChildren.className ?? $0.className }) {
                try registry.savedChildren(of: $0)
            }
        }
        guard store.isPositional else {
            // Named weights: the walk only renames them for `variables`, so a config it cannot
            // walk (a hand-written spec) still loads.
            named = (try? walk()) ?? []
            return
        }
        let walked = try walk()
        for place in walked { places[place.group] = place }
        var unexpected: [String: Int] = [:]
        var parsed: [(name: String, segments: [String])] = []
        for entry in store.entries {
            guard let (group, index) = WeightBinder.splitSaved(entry.name), let place = places[group] else {
                unexpected[WeightBinder.splitSaved(entry.name)?.group ?? entry.name, default: 0] += 1
                continue
            }
            parsed.append((entry.name, place.names + [index]))
        }
        guard unexpected.isEmpty else {
            throw NNErrors(unexpected.keys.sorted().map { group in
                let count = unexpected[group] ?? 0
                let shown = group.isEmpty ? "vars" : group + "/vars"
                return NNError(.weights, store.source, "'\(shown)' holds \(count) variable\(count == 1 ? "" : "s"), but Keras's saving_lib saves no layer of this model there (\(WeightBinder.nearest(group, in: walked))); are these weights for another model?")
            })
        }
        paths = parsed
    }

    /// A binder for a store of named tensors (safetensors, a legacy `.h5`), or none.
    init(store: WeightStore?) {
        self.store = store
        paths = (store?.entries ?? []).map { entry in
            var segments = entry.name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if let last = segments.last, let colon = last.lastIndex(of: ":"), last[last.index(after: colon)...].allSatisfy(\.isNumber) {
                segments[segments.count - 1] = String(last[..<colon])
            }
            return (entry.name, segments)
        }
    }

    /// `layers/dense/vars/0` → (`layers/dense`, `0`); `vars/0` (the root's) → (``, `0`).
    static func splitSaved(_ name: String) -> (group: String, index: String)? {
        var parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let index = parts.popLast(), parts.popLast() == "vars" else { return nil }
        return (parts.joined(separator: "/"), index)
    }

    /// The walk's places that share the longest leading path with `group`, for messages.
    static func nearest(_ group: String, in places: [SavingWalk.Place]) -> String {
        let wanted = group.split(separator: "/")
        func shared(_ place: SavingWalk.Place) -> Int {
            zip(wanted, place.group.split(separator: "/")).prefix { $0 == $1 }.count
        }
        let best = places.map(shared).max() ?? 0
        let near = places.filter { !$0.group.isEmpty && shared($0) == best }.prefix(4)
        guard !near.isEmpty else { return "the model has no layers" }
        return near.map { "'\($0.group)' is \($0.label)" }.joined(separator: ", ")
    }

    /// The Keras variable path of the tensor `name` in the store, its variable being `variable`:
    /// a saving_lib store's layer's path and the variable (`forward_lstm/lstm_cell/kernel`), or for
    /// a named store the path of the one layer whose names end the stored path, else the stored
    /// path without Keras 2's `:0`.
    private func variablePath(of name: String, variable: String, alternates: [String]) -> String {
        if let (group, _) = WeightBinder.splitSaved(name), let place = places[group] {
            return place.variablePath.isEmpty ? variable : place.variablePath + "/" + variable
        }
        var path = name
        if let colon = name.lastIndex(of: ":"), name[name.index(after: colon)...].allSatisfy(\.isNumber) {
            path = String(name[..<colon])
        }
        // The layer whose names end the stored path best (its innermost name first).
        var layers = path.split(separator: "/").map(String.init)
        guard let last = layers.popLast(), last == variable || alternates.contains(last), let innermost = layers.last else { return path }
        func shared(_ place: SavingWalk.Place) -> Int {
            zip(place.names.reversed(), layers.reversed()).prefix { $0 == $1 }.count
        }
        let candidates = named.filter { $0.names.last == innermost && !$0.variablePath.isEmpty }
        let best = candidates.map(shared).max() ?? 0
        let chosen = candidates.filter { shared($0) == best }
        guard chosen.count == 1, let place = chosen.first else { return path }
        return place.variablePath + "/" + variable
    }

    /// Where layer `name` sits among a tensor path's `segments`: the first run of segments that
    /// spells it. tf-keras allowed `/` in a layer's name (MobileNetV3's `Conv/BatchNorm`), and
    /// its files then hold `Conv/BatchNorm/gamma:0`, the name over several segments.
    static func position(of name: String, in segments: ArraySlice<String>) -> Range<Int>? {
        guard name.contains("/") else { return segments.firstIndex(of: name).map { $0..<($0 + 1) } }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= segments.count else { return nil }
        var start = segments.startIndex
        while start + parts.count <= segments.endIndex {
            if segments[start..<(start + parts.count)].elementsEqual(parts) { return start..<(start + parts.count) }
            start += 1
        }
        return nil
    }

    func report(_ error: NNError) { problems.append(error) }

    /// The asset `file` the archive holds for the layer at `scope` (saving_lib writes a layer's
    /// assets under its place's group), or nil.
    func asset(scope: [String], file: String) -> [UInt8]? {
        guard let store, let place = places.values.first(where: { $0.names == scope }) ?? named.first(where: { $0.names == scope }) else { return nil }
        return store.asset(place.group.isEmpty ? file : "\(place.group)/\(file)")
    }

    /// The weight already bound to `variable` in `scope`, if a call of the same layer asked for it.
    func boundWeight(scope: [String], variable: String) -> Weight? {
        bound[(scope + [variable]).joined(separator: "/")]
    }

    func resolve(scope: [String], variable: String, alternates: [String], savedUnderItsName: Bool = false, shape: [Int], label: String,
                 location: String) throws -> Weight {
        let key = (scope + [variable]).joined(separator: "/")
        if let earlier = bound[key] {
            guard earlier.shape == shape else {
                throw NNError(.layer, location, "\(label): weight '\(variable)' has shape \(earlier.shape) for an earlier call of the layer, and this call needs \(shape); a shared layer must be called on inputs of the same shape")
            }
            return earlier
        }
        let storedName = savedUnderItsName ? variable : stored(scope: scope, variable: variable)
        // In a positional store the message names both: 'kernel (vars/0)'.
        let shown = storedName == variable ? variable : "\(variable) (vars/\(storedName))"
        // Other names count only where tensors are named (a positional store's are its indices).
        let others = storedName == variable ? alternates : []
        let weight = try lookUp(scope: scope, variable: storedName, alternates: others, shown: shown, shape: shape, label: label,
                                location: location)
        bound[key] = weight
        variables.append((store == nil || weight.name == storedName ? key : variablePath(of: weight.name, variable: variable, alternates: others),
                          weight))
        return weight
    }

    private func lookUp(scope: [String], variable: String, alternates: [String], shown: String, shape: [Int], label: String,
                        location: String) throws -> Weight {
        guard shape.allSatisfy({ $0 > 0 }), let elements = ShapeMath.product(shape), elements <= WeightBinder.maximumElements else {
            let bytes = shape.map { Double(max($0, 0)) }.reduce(4, *)
            throw NNError(.layer, location, "\(label): weight '\(shown)' would have shape \(shape) (\(formatBytes(bytes))); the largest accepted is \(WeightBinder.maximumElements) elements")
        }
        guard let store else {
            return Weight(name: (scope + [variable]).joined(separator: "/"), shape: shape, storage: FloatStorage(zeros: elements))
        }
        let placeholder = Weight(name: variable, shape: shape, storage: FloatStorage(zeros: elements))
        guard let innermost = scope.last else { return placeholder }
        func candidatesNamed(_ accepts: (String) -> Bool) -> [(name: String, segments: [String])] {
            paths.filter { path in
                path.segments.count >= 2 && path.segments.last.map(accepts) == true && !used.contains(path.name)
                    && WeightBinder.position(of: innermost, in: path.segments.dropLast()) != nil
            }
        }
        var candidates = candidatesNamed { $0 == variable }
        if candidates.isEmpty, !alternates.isEmpty {
            candidates = candidatesNamed { alternates.contains($0) }
        }
        if candidates.isEmpty {
            // Keras 3 numbers a weight created without a name model-wide (LayerScale's `variable`,
            // `variable_1`, …); such a suffix is accepted only when no tensor has the plain name.
            candidates = candidatesNamed { last in
                guard last.hasPrefix(variable + "_") else { return false }
                let suffix = last.dropFirst(variable.count + 1)
                return !suffix.isEmpty && suffix.allSatisfy(\.isASCII) && suffix.allSatisfy(\.isNumber)
            }
        }
        // tf-keras names a wrapped layer's variables under the wrapper alone
        // (`time_distributed/kernel:0`, no inner name): when no path holds the innermost name,
        // take the one that is exactly the enclosing scope's name and the variable.
        if candidates.isEmpty, scope.count >= 2 {
            let outer = scope[scope.count - 2]
            candidates = paths.filter { path in
                path.segments.count >= 2 && path.segments.last.map { $0 == variable || alternates.contains($0) } == true
                    && !used.contains(path.name) && path.segments[path.segments.count - 2] == outer
            }
        }
        if candidates.count > 1 {
            func matched(_ segments: [String]) -> Int {
                var count = 0
                var start = 0
                for name in scope {
                    if let at = WeightBinder.position(of: name, in: segments[start..<(segments.count - 1)]) {
                        count += 1
                        start = at.upperBound
                    }
                }
                return count
            }
            let best = candidates.map { matched($0.segments) }.max() ?? 0
            candidates = candidates.filter { matched($0.segments) == best }
            let fewest = candidates.map { $0.segments.count }.min() ?? 0
            candidates = candidates.filter { $0.segments.count == fewest }
        }
        let wanted = (scope + [variable]).joined(separator: "/")
        guard candidates.count == 1, let match = candidates.first, let entry = store.entry(named: match.name) else {
            if candidates.isEmpty, let place = places.values.first(where: { $0.names == scope }) {
                let group = place.group.isEmpty ? "vars" : place.group + "/vars"
                report(NNError(.weights, location, "\(label): weight '\(shown)' of shape \(shape) is missing: \(store.source) has no '\(group)/\(variable)', where Keras's saving_lib saves this layer's variable \(variable)"))
            } else if candidates.isEmpty {
                let also = alternates.map { " or '…" + (scope + [$0]).joined(separator: "/") + "'" }.joined()
                report(NNError(.weights, location, "\(label): weight '\(shown)' of shape \(shape) is missing: no tensor in \(store.source) is named like '…\(wanted)'\(also)"))
            } else {
                let names = candidates.map { "'\($0.name)'" }.joined(separator: ", ")
                for candidate in candidates { used.insert(candidate.name) }
                report(NNError(.weights, location, "\(label): weight '\(shown)' is ambiguous: \(names) all match '…\(wanted)'"))
            }
            return placeholder
        }
        used.insert(match.name)
        guard entry.shape == shape else {
            report(NNError(.weights, location, "\(label): weight '\(shown)' ('\(entry.name)') has shape \(entry.shape), expected \(shape)"))
            return placeholder
        }
        return Weight(name: entry.name, shape: shape, storage: store.floats(entry))
    }

    /// The last path segment `variable` has in the store: its name, or, in a positional store,
    /// its index among the variables its scope declares (a layer's factory declares them in
    /// Keras's creation order, as `LayerContext.weight` documents).
    private func stored(scope: [String], variable: String) -> String {
        guard store?.isPositional == true else { return variable }
        let scopeKey = scope.joined(separator: "/")
        let key = scopeKey + "/" + variable
        if let index = indexOf[key] { return index }
        let index = String(nextIndex[scopeKey, default: 0])
        nextIndex[scopeKey, default: 0] += 1
        indexOf[key] = index
        return index
    }

    /// Marks a tensor the layer knows it does not need (e.g. a seed generator's state).
    func ignore(scope: [String], variable: String, savedUnderItsName: Bool = false) {
        let variable = savedUnderItsName ? variable : stored(scope: scope, variable: variable)
        guard let innermost = scope.last else { return }
        for path in paths where path.segments.last == variable && WeightBinder.position(of: innermost, in: path.segments.dropLast()) != nil {
            used.insert(path.name)
        }
    }

    /// One problem per tensor in the blob that no layer asked for.
    func unusedProblems() -> [NNError] {
        guard let store else { return [] }
        return store.entries.filter { !used.contains($0.name) }.map {
            NNError(.weights, store.source, "tensor '\($0.name)' (shape \($0.shape)) is not used by any layer of the model")
        }
    }
}

func formatBytes(_ bytes: Double) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
    var value = bytes
    var unit = 0
    while value >= 1000, unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    return unit == 0 ? "\(Int(value)) bytes" : "\(formatted("%.1f", value)) \(units[unit])"
}
