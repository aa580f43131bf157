import LayerRegistry

/// `Conv3D`: y = activation(conv(x, kernel) + bias) over (depth, height, width), channels last;
/// spatial sizes may be known only at run time.
///
/// Config: `filters`, `kernel_size`, `strides` (1), `padding` ("valid" | "same"), `dilation_rate` (1),
/// `groups` (1), `activation` ("linear"), `use_bias` (true), `data_format` ("channels_last").
/// Weights: `kernel` (kd, kh, kw, in / groups, filters), `bias` (filters).
public struct Conv3D: ConvolutionStore {
    let label: String
    let settings: ConvolutionSettings
    /// The (depth, height, width) the layer was built for, nil where known only at run time.
    let inputSize: [Int?]
    let channels: Int
    public let kernel: Weight
    public let bias: Weight?
    public internal(set) var activation: Activation
    /// A BatchNormalization taken over (`ConvolutionStore`), applied before the activation.
    var normalization: BatchNormalization?
    public let outputShape: [Int?]
    var outputChannels: Int { settings.filters }

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(4, meaning: "(batch, depth, height, width, channels)")
        let channels = try context.inputDimension(3)
        let settings = try ConvolutionSettings.read(context, rank: 3, channels: channels, paddings: ["valid", "same"])
        let inputSize = Array(context.inputShape.prefix(3))
        let outputSize: [Int?]
        switch settings.windows.outputLengths(inputSize) {
        case let .success(sizes): outputSize = sizes
        case let .failure(message): throw context.error("\(message.text) (input \(describeShape(context.inputShape)))", key: "kernel_size")
        }
        try context.sampleCount(outputSize + [settings.filters], key: "filters")
        let activation = try Activation.from(context)
        let kernel = try convolutionKernel(context, shape: settings.kernelSize + [channels / settings.groups, settings.filters])
        let bias = try context.bool("use_bias", default: true) ? try context.weight("bias", shape: [settings.filters]) : nil
        return Conv3D(label: context.label, settings: settings, inputSize: inputSize, channels: channels, kernel: kernel, bias: bias,
                      activation: activation, outputShape: outputSize + [settings.filters])
    }

    func run(_ input: Tensor, epilogue: OutputEpilogue) throws -> Tensor {
        try checkInput(input, built: inputSize + [channels], label: label)
        let g = try settings.windows.axes(Array(input.shape[1...3]), label: label)
        try ShapeMath.sampleCount(g.axes.map(\.output) + [settings.filters], at: label)
        let count = input.batch * g.outputPixels * settings.filters
        try epilogue.check(outputCount: count, shape: [input.batch] + g.axes.map(\.output) + [settings.filters])
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                // The direct kernel applies an activation alone; with an epilogue both follow in one
                // pass over the output.
                directConvolve(x, batch: input.batch, kernel.values, bias?.values, into: buffer, geometry: g, channels: channels,
                               filters: settings.filters, groups: settings.groups, activation: epilogue.isEmpty ? activation : .linear)
                if !epilogue.isEmpty, let y = buffer.baseAddress {
                    epilogue.finish(y, pixels: 0..<(input.batch * g.outputPixels), channels: settings.filters, activation: activation)
                }
            }
            initialized = count
        }
        return Tensor(shape: [input.batch] + g.axes.map(\.output) + [settings.filters], data: data)
    }
}

extension Conv3D: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        let sizes = input.dropFirst().prefix(3).enumerated().map { settings.window(axis: $0, length: $1)?.output ?? 0 }
        return WorkingSet(outputShape: [input.first ?? 1] + sizes + [settings.filters])
    }
}

extension Builtins {
    static func registerConvolution3D(_ registry: LayerRegistry) {
        registry.register("Conv3D", aliases: ["Convolution3D"], origin: "builtin",
                          summary: "3-D convolution over (depth, height, width) with strides, dilation, groups and valid/same padding.",
                          factory: channelsFirstCapable(Conv3D.factory))
    }
}
