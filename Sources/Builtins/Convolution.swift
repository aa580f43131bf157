import CKernels
import LayerRegistry

// Convolution layers: Conv1D and Conv2D, channels last, with strides, dilation, groups and
// Keras's valid / same (/ causal) padding. Both run the im2col + GEMM kernel.

/// The windows of a convolution along its spatial axes, read from a Keras config: what every
/// convolution (plain, depthwise, separable, transposed) shares.
struct ConvolutionWindows: Sendable, Equatable {
    var kernelSize: [Int]
    var strides: [Int]
    var dilation: [Int]
    var padding: WindowPadding

    /// Reads `kernel_size`, `strides`, `padding`, `dilation_rate` and `data_format` for `rank`
    /// spatial axes. `stridedDilation` says whether Keras accepts strides > 1 with dilation > 1.
    /// The caller reads `data_format` first (`requireChannelsLast`).
    static func read(_ context: LayerContext, rank: Int, paddings: [String], stridedDilation: Bool = false) throws -> ConvolutionWindows {
        let kernelSize = try context.positiveInts("kernel_size", count: rank)
        let strides = try context.positiveInts("strides", count: rank, default: Array(repeating: 1, count: rank))
        let dilation = try context.positiveInts("dilation_rate", count: rank, default: Array(repeating: 1, count: rank))
        let paddingName = try context.choice("padding", default: "valid", allowed: paddings)
        if !stridedDilation, strides.contains(where: { $0 > 1 }) && dilation.contains(where: { $0 > 1 }) {
            throw context.error("strides \(strides) together with dilation_rate \(dilation) is not supported (Keras refuses strides > 1 with dilation_rate > 1); expected one of them to be 1", key: "dilation_rate")
        }
        return ConvolutionWindows(kernelSize: kernelSize, strides: strides, dilation: dilation,
                                  padding: WindowPadding(rawValue: paddingName) ?? .valid)
    }

    /// The window along spatial axis `axis` over `length` input cells, nil when a "valid" kernel
    /// does not fit.
    func window(axis: Int, length: Int) -> WindowAxis? {
        WindowAxis.place(input: length, size: kernelSize[axis], stride: strides[axis], dilation: dilation[axis], padding: padding)
    }

    /// Why no output fits: "the kernel spans 5 steps (kernel_size 3, dilation_rate 2) but the input has 4 with padding \"valid\"".
    func misfit(axis: Int, length: Int, unit: String) -> String {
        let span = (kernelSize[axis] - 1) * dilation[axis] + 1
        let dilated = dilation[axis] > 1 ? " (kernel_size \(kernelSize[axis]), dilation_rate \(dilation[axis]))" : ""
        return "the kernel spans \(span) \(unit)\(dilated) but the input has \(length) with padding \"\(padding.rawValue)\"; expected an input of at least \(span) \(unit) or padding \"same\""
    }

    /// The output length along each axis for input lengths `lengths` (nil = known at run time),
    /// or the reason a known length does not fit.
    func outputLengths(_ lengths: [Int?]) -> Result<[Int?], MisfitMessage> {
        var outputs: [Int?] = []
        for (axis, length) in lengths.enumerated() {
            guard let length else { outputs.append(nil); continue }
            guard let window = window(axis: axis, length: length) else {
                return .failure(MisfitMessage(text: misfit(axis: axis, length: length, unit: spatialUnit(axis, of: lengths.count))))
            }
            outputs.append(window.output)
        }
        return .success(outputs)
    }

    /// The windows over the run-time spatial sizes `lengths`, failing at `label` when one does not fit.
    func axes(_ lengths: [Int], label: String) throws -> VolumeGeometry {
        var axes: [WindowAxis] = []
        for (axis, length) in lengths.enumerated() {
            guard let window = window(axis: axis, length: length) else {
                throw NNError(.input, label, misfit(axis: axis, length: length, unit: spatialUnit(axis, of: lengths.count)))
            }
            axes.append(window)
        }
        return VolumeGeometry(axes)
    }
}

/// Why a kernel does not fit its input, for the layer to throw where it knows the location.
struct MisfitMessage: Error { let text: String }

/// What the cells of spatial axis `axis` of `rank` are called in messages.
func spatialUnit(_ axis: Int, of rank: Int) -> String {
    switch (rank, axis) {
    case (1, _): return "steps"
    case (2, 0), (3, 1): return "rows"
    case (2, _), (3, 2): return "columns"
    default: return "planes"
    }
}

/// The window settings of a plain convolution: its windows, filters and groups.
@dynamicMemberLookup
struct ConvolutionSettings: Sendable, Equatable {
    var windows: ConvolutionWindows
    var filters: Int
    var groups: Int

    subscript<T>(dynamicMember path: KeyPath<ConvolutionWindows, T>) -> T { windows[keyPath: path] }

    /// Reads `filters` and `groups` besides the windows (`ConvolutionWindows.read`) for a
    /// convolution over `rank` spatial axes with `channels` input channels.
    static func read(_ context: LayerContext, rank: Int, channels: Int, paddings: [String]) throws -> ConvolutionSettings {
        try requireChannelsLast(context)
        let filters = try context.positiveInt("filters")
        let windows = try ConvolutionWindows.read(context, rank: rank, paddings: paddings)
        let groups = try context.positiveInt("groups", default: 1)
        guard filters % groups == 0 else {
            throw context.error("'filters' (\(filters)) must be divisible by 'groups' (\(groups))", key: "groups")
        }
        guard channels % groups == 0 else {
            throw context.error("the input's \(channels) channels must be divisible by 'groups' (\(groups)), found input \(describeShape(context.inputShape))", key: "groups")
        }
        return ConvolutionSettings(windows: windows, filters: filters, groups: groups)
    }

    func window(axis: Int, length: Int) -> WindowAxis? { windows.window(axis: axis, length: length) }
    func misfit(axis: Int, length: Int, unit: String) -> String { windows.misfit(axis: axis, length: length, unit: unit) }
}

/// The kernel of a convolution, merged with its LoRA update when the config enables one.
func convolutionKernel(_ context: LayerContext, shape: [Int]) throws -> Weight {
    try context.weightWithLoRA("kernel", shape: shape, down: "lora_kernel_a", up: "lora_kernel_b")
}

/// `Conv2D`: y = activation(conv(x, kernel) + bias) over (height, width), channels last.
///
/// Config: `filters`, `kernel_size`, `strides` (1), `padding` ("valid" | "same"), `dilation_rate` (1),
/// `groups` (1), `activation` ("linear"), `use_bias` (true), `data_format` ("channels_last").
/// Weights: `kernel` (kh, kw, in / groups, filters), `bias` (filters).
public struct Conv2D: ConvolutionStore {
    let label: String
    let settings: ConvolutionSettings
    /// The (height, width) the layer was built for, nil where known only at run time.
    let inputSize: [Int?]
    let channels: Int
    public let kernel: Weight
    /// The kernel packed for the AVX2 GEMM at load (nil where that path does not run).
    let packed: PackedKernel?
    /// A 3×3 kernel at stride 1 transformed for Winograd's algorithm instead (nil where it does not apply).
    let winograd: WinogradKernel?
    public let bias: Weight?
    public internal(set) var activation: Activation
    /// A BatchNormalization taken over (`ConvolutionStore`), applied before the activation.
    var normalization: BatchNormalization?
    public let outputShape: [Int?]
    var outputChannels: Int { settings.filters }

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(3, meaning: "(batch, height, width, channels)")
        let channels = try context.inputDimension(2)
        let settings = try ConvolutionSettings.read(context, rank: 2, channels: channels, paddings: ["valid", "same"])
        let inputSize = Array(context.inputShape.prefix(2))
        let outputSize: [Int?]
        switch settings.windows.outputLengths(inputSize) {
        case let .success(sizes): outputSize = sizes
        case let .failure(message): throw context.error("\(message.text) (input \(describeShape(context.inputShape)))", key: "kernel_size")
        }
        try context.sampleCount(outputSize + [settings.filters], key: "filters")
        // The packed and Winograd kernels depend on the window, not on the input's size: any
        // size that fits builds them.
        let rows = settings.window(axis: 0, length: inputSize[0] ?? settings.kernelSize[0] * settings.dilation[0])
        let columns = settings.window(axis: 1, length: inputSize[1] ?? settings.kernelSize[1] * settings.dilation[1])
        guard let rows, let columns else { throw context.error("the kernel does not fit the input \(describeShape(context.inputShape))", key: "kernel_size") }
        let geometry = ConvolutionGeometry(rows: rows, columns: columns, channels: channels, filters: settings.filters, groups: settings.groups)
        let activation = try Activation.from(context)
        let kernel = try convolutionKernel(context, shape: settings.kernelSize + [channels / settings.groups, settings.filters])
        let bias = try context.bool("use_bias", default: true) ? try context.weight("bias", shape: [settings.filters]) : nil
        // The output's size where the input's is known (Winograd skips small outputs on AVX-512).
        let knownOutput = inputSize[0] != nil && inputSize[1] != nil ? (height: rows.output, width: columns.output) : nil
        let winograd = WinogradKernel(kernel, geometry: geometry, outputSize: knownOutput)
        return Conv2D(label: context.label, settings: settings, inputSize: inputSize, channels: channels, kernel: kernel,
                      packed: winograd != nil ? nil : PackedKernel(kernel, patch: geometry.patchSize, filters: settings.filters, groups: settings.groups),
                      winograd: winograd,
                      bias: bias, activation: activation, outputShape: outputSize + [settings.filters])
    }

    /// The geometry over a run-time input of shape (batch, height, width, channels), nil when the
    /// kernel does not fit it.
    func geometry(_ shape: [Int]) -> ConvolutionGeometry? {
        guard shape.count == 4, let rows = settings.window(axis: 0, length: shape[1]),
              let columns = settings.window(axis: 1, length: shape[2]) else { return nil }
        return ConvolutionGeometry(rows: rows, columns: columns, channels: channels, filters: settings.filters, groups: settings.groups)
    }

    /// The geometry over `input`, once it is checked against the layer.
    func checkedGeometry(_ input: Tensor) throws -> ConvolutionGeometry {
        try checkInput(input, built: inputSize + [channels], label: label)
        for axis in 0..<2 where settings.window(axis: axis, length: input.shape[axis + 1]) == nil {
            throw NNError(.input, label, settings.misfit(axis: axis, length: input.shape[axis + 1], unit: spatialUnit(axis, of: 2)))
        }
        guard let g = geometry(input.shape) else { throw NNError(.input, label, "the kernel does not fit input \(input.shape)") }
        try ShapeMath.sampleCount([g.rows.output, g.columns.output, g.filters], at: label)
        return g
    }

    /// Takes over an activation after it (`AbsorbsActivation`), a max pooling whose windows do
    /// not overlap along rows (`PooledConvolution`), or, for a 1×1 kernel, a depthwise
    /// convolution (`PointwiseDepthwise`).
    public func fusing(_ next: any Layer) -> (any Layer)? {
        if let pooling = next as? Pooling {
            guard pooling.mode == .max, pooling.inputShape.count == 3, pooling.channels == settings.filters,
                  pooling.settings.poolSize[0] <= pooling.settings.strides[0] else { return nil }
            return PooledConvolution(convolution: self, pooling: pooling)
        }
        if next is DepthwiseConvolution || next is SpatialPadding { return PointwiseDepthwise(self, then: next) }
        return absorbing(next)
    }

    func run(_ input: Tensor, epilogue: OutputEpilogue) throws -> Tensor {
        let g = try checkedGeometry(input)
        return try runConvolution(input, batch: input.batch, geometry: g, kernel: kernel, packed: packed, winograd: winograd, bias: bias, activation: activation,
                              epilogue: epilogue, shape: [input.batch, g.rows.output, g.columns.output, g.filters])
    }

    /// On the implicit GEMM with the whole epilogue in the kernel's store and k in one chunk
    /// (`nnb_conv_packed`): there each block's addend is read right before its sums are written
    /// over it. Winograd, the im2col path and a chunked k would overwrite addends still unread.
    func run(_ input: Tensor, writingOver addend: inout [Float], position: Int) throws -> Tensor? {
        let g = try checkedGeometry(input)
        let count = input.batch * g.outputCount
        guard let packed, winograd == nil, g.groups == 1, addend.count == count, [.linear, .relu, .relu6].contains(activation),
              nnb_packed_k_chunk(g.filters, g.patchSize) >= g.patchSize else { return nil }
        let affine = normalization?.channelAffine()
        addend.withUnsafeMutableBufferPointer { output in
            let epilogue = OutputEpilogue(affine: affine, addends: [UnsafePointer(output.baseAddress!)], position: position, addendCount: count)
            input.data.withUnsafeBufferPointer { x in
                convolve2D(x, batch: input.batch, kernel.values, bias?.values, into: output, geometry: g, activation: activation,
                           epilogue: epilogue, packed: packed)
            }
        }
        return Tensor(shape: [input.batch, g.rows.output, g.columns.output, g.filters], data: addend)
    }
}

/// `Conv1D`: y = activation(conv(x, kernel) + bias) over time, channels last; the sequence may
/// have a run-time length.
///
/// Config: `filters`, `kernel_size`, `strides` (1), `padding` ("valid" | "same" | "causal"; causal
/// pads (kernel_size - 1)·dilation_rate steps before), `dilation_rate` (1), `groups` (1),
/// `activation` ("linear"), `use_bias` (true), `data_format` ("channels_last").
/// Weights: `kernel` (k, in / groups, filters), `bias` (filters).
public struct Conv1D: ConvolutionStore {
    let label: String
    let settings: ConvolutionSettings
    /// The sequence length the layer was built for, nil when it is known only at run time.
    let inputSteps: Int?
    let channels: Int
    public let kernel: Weight
    /// The kernel packed for the AVX2 GEMM at load (nil where that path does not run).
    let packed: PackedKernel?
    public let bias: Weight?
    public internal(set) var activation: Activation
    /// A BatchNormalization taken over (`ConvolutionStore`), applied before the activation.
    var normalization: BatchNormalization?
    public let outputShape: [Int?]
    var outputChannels: Int { settings.filters }

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(2, meaning: "(batch, steps, channels)")
        let channels = try context.inputDimension(1)
        let settings = try ConvolutionSettings.read(context, rank: 1, channels: channels, paddings: ["valid", "same", "causal"])
        var steps: Int?
        let length = context.inputShape[0]
        if let length = context.inputShape[0] {
            guard let window = settings.window(axis: 0, length: length) else {
                throw context.error("\(settings.misfit(axis: 0, length: length, unit: "steps")) (input \(describeShape(context.inputShape)))", key: "kernel_size")
            }
            steps = window.output
        }
        try context.sampleCount([steps, settings.filters], key: "filters")
        let activation = try Activation.from(context)
        let kernel = try convolutionKernel(context, shape: settings.kernelSize + [channels / settings.groups, settings.filters])
        let bias = try context.bool("use_bias", default: true) ? try context.weight("bias", shape: [settings.filters]) : nil
        // kh · (channels / groups), from the kernel the binder sized with a checked count.
        let patch = kernel.count / settings.filters
        return Conv1D(label: context.label, settings: settings, inputSteps: length, channels: channels, kernel: kernel,
                      packed: PackedKernel(kernel, patch: patch, filters: settings.filters, groups: settings.groups),
                      bias: bias, activation: activation, outputShape: [steps, settings.filters])
    }

    func run(_ input: Tensor, epilogue: OutputEpilogue) throws -> Tensor {
        guard input.shape.count == 3, input.shape[2] == channels, inputSteps == nil || input.shape[1] == inputSteps else {
            throw NNError(.input, label, "expects input of shape (batch, \(inputSteps.map(String.init) ?? "steps"), \(channels)), found \(input.shape)")
        }
        let length = input.shape[1]
        guard let columns = settings.window(axis: 0, length: length) else {
            throw NNError(.input, label, settings.misfit(axis: 0, length: length, unit: "steps"))
        }
        try ShapeMath.sampleCount([columns.output, settings.filters], at: label)
        let rows = WindowAxis(input: 1, size: 1, stride: 1, dilation: 1, padBefore: 0, output: 1)
        let geometry = ConvolutionGeometry(rows: rows, columns: columns, channels: channels, filters: settings.filters, groups: settings.groups)
        return try runConvolution(input, batch: input.batch, geometry: geometry, kernel: kernel, packed: packed, bias: bias,
                              activation: activation, epilogue: epilogue, shape: [input.batch, columns.output, settings.filters])
    }
}

/// What a convolution allocates besides its output: the zero-padded copy of the input that the
/// implicit GEMM reads (huge for a large dilation with padding "same"), counted on every kernel
/// path, Winograd's too, so that whether a model is accepted does not depend on the machine, and
/// the im2col columns of one chunk on the OpenBLAS path.
func convolutionScratch(batch: Int, geometry g: ConvolutionGeometry) -> Int {
    let padded = ShapeMath.saturatingProduct([batch, g.paddedImageCount()])
    let columns = g.isPointwise ? 0 : min(convolutionColumnLimit, ShapeMath.saturatingProduct([batch, g.rows.output, g.columns.output, g.patchSize]))
    return ShapeMath.saturatingSum(padded, columns)
}

extension Conv2D: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        let batch = input.first ?? 1
        guard let geometry = geometry(input) else { return WorkingSet(outputShape: [batch, 0, 0, settings.filters]) }
        let transformedKernel = winograd?.callScratch ?? 0
        return WorkingSet(outputShape: [batch, geometry.rows.output, geometry.columns.output, geometry.filters],
                          scratch: ShapeMath.saturatingSum(convolutionScratch(batch: batch, geometry: geometry),
                                                           transformedKernel),
                          scratchMeaning: transformedKernel > 0 ? "a zero-padded copy of the input and the transformed kernel"
                                                                : "a zero-padded copy of the input")
    }
}

extension Conv1D: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        let batch = input.first ?? 1
        let length = input.count > 1 ? input[1] : (inputSteps ?? 1)
        guard let columns = settings.window(axis: 0, length: length) else { return WorkingSet(outputShape: [batch, 0, settings.filters]) }
        let rows = WindowAxis(input: 1, size: 1, stride: 1, dilation: 1, padBefore: 0, output: 1)
        let geometry = ConvolutionGeometry(rows: rows, columns: columns, channels: channels, filters: settings.filters, groups: settings.groups)
        return WorkingSet(outputShape: [batch, columns.output, settings.filters],
                          scratch: convolutionScratch(batch: batch, geometry: geometry),
                          scratchMeaning: "a zero-padded copy of the input")
    }
}

/// Runs the convolution kernel, the epilogue and the activation into a new tensor of `shape`.
private func runConvolution(_ input: Tensor, batch: Int, geometry: ConvolutionGeometry, kernel: Weight, packed: PackedKernel?, winograd: WinogradKernel? = nil,
                            bias: Weight?, activation: Activation, epilogue: OutputEpilogue, shape: [Int]) throws -> Tensor {
    let count = batch * geometry.outputCount
    try epilogue.check(outputCount: count, shape: shape)
    let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        input.data.withUnsafeBufferPointer { x in
            convolve2D(x, batch: batch, kernel.values, bias?.values, into: buffer, geometry: geometry, activation: activation, epilogue: epilogue,
                       packed: packed, winograd: winograd)
        }
        initialized = count
    }
    return Tensor(shape: shape, data: data)
}

extension Builtins {
    static func registerConvolution(_ registry: LayerRegistry) {
        registry.register("Conv2D", aliases: ["Convolution2D"], origin: "builtin",
                          summary: "2-D convolution over (height, width) with strides, dilation, groups and valid/same padding.",
                          factory: channelsFirstCapable(Conv2D.factory))
        registry.register("Conv1D", aliases: ["Convolution1D"], origin: "builtin",
                          summary: "1-D convolution over time with strides, dilation, groups and valid/same/causal padding.",
                          factory: channelsFirstCapable(Conv1D.factory))
    }
}

/// A convolution that finishes each block of its output in its own pass, while the block is in
/// cache (`OutputEpilogue`): it takes over, in this order, a BatchNormalization of its channels,
/// a residual Add of its output with values already computed (`ResidualConvolution`), and an
/// element-wise activation (`AbsorbsActivation`), each only while nothing after it in that order
/// has been taken yet.
protocol ConvolutionStore: AbsorbsActivation {
    var normalization: BatchNormalization? { get set }
    /// The number of output channels (the last axis).
    var outputChannels: Int { get }
    /// The convolution with `epilogue` (and the normalization taken over) before its activation.
    func run(_ input: Tensor, epilogue: OutputEpilogue) throws -> Tensor
    /// `run(_:adding:at:)` with one addend, written over the addend's storage (which the caller
    /// owns, `ReusesInputStorage`), or nil (nothing written) where the kernel would overwrite
    /// addends it has not read yet.
    func run(_ input: Tensor, writingOver addend: inout [Float], position: Int) throws -> Tensor?
}

extension ConvolutionStore {
    public func forward(_ input: Tensor) throws -> Tensor { try run(input, adding: [], at: 0) }

    func run(_ input: Tensor, writingOver addend: inout [Float], position: Int) throws -> Tensor? { nil }

    /// The convolution, its normalization, the sum of its output with `addends` (its output at
    /// `position` among them, each of the output's shape) and its activation.
    func run(_ input: Tensor, adding addends: [Tensor], at position: Int) throws -> Tensor {
        let affine = normalization?.channelAffine()
        guard let count = addends.first?.data.count else { return try run(input, epilogue: OutputEpilogue(affine: affine)) }
        guard addends.allSatisfy({ $0.data.count == count }) else {
            throw NNError(.input, "call", "the addends of a fused sum have \(addends.map(\.data.count)) elements, expected one count")
        }
        return try withBaseAddresses(addends.map(\.data)) { pointers in
            try run(input, epilogue: OutputEpilogue(affine: affine, addends: pointers, position: position, addendCount: count))
        }
    }

    public func fusing(_ next: any NodeLayer, reading position: Int) -> (any NodeLayer)? {
        if let normalization = next as? BatchNormalization {
            guard activation == .linear, self.normalization == nil, normalization.normalizesLastAxis(features: outputChannels) else { return nil }
            var fused = self
            fused.normalization = normalization
            return fused
        }
        if let sum = next as? any SumOfInputs {
            guard activation == .linear, sum.sumsInputs, sum.outputShapes == outputShapes else { return nil }
            return ResidualConvolution(convolution: self, sum: sum, position: position)
        }
        guard position == 0, let unary = next as? any Layer else { return nil }
        return fusing(unary)
    }
}

/// A merge that sums its inputs left to right, as `OutputEpilogue` does: Add.
protocol SumOfInputs: NodeLayer {
    /// Whether the layer is a plain sum of its inputs (with broadcasting).
    var sumsInputs: Bool { get }
}

/// A convolution (`ConvolutionStore`) whose output is summed with values already computed, then
/// activated: Conv → (BatchNormalization →) Add → ReLU, the end of a ResNet block, in the
/// convolution's store. Called on the convolution's input followed by the sum's other inputs.
/// When an addend turns out at run time not to have the output's shape (it broadcasts) or to
/// carry a mask, the sum runs apart, as the layers would.
struct ResidualConvolution: FusesSuccessor {
    var convolution: any ConvolutionStore
    let sum: any SumOfInputs
    /// Where the convolution's output sits among the sum's inputs.
    let position: Int

    var outputShapes: [[Int?]] { convolution.outputShapes }

    func call(_ inputs: [Tensor]) throws -> [Tensor] {
        guard let input = inputs.first else { throw NNError(.input, "call", "a fused convolution was given no input tensor") }
        try input.checkConsistent("input")
        let addends = Array(inputs.dropFirst())
        let shape = convolution.plannedWorkingSets(inputs: [input.shape]).first?.outputShape
        guard addends.allSatisfy({ $0.mask == nil && $0.shape == shape }) else {
            var plain = convolution
            plain.activation = .linear
            var terms = addends
            terms.insert(try plain.apply(input), at: min(position, terms.count))
            guard var output = try sum.call(terms).first else { throw NNError(.input, "call", "the sum returned no output") }
            convolution.activation.apply(&output.data, axisLength: output.shape.last ?? 1)
            output.mask = nil
            return [output]
        }
        return [try convolution.run(input, adding: addends, at: position)]
    }

    func plannedWorkingSets(inputs: [[Int]]) -> [WorkingSet] {
        convolution.plannedWorkingSets(inputs: [inputs.first ?? [1]])
    }

    func fusing(_ next: any NodeLayer, reading position: Int) -> (any NodeLayer)? {
        guard position == 0, let unary = next as? any Layer, let activated = convolution.fusing(unary) as? any ConvolutionStore else { return nil }
        var fused = self
        fused.convolution = activated
        return fused
    }
}

/// The sum written over its one addend when nothing reads that after this call (a ResNet block's
/// shortcut): the block's output takes no memory of its own.
extension ResidualConvolution: ReusesInputStorage {
    func call(owning inputs: inout [Tensor], reusable: [Bool]) throws -> [Tensor] {
        guard inputs.count == 2, reusable.count == 2, reusable[1], inputs[1].mask == nil,
              inputs[1].shape == convolution.plannedWorkingSets(inputs: [inputs[0].shape]).first?.outputShape else { return try call(inputs) }
        try inputs[0].checkConsistent("input")
        // Out of `inputs`, the addend's array has no other reference, so writing over it copies nothing.
        var addend = inputs[1].data
        inputs[1].data = []
        if let output = try convolution.run(inputs[0], writingOver: &addend, position: position) { return [output] }
        inputs[1].data = addend
        return try call(inputs)
    }
}
