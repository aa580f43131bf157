import Dispatch

/// A built Sequential model: one layer per spec entry, each made by its registered factory.
/// There is no per-architecture model class; the spec alone decides what runs.
public struct Model: Sendable {
    /// One built layer with what the summary shows about it.
    public struct Node: Sendable {
        public let spec: LayerSpec
        public let layer: any Layer
        public let inputShape: [Int?]
        public let outputShape: [Int?]
        public let parameterCount: Int
        /// Whether this layer's output carries a sequence mask.
        public let carriesMask: Bool
    }

    /// What `predict` runs: one layer standing for `nodes` (more than one where a layer fused
    /// the layers after it, see `FusesNext`).
    public struct Step: Sendable {
        public let layer: any Layer
        public let nodes: Range<Int>
    }

    public let description: ModelDescription
    public let nodes: [Node]
    public let steps: [Step]
    /// The settings the model was built with, which `predict` uses unless given others.
    public let settings: ExecutionSettings

    public var inputShape: [Int?] { description.inputShape }
    public var outputShape: [Int?] { nodes.last?.outputShape ?? description.inputShape }
    public var parameterCount: Int { nodes.reduce(0) { $0 + $1.parameterCount } }

    /// Builds every layer through `registry`, binding weights from `weights` when given (without
    /// weights the model has zeros, enough to check shapes). Weight problems are collected and
    /// thrown together as `NNErrors`; a config problem stops the build at that layer. With `fuse`
    /// (the default), layers that can run their successor in the same pass do (`FusesNext`).
    ///
    /// Every layer's input and output shape is checked against `ShapeMath.sampleLimit`, and what
    /// each layer allocates for one sample against `settings.memoryLimit`, so a factory never sees
    /// a shape whose element count overflows and a model that cannot run is refused here.
    public static func build(_ description: ModelDescription, registry: LayerRegistry, weights: WeightStore? = nil,
                             fuse: Bool = true, settings: ExecutionSettings = .default) throws -> Model {
        let binder = WeightBinder(store: weights)
        var nodes: [Node] = []
        var shape = description.inputShape
        var carriesMask = false
        var previousLabel: String?
        for spec in description.layers {
            let location = "\(description.source): \(spec.path)"
            if case let .failure(message) = ShapeMath.checkSample(shape, what: "its input") {
                throw NNError(.layer, location, "\(spec.label): \(message.text)")
            }
            let context = LayerContext(spec: spec, inputShape: shape, inputCarriesMask: carriesMask, registry: registry,
                                       scope: [spec.name], previousLabel: previousLabel, binder: binder, source: description.source)
            let layer: any Layer
            do {
                layer = try registry.make(context)
            } catch let error as NNError where !binder.problems.isEmpty && error.kind == .layer {
                throw NNErrors(binder.problems + [error])
            }
            let output = layer.outputShape
            if case let .failure(message) = ShapeMath.checkSample(output, what: "the output") {
                throw NNError(.layer, location, "\(spec.label): \(message.text)")
            }
            try layer.checkMemory(input: [1] + shape.map { $0 ?? 1 }, limit: settings.memoryLimit, label: spec.label,
                                  location: location, kind: .layer)
            switch layer.maskBehavior {
            case .drops: carriesMask = false
            case .propagates: break
            case .produces: carriesMask = true
            }
            nodes.append(Node(spec: spec, layer: layer, inputShape: shape, outputShape: output,
                              parameterCount: context.parameterCount, carriesMask: carriesMask))
            shape = output
            previousLabel = spec.label
        }
        let problems = binder.problems + binder.unusedProblems()
        if !problems.isEmpty { throw NNErrors(problems) }
        return Model(description: description, nodes: nodes, steps: steps(nodes, fuse: fuse), settings: settings)
    }

    /// Each node's layer, absorbing the nodes after it for as long as it can fuse them (with `fuse`).
    static func steps(_ nodes: [Node], fuse: Bool) -> [Step] {
        var steps: [Step] = []
        var index = 0
        while index < nodes.count {
            var layer = nodes[index].layer
            var end = index + 1
            while fuse, end < nodes.count, let fusing = layer as? any FusesNext, let fused = fusing.fusing(nodes[end].layer) {
                layer = fused
                end += 1
            }
            steps.append(Step(layer: layer, nodes: index..<end))
            index = end
        }
        return steps
    }

    /// Runs the whole model on a batch whose per-sample shape matches `inputShape`, within the
    /// memory limit of `settings` (the model's own by default).
    public func predict(_ input: Tensor, settings: ExecutionSettings? = nil) throws -> Tensor {
        try checkInput(input)
        var value = input
        for step in steps {
            try checkMemory(step, value.shape, settings)
            value = try step.layer.apply(value)
        }
        value.mask = nil
        return value
    }

    /// Runs the model like `predict`, timing each step (seconds per step, in order).
    public func profile(_ input: Tensor, settings: ExecutionSettings? = nil) throws -> [Double] {
        try checkInput(input)
        var value = input
        var times: [Double] = []
        for step in steps {
            try checkMemory(step, value.shape, settings)
            let start = DispatchTime.now().uptimeNanoseconds
            value = try step.layer.apply(value)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return times
    }

    /// Checks a batch before any kernel runs: its shape against the model's input shape, and its
    /// data and mask against its shape.
    public func checkInput(_ input: Tensor) throws {
        try checkShape(input.shape, source: "input")
        try input.checkConsistent("input")
    }

    /// Fails when `step` would allocate more than the memory limit on `value`, before it does.
    /// Returns the step's planned output shape, to check the next step of a batch not run yet.
    @discardableResult
    public func checkMemory(_ step: Step, _ shape: [Int], _ settings: ExecutionSettings?) throws -> [Int] {
        let node = nodes[step.nodes.lowerBound]
        try step.layer.checkMemory(input: shape, limit: (settings ?? self.settings).memoryLimit, label: node.spec.label,
                                   location: "input", kind: .input)
        return step.layer.plannedWorkingSet(input: shape).outputShape
    }

    /// Checks a batch shape against the model's input shape.
    public func checkShape(_ shape: [Int], source: String) throws {
        let expected = inputShape
        let matches = shape.count == expected.count + 1 && zip(shape.dropFirst(), expected).allSatisfy { $1 == nil || $0 == $1 }
        guard matches, shape.first.map({ $0 > 0 }) ?? false, shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw NNError(.input, source, "input has shape \(shape.map(String.init).joined(separator: "×")), expected \(describeShape(expected)) with the batch first")
        }
    }

    /// Turns an input array into a batch for this model, checking shape and dtype. A single sample
    /// (the per-sample shape without a batch axis) becomes a batch of one.
    public func batch(from array: NumericArray, source: String) throws -> Tensor {
        var shape = array.shape
        if shape.count == inputShape.count, zip(shape, inputShape).allSatisfy({ $1 == nil || $0 == $1 }) {
            shape.insert(1, at: 0)
        }
        try checkShape(shape, source: source)
        if description.inputDType.hasPrefix("int") || description.inputDType.hasPrefix("uint") {
            for (index, value) in array.values.enumerated() where value.rounded() != value || !value.isFinite {
                throw NNError(.input, source, "the model takes \(description.inputDType) input (token ids), found \(value) at flat position \(index) of a \(array.dtype) array")
            }
        }
        return Tensor(shape: shape, data: array.values)
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
