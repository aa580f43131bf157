/// Keras 2's `TFOpLambda`: tf-keras records a TensorFlow function applied to Keras tensors
/// (`x + 3.0`, `tf.nn.relu6(x)`, MobileNetV3's hard sigmoid) as a layer whose config names the
/// function (`"function": "__operators__.add"`) and whose call is one entry
/// `[layer, node, tensor, {kwargs}]`: the first argument, then the others by TensorFlow's names,
/// a tensor among them written `[layer, node, tensor]`. A first argument that is a constant
/// (`3.0 - x`) is written `["_CONSTANT_VALUE", -1, 3.0, {kwargs}]`.
///
/// The element-wise functions become the Keras 3 operation that computes the same thing
/// (`Add`, `Relu6`...), with the arguments in its order, so the engine runs them as it runs
/// Keras 3's; any other function is refused, naming it.
extension GraphReader {
    /// What a TensorFlow function becomes: the Keras 3 operation's module and class, and whether
    /// it takes a second argument (`y`).
    static let kerasTwoFunctions: [String: (module: String, className: String, binary: Bool)] = {
        var table: [String: (module: String, className: String, binary: Bool)] = [:]
        let numpy = "keras.src.ops.numpy", nn = "keras.src.ops.nn"
        for (names, className) in [(["__operators__.add", "math.add"], "Add"), (["math.subtract"], "Subtract"),
                                   (["math.multiply"], "Multiply"), (["math.truediv", "math.divide"], "Divide"),
                                   (["math.maximum"], "Maximum"), (["math.minimum"], "Minimum"), (["math.pow"], "Power")] {
            for name in names { table[name] = (numpy, className, true) }
        }
        for (names, className) in [(["math.negative"], "Negative"), (["math.abs"], "Absolute"), (["math.square"], "Square"),
                                   (["math.sqrt"], "Sqrt"), (["math.exp"], "Exp"), (["math.tanh", "nn.tanh"], "Tanh")] {
            for name in names { table[name] = (numpy, className, false) }
        }
        for (names, className) in [(["nn.relu"], "Relu"), (["nn.relu6"], "Relu6"), (["math.sigmoid", "nn.sigmoid"], "Sigmoid"),
                                   (["nn.silu", "nn.swish"], "Silu"), (["math.softplus", "nn.softplus"], "Softplus")] {
            for name in names { table[name] = (nn, className, false) }
        }
        return table
    }()

    /// Whether `item` is a layer of Keras 2's TensorFlow-function kinds.
    static func isKerasTwoOperation(_ item: JSONValue) -> Bool {
        guard case let .string(className)? = item["class_name"] else { return false }
        return className == "TFOpLambda" || className == "SlicingOpLambda"
    }

    /// The function a `TFOpLambda` applies and what it becomes; refused unless it is element-wise.
    func kerasTwoOperation(_ spec: LayerSpec, path: String) throws -> (function: String, module: String, className: String, binary: Bool) {
        guard case let .string(function)? = spec.config["function"] else {
            throw fail("\(path).config.function", "expected the name of the TensorFlow function \(spec.label) applies, found \(spec.config["function"]?.brief() ?? "nothing")")
        }
        guard spec.className == "TFOpLambda", let operation = Self.kerasTwoFunctions[function] else {
            let known = Self.kerasTwoFunctions.keys.sorted().map { "tf.\($0)" }.joined(separator: ", ")
            throw fail("\(path).config.function", "\(spec.label) applies tf.\(function), which nnbuild does not run from a Keras 2 model; it runs \(known) (rebuilt in Keras 3, such calls save as keras.ops operations, which nnbuild runs more of)")
        }
        return (function, operation.module, operation.className, operation.binary)
    }

    /// One call of a `TFOpLambda`: its first argument, then `y` for a binary function, as the
    /// Keras 3 operation's positional arguments. `name` is dropped; any other keyword is refused.
    func readKerasTwoOperationCall(_ entry: JSONValue, layer: GraphLayer, function: String, binary: Bool, index: Int,
                                   path: String) throws -> NodeSpec {
        guard case let .array(parts) = entry, parts.count == 4, case let .object(members) = parts[3] else {
            throw fail(path, "expected [layer name, node index, tensor index, {kwargs}], the call of \(layer.label), found \(entry.brief())")
        }
        func argument(_ value: JSONValue, path: String) throws -> CallArgument {
            // A tensor is a [layer, node, tensor] triple; anything else is a constant.
            if case let .array(items) = value, items.count == 3, case .string = items[0], case .int = items[1], case .int = items[2] {
                return .tensor(KerasTensor(ref: try readTriple(items, path: path), path: path))
            }
            return .value(value)
        }
        var args: [CallArgument]
        if case .string("_CONSTANT_VALUE") = parts[0] {
            args = [.value(parts[2])]
        } else {
            args = [.tensor(KerasTensor(ref: try readTriple(Array(parts.prefix(3)), path: path), path: path))]
        }
        for (key, value) in members {
            let keyPath = "\(path)[3].\(key)"
            switch key {
            case "name": continue
            case "y" where binary: args.append(try argument(value, path: keyPath))
            default: throw fail(keyPath, "\(layer.label) (tf.\(function)) is called with '\(key)', which nnbuild does not take; expected \(binary ? "'y' and " : "")'name' only")
            }
        }
        guard args.count == (binary ? 2 : 1) else {
            throw fail("\(path)[3]", "\(layer.label) (tf.\(function)) needs its second argument 'y', found none")
        }
        guard args.contains(where: { if case .tensor = $0 { return true } else { return false } }) else {
            throw fail(path, "\(layer.label) (tf.\(function)) is called on constants alone; expected a tensor among its arguments")
        }
        return NodeSpec(layer: layer.name, index: index, args: args, kwargs: [], path: path)
    }
}
