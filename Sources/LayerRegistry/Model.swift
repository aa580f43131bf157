import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ModelSpec

/// A built model: a graph of layer calls in topological order, each made by its registered
/// factory. A Sequential model is the special case of a chain; there is one engine and no
/// per-architecture model class: the spec alone decides what runs.
///
/// Nested models are flattened into the graph: their layers' calls become nodes whose weights are
/// looked up under the nested model's scope. Values (the tensors flowing between nodes) are
/// numbered; the model's inputs are values `0..<inputs.count`.
public struct Model: Sendable {
    /// One call of a layer with what the summary shows about it.
    public struct Node: Sendable {
        public let spec: LayerSpec
        public let layer: any NodeLayer
        /// Per-sample shapes of the node's inputs, and of its first input.
        public let inputShapes: [[Int?]]
        public var inputShape: [Int?] { inputShapes.first ?? [] }
        /// Per-sample shapes of its outputs, and of its first output.
        public let outputShapes: [[Int?]]
        public var outputShape: [Int?] { outputShapes.first ?? [] }
        /// Parameters bound at this node: 0 for a later call of a shared layer.
        public let parameterCount: Int
        /// Whether each output carries a sequence mask.
        public let outputMasks: [Bool]
        /// Whether the first output carries a sequence mask.
        public var carriesMask: Bool { outputMasks.first ?? false }
        /// The values the node reads, in input order.
        public let inputs: [Int]
        /// For each input, the value given as its explicit `mask` call argument (nil: the mask
        /// propagated with the input).
        public let maskInputs: [Int?]
        /// For each input, whether an earlier call that clears its inputs' masks
        /// (`InputMaskClearing`, Keras's MultiHeadAttention) read it, so this node sees it unmasked.
        public let unmaskedInputs: [Bool]
        /// The values the node produces.
        public let outputs: [Int]
        /// Which call of the layer this is (its node index).
        public let call: Int
        /// The enclosing nested models' names, outermost first (empty at the top level).
        public let scope: [String]
        /// `layer 'add' (Add)`, with what it is called on in a graph.
        public let label: String
    }

    /// What `predict` runs: one layer standing for `nodes` (more than one where a layer fused
    /// the nodes after it, see `FusesSuccessor`).
    public struct Step: Sendable {
        public let layer: any NodeLayer
        /// The nodes it stands for, in the order they compute (the first where the step runs).
        public let nodes: [Int]
        /// The values the step reads, in the order its layer takes them: the first node's inputs,
        /// then each absorbed node's inputs other than the value fused away.
        public let inputs: [Int]
        /// For each input, the value given as its explicit `mask` call argument (nil: the mask
        /// propagated with the input).
        public let maskInputs: [Int?]
        /// The layer, when it can write an output over an input's storage.
        let reusing: (any ReusesInputStorage)?

        init(layer: any NodeLayer, nodes: [Int], inputs: [Int], maskInputs: [Int?]) {
            self.layer = layer
            self.nodes = nodes
            self.inputs = inputs
            self.maskInputs = maskInputs
            reusing = layer as? any ReusesInputStorage
        }
    }

    /// A named model input or output.
    public struct Port: Sendable {
        /// The public name: the dict key when Keras wrote a dict, else the layer's name (with
        /// `:k` for its k-th output tensor when k > 0).
        public let name: String
        /// Per-sample shape (batch axis excluded).
        public let shape: [Int?]
        /// The dtype the spec names (`float32` unless it says otherwise, `string` for text, whose
        /// batches hold `Tensor.strings`; outputs are float32).
        public let dtype: String
        /// Whether the port takes strings.
        public var takesStrings: Bool { dtype == Port.stringDType }
        /// The dtype Keras writes for a string input.
        public static let stringDType = "string"
        /// The value the port reads or writes.
        public let value: Int
    }

    public let description: ModelDescription
    public let nodes: [Node]
    public let steps: [Step]
    /// The model's inputs and outputs, in `config.input_layers` / `config.output_layers` order.
    public let inputs: [Port]
    public let outputs: [Port]
    /// The settings the model was built with, which `predict` uses unless given others.
    public let settings: ExecutionSettings
    /// How many values the graph has, and for each how many times steps read it (model outputs
    /// count once more, so they are never freed).
    let valueCount: Int
    let uses: [Int]
    /// Each value's per-sample shape and whether it carries a mask.
    public let valueShapes: [[Int?]]
    public let valueMasks: [Bool]
    /// The values each call of the top-level graph produces (a nested model's call included),
    /// for a summary by layer as Keras prints it.
    public let callOutputs: [NodeKey: [Int]]
    /// Value → the name of the node producing it and its position, for the summary
    /// (`conv2d[0][0]`).
    let producers: [String]
    /// Every weight the layers bound, once each, by its Keras variable path (the enclosing
    /// scopes, the layer, its variable) in the order the layers declared them: what
    /// `nnbuild convert` writes.
    public internal(set) var variables: [(path: String, weight: Weight)] = []
    /// The memory walks that passed, shared by the model's copies (`planMemory`).
    let memoryPlans = MemoryPlans()

    public var inputShape: [Int?] { inputs.first?.shape ?? description.inputShape }
    public var outputShape: [Int?] { outputs.first?.shape ?? inputShape }
    /// Parameters of the model, each weight counted once however many calls share it.
    public var parameterCount: Int { nodes.reduce(0) { $0 + $1.parameterCount } }

    /// Builds the model `description` describes (its `graph`). See `build(_:registry:weights:fuse:settings:)`
    /// for graphs.
    public static func build(_ description: ModelDescription, registry: LayerRegistry, weights: WeightStore? = nil,
                             fuse: Bool = true, settings: ExecutionSettings = .default) throws -> Model {
        try build(description.graph, description: description, registry: registry, weights: weights, fuse: fuse, settings: settings)
    }

    /// Builds every call of the graph through `registry`, binding weights from `weights` when
    /// given (without weights the model has zeros, enough to check shapes). Weight problems are
    /// collected and thrown together as `NNErrors`; a config problem stops the build at that
    /// call. With `fuse` (the default), a node runs its successor in the same pass when it can
    /// (`FusesSuccessor`) and the successor is the single reader of its output, which is not a model
    /// output.
    ///
    /// Every node's input and output shapes are checked against `ShapeMath.sampleLimit`, and what
    /// each node allocates for one sample against `settings.memoryLimit`, so a factory never sees
    /// a shape whose element count overflows and a model that cannot run is refused here.
    public static func build(_ graph: GraphSpec, registry: LayerRegistry, weights: WeightStore? = nil,
                             settings: ExecutionSettings = .default, fuse: Bool = true) throws -> Model {
        try build(graph, description: nil, registry: registry, weights: weights, fuse: fuse, settings: settings)
    }

    static func build(_ graph: GraphSpec, description: ModelDescription?, registry: LayerRegistry, weights: WeightStore?,
                      fuse: Bool, settings: ExecutionSettings) throws -> Model {
        let builder = GraphBuilder(registry: registry, binder: try WeightBinder(store: weights, graph: graph, registry: registry), settings: settings, source: graph.source)
        var inputs: [Port] = []
        for (position, ref) in graph.inputs.enumerated() {
            guard let layer = graph.layer(named: ref.layer) else {
                throw NNError(.spec, graph.source, "model input '\(ref.layer)' is not a layer of the model")
            }
            var (shape, dtype) = try ModelDescription.inputSignature(of: layer.spec, source: graph.source)
            if graph.inputs.count == 1, let description { (shape, dtype) = (description.inputShape, description.inputDType) }
            let value = builder.newValue(shape: shape, masked: false, producer: ref.layer)
            if dtype == Port.stringDType { builder.stringValues.insert(value) }
            inputs.append(Port(name: graph.inputNames[position], shape: shape, dtype: dtype, value: value))
        }
        let outputValues: [Int]
        do {
            outputValues = try builder.expand(graph, scope: [], inputs: inputs.map(\.value))
        } catch let error as NNError where !builder.binder.problems.isEmpty && error.kind == .layer {
            throw NNErrors(builder.binder.problems + [error])
        }
        let problems = builder.binder.problems + builder.binder.unusedProblems()
        if !problems.isEmpty { throw NNErrors(problems) }
        let outputs = outputValues.enumerated().map { position, value in
            Port(name: graph.outputNames[position], shape: builder.shapes[value], dtype: "float32", value: value)
        }
        let nodes = builder.nodes
        let steps = Model.largestFirst(Model.steps(nodes, outputs: Set(outputValues), fuse: fuse), nodes: nodes,
                                       shapes: builder.shapes, masked: builder.masks)
        var uses = [Int](repeating: 0, count: builder.shapes.count)
        for step in steps {
            for value in step.inputs + step.maskInputs.compactMap({ $0 }) { uses[value] += 1 }
        }
        for value in outputValues { uses[value] += 1 }
        let description = try description ?? ModelDescription(graph: graph)
        var model = Model(description: description, nodes: nodes, steps: steps, inputs: inputs, outputs: outputs, settings: settings,
                          valueCount: builder.shapes.count, uses: uses, valueShapes: builder.shapes, valueMasks: builder.masks,
                          callOutputs: builder.callOutputs, producers: builder.producers)
        model.variables = builder.binder.variables
        return model
    }

    /// `steps` with each pair of adjacent steps that read a common value, and neither anything the
    /// other makes, in decreasing order of the elements they make per sample (known sizes only):
    /// the larger value then takes the space the last large value freed before smaller ones split
    /// it. ResNet50's first block at batch 1 made its 0.77 MiB middle value, then its 3.06 MiB
    /// shortcut, which found conv1's freed 3.06 MiB split and took new heap above it. Steps that
    /// clear masks (`InputMaskClearing`) or read a masked value keep Keras's order, which decides
    /// what a reader sees.
    static func largestFirst(_ steps: [Step], nodes: [Node], shapes: [[Int?]], masked: [Bool]) -> [Step] {
        func made(_ step: Step) -> Int? {
            var total = 0
            for value in nodes[step.nodes[step.nodes.count - 1]].outputs {
                guard value < shapes.count, shapes[value].allSatisfy({ $0 != nil }) else { return nil }
                total = ShapeMath.saturatingSum(total, ShapeMath.saturatingProduct(shapes[value].map { $0 ?? 0 }))
            }
            return total
        }
        func movable(_ step: Step) -> Bool {
            !(step.layer is any InputMaskClearing) && step.maskInputs.allSatisfy({ $0 == nil })
                && step.inputs.allSatisfy({ $0 < masked.count && !masked[$0] })
        }
        var order = steps
        var index = 0
        while index + 1 < order.count {
            let first = order[index], second = order[index + 1]
            let firstMakes = Set(first.nodes.flatMap { nodes[$0].outputs })
            if movable(first), movable(second), !Set(first.inputs).isDisjoint(with: second.inputs),
               Set(second.inputs).isDisjoint(with: firstMakes), let a = made(first), let b = made(second), b > a {
                order.swapAt(index, index + 1)
            }
            index += 1
        }
        return order
    }

    /// Groups nodes into steps (with `fuse`), ggml's rule for a DAG: a step absorbs a node N when
    /// the step's layer fuses with it (`FusesSuccessor`), the step's last node has one output,
    /// N is that output's only reader and reads it once, the output is not a model output (a value
    /// another node or the caller needs is never fused away), and N's other inputs are ready
    /// (produced before the step's first node) and carry no mask. The step runs where its first
    /// node stands and also takes N's other inputs (`Step.inputs`); N need not follow its
    /// producer in node order, where a parallel branch (a ResNet shortcut) may sit between them.
    static func steps(_ nodes: [Node], outputs: Set<Int>, fuse: Bool) -> [Step] {
        var readers: [Int: [Int]] = [:]
        var producer: [Int: Int] = [:]
        var masked: Set<Int> = []
        for (index, node) in nodes.enumerated() {
            for value in node.inputs + node.maskInputs.compactMap({ $0 }) { readers[value, default: []].append(index) }
            for (value, mask) in zip(node.outputs, node.outputMasks) {
                producer[value] = index
                if mask { masked.insert(value) }
            }
        }
        var steps: [Step] = []
        var absorbed = Set<Int>()
        for index in nodes.indices where !absorbed.contains(index) {
            var layer = nodes[index].layer
            var inputs = nodes[index].inputs, maskInputs = nodes[index].maskInputs
            var members = [index]
            while fuse, let fusing = layer as? any FusesSuccessor, let tail = members.last {
                let produced = nodes[tail].outputs
                guard produced.count == 1, let value = produced.first, !outputs.contains(value),
                      let reading = readers[value], reading.count == 1, let successor = reading.first, successor > tail else { break }
                let next = nodes[successor]
                guard let position = next.inputs.firstIndex(of: value), next.maskInputs.allSatisfy({ $0 == nil }) else { break }
                let others = next.inputs.enumerated().filter { $0.offset != position }.map(\.element)
                let ready = others.allSatisfy { other in (producer[other].map { $0 < index } ?? true) && !masked.contains(other) }
                guard ready, let fused = fusing.fusing(next.layer, reading: position) else { break }
                layer = fused
                inputs += others
                maskInputs += others.map { _ in nil }
                members.append(successor)
                absorbed.insert(successor)
            }
            steps.append(Step(layer: layer, nodes: members, inputs: inputs, maskInputs: maskInputs))
        }
        return steps
    }

    // MARK: - Running

    /// Runs the whole model on one batch per input (in `inputs` order), each of the input's
    /// per-sample shape with the batch first, within the memory limit of `settings` (the model's
    /// own by default). Returns one tensor per output, in `outputs` order. Each intermediate
    /// value is freed after the last step that reads it.
    public func predict(_ batches: [Tensor], settings: ExecutionSettings? = nil) throws -> [Tensor] {
        try execute(batches, settings: settings)
    }

    /// Runs the model on batches keyed by input name; returns outputs keyed by output name.
    public func predict(_ batches: [String: Tensor], settings: ExecutionSettings? = nil) throws -> [String: Tensor] {
        let known = Set(inputs.map(\.name))
        if let stray = batches.keys.sorted().first(where: { !known.contains($0) }) {
            throw NNError(.input, stray, "the model has no input named '\(stray)'; its inputs are \(inputs.map { "'\($0.name)'" }.joined(separator: ", "))")
        }
        let ordered = try inputs.map { port -> Tensor in
            guard let batch = batches[port.name] else {
                throw NNError(.input, port.name, "no batch given for the model's input '\(port.name)' of shape \(describeShape(port.shape))")
            }
            return batch
        }
        let results = try execute(ordered, settings: settings)
        var named: [String: Tensor] = [:]
        for (port, result) in zip(outputs, results) { named[port.name] = result }
        return named
    }

    /// Runs a model of one input and one output on a batch whose per-sample shape matches
    /// `inputShape`, within the memory limit of `settings` (the model's own by default).
    public func predict(_ input: Tensor, settings: ExecutionSettings? = nil) throws -> Tensor {
        try requireSingleInputOutput()
        let results = try execute([input], settings: settings)
        guard let result = results.first else { throw NNError(.input, "input", "the model produced no output") }
        return result
    }

    /// Runs the model like `predict`, timing each step (seconds per step, in order).
    public func profile(_ input: Tensor, settings: ExecutionSettings? = nil) throws -> [Double] {
        var times = [Double](repeating: 0, count: steps.count)
        _ = try execute([input], settings: settings, timing: { step, seconds in times[step] = seconds })
        return times
    }

    /// Fails unless the model has one input and one output (what the single-tensor `predict` needs).
    public func requireSingleInputOutput() throws {
        guard inputs.count == 1, outputs.count == 1 else {
            throw NNError(.input, "input", "the model has \(inputs.count) input(s) (\(inputs.map { "'\($0.name)'" }.joined(separator: ", "))) and \(outputs.count) output(s) (\(outputs.map { "'\($0.name)'" }.joined(separator: ", "))); give one batch per input with predict([Tensor]) or predict([String: Tensor])")
        }
    }

    /// The run itself: `observe` is told after each step how many values are held (inputs and
    /// results not yet freed), `timing` how long the step took.
    func execute(_ batches: [Tensor], settings: ExecutionSettings?, observe: ((Int, Int) -> Void)? = nil,
                 timing: ((Int, Double) -> Void)? = nil) throws -> [Tensor] {
        try KernelOptions.$current.withValue(KernelOptions(settings ?? self.settings)) {
            try executeSteps(batches, settings: settings, observe: observe, timing: timing)
        }
    }

    private func executeSteps(_ batches: [Tensor], settings: ExecutionSettings?, observe: ((Int, Int) -> Void)?,
                              timing: ((Int, Double) -> Void)?) throws -> [Tensor] {
        try checkInputs(batches)
        try planMemory(batches.map(\.shape), settings)
        var values = [Tensor?](repeating: nil, count: valueCount)
        var remaining = uses
        var live = 0
        for (port, batch) in zip(inputs, batches) {
            values[port.value] = batch
            live += 1
        }
        func release(_ value: Int) {
            remaining[value] -= 1
            if remaining[value] == 0, values[value] != nil {
                values[value] = nil
                live -= 1
            }
        }
        for (index, step) in steps.enumerated() {
            // Nodes are read in place: copying one retains each of its fields, a cost per step.
            let first = step.nodes[0], last = step.nodes[step.nodes.count - 1]
            var arguments: [Tensor] = []
            arguments.reserveCapacity(step.inputs.count)
            for (position, value) in step.inputs.enumerated() {
                guard var tensor = values[value] else {
                    throw NNError(.input, nodes[first].label, "internal: value \(value) was freed before its last reader")
                }
                // The step's inputs start with its first node's; an absorbed node's other inputs
                // carry no mask (`steps`), so there is none to clear.
                if position < nodes[first].unmaskedInputs.count, nodes[first].unmaskedInputs[position] { tensor.mask = nil }
                if let maskValue = step.maskInputs[position], let mask = values[maskValue] {
                    tensor.mask = try explicitMask(mask, for: tensor, node: nodes[first])
                }
                arguments.append(tensor)
            }
            // (The clock only when someone times the steps: two reads a step otherwise.)
            let start = timing == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            let results: [Tensor]
            if let reusing = step.reusing {
                // The inputs this step reads last leave `values` now, so that the layer holds the
                // only reference to their storage (a model input is the caller's, an output
                // keeps a use and never gets here).
                var reusable = [Bool](repeating: false, count: arguments.count)
                for (position, value) in step.inputs.enumerated()
                where remaining[value] == 1 && values[value] != nil && !inputs.contains(where: { $0.value == value })
                    && !step.maskInputs.contains(value) {
                    reusable[position] = true
                    values[value] = nil
                    live -= 1
                }
                results = try reusing.call(owning: &arguments, reusable: reusable)
            } else {
                results = try step.layer.call(arguments)
            }
            if let timing { timing(index, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            guard results.count == nodes[last].outputs.count else {
                throw NNError(.input, nodes[last].label, "returned \(results.count) output tensors, expected \(nodes[last].outputs.count)")
            }
            for value in step.inputs { release(value) }
            for case let value? in step.maskInputs { release(value) }
            for (value, result) in zip(nodes[last].outputs, results) where remaining[value] > 0 {
                values[value] = result
                live += 1
            }
            observe?(index, live)
        }
        return try outputs.map { port in
            guard var result = values[port.value] else {
                throw NNError(.input, port.name, "internal: output '\(port.name)' was not computed")
            }
            result.mask = nil
            return result
        }
    }

    /// The mask given as a call's `mask` argument, as flags per (batch, step) of `tensor`.
    func explicitMask(_ mask: Tensor, for tensor: Tensor, node: Node) throws -> [Bool] {
        guard tensor.shape.count >= 2, mask.shape == Array(tensor.shape.prefix(2)) else {
            throw NNError(.input, node.label, "the mask given as its 'mask' argument has shape \(mask.shape), expected \(Array(tensor.shape.prefix(2))) (batch, steps) for an input of shape \(tensor.shape)")
        }
        return mask.data.map { $0 != 0 }
    }

    /// Checks a batch before any kernel runs: its shape against the model's input shape, and its
    /// data and mask against its shape.
    public func checkInput(_ input: Tensor) throws {
        try checkShape(input.shape, source: "input")
        try input.checkConsistent("input")
        if let port = inputs.first { try checkKind(input, of: port, source: "input") }
    }

    /// Fails unless `batch` holds strings exactly when `port` takes them.
    func checkKind(_ batch: Tensor, of port: Port, source: String) throws {
        guard batch.holdsStrings == port.takesStrings else {
            throw NNError(.input, source, port.takesStrings ? "the model takes strings here, given numbers" : "the model takes \(port.dtype) numbers here, given strings")
        }
    }

    /// Checks one batch per input, as `checkInput` does, naming the input of a model with several.
    public func checkInputs(_ batches: [Tensor]) throws {
        guard batches.count == inputs.count else {
            throw NNError(.input, "input", "the model takes \(inputs.count) input(s) (\(inputs.map { "'\($0.name)' \(describeShape($0.shape))" }.joined(separator: ", "))), given \(batches.count)")
        }
        for (port, batch) in zip(inputs, batches) {
            let source = inputs.count == 1 ? "input" : "input '\(port.name)'"
            try checkShape(batch.shape, expected: port.shape, source: source)
            try batch.checkConsistent(source)
            try checkKind(batch, of: port, source: source)
        }
        let rows = Set(batches.map(\.batch))
        guard rows.count <= 1 else {
            throw NNError(.input, "input", "the inputs have different batch sizes (\(batches.map(\.batch).map(String.init).joined(separator: ", "))); every input needs the same number of rows")
        }
    }

    /// Fails when any step would allocate more than the memory limit on inputs of shapes
    /// `shapes` (batch axis first, one per model input), before anything runs. Returns the
    /// elements of the largest value on those inputs (`largestValueElements`), from the same walk.
    /// A walk that passed is remembered (`MemoryPlans`): the check depends only on the shapes and
    /// the limit, and at batch 1 on cnn_cifar the walk took 8% of a call.
    @discardableResult
    public func planMemory(_ shapes: [[Int]], _ settings: ExecutionSettings?) throws -> Int {
        let limit = (settings ?? self.settings).memoryLimit
        if let known = memoryPlans.largest(shapes: shapes, limit: limit) { return known }
        let largest = Self.largest(try plannedShapes(shapes) { step, shapes in
            try step.layer.checkMemory(inputs: shapes, limit: limit, label: nodes[step.nodes[0]].label, location: "input", kind: .input)
        })
        memoryPlans.remember(shapes: shapes, limit: limit, largest: largest)
        return largest
    }

    /// The elements of the largest value (a step's output) on inputs of shapes `shapes`, as the
    /// steps plan them (no kernel runs): how much one batch row makes a model move between layers.
    public func largestValueElements(_ shapes: [[Int]]) -> Int {
        Self.largest(plannedShapes(shapes) { _, _ in })
    }

    private static func largest(_ planned: [[Int]?]) -> Int {
        planned.compactMap { $0.map { ShapeMath.saturatingProduct($0) } }.max() ?? 0
    }

    /// Every value's shape as the steps plan it on inputs of shapes `shapes` (batch axis first,
    /// one per model input), calling `visit` with each step and its input shapes first.
    @discardableResult
    private func plannedShapes(_ shapes: [[Int]], _ visit: (Step, [[Int]]) throws -> Void) rethrows -> [[Int]?] {
        var planned = [[Int]?](repeating: nil, count: valueCount)
        for (port, shape) in zip(inputs, shapes) { planned[port.value] = shape }
        for step in steps {
            let last = nodes[step.nodes[step.nodes.count - 1]]
            let shapes = step.inputs.map { planned[$0] ?? [1] }
            try visit(step, shapes)
            for (value, plan) in zip(last.outputs, step.layer.plannedWorkingSets(inputs: shapes)) { planned[value] = plan.outputShape }
        }
        return planned
    }

    /// Checks a batch shape against the model's (first) input shape.
    public func checkShape(_ shape: [Int], source: String) throws {
        try checkShape(shape, expected: inputShape, source: source)
    }

    func checkShape(_ shape: [Int], expected: [Int?], source: String) throws {
        let matches = shape.count == expected.count + 1 && zip(shape.dropFirst(), expected).allSatisfy { $1 == nil || $0 == $1 }
        guard matches, shape.first.map({ $0 > 0 }) ?? false, shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw NNError(.input, source, "input has shape \(shape.map(String.init).joined(separator: "×")), expected \(describeShape(expected)) with the batch first")
        }
    }

    /// Turns an input array into a batch for this model's first input (or the input named
    /// `input`), checking shape and dtype. A single sample (the per-sample shape without a batch
    /// axis) becomes a batch of one.
    public func batch(from array: NumericArray, source: String, input name: String? = nil) throws -> Tensor {
        guard let port = name.map({ name in inputs.first { $0.name == name } }) ?? inputs.first else {
            throw NNError(.input, source, "the model has no input named '\(name ?? "")'; its inputs are \(inputs.map { "'\($0.name)'" }.joined(separator: ", "))")
        }
        var shape = array.shape
        if shape.count == port.shape.count, zip(shape, port.shape).allSatisfy({ $1 == nil || $0 == $1 }) {
            shape.insert(1, at: 0)
        }
        try checkShape(shape, expected: port.shape, source: source)
        guard (array.strings != nil) == port.takesStrings else {
            throw NNError(.input, source, port.takesStrings
                ? "the model's input \(inputs.count > 1 ? "'\(port.name)' " : "")takes strings, found a \(array.dtype) array; give a .npy of strings (numpy dtype str) or JSON nested arrays of strings"
                : "the model's input \(inputs.count > 1 ? "'\(port.name)' " : "")takes \(port.dtype) numbers, found an array of strings")
        }
        if let strings = array.strings { return Tensor(shape: shape, strings: strings) }
        if port.dtype.hasPrefix("int") || port.dtype.hasPrefix("uint") {
            for (index, value) in array.values.enumerated() where value.rounded() != value || !value.isFinite {
                throw NNError(.input, source, "the model takes \(port.dtype) input (token ids), found \(value) at flat position \(index) of a \(array.dtype) array")
            }
        }
        return Tensor(shape: shape, data: array.values)
    }

    /// What each node is called on, as Keras's summary shows it: `conv2d[0][0]`.
    public func connections(of node: Node) -> [String] {
        node.inputs.map { producers[$0] }
    }
}

extension Model {
    /// When the model starts with a layer taking indices (token ids), the number of valid ids.
    public var inputIndexLimit: Int? {
        for node in nodes {
            if let indexed = node.layer as? TakesIndices { return indexed.indexLimit }
            if node.spec.className != "InputLayer" { return nil }
        }
        return nil
    }
}

/// Turns a `GraphSpec` into nodes: walks each graph's calls in topological order, expanding
/// nested models in place, and builds each call's layer with its input shapes and masks.
final class GraphBuilder {
    let registry: LayerRegistry
    let binder: WeightBinder
    let settings: ExecutionSettings
    let source: String
    var nodes: [Model.Node] = []
    /// Per value: its per-sample shape, whether it carries a mask, and its producer for the summary.
    var shapes: [[Int?]] = []
    var masks: [Bool] = []
    /// The values that hold strings: the string inputs, and what a `ReadsStrings` layer that
    /// `passesStrings` makes of them.
    var stringValues: Set<Int> = []
    var producers: [String] = []
    var callOutputs: [NodeKey: [Int]] = [:]
    /// Each built layer's label by name, for the message of the layer reading it.
    var labels: [String: String] = [:]
    /// Values read by a call that clears its inputs' masks (`InputMaskClearing`): every reader
    /// built after it sees them unmasked, as in Keras, where the call removes the mask from the
    /// tensor object itself. "After" is Keras's order among the readers of a tensor, which
    /// `expand` builds in and the run follows (`buildOrder`). Each node keeps its cleared inputs
    /// (`Node.unmaskedInputs`), which the run applies, so build-time and run-time masks agree
    /// whatever steps fuse.
    var maskCleared: Set<Int> = []
    /// For the output of a `ReturnsItsInput` layer, the value whose tensor object it is in Keras
    /// (followed to the first such value), so clearing the mask of either clears both.
    var sameTensor: [Int: Int] = [:]

    init(registry: LayerRegistry, binder: WeightBinder, settings: ExecutionSettings, source: String) {
        self.registry = registry
        self.binder = binder
        self.settings = settings
        self.source = source
    }

    func newValue(shape: [Int?], masked: Bool, producer: String) -> Int {
        shapes.append(shape)
        masks.append(masked)
        producers.append(producer)
        return shapes.count - 1
    }

    /// Builds the calls of `graph`, whose inputs are `inputs`; returns its output values.
    func expand(_ graph: GraphSpec, scope: [String], inputs: [Int]) throws -> [Int] {
        var values: [TensorRef: Int] = [:]
        var inputOf: [NodeKey: Int] = [:]
        for (ref, value) in zip(graph.inputs, inputs) { inputOf[ref.nodeKey] = value }
        let chain = graph.className == "Sequential"
        var pathCounts: [String: Int] = [:]
        for layer in graph.layers { pathCounts[layer.spec.path, default: 0] += 1 }
        for key in Self.buildOrder(graph) {
            guard let layer = graph.layer(named: key.layer), let call = graph.node(key) else { continue }
            let location = "\(graph.source): \(call.path)"
            func value(_ tensor: KerasTensor) throws -> Int {
                guard let found = values[tensor.ref] else {
                    let produced = (0...).prefix { values[TensorRef(layer: tensor.ref.layer, node: tensor.ref.node, index: $0)] != nil }.count
                    let what = produced > 0 ? "'\(tensor.ref.layer)' call \(tensor.ref.node) has \(produced) output(s)" : "no earlier call produces it"
                    throw NNError(.layer, "\(graph.source): \(tensor.path)", "\(layer.label) reads output \(tensor.ref.index) of \(tensor.ref), but \(what)")
                }
                return found
            }
            // GraphSpec puts an InputLayer in front of a Sequential whose first layer declares the
            // input shape (sharing that layer's path); it is not a layer of the document, so the
            // model has no node for it, as Keras shows none.
            if let input = inputOf[key], layer.spec.className == "InputLayer", (pathCounts[layer.spec.path] ?? 0) > 1 {
                values[TensorRef(layer: key.layer, node: key.node, index: 0)] = input
                continue
            }
            // Positional tensors, then keyword tensors other than the mask.
            var reads: [Int]
            if let input = inputOf[key] {
                reads = [input]
            } else {
                reads = try call.args.flatMap(\.tensors).map(value)
                for (name, argument) in call.kwargs where !LayerContext.modelKeywords.contains(name) {
                    reads += try argument.tensors.map(value)
                }
            }
            let callers = reads.map { producers[$0] }.map { String($0.prefix { $0 != "[" }) }
            let label = chain ? layer.label : "\(layer.label) called on [\(callers.map { "'\($0)'" }.joined(separator: ", "))]"
            let maskInputs = try explicitMasks(call, inputCount: reads.count, value: value, label: label, location: location)
            // A call's recorded `training` (Keras 3 writes training=True for its preprocessing
            // layers, and for a layer called with training=True) is not read: Keras's predict
            // passes training=False to every call, replacing it (functional.py, operation_fn), and
            // nnbuild computes what predict computes. `nnbuild validate` notes such calls.
            switch layer.kind {
            case let .model(inner):
                if let unread = call.kwargs.first(where: { !LayerContext.modelKeywords.contains($0.0) && !LayerContext.isNull($0.1) }) {
                    throw NNError(.layer, location, "\(label): call argument '\(unread.0)' is not supported for a nested model")
                }
                if maskInputs.contains(where: { $0 != nil }) {
                    throw NNError(.layer, location, "\(label): an explicit 'mask' argument is not supported for a nested model")
                }
                guard reads.count == inner.inputs.count else {
                    throw NNError(.layer, location, "\(label): the nested model takes \(inner.inputs.count) input(s), called on \(reads.count)")
                }
                let results = try expand(inner, scope: scope + [layer.name], inputs: reads)
                for (index, result) in results.enumerated() { values[TensorRef(layer: key.layer, node: key.node, index: index)] = result }
                if scope.isEmpty { callOutputs[key] = results }
            case .layer, .operation:
                let outputs = try buildNode(layer, call: call, scope: scope, reads: reads, maskInputs: maskInputs, callers: chain ? nil : callers,
                                            label: label, location: location)
                for (index, result) in outputs.enumerated() { values[TensorRef(layer: key.layer, node: key.node, index: index)] = result }
                if scope.isEmpty { callOutputs[key] = outputs }
            }
        }
        return try zip(graph.outputs, graph.outputNames).map { ref, name in
            guard let found = values[ref] else {
                let count = graph.layer(named: ref.layer).map { layer in values.keys.filter { $0.layer == layer.name && $0.node == ref.node }.count } ?? 0
                throw NNError(.spec, graph.source, "model output '\(name)' is output \(ref.index) of '\(ref.layer)' call \(ref.node), which has \(count) output(s)")
            }
            return found
        }
    }

    /// The order the calls of `graph` are built and run in: `GraphSpec.order` (by decreasing
    /// depth, document order within a depth, which keeps a residual block's shortcut before the
    /// `Add` that a convolution's store may absorb), except that the readers of each tensor run
    /// in Keras's order (`kerasOrder`): which of two readers at one depth runs first decides
    /// whether a mask cleared by one (`InputMaskClearing`) reaches the other. Kahn's algorithm
    /// over the graph's edges plus those, ties in document order.
    static func buildOrder(_ graph: GraphSpec) -> [NodeKey] {
        guard let keras = kerasOrder(graph) else { return graph.order }
        var kerasPosition: [NodeKey: Int] = [:], documentPosition: [NodeKey: Int] = [:]
        for (position, key) in keras.enumerated() { kerasPosition[key] = position }
        for (position, key) in graph.order.enumerated() { documentPosition[key] = position }
        var before: [NodeKey: Set<NodeKey>] = [:], readers: [TensorRef: Set<NodeKey>] = [:]
        for key in graph.order {
            guard let call = graph.node(key) else { return graph.order }
            for tensor in call.args.flatMap(\.tensors) + call.kwargs.flatMap(\.1.tensors) {
                readers[tensor.ref, default: []].insert(key)
                if documentPosition[tensor.ref.nodeKey] != nil { before[key, default: []].insert(tensor.ref.nodeKey) }
            }
        }
        for keys in readers.values where keys.count > 1 {
            let inKerasOrder = keys.sorted { kerasPosition[$0] ?? 0 < kerasPosition[$1] ?? 0 }
            for (earlier, later) in zip(inKerasOrder, inKerasOrder.dropFirst()) { before[later, default: []].insert(earlier) }
        }
        var order: [NodeKey] = [], done = Set<NodeKey>()
        var waiting = graph.order
        while !waiting.isEmpty {
            guard let next = waiting.firstIndex(where: { (before[$0] ?? []).isSubset(of: done) }) else { return graph.order }
            done.insert(waiting[next])
            order.append(waiting.remove(at: next))
        }
        return order
    }

    /// The calls of `graph` in the order Keras runs them (`Function._run_through_graph`): by
    /// decreasing depth, and within a depth in `map_graph`'s `nodes_by_depth` order, which comes
    /// from a depth-first walk from the outputs (each call's tensors: positional, then keyword by
    /// sorted name). `GraphSpec.order` is by decreasing depth too, but keeps document order within
    /// a depth; the difference matters where an `InputMaskClearing` call and another reader of the
    /// same tensor sit at one depth (`buildOrder`). Nil if a reference does not resolve.
    static func kerasOrder(_ graph: GraphSpec) -> [NodeKey]? {
        let wanted = Set(graph.order)
        let inputKeys = graph.inputs.map(\.nodeKey)
        var parents: [NodeKey: [NodeKey]] = [:]
        for key in graph.order {
            guard let call = graph.node(key) else { return nil }
            var tensors = call.args.flatMap(\.tensors)
            for (_, argument) in call.kwargs.sorted(by: { $0.0 < $1.0 }) { tensors += argument.tensors }
            var keys: [NodeKey] = []
            for tensor in tensors {
                let producer = tensor.ref.nodeKey
                guard wanted.contains(producer) || inputKeys.contains(producer) else { return nil }
                keys.append(producer)
            }
            parents[key] = inputKeys.contains(key) ? [] : keys
        }
        // _build_map: post-order of a depth-first walk from each output in turn.
        var postOrder: [NodeKey] = []
        var finished = Set<NodeKey>(), inProgress = Set<NodeKey>()
        for output in graph.outputs {
            var stack: [(key: NodeKey, next: Int)] = [(output.nodeKey, 0)]
            while let top = stack.last {
                if top.next == 0 {
                    if finished.contains(top.key) { stack.removeLast(); continue }
                    guard !inProgress.contains(top.key) else { return nil }
                    inProgress.insert(top.key)
                }
                let reads = parents[top.key] ?? []
                if top.next < reads.count {
                    stack[stack.count - 1].next += 1
                    if !finished.contains(reads[top.next]) { stack.append((reads[top.next], 0)) }
                } else {
                    stack.removeLast()
                    inProgress.remove(top.key)
                    finished.insert(top.key)
                    postOrder.append(top.key)
                }
            }
        }
        // map_graph: depths from the outputs (a shared layer's calls at least its deepest one's),
        // each call listed where its depth was first set.
        var depth: [NodeKey: Int] = [:], layerDepth: [String: Int] = [:], listed: [NodeKey] = []
        for key in postOrder.reversed() {
            if depth[key] == nil { listed.append(key) }
            let own = max(depth[key] ?? 0, layerDepth[key.layer] ?? 0)
            layerDepth[key.layer] = own
            depth[key] = own
            for parent in parents[key] ?? [] where finished.contains(parent) {
                if depth[parent] == nil { listed.append(parent) }
                depth[parent] = max(own + 1, depth[parent] ?? 0)
            }
        }
        let order = inputKeys.filter(wanted.contains) + Set(depth.values).sorted(by: >).flatMap { level in
            listed.filter { depth[$0] == level && !inputKeys.contains($0) }
        }
        guard order.count == graph.order.count, Set(order) == wanted else { return nil }
        return order
    }

    /// The value given as each input's explicit `mask` (Keras: a tensor for the first input, or
    /// a list with one entry per input); nil where the input's own mask propagates.
    func explicitMasks(_ call: NodeSpec, inputCount: Int, value: (KerasTensor) throws -> Int, label: String, location: String) throws -> [Int?] {
        var masks = [Int?](repeating: nil, count: inputCount)
        guard let argument = call.kwarg("mask") else { return masks }
        switch argument {
        case let .tensor(tensor):
            guard inputCount > 0 else { break }
            masks[0] = try value(tensor)
        case let .list(items):
            guard items.count == inputCount else {
                throw NNError(.layer, location, "\(label): its 'mask' argument lists \(items.count) masks for \(inputCount) inputs")
            }
            for (index, item) in items.enumerated() {
                switch item {
                case let .tensor(tensor): masks[index] = try value(tensor)
                case .value(.null): break
                default: throw NNError(.layer, location, "\(label): its 'mask' argument must hold tensors or null, found \(item)")
                }
            }
        case .value(.null): break
        default:
            throw NNError(.layer, location, "\(label): its 'mask' argument must be a tensor, a list of them, or null")
        }
        return masks
    }

    /// Builds one call of a layer (or a Keras operation), checks its shapes, memory and
    /// arguments, and returns its output values.
    func buildNode(_ layer: GraphLayer, call: NodeSpec, scope: [String], reads: [Int], maskInputs: [Int?], callers: [String]?,
                   label: String, location: String) throws -> [Int] {
        let inputShapes = reads.map { shapes[$0] }
        for shape in inputShapes {
            if case let .failure(message) = ShapeMath.checkSample(shape, what: "its input") {
                throw NNError(.layer, location, "\(label): \(message.text)")
            }
        }
        let unmaskedInputs = reads.map { maskCleared.contains(sameTensor[$0] ?? $0) }
        let inputMasks = reads.enumerated().map { index, value in maskInputs[index] != nil || (masks[value] && !unmaskedInputs[index]) }
        var spec = layer.spec
        if let module = layer.operationModule {
            let name = LayerRegistry.operationName(spec.className)
            guard registry.contains(name) else {
                throw NNError(.unknownLayer, "\(source): \(spec.path).class_name",
                              "\(layer.label) is not supported: no Keras operation '\(spec.className)' (from \(module)) is registered; register a factory for '\(name)' or rewrite the model with layers")
            }
            spec.registeredName = name
        }
        let previous = reads.first.map { producers[$0] }.map { String($0.prefix { $0 != "[" }) }
        let inputStrings = reads.map { stringValues.contains($0) }
        let context = LayerContext(spec: spec, inputShapes: inputShapes, inputMasks: inputMasks, inputStrings: inputStrings, node: call, callers: callers,
                                   operationModule: layer.operationModule, registry: registry, scope: scope + [spec.name],
                                   previousLabel: previous.flatMap { labels[$0] },
                                   binder: binder, source: source)
        let built = try registry.make(context)
        if let unread = context.unreadArguments().first {
            throw NNError(.layer, location, "\(label): call argument '\(unread)' is not supported by this layer; nnbuild would ignore it and compute something else than Keras")
        }
        if built is any Layer, reads.count != 1 {
            throw NNError(.layer, location, "\(label): takes one input tensor, called on \(reads.count)")
        }
        let outputShapes = built.outputShapes
        for shape in outputShapes {
            if case let .failure(message) = ShapeMath.checkSample(shape, what: "the output") {
                throw NNError(.layer, location, "\(label): \(message.text)")
            }
        }
        try built.checkMemory(inputs: inputShapes.map { [1] + $0.map { $0 ?? 1 } }, limit: settings.memoryLimit, label: label,
                              location: location, kind: .layer)
        var outputMasks = built.outputMasks(inputMasks: inputMasks)
        if outputMasks.count != outputShapes.count { outputMasks = outputShapes.map { _ in false } }
        let outputs = outputShapes.enumerated().map { index, shape in
            newValue(shape: shape, masked: outputMasks[index], producer: "\(spec.name)[\(call.index)][\(index)]")
        }
        if let index = inputStrings.firstIndex(of: true) {
            guard let reader = built as? any ReadsStrings else {
                throw NNError(.layer, location, "\(label): its input \(reads.count > 1 ? "\(index) " : "")holds strings (a model input of dtype string), which only string-reading layers take (StringLookup, TextVectorization, Hashing); this layer takes numbers")
            }
            if reader.passesStrings { stringValues.formUnion(outputs) }
        }
        labels[spec.name] = spec.label
        nodes.append(Model.Node(spec: spec, layer: built, inputShapes: inputShapes, outputShapes: outputShapes, parameterCount: context.parameterCount,
                                outputMasks: outputMasks, inputs: reads, maskInputs: maskInputs, unmaskedInputs: unmaskedInputs,
                                outputs: outputs, call: call.index, scope: scope, label: label))
        if let clearing = built as? any InputMaskClearing {
            maskCleared.formUnion(clearing.maskClearedInputs.filter { reads.indices.contains($0) }.map { sameTensor[reads[$0]] ?? reads[$0] })
        }
        if built is any ReturnsItsInput, let input = reads.first, reads.count == 1, let output = outputs.first, outputs.count == 1 {
            sameTensor[output] = sameTensor[input] ?? input
        }
        return outputs
    }
}

/// The inputs' shapes and memory limits on which a model's memory walk passed, with the largest
/// value it found: a few entries (a server sees a few batch sizes), forgotten together when full.
final class MemoryPlans: @unchecked Sendable {
    private struct Key: Hashable {
        let shapes: [[Int]]
        let limit: Int
    }

    private var passed: [Key: Int] = [:]
    private let lock = Lock()
    private static let capacity = 64

    func largest(shapes: [[Int]], limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        return passed[Key(shapes: shapes, limit: limit)]
    }

    func remember(shapes: [[Int]], limit: Int, largest: Int) {
        lock.lock()
        defer { lock.unlock() }
        if passed.count >= Self.capacity { passed.removeAll(keepingCapacity: true) }
        passed[Key(shapes: shapes, limit: limit)] = largest
    }
}
