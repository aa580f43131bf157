/// What a layer factory receives: the layer's spec, its input shapes, typed access to its Keras
/// config (with Keras's defaults and clear errors), the call's arguments, weight look-up by name
/// with the expected shape, and the means to build nested layers (as `Bidirectional` and
/// `TimeDistributed` do).
///
/// A factory is run once per call of the layer (a shared layer is called at several nodes); the
/// weights bind once, so every call uses the same tensors.
public final class LayerContext {
    /// The layer as written in the spec.
    public let spec: LayerSpec
    /// Per-sample shape of each input tensor (batch axis excluded); nil marks a run-time
    /// dimension. The order is the call's: positional tensors, then keyword-argument tensors
    /// (see `NodeLayer`).
    public let inputShapes: [[Int?]]
    /// Whether each input carries a sequence mask (propagated, or given by the call's `mask`).
    public let inputMasks: [Bool]
    /// Whether each input holds strings (a model input of dtype `string`, `Tensor.strings`); a
    /// layer that reads them conforms to `ReadsStrings`.
    public let inputStrings: [Bool]
    /// The call this layer is built for; nil for a nested sub-layer or a probe.
    public let node: NodeSpec?
    /// The names of the layers whose outputs this call reads, in input order, for messages
    /// (`layer 'add_2' (Add) called on ['conv2d_5', 'batch_normalization_3']`); nil in a
    /// Sequential chain, whose messages name the layer alone.
    public let callers: [String]?
    /// The registry the model is built from, for nested layers.
    public let registry: LayerRegistry
    /// Names of the enclosing models and layers then this one: the weight look-up scope.
    public let scope: [String]
    /// The layer whose output feeds this one, for messages (`layer 'flatten' (Flatten)`).
    public let previousLabel: String?
    let binder: WeightBinder
    let source: String
    /// Parameters this layer and its nested layers declared, for the summary (counted once for
    /// a shared layer: a later call's weights are already bound).
    public private(set) var parameterCount = 0
    /// Records the config keys and weights a factory reads, for `nnbuild layers NAME`.
    var trace: ConfigTrace?
    /// The keyword and positional call arguments the factory read; any other the call passes is
    /// refused by name once the factory returns (`unreadArguments`).
    private(set) var readKeywordArguments: Set<String> = []
    private(set) var readPositionalArguments: Set<Int> = []

    /// The module of a Keras 3 operation on tensors (`keras.src.ops.numpy`), nil for a layer:
    /// messages then name it as an operation.
    public let operationModule: String?

    init(spec: LayerSpec, inputShapes: [[Int?]], inputMasks: [Bool], inputStrings: [Bool]? = nil, node: NodeSpec? = nil,
         callers: [String]? = nil, operationModule: String? = nil,
         registry: LayerRegistry, scope: [String], previousLabel: String?, binder: WeightBinder, source: String) {
        self.operationModule = operationModule
        self.spec = spec
        self.inputShapes = inputShapes
        self.inputMasks = inputMasks
        self.inputStrings = inputStrings ?? inputShapes.map { _ in false }
        self.node = node
        self.callers = callers
        self.registry = registry
        self.scope = scope
        self.previousLabel = previousLabel
        self.binder = binder
        self.source = source
    }

    convenience init(spec: LayerSpec, inputShape: [Int?], inputCarriesMask: Bool, registry: LayerRegistry,
                     scope: [String], previousLabel: String?, binder: WeightBinder, source: String) {
        self.init(spec: spec, inputShapes: [inputShape], inputMasks: [inputCarriesMask], registry: registry, scope: scope,
                  previousLabel: previousLabel, binder: binder, source: source)
    }

    /// Per-sample shape of the first input (the only one of a one-input layer).
    public var inputShape: [Int?] { inputShapes.first ?? [] }
    /// Whether the first input carries a sequence mask.
    public var inputCarriesMask: Bool { inputMasks.first ?? false }
    /// Whether the first input holds strings.
    public var inputHoldsStrings: Bool { inputStrings.first ?? false }

    // MARK: - Call arguments

    /// Positional argument `index` of the call as Keras wrote it (a tensor, a list of them, or a
    /// plain value such as a number); nil when the call has no such argument. Reading a plain
    /// value marks it as used.
    public func callArgument(_ index: Int) -> CallArgument? {
        guard let node, index >= 0, index < node.args.count else { return nil }
        readPositionalArguments.insert(index)
        return node.args[index]
    }

    /// Keyword argument `name` of the call (`initial_state`, `value`, `use_causal_mask`...),
    /// nil when absent or null. Reading it marks it as handled: a call argument the factory never
    /// reads is refused by name, so a layer cannot silently ignore what changes its result.
    /// `mask` and `training` are the model's own and are never seen here.
    public func kwarg(_ name: String) -> CallArgument? {
        readKeywordArguments.insert(name)
        guard !LayerContext.modelKeywords.contains(name), let value = node?.kwarg(name) else { return nil }
        if case .value(.null) = value { return nil }
        return value
    }

    /// Keyword argument `name` as a boolean (attention's `use_causal_mask`); `defaultValue` when
    /// absent or null.
    public func kwargBool(_ name: String, default defaultValue: Bool) throws -> Bool {
        guard let argument = kwarg(name) else { return defaultValue }
        guard case let .value(.bool(flag)) = argument else {
            throw error("call argument '\(name)' must be true or false, found \(CallArgument.describe(argument))")
        }
        return flag
    }

    /// Keyword argument `name` as a number; nil when absent or null.
    public func kwargNumber(_ name: String) throws -> Double? {
        guard let argument = kwarg(name) else { return nil }
        guard let number = CallArgument.number(argument) else {
            throw error("call argument '\(name)' must be a number, found \(CallArgument.describe(argument))")
        }
        return number
    }

    /// Positional argument `index` as a number (the `2.0` of `x * 2.0`); nil when the call has
    /// no such argument.
    public func callArgumentNumber(_ index: Int) throws -> Double? {
        guard let argument = callArgument(index) else { return nil }
        guard let number = CallArgument.number(argument) else {
            throw error("positional call argument \(index) must be a number, found \(CallArgument.describe(argument))")
        }
        return number
    }

    /// The names of the call's keyword arguments, other than `mask` and `training`, that are not null.
    public var kwargNames: [String] {
        (node?.kwargs ?? []).filter { !LayerContext.modelKeywords.contains($0.0) && !LayerContext.isNull($0.1) }.map(\.0)
    }

    /// Where the tensors of keyword argument `name` sit among `inputShapes` and the inputs `call`
    /// receives (empty when the argument holds no tensor). Marks the argument as read.
    public func inputIndices(ofKeywordArgument name: String) -> [Int] {
        readKeywordArguments.insert(name)
        guard let node else { return [] }
        var position = node.args.reduce(0) { $0 + $1.tensors.count }
        for (key, value) in node.kwargs where !LayerContext.modelKeywords.contains(key) {
            let count = value.tensors.count
            if key == name { return Array(position..<(position + count)) }
            position += count
        }
        return []
    }

    /// Keyword arguments the model itself honours: never handed to a factory.
    static let modelKeywords: Set<String> = ["mask", "training"]

    static func isNull(_ argument: CallArgument) -> Bool {
        if case .value(.null) = argument { return true }
        return false
    }

    /// The call's non-null arguments the factory did not read: keyword arguments by name, and
    /// positional plain values (a positional tensor is an input, always used).
    func unreadArguments() -> [String] {
        guard let node else { return [] }
        var unread = kwargNames.filter { !readKeywordArguments.contains($0) }
        for (index, argument) in node.args.enumerated() where !readPositionalArguments.contains(index) {
            if case let .value(value) = argument, !value.isNull { unread.append("positional argument \(index) (\(value.brief()))") }
        }
        return unread
    }

    public var name: String { spec.name }
    public var config: JSONValue { spec.config }
    /// `layer 'conv2d' (Conv2D)`, or `operation 'add' (Add from keras.src.ops.numpy)`.
    public var label: String {
        operationModule.map { "operation '\(spec.name)' (\(spec.className) from \($0))" } ?? spec.label
    }
    /// The label with the layers this call reads, in a graph: `layer 'add_2' (Add) called on
    /// ['conv2d_5', 'batch_normalization_3']`; the label alone in a Sequential chain.
    public var callLabel: String {
        guard let callers else { return label }
        return "\(label) called on [\(callers.map { "'\($0)'" }.joined(separator: ", "))]"
    }

    // MARK: - Errors

    /// Where the layer, or one of its config keys, sits in the spec file.
    public func location(_ key: String? = nil) -> String {
        "\(source): \(spec.path).config" + (key.map { ".\($0)" } ?? "")
    }

    /// An error about this layer, optionally about one config key.
    public func error(_ message: String, key: String? = nil) -> NNError {
        NNError(.layer, key == nil ? "\(source): \(spec.path)" : location(key), "\(callLabel): \(message)")
    }

    /// The error for a required key the config lacks, whose reader could not say so itself
    /// (a lookup's `vocabulary` may come from the file's assets instead): noted as a required
    /// key of `kind`, so `nnbuild layers` lists it and its probe fills it.
    public func missingKey(_ key: String, kind: String, _ message: String) -> NNError {
        trace?.noteMissing(key, kind: kind)
        return error(message, key: key)
    }

    /// Fails unless the input rank is one of `ranks` (batch excluded), naming what came before.
    @discardableResult
    public func requireRank(_ ranks: Int..., meaning: String) throws -> [Int?] {
        guard ranks.contains(inputShape.count) else {
            let from = previousLabel.map { " from \($0)" } ?? ""
            throw error("expects input of shape \(meaning), found \(describeShape(inputShape))\(from)")
        }
        return inputShape
    }

    /// The size of input axis `axis` (negative counts from the end), which must be known.
    public func inputDimension(_ axis: Int) throws -> Int {
        let index = axis < 0 ? inputShape.count + axis : axis
        guard index >= 0, index < inputShape.count else {
            throw error("expects an input with an axis \(axis), found \(describeShape(inputShape))")
        }
        guard let size = inputShape[index] else {
            throw error("needs input axis \(index + 1) to have a known size, found \(describeShape(inputShape)); set it in the input shape")
        }
        return size
    }

    // MARK: - Config values

    /// The raw value of `key`, nil when absent. Recorded for `nnbuild layers NAME` like the typed
    /// accessors, as a key of free form (a factory parsing it itself, e.g. ZeroPadding's `padding`).
    /// `kind` and `defaultDescription` say what `nnbuild layers` shows for it.
    public func value(_ key: String, kind: String = "value", default defaultDescription: String = "null") -> JSONValue? {
        trace?.note(key, kind: kind, default: defaultDescription, present: has(key))
        return config[key]
    }

    /// Whether `key` is present and not null.
    public func has(_ key: String) -> Bool {
        guard let value = config[key] else { return false }
        return !value.isNull
    }

    /// An integer; `defaultValue` when absent or null (required when there is none).
    public func int(_ key: String, default defaultValue: Int? = nil) throws -> Int {
        trace?.note(key, kind: "integer", default: defaultValue.map { "\($0)" }, present: has(key))
        guard let raw = config[key], !raw.isNull else {
            if let defaultValue { return defaultValue }
            throw error("missing required key '\(key)'", key: key)
        }
        guard let number = integer(raw) else { throw error("'\(key)' must be an integer, found \(raw.brief())", key: key) }
        return number
    }

    /// A positive integer bounded by `maximum` (so absurd sizes fail before any allocation).
    public func positiveInt(_ key: String, default defaultValue: Int? = nil, maximum: Int = 1 << 28) throws -> Int {
        let number = try int(key, default: defaultValue)
        guard number > 0 else { throw error("'\(key)' must be a positive integer, found \(number)", key: key) }
        guard number <= maximum else { throw error("'\(key)' is \(number); the largest accepted is \(maximum)", key: key) }
        return number
    }

    /// An integer or null.
    public func optionalInt(_ key: String) throws -> Int? {
        trace?.note(key, kind: "integer or null", default: "null", present: has(key))
        guard has(key) else { return nil }
        return try int(key)
    }

    public func double(_ key: String, default defaultValue: Double? = nil) throws -> Double {
        trace?.note(key, kind: "number", default: defaultValue.map { "\($0)" }, present: has(key))
        guard let raw = config[key], !raw.isNull else {
            if let defaultValue { return defaultValue }
            throw error("missing required key '\(key)'", key: key)
        }
        switch raw {
        case let .int(number): return Double(number)
        case let .double(number): return number
        default: throw error("'\(key)' must be a number, found \(raw.brief())", key: key)
        }
    }

    public func float(_ key: String, default defaultValue: Float? = nil) throws -> Float {
        Float(try double(key, default: defaultValue.map(Double.init)))
    }

    /// A number or null.
    public func optionalDouble(_ key: String) throws -> Double? {
        trace?.note(key, kind: "number or null", default: "null", present: has(key))
        guard has(key) else { return nil }
        return try double(key)
    }

    public func bool(_ key: String, default defaultValue: Bool? = nil) throws -> Bool {
        trace?.note(key, kind: "boolean", default: defaultValue.map { "\($0)" }, present: has(key))
        guard let raw = config[key], !raw.isNull else {
            if let defaultValue { return defaultValue }
            throw error("missing required key '\(key)'", key: key)
        }
        guard case let .bool(flag) = raw else { throw error("'\(key)' must be true or false, found \(raw.brief())", key: key) }
        return flag
    }

    public func string(_ key: String, default defaultValue: String? = nil) throws -> String {
        trace?.note(key, kind: "string", default: defaultValue.map { "\"\($0)\"" }, present: has(key))
        guard let raw = config[key], !raw.isNull else {
            if let defaultValue { return defaultValue }
            throw error("missing required key '\(key)'", key: key)
        }
        guard case let .string(text) = raw else { throw error("'\(key)' must be a string, found \(raw.brief())", key: key) }
        return text
    }

    /// A string or null.
    public func optionalString(_ key: String) throws -> String? {
        trace?.note(key, kind: "string or null", default: "null", present: has(key))
        guard has(key) else { return nil }
        return try string(key)
    }

    /// A list of strings (a lookup's `vocabulary`).
    public func stringList(_ key: String) throws -> [String] {
        trace?.note(key, kind: "list of strings", default: nil, present: has(key))
        guard let raw = config[key], case let .array(items) = raw else {
            throw error("'\(key)' must be a list of strings, found \(config[key]?.brief() ?? "nothing")", key: key)
        }
        return try items.map { item in
            guard case let .string(text) = item else { throw error("'\(key)' must be a list of strings, found \(item.brief()) in it", key: key) }
            return text
        }
    }

    /// A string that must be one of `allowed` (compared case-insensitively, returned lowercased).
    public func choice(_ key: String, default defaultValue: String, allowed: [String]) throws -> String {
        trace?.note(key, kind: "one of " + allowed.joined(separator: ", "), default: "\"\(defaultValue)\"", present: has(key))
        let text = try string(key, default: defaultValue).lowercased()
        guard allowed.contains(text) else {
            throw error("'\(key)' must be one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", ")), found \"\(text)\"", key: key)
        }
        return text
    }

    /// `count` integers given as one integer (repeated) or a list of `count`, as Keras's
    /// `kernel_size`, `strides`, `pool_size` and `dilation_rate` are.
    public func ints(_ key: String, count: Int, default defaultValue: [Int]? = nil) throws -> [Int] {
        trace?.note(key, kind: "integer or list of \(count)", default: defaultValue.map { "\($0)" }, present: has(key))
        guard let raw = config[key], !raw.isNull else {
            if let defaultValue { return defaultValue }
            throw error("missing required key '\(key)'", key: key)
        }
        if let number = integer(raw) { return Array(repeating: number, count: count) }
        if case let .array(items) = raw, items.count == count {
            let numbers = items.compactMap(integer)
            if numbers.count == count { return numbers }
        }
        throw error("'\(key)' must be an integer or a list of \(count) integers, found \(raw.brief())", key: key)
    }

    /// Like `ints`, each value positive.
    public func positiveInts(_ key: String, count: Int, default defaultValue: [Int]? = nil, maximum: Int = 1 << 20) throws -> [Int] {
        let numbers = try ints(key, count: count, default: defaultValue)
        guard numbers.allSatisfy({ $0 > 0 && $0 <= maximum }) else {
            throw error("'\(key)' must hold positive integers (at most \(maximum)), found \(numbers)", key: key)
        }
        return numbers
    }

    /// A number or a list of numbers (an augmentation's `factor`, `value_range`), nil when null
    /// or absent.
    public func numbers(_ key: String) throws -> [Double]? {
        trace?.note(key, kind: "number or list of numbers", default: "null", present: has(key))
        guard let raw = config[key], !raw.isNull else { return nil }
        func number(_ value: JSONValue) -> Double? {
            switch value {
            case let .int(number): return Double(number)
            case let .double(number): return number
            default: return nil
            }
        }
        if let single = number(raw) { return [single] }
        if case let .array(items) = raw, !items.isEmpty, case let values = items.compactMap(number), values.count == items.count { return values }
        throw error("'\(key)' must be a number or a list of numbers, found \(raw.brief())", key: key)
    }

    /// A list of integers of any length (Reshape's `target_shape`).
    public func intList(_ key: String) throws -> [Int] {
        trace?.note(key, kind: "list of integers", default: nil, present: has(key))
        guard let raw = config[key], case let .array(items) = raw else {
            throw error("'\(key)' must be a list of integers, found \(config[key]?.brief() ?? "nothing")", key: key)
        }
        let numbers = items.compactMap(integer)
        guard numbers.count == items.count else {
            throw error("'\(key)' must be a list of integers, found \(raw.brief())", key: key)
        }
        return numbers
    }

    private func integer(_ value: JSONValue) -> Int? {
        switch value {
        case let .int(number) where number >= Int64(Int32.min) && number <= Int64(Int32.max): return Int(number)
        case let .double(number) where number.rounded() == number && abs(number) <= Double(Int32.max): return Int(number)
        default: return nil
        }
    }

    /// The name of an activation, from a string or a serialized Keras activation object.
    public func activationName(_ key: String = "activation", default defaultValue: String = "linear") throws -> String {
        trace?.note(key, kind: "activation name", default: "\"\(defaultValue)\"", present: has(key))
        guard let raw = config[key], !raw.isNull else { return defaultValue }
        switch raw {
        case let .string(name): return name
        case .object:
            if case let .string(name)? = raw["config"] { return name }
            if case let .string(name)? = raw["class_name"] { return name }
            fallthrough
        default:
            throw error("'\(key)' must name an activation, found \(raw.brief())", key: key)
        }
    }

    // MARK: - Weights

    /// The weight `variable` of this layer, which must have `shape`. Missing or mis-shaped
    /// weights are collected and reported together once the whole model is built. Declare a
    /// layer's weights in the order Keras creates its variables (trainable ones first): a `.keras`
    /// file numbers them that way (`vars/0`, `vars/1`, ...) and is bound by that position.
    public func weight(_ variable: String, shape: [Int]) throws -> Weight {
        try weight(variable, alsoNamed: [], shape: shape)
    }

    /// `weight(_:shape:)` for a variable that a store of named tensors may hold under other last
    /// names too, tried when none has `variable`'s: Keras 2 (tf-keras) named DepthwiseConv2D's
    /// kernel `depthwise_kernel`, where Keras 3 names it `kernel`. A `.keras` file numbers the
    /// variables instead, so there only the order counts.
    public func weight(_ variable: String, alsoNamed alternates: [String], shape: [Int]) throws -> Weight {
        trace?.weights.append((variable, shape))
        let shared = binder.boundWeight(scope: scope, variable: variable) != nil
        let weight = try binder.resolve(scope: scope, variable: variable, alternates: alternates, shape: shape, label: label,
                                        location: "\(source): \(spec.path)")
        if !shared { parameterCount += ShapeMath.saturatingProduct(shape) }
        return weight
    }

    /// True when the weights come from Keras's saving_lib (a `.keras` archive or `.weights.h5`),
    /// which stores what each layer's `save_own_variables` gives, not its variables as they are:
    /// a LoRA layer's kernel with the update merged in, and no LoRA factors.
    public var weightsSavedBySavingLib: Bool { binder.store?.isPositional == true }

    /// Declares a tensor this layer owns but does not use at inference (e.g. a seed state), so
    /// strict loading does not report it as unused.
    public func ignoreWeight(_ variable: String) {
        binder.ignore(scope: scope, variable: variable)
    }

    /// `weight(_:shape:)` for a variable a `.keras` file holds under its own name, not a position
    /// among the layer's variables: what a layer's `save_own_variables` writes by key
    /// (IndexLookup's `idf_weights`). It takes no position from the layer's other variables.
    public func weight(_ variable: String, savedUnderItsName: Bool, shape: [Int]) throws -> Weight {
        guard savedUnderItsName else { return try weight(variable, shape: shape) }
        trace?.weights.append((variable, shape))
        return try binder.resolve(scope: scope, variable: variable, alternates: [], savedUnderItsName: true, shape: shape, label: label,
                                  location: "\(source): \(spec.path)")
    }

    /// `ignoreWeight` for a variable saved under its own name, this layer's or, with `child`, a
    /// sub-layer's it declared (`SavedChildren.made`): a copy the layer does not need.
    public func ignoreWeight(_ variable: String, savedUnderItsName: Bool, ofChild child: String? = nil) {
        binder.ignore(scope: scope + (child.map { [$0] } ?? []), variable: variable, savedUnderItsName: savedUnderItsName)
    }

    /// Records a weight problem without stopping the build (it is reported with the others).
    public func reportWeightProblem(_ message: String) {
        binder.report(NNError(.weights, "\(source): \(spec.path)", "\(label): \(message)"))
    }

    // MARK: - Nested layers

    /// The nested layer spec at config key `key` (`{"class_name": ..., "config": {...}}`).
    public func nestedSpec(_ key: String) throws -> LayerSpec {
        trace?.note(key, kind: "nested layer", default: nil, present: has(key))
        guard let raw = config[key], !raw.isNull else { throw error("missing required key '\(key)' (a nested layer)", key: key) }
        return try nestedSpec(raw, key: key, path: "\(spec.path).config.\(key)")
    }

    /// The nested layer specs in the list at config key `key` (StackedRNNCells' `cells`).
    public func nestedSpecs(_ key: String) throws -> [LayerSpec] {
        trace?.note(key, kind: "list of nested layers", default: nil, present: has(key))
        guard let raw = config[key], !raw.isNull else { throw error("missing required key '\(key)' (a list of nested layers)", key: key) }
        guard case let .array(items) = raw else { throw error("'\(key)' must be a list of layer objects, found \(raw.brief())", key: key) }
        return try items.enumerated().map { index, item in
            try nestedSpec(item, key: "\(key)[\(index)]", path: "\(spec.path).config.\(key)[\(index)]")
        }
    }

    private func nestedSpec(_ raw: JSONValue, key: String, path: String) throws -> LayerSpec {
        guard case .object = raw, case let .string(className)? = raw["class_name"] else {
            throw error("'\(key)' must be a layer object with class_name and config, found \(raw.brief())", key: key)
        }
        let nestedConfig = raw["config"] ?? .object([])
        guard case .object = nestedConfig else { throw error("'\(key).config' must be an object", key: key) }
        var registered: String?
        if case let .string(value)? = raw["registered_name"] { registered = value }
        var name = DefaultNamer.snakeCase(className)
        if case let .string(value)? = nestedConfig["name"], !value.isEmpty { name = value }
        return LayerSpec(className: className, registeredName: registered, name: name, config: nestedConfig,
                         path: path, buildConfig: raw["build_config"])
    }

    /// Builds `nested` through the registry, as a sub-layer of this one (its weights are looked up
    /// under this layer's scope), for `inputShape` (this layer's input shape by default).
    /// Its input and output shapes are checked against `ShapeMath.sampleLimit`, as Model.build
    /// checks every top-level layer's.
    /// The nested layer must be a one-input `Layer`.
    public func buildNested(_ nested: LayerSpec, inputShape: [Int?]? = nil) throws -> any Layer {
        let shape = inputShape ?? self.inputShape
        if case let .failure(message) = ShapeMath.checkSample(shape, what: "its input") {
            throw NNError(.layer, "\(source): \(nested.path)", "\(nested.label): \(message.text)")
        }
        let context = LayerContext(spec: nested, inputShape: shape, inputCarriesMask: inputCarriesMask,
                                   registry: registry, scope: scope + [nested.name], previousLabel: previousLabel,
                                   binder: binder, source: source)
        guard let layer = try registry.make(context) as? any Layer else {
            throw NNError(.layer, "\(source): \(nested.path)", "\(nested.label): expected a layer of one input and one output inside \(label)")
        }
        if case let .failure(message) = ShapeMath.checkSample(layer.outputShape, what: "the output") {
            throw NNError(.layer, "\(source): \(nested.path)", "\(nested.label): \(message.text)")
        }
        parameterCount += context.parameterCount
        return layer
    }

    /// The asset `file` (e.g. `vocabulary.txt`) that a `.keras` archive holds for this layer,
    /// as the layer's `save_assets` wrote it; nil for a spec and weights, or without one.
    public func asset(_ file: String) -> [UInt8]? { binder.asset(scope: scope, file: file) }

    /// Builds this same layer, at the same place and weight scope, through the registry, as if
    /// the spec held `config` and the inputs had shapes `inputShapes`: how a layer is run as
    /// another form of itself (a `channels_first` layer as its `channels_last` form between two
    /// transposes). What the rebuilt layer declared and read counts as this layer's.
    public func rebuilt(config: JSONValue, inputShapes: [[Int?]]) throws -> any NodeLayer {
        var variant = spec
        variant.config = config
        let context = LayerContext(spec: variant, inputShapes: inputShapes, inputMasks: inputMasks, node: node, callers: callers,
                                   operationModule: operationModule, registry: registry, scope: scope,
                                   previousLabel: previousLabel, binder: binder, source: source)
        context.trace = trace
        let layer = try registry.make(context)
        parameterCount += context.parameterCount
        readKeywordArguments.formUnion(context.readKeywordArguments)
        readPositionalArguments.formUnion(context.readPositionalArguments)
        return layer
    }
}

extension CallArgument {
    static func number(_ argument: CallArgument) -> Double? {
        switch argument {
        case let .value(.int(value)): return Double(value)
        case let .value(.double(value)): return value
        default: return nil
        }
    }

    /// A short description for messages: `a tensor`, `a list of 2`, or the value itself.
    static func describe(_ argument: CallArgument) -> String {
        switch argument {
        case let .tensor(tensor): return "the tensor \(tensor.ref)"
        case let .list(items): return "a list of \(items.count)"
        case let .dict(members): return "a dict of \(members.count)"
        case let .value(value): return value.brief()
        }
    }
}
