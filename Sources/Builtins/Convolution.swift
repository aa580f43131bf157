import LayerRegistry

// Convolution layers: Conv1D and Conv2D, channels last, with strides, dilation, groups and
// Keras's valid / same (/ causal) padding. Both run the im2col + GEMM kernel.

/// The window settings of a convolution along its spatial axes, read from a Keras config.
struct ConvolutionSettings: Sendable, Equatable {
    var kernelSize: [Int]
    var strides: [Int]
    var dilation: [Int]
    var padding: WindowPadding
    var filters: Int
    var groups: Int

    /// Reads `filters`, `kernel_size`, `strides`, `padding`, `dilation_rate`, `groups` and
    /// `data_format` for a convolution over `rank` spatial axes with `channels` input channels.
    static func read(_ context: LayerContext, rank: Int, channels: Int, paddings: [String]) throws -> ConvolutionSettings {
        try requireChannelsLast(context)
        let filters = try context.positiveInt("filters")
        let kernelSize = try context.positiveInts("kernel_size", count: rank)
        let strides = try context.positiveInts("strides", count: rank, default: Array(repeating: 1, count: rank))
        let dilation = try context.positiveInts("dilation_rate", count: rank, default: Array(repeating: 1, count: rank))
        let paddingName = try context.choice("padding", default: "valid", allowed: paddings)
        let groups = try context.positiveInt("groups", default: 1)
        if strides.contains(where: { $0 > 1 }) && dilation.contains(where: { $0 > 1 }) {
            throw context.error("strides \(strides) together with dilation_rate \(dilation) is not supported (Keras refuses strides > 1 with dilation_rate > 1); expected one of them to be 1", key: "dilation_rate")
        }
        guard filters % groups == 0 else {
            throw context.error("'filters' (\(filters)) must be divisible by 'groups' (\(groups))", key: "groups")
        }
        guard channels % groups == 0 else {
            throw context.error("the input's \(channels) channels must be divisible by 'groups' (\(groups)), found input \(describeShape(context.inputShape))", key: "groups")
        }
        return ConvolutionSettings(kernelSize: kernelSize, strides: strides, dilation: dilation,
                                   padding: WindowPadding(rawValue: paddingName) ?? .valid, filters: filters, groups: groups)
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
public struct Conv2D: AbsorbsActivation {
    let label: String
    let geometry: ConvolutionGeometry
    public let kernel: Weight
    /// The kernel packed for the AVX2 GEMM at load (nil where that path does not run).
    let packed: PackedKernel?
    /// A 3×3 kernel at stride 1 transformed for Winograd's algorithm instead (nil where it does not apply).
    let winograd: WinogradKernel?
    public let bias: Weight?
    public internal(set) var activation: Activation
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(3, meaning: "(batch, height, width, channels)")
        let height = try context.inputDimension(0), width = try context.inputDimension(1)
        let channels = try context.inputDimension(2)
        let settings = try ConvolutionSettings.read(context, rank: 2, channels: channels, paddings: ["valid", "same"])
        guard let rows = settings.window(axis: 0, length: height) else {
            throw context.error("\(settings.misfit(axis: 0, length: height, unit: "rows")) (input \(describeShape(context.inputShape)))", key: "kernel_size")
        }
        guard let columns = settings.window(axis: 1, length: width) else {
            throw context.error("\(settings.misfit(axis: 1, length: width, unit: "columns")) (input \(describeShape(context.inputShape)))", key: "kernel_size")
        }
        try context.sampleCount([rows.output, columns.output, settings.filters], key: "filters")
        let geometry = ConvolutionGeometry(rows: rows, columns: columns, channels: channels, filters: settings.filters, groups: settings.groups)
        let activation = try Activation.from(context)
        let kernel = try convolutionKernel(context, shape: settings.kernelSize + [channels / settings.groups, settings.filters])
        let bias = try context.bool("use_bias", default: true) ? try context.weight("bias", shape: [settings.filters]) : nil
        let winograd = WinogradKernel(kernel, geometry: geometry)
        return Conv2D(label: context.label, geometry: geometry, kernel: kernel,
                      packed: winograd != nil ? nil : PackedKernel(kernel, patch: geometry.patchSize, filters: settings.filters, groups: settings.groups),
                      winograd: winograd,
                      bias: bias, activation: activation, outputShape: [rows.output, columns.output, settings.filters])
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let g = geometry
        guard input.shape.count == 4, input.shape[1] == g.rows.input, input.shape[2] == g.columns.input, input.shape[3] == g.channels else {
            throw NNError(.input, label, "expects input of shape (batch, \(g.rows.input), \(g.columns.input), \(g.channels)), found \(input.shape)")
        }
        return runConvolution(input, batch: input.batch, geometry: g, kernel: kernel, packed: packed, winograd: winograd, bias: bias, activation: activation,
                              shape: [input.batch, g.rows.output, g.columns.output, g.filters])
    }
}

/// `Conv1D`: y = activation(conv(x, kernel) + bias) over time, channels last; the sequence may
/// have a run-time length.
///
/// Config: `filters`, `kernel_size`, `strides` (1), `padding` ("valid" | "same" | "causal"; causal
/// pads (kernel_size - 1)·dilation_rate steps before), `dilation_rate` (1), `groups` (1),
/// `activation` ("linear"), `use_bias` (true), `data_format` ("channels_last").
/// Weights: `kernel` (k, in / groups, filters), `bias` (filters).
public struct Conv1D: AbsorbsActivation {
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
    public let outputShape: [Int?]

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

    public func forward(_ input: Tensor) throws -> Tensor {
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
        return runConvolution(input, batch: input.batch, geometry: geometry, kernel: kernel, packed: packed, bias: bias,
                              activation: activation, shape: [input.batch, columns.output, settings.filters])
    }
}

/// What a convolution allocates besides its output: the zero-padded copy of the input that the
/// implicit GEMM and Winograd read (huge for a large dilation with padding "same"), counted on
/// every kernel path so that whether a model is accepted does not depend on the machine, and the
/// im2col columns of one chunk on the OpenBLAS path.
func convolutionScratch(batch: Int, geometry g: ConvolutionGeometry, winograd: Bool) -> Int {
    let padded = ShapeMath.saturatingProduct([batch, g.paddedImageCount(winograd: winograd)])
    let columns = g.isPointwise ? 0 : min(convolutionColumnLimit, ShapeMath.saturatingProduct([batch, g.rows.output, g.columns.output, g.patchSize]))
    return ShapeMath.saturatingSum(padded, columns)
}

extension Conv2D: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        let batch = input.first ?? 1
        return WorkingSet(outputShape: [batch, geometry.rows.output, geometry.columns.output, geometry.filters],
                          scratch: convolutionScratch(batch: batch, geometry: geometry, winograd: winograd != nil),
                          scratchMeaning: "a zero-padded copy of the input")
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
                          scratch: convolutionScratch(batch: batch, geometry: geometry, winograd: false),
                          scratchMeaning: "a zero-padded copy of the input")
    }
}

/// Runs the convolution kernel and the activation into a new tensor of `shape`.
private func runConvolution(_ input: Tensor, batch: Int, geometry: ConvolutionGeometry, kernel: Weight, packed: PackedKernel?, winograd: WinogradKernel? = nil,
                            bias: Weight?, activation: Activation, shape: [Int]) -> Tensor {
    let count = batch * geometry.outputCount
    let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        input.data.withUnsafeBufferPointer { x in
            convolve2D(x, batch: batch, kernel.values, bias?.values, into: buffer, geometry: geometry, activation: activation, packed: packed,
                       winograd: winograd)
        }
        initialized = count
    }
    return Tensor(shape: shape, data: data)
}

extension Builtins {
    static func registerConvolution(_ registry: LayerRegistry) {
        registry.register("Conv2D", aliases: ["Convolution2D"], origin: "builtin",
                          summary: "2-D convolution over (height, width) with strides, dilation, groups and valid/same padding.",
                          factory: Conv2D.factory)
        registry.register("Conv1D", aliases: ["Convolution1D"], origin: "builtin",
                          summary: "1-D convolution over time with strides, dilation, groups and valid/same/causal padding.",
                          factory: Conv1D.factory)
    }
}
