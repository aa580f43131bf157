/// Keras 2's `TFOpLambda` and `SlicingOpLambda`: tf-keras records a TensorFlow function applied
/// to Keras tensors (`x + 3.0`, `tf.nn.relu6(x)`, `tf.reduce_mean(x, axis=1)`, `x[:, 1:]`) as a
/// layer whose config names the function (`"function": "__operators__.add"`) and whose call is
/// one entry `[layer, node, tensor, {kwargs}]`: the first argument, then the others by
/// TensorFlow's names, a tensor among them written `[layer, node, tensor]`. A first argument that
/// is a constant (`3.0 - x`) is written `["_CONSTANT_VALUE", -1, 3.0, {kwargs}]`; a first argument
/// that is a list of tensors (`tf.concat([a, b], axis=-1)`) as one such entry per tensor.
///
/// Each function listed becomes the Keras 3 operation that computes the same thing (`Add`,
/// `Mean`, `GetItem`...), its tensors and constants as that operation's positional arguments and
/// its settings (`axis`, `keepdims`...) in the layer's config under the operation's names, so
/// the engine runs them as it runs Keras 3's; any other function is refused, naming it.
extension GraphReader {
    /// What a TensorFlow function becomes.
    struct KerasTwoFunction: Sendable {
        var module: String
        var className: String
        /// Keywords that are the operation's further positional arguments, in order (`y`, `b`; a
        /// slice's `slice_spec`, its index).
        var positional: [String] = []
        /// Keywords that are the operation's settings: TensorFlow's name → the Keras 3 config key.
        var settings: [String: String] = [:]
        /// Keywords taken only at one of these values, each computing the same (transpose's
        /// `conjugate` false, argmax's `output_type` int32 or int64: nnbuild's outputs are floats).
        var fixed: [String: [JSONValue]] = [:]
        /// The first argument is a list of tensors (concat, stack).
        var list = false
        /// `x[slice_spec]` (a SlicingOpLambda): the index becomes the one Keras 3 writes.
        var slice = false
        /// A setting whose value Keras 3 writes otherwise, by its TensorFlow name (nil: refused).
        var convert: [String: @Sendable (JSONValue) -> JSONValue?] = [:]
        /// Settings, by the Keras 3 config key, where TensorFlow's default differs from Keras 3's
        /// (tf.nn.gelu is exact, ops.gelu approximate; tf.math.cumsum and argmax work along axis
        /// 0): written when a call does not give them.
        var defaults: [String: JSONValue] = [:]
    }

    static let kerasTwoFunctions: [String: KerasTwoFunction] = {
        var table: [String: KerasTwoFunction] = [:]
        let numpy = "keras.src.ops.numpy", nn = "keras.src.ops.nn"
        func add(_ names: [String], _ function: KerasTwoFunction) { for name in names { table[name] = function } }
        for (names, className) in [(["__operators__.add", "math.add"], "Add"), (["math.subtract"], "Subtract"),
                                   (["math.multiply"], "Multiply"), (["math.truediv", "math.divide"], "Divide"),
                                   (["math.maximum"], "Maximum"), (["math.minimum"], "Minimum"), (["math.pow"], "Power")] {
            add(names, KerasTwoFunction(module: numpy, className: className, positional: ["y"]))
        }
        // Comparisons and logic give 1 or 0, as Keras 3's do here (x > 0.5 is math.greater).
        for (names, className) in [(["math.greater", "greater"], "Greater"), (["math.greater_equal", "greater_equal"], "GreaterEqual"),
                                   (["math.less", "less"], "Less"), (["math.less_equal", "less_equal"], "LessEqual"),
                                   (["math.equal", "equal"], "Equal"), (["math.not_equal", "not_equal"], "NotEqual"),
                                   (["math.logical_and", "logical_and"], "LogicalAnd"), (["math.logical_or", "logical_or"], "LogicalOr"),
                                   (["math.logical_xor"], "LogicalXor"),
                                   (["math.floordiv", "compat.v1.floor_div"], "FloorDivide"), (["math.floormod", "math.mod"], "Mod")] {
            add(names, KerasTwoFunction(module: numpy, className: className, positional: ["y"]))
        }
        for (names, className) in [(["math.negative"], "Negative"), (["math.abs"], "Absolute"), (["math.square"], "Square"),
                                   (["math.sqrt"], "Sqrt"), (["math.exp"], "Exp"), (["math.tanh", "nn.tanh"], "Tanh"),
                                   (["math.log"], "Log"), (["math.reciprocal"], "Reciprocal"), (["math.log1p"], "Log1p"),
                                   (["math.expm1"], "Expm1"), (["math.sin"], "Sin"), (["math.cos"], "Cos"), (["math.tan"], "Tan"),
                                   (["math.atan"], "Arctan"), (["math.sinh"], "Sinh"), (["math.cosh"], "Cosh"), (["math.sign"], "Sign"),
                                   (["math.floor"], "Floor"), (["math.ceil"], "Ceil"), (["math.round"], "Round"),
                                   (["math.logical_not", "logical_not"], "LogicalNot")] {
            add(names, KerasTwoFunction(module: numpy, className: className))
        }
        for (names, className) in [(["math.rsqrt"], "Rsqrt"), (["math.erf"], "Erf")] {
            add(names, KerasTwoFunction(module: "keras.src.ops.math", className: className))
        }
        for (names, className) in [(["nn.relu"], "Relu"), (["nn.relu6"], "Relu6"), (["math.sigmoid", "nn.sigmoid"], "Sigmoid"),
                                   (["nn.silu", "nn.swish"], "Silu"), (["math.softplus", "nn.softplus"], "Softplus"),
                                   (["nn.elu"], "Elu"), (["nn.selu"], "Selu"), (["nn.softsign", "math.softsign"], "Softsign"),
                                   (["math.log_sigmoid"], "LogSigmoid")] {
            add(names, KerasTwoFunction(module: nn, className: className))
        }
        add(["nn.gelu"], KerasTwoFunction(module: nn, className: "Gelu", settings: ["approximate": "approximate"],
                                          defaults: ["approximate": .bool(false)]))
        add(["nn.leaky_relu"], KerasTwoFunction(module: nn, className: "LeakyRelu", settings: ["alpha": "negative_slope"]))
        let reduction = ["axis": "axis", "keepdims": "keepdims"]
        for (name, className) in [("mean", "Mean"), ("sum", "Sum"), ("max", "Max"), ("min", "Min"), ("prod", "Prod"), ("any", "Any"),
                                  ("all", "All"), ("variance", "Var"), ("std", "Std"), ("logsumexp", "Logsumexp")] {
            add(["math.reduce_\(name)", "reduce_\(name)"], KerasTwoFunction(module: numpy, className: className, settings: reduction))
        }
        for (name, className) in [("argmax", "Argmax"), ("argmin", "Argmin")] {
            add(["math.\(name)", name], KerasTwoFunction(module: numpy, className: className, settings: ["axis": "axis"],
                                                         fixed: ["output_type": [.string("int64"), .string("int32")]], defaults: ["axis": .int(0)]))
        }
        add(["math.cumsum", "cumsum"], KerasTwoFunction(module: numpy, className: "Cumsum", settings: ["axis": "axis"],
                                                        fixed: ["exclusive": [.bool(false)], "reverse": [.bool(false)]], defaults: ["axis": .int(0)]))
        add(["nn.softmax", "math.softmax"], KerasTwoFunction(module: nn, className: "Softmax", settings: ["axis": "axis"]))
        add(["nn.log_softmax", "math.log_softmax"], KerasTwoFunction(module: nn, className: "LogSoftmax", settings: ["axis": "axis"]))
        // A bias along the last axis: channels last (NHWC, or the default).
        add(["nn.bias_add"], KerasTwoFunction(module: numpy, className: "Add", positional: ["bias"],
                                              fixed: ["data_format": [.null, .string("NHWC"), .string("NWC"), .string("NDHWC"), .string("N...C")]]))
        // x · rsqrt(max(Σ x², ε)) is Keras 3's x · min(rsqrt(Σ x²), 1 / √ε); tf's axis defaults to
        // None (every axis, then refused), its epsilon to 1e-12.
        add(["math.l2_normalize", "linalg.l2_normalize", "nn.l2_normalize"],
            KerasTwoFunction(module: nn, className: "Normalize", settings: ["axis": "axis", "epsilon": "epsilon"],
                             convert: ["epsilon": { value in
                                 switch value {
                                 case let .double(e) where e > 0 && e.isFinite: return .double(e.squareRoot())
                                 case let .int(e) where e > 0: return .double(Double(e).squareRoot())
                                 default: return nil
                                 }
                             }], defaults: ["axis": .null, "epsilon": .double(1e-6)]))
        add(["where"], KerasTwoFunction(module: numpy, className: "Where", positional: ["x", "y"]))
        add(["clip_by_value"], KerasTwoFunction(module: numpy, className: "Clip",
                                                settings: ["clip_value_min": "x_min", "clip_value_max": "x_max"]))
        add(["cast", "dtypes.cast"], KerasTwoFunction(module: "keras.src.ops.core", className: "Cast", settings: ["dtype": "dtype"]))
        add(["tile"], KerasTwoFunction(module: numpy, className: "Tile", settings: ["multiples": "repeats"]))
        add(["repeat"], KerasTwoFunction(module: numpy, className: "Repeat", settings: ["repeats": "repeats", "axis": "axis"]))
        add(["reshape"], KerasTwoFunction(module: numpy, className: "Reshape", settings: ["shape": "newshape"]))
        add(["expand_dims"], KerasTwoFunction(module: numpy, className: "ExpandDims", settings: ["axis": "axis"]))
        add(["squeeze", "compat.v1.squeeze"], KerasTwoFunction(module: numpy, className: "Squeeze", settings: ["axis": "axis"]))
        add(["transpose", "compat.v1.transpose"],
            KerasTwoFunction(module: numpy, className: "Transpose", settings: ["perm": "axes"], fixed: ["conjugate": [.bool(false)]]))
        add(["concat"], KerasTwoFunction(module: numpy, className: "Concatenate", settings: ["axis": "axis"], list: true))
        add(["stack"], KerasTwoFunction(module: numpy, className: "Stack", settings: ["axis": "axis"], list: true))
        // (The transposes are settings of nnbuild's Matmul only: Keras 3's ops.matmul has none.)
        add(["linalg.matmul", "matmul"],
            KerasTwoFunction(module: numpy, className: "Matmul", positional: ["b"], settings: ["transpose_a": "transpose_a", "transpose_b": "transpose_b"],
                             fixed: ["adjoint_a": [.bool(false)], "adjoint_b": [.bool(false)]]))
        add(["__operators__.getitem"], KerasTwoFunction(module: numpy, className: "GetItem", positional: ["slice_spec"], slice: true))
        add(["image.resize"], KerasTwoFunction(module: "keras.src.ops.image", className: "Resize",
                                               settings: ["size": "size", "method": "interpolation", "antialias": "antialias"],
                                               fixed: ["preserve_aspect_ratio": [.bool(false)]]))
        add(["gather", "compat.v1.gather"], KerasTwoFunction(module: numpy, className: "Take", positional: ["indices"],
                                                             settings: ["axis": "axis"], fixed: ["batch_dims": [.int(0)], "validate_indices": [.null]]))
        // tf.split's sizes are where Keras 3's split cuts: [2, 3, 1] is [2, 5] (a last size of -1, the
        // rest, needs no cut; one elsewhere, whose cut depends on the axis's length, is refused).
        add(["split"], KerasTwoFunction(module: numpy, className: "Split", settings: ["num_or_size_splits": "indices_or_sections", "axis": "axis"],
                                        convert: ["num_or_size_splits": { value in
                                            switch value {
                                            case .int: return value
                                            case let .array(sizes):
                                                var at: Int64 = 0, cuts: [JSONValue] = []
                                                for size in sizes.dropLast() {
                                                    guard case let .int(length) = size, length >= 0 else { return nil }
                                                    let (sum, overflow) = at.addingReportingOverflow(length)
                                                    guard !overflow else { return nil }
                                                    at = sum
                                                    cuts.append(.int(at))
                                                }
                                                return .array(cuts)
                                            default: return nil
                                            }
                                        }]))
        return table
    }()

    /// Whether `item` is a layer of Keras 2's TensorFlow-function kinds.
    static func isKerasTwoOperation(_ item: JSONValue) -> Bool {
        guard case let .string(className)? = item["class_name"] else { return false }
        return className == "TFOpLambda" || className == "SlicingOpLambda"
    }

    /// The function the layer `item` applies, and `spec` as the Keras 3 operation it becomes: its
    /// class, and its calls' settings in its config (every call must give the same). Refused
    /// unless the function is listed.
    func kerasTwoOperation(_ spec: inout LayerSpec, item: JSONValue, path: String) throws -> (function: String, operation: KerasTwoFunction) {
        guard case let .string(function)? = spec.config["function"] else {
            throw fail("\(path).config.function", "expected the name of the TensorFlow function \(spec.label) applies, found \(spec.config["function"]?.brief() ?? "nothing")")
        }
        guard let operation = Self.kerasTwoFunctions[function], operation.slice == (spec.className == "SlicingOpLambda") else {
            let known = Self.kerasTwoFunctions.keys.sorted().map { "tf.\($0)" }.joined(separator: ", ")
            throw fail("\(path).config.function", "\(spec.label) applies tf.\(function), which nnbuild does not run from a Keras 2 model; it runs \(known) (rebuilt in Keras 3, such calls save as keras.ops operations, which nnbuild runs more of)")
        }
        var settings: [String: JSONValue]?
        if case let .array(calls)? = item["inbound_nodes"] {
            for (index, call) in calls.enumerated() {
                var these: [String: JSONValue] = [:]
                for (key, value) in kerasTwoKeywords(call) {
                    guard let name = operation.settings[key] else { continue }
                    if let convert = operation.convert[key] {
                        guard let converted = convert(value) else {
                            throw fail("\(path).inbound_nodes[\(index)]", "\(spec.label) (tf.\(function)) is called with \(key)=\(value.brief()), which nnbuild does not take")
                        }
                        these[name] = converted
                    } else {
                        these[name] = value
                    }
                }
                if let settings, settings != these {
                    throw fail("\(path).inbound_nodes[\(index)]", "\(spec.label) (tf.\(function)) is called with other settings than in its first call (\(these) against \(settings)); expected the same in every call")
                }
                settings = these
            }
        }
        if case var .object(members) = spec.config {
            let given = (settings ?? [:]).merging(operation.defaults) { given, _ in given }
            for (key, value) in given.sorted(by: { $0.key < $1.key }) {
                members.removeAll { $0.0 == key }
                members.append((key, value))
            }
            spec.config = .object(members)
        }
        spec.className = operation.className
        return (function, operation)
    }

    /// The keyword arguments of one call entry: the flat `[layer, node, tensor, {kwargs}]`, or
    /// the first of a list of them.
    func kerasTwoKeywords(_ call: JSONValue) -> [(String, JSONValue)] {
        guard case let .array(parts) = call else { return [] }
        if case let .array(first)? = parts.first { return kerasTwoKeywords(.array(first)) }
        guard parts.count == 4, case let .object(members) = parts[3] else { return [] }
        return members
    }

    /// One call of a TensorFlow-function layer as its Keras 3 operation's call: the first
    /// argument (a tensor, a constant, or the list of tensors), then the keywords that are
    /// positional (`y`) or the index (`slice_spec`). Settings went to the config; `name` is
    /// dropped; any other keyword, or a fixed one at another value, is refused.
    func readKerasTwoOperationCall(_ entry: JSONValue, layer: GraphLayer, function: String, operation: KerasTwoFunction,
                                   index: Int, path: String) throws -> NodeSpec {
        let what = "\(layer.label) (tf.\(function))"
        guard case let .array(parts) = entry, !parts.isEmpty else {
            throw fail(path, "expected [layer name, node index, tensor index, {kwargs}], the call of \(what), found \(entry.brief())")
        }
        func tensor(_ parts: [JSONValue], path: String) throws -> CallArgument {
            .tensor(KerasTensor(ref: try readTriple(Array(parts.prefix(3)), path: path), path: path))
        }
        var args: [CallArgument]
        let members: [(String, JSONValue)]
        if case .array = parts[0] {
            // A list of tensors: one entry each, the keywords repeated in each, as Keras 2 writes
            // any layer's call on several tensors.
            guard operation.list else { throw fail(path, "\(what) is called on a list of tensors; it takes one") }
            let call = try readKeras2Call(parts, layer: layer, index: index, path: path)
            args = [.list(call.args.flatMap(\.tensors).map { .tensor($0) })]
            members = kerasTwoKeywords(entry)
        } else {
            guard parts.count == 4, case let .object(keywords) = parts[3] else {
                throw fail(path, "expected [layer name, node index, tensor index, {kwargs}], the call of \(what), found \(entry.brief())")
            }
            guard !operation.list else { throw fail(path, "\(what) takes a list of tensors, called on one") }
            if case .string("_CONSTANT_VALUE") = parts[0] {
                args = [.value(parts[2])]
            } else {
                args = [try tensor(parts, path: path)]
            }
            members = keywords
        }
        func argument(_ value: JSONValue, path: String) throws -> CallArgument {
            // A tensor is a [layer, node, tensor] triple; anything else is a constant.
            if case let .array(items) = value, items.count == 3, case .string = items[0], case .int = items[1], case .int = items[2] {
                return try tensor(items, path: path)
            }
            return .value(value)
        }
        var positional: [String: CallArgument] = [:]
        for (key, value) in members {
            let keyPath = "\(path)[3].\(key)"
            if key == "name" || operation.settings[key] != nil { continue }
            if let wanted = operation.fixed[key] {
                guard wanted.contains(value) else {
                    throw fail(keyPath, "\(what) is called with \(key)=\(value.brief()); nnbuild takes it only at \(wanted.map { $0.brief() }.joined(separator: " or "))")
                }
                continue
            }
            guard operation.positional.contains(key) else {
                let taken = operation.positional + operation.settings.keys.sorted() + operation.fixed.keys.sorted() + ["name"]
                throw fail(keyPath, "\(what) is called with '\(key)', which nnbuild does not take; expected \(taken.map { "'\($0)'" }.joined(separator: ", "))")
            }
            positional[key] = operation.slice ? try kerasThreeIndex(value, path: keyPath, what: what) : try argument(value, path: keyPath)
        }
        for key in operation.positional {
            guard let value = positional[key] else { throw fail("\(path)[3]", "\(what) needs its argument '\(key)', found none") }
            args.append(value)
        }
        guard args.contains(where: { !$0.tensors.isEmpty }) else {
            throw fail(path, "\(what) is called on constants alone; expected a tensor among its arguments")
        }
        return NodeSpec(layer: layer.name, index: index, args: args, kwargs: [], path: path)
    }

    /// TensorFlow's `slice_spec` as the index Keras 3 writes: each slice `{start, stop, step}` as
    /// a `__slice__`, integers and None (a new axis) as they are; one item alone as a list of one.
    func kerasThreeIndex(_ spec: JSONValue, path: String, what: String) throws -> CallArgument {
        func item(_ value: JSONValue, path: String) throws -> JSONValue {
            switch value {
            case .int, .null: return value
            case let .object(members) where members.allSatisfy({ ["start", "stop", "step"].contains($0.0) }):
                return .object([("class_name", .string("__slice__")), ("config", .object(members))])
            default: throw fail(path, "\(what) indexes with \(value.brief()); nnbuild takes integers, slices and None")
            }
        }
        if case let .array(items) = spec {
            return .list(try items.enumerated().map { .value(try item($1, path: "\(path)[\($0)]")) })
        }
        return .list([.value(try item(spec, path: path))])
    }
}
