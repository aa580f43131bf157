import LayerRegistry

// Transposed convolutions over 1, 2 or 3 spatial axes, channels last: the adjoint of a
// convolution, with output_padding, strides, dilation and valid/same padding, sized exactly as
// Keras's compute_conv_transpose_output_shape and run as TensorFlow's conv_transpose.

/// The windows of a transposed convolution plus its `output_padding` (empty = None).
struct TransposedWindows: Sendable {
    let windows: ConvolutionWindows
    let outputPadding: [Int]

    /// Keras's output length along `axis` for an input of `length` (span = (k − 1)·d + 1):
    /// valid: (length − 1)·s + span + (output_padding ?? max(span, s) − span);
    /// same: length·s without output_padding, else (length − 1)·s + span mod 2 + output_padding.
    func outputLength(axis: Int, length: Int) -> Int {
        let stride = windows.strides[axis]
        let span = (windows.kernelSize[axis] - 1) * windows.dilation[axis] + 1
        let padding = outputPadding.isEmpty ? nil : outputPadding[axis]
        // Saturating: `axis` refuses a length past any tensor before it is used.
        let stretched = ShapeMath.saturatingProduct([max(length - 1, 0), stride])
        switch windows.padding {
        case .same:
            guard let padding else { return ShapeMath.saturatingProduct([length, stride]) }
            return ShapeMath.saturatingSum(stretched, span % 2, padding)
        default:
            return ShapeMath.saturatingSum(stretched, span, padding ?? max(span, stride) - span)
        }
    }

    /// The forward convolution from an output of Keras's length back to an input of `length`,
    /// padded as TensorFlow pads it, or why TensorFlow would refuse the pair.
    func axis(_ axis: Int, length: Int) -> Result<WindowAxis, MisfitMessage> {
        let output = outputLength(axis: axis, length: length)
        guard output <= 1 << 48 else {
            return .failure(MisfitMessage(text: "an input of \(length) along spatial axis \(axis + 1) gives an output of \(output) cells with strides \(windows.strides[axis]), more than any tensor may hold"))
        }
        guard output > 0, let forward = windows.window(axis: axis, length: output), forward.output == length else {
            return .failure(MisfitMessage(text: "an input of \(length) along spatial axis \(axis + 1) gives an output of \(output), which a convolution with kernel_size \(windows.kernelSize[axis]), strides \(windows.strides[axis]) and padding \"\(windows.padding.rawValue)\" does not map back to \(length) (TensorFlow refuses it); expected another output_padding"))
        }
        return .success(forward)
    }
}

/// `Conv1DTranspose` / `Conv2DTranspose` / `Conv3DTranspose`: y = activation(conv_transpose(x, kernel) + bias).
///
/// Config: `filters`, `kernel_size`, `strides` (1), `padding` ("valid" | "same"), `output_padding`
/// (None; each value below its stride), `dilation_rate` (1), `activation` ("linear"), `use_bias` (true),
/// `data_format` ("channels_last").
/// Weights: `kernel` (k..., filters, in), `bias` (filters).
public struct TransposedConvolution: AbsorbsActivation {
    let label: String
    let settings: TransposedWindows
    /// The spatial sizes the layer was built for, nil where known only at run time.
    let inputSize: [Int?]
    let channels: Int
    let filters: Int
    public let kernel: Weight
    /// `kernel` as [in, taps, filters], the right-hand matrix of the kernel's product.
    let transposed: [Float]
    public let bias: Weight?
    public internal(set) var activation: Activation
    public let outputShape: [Int?]

    static func factory(rank: Int) -> @Sendable (LayerContext) throws -> any Layer {
        { context in
            let meaning = ["(batch, steps, channels)", "(batch, height, width, channels)", "(batch, depth, height, width, channels)"][rank - 1]
            try context.requireRank(rank + 1, meaning: meaning)
            try requireChannelsLast(context)
            let channels = try context.inputDimension(rank)
            let filters = try context.positiveInt("filters")
            let windows = try ConvolutionWindows.read(context, rank: rank, paddings: ["valid", "same"])
            let outputPadding = try context.ints("output_padding", count: rank, default: [])
            for (axis, padding) in outputPadding.enumerated() where padding < 0 || padding >= windows.strides[axis] {
                throw context.error("'output_padding' \(outputPadding) must hold values from 0 to below 'strides' \(windows.strides) (Keras refuses others), found \(padding) along spatial axis \(axis + 1)", key: "output_padding")
            }
            let settings = TransposedWindows(windows: windows, outputPadding: outputPadding)
            let inputSize = Array(context.inputShape.prefix(rank))
            var outputSize: [Int?] = []
            for (axis, length) in inputSize.enumerated() {
                guard let length else { outputSize.append(nil); continue }
                switch settings.axis(axis, length: length) {
                case let .success(forward): outputSize.append(forward.input)
                case let .failure(message): throw context.error(message.text, key: "output_padding")
                }
            }
            try context.sampleCount(outputSize + [filters], key: "filters")
            let activation = try Activation.from(context)
            let kernel = try context.weight("kernel", shape: windows.kernelSize + [filters, channels])
            let bias = try context.bool("use_bias", default: true) ? try context.weight("bias", shape: [filters]) : nil
            let taps = kernel.count / max(filters * channels, 1)
            return TransposedConvolution(label: context.label, settings: settings, inputSize: inputSize, channels: channels, filters: filters,
                                         kernel: kernel, transposed: transposedKernelColumns(kernel.values, taps: taps, filters: filters, channels: channels),
                                         bias: bias, activation: activation, outputShape: outputSize + [filters])
        }
    }

    /// The forward convolutions of a run-time input (batch first), nil when TensorFlow would refuse it.
    func geometry(_ input: [Int]) -> Result<VolumeGeometry, MisfitMessage> {
        var axes: [WindowAxis] = []
        for (axis, length) in input.dropFirst().prefix(inputSize.count).enumerated() {
            switch settings.axis(axis, length: length) {
            case let .success(forward): axes.append(forward)
            case let .failure(message): return .failure(message)
            }
        }
        return .success(VolumeGeometry(axes))
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputSize + [channels], label: label)
        let g: VolumeGeometry
        switch geometry(input.shape) {
        case let .success(geometry): g = geometry
        case let .failure(message): throw NNError(.input, label, message.text)
        }
        try ShapeMath.sampleCount(g.axes.map(\.input) + [filters], at: label)
        let count = input.batch * g.inputPixels * filters
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                transposed.withUnsafeBufferPointer { w in
                    transposedConvolve(x, batch: input.batch, w, bias?.values, into: buffer, geometry: g, channels: channels,
                                       filters: filters, activation: activation)
                }
            }
            initialized = count
        }
        return Tensor(shape: [input.batch] + g.axes.suffix(inputSize.count).map(\.input) + [filters], data: data)
    }
}

extension TransposedConvolution: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        let lengths = Array(input.dropFirst().prefix(inputSize.count))
        let sizes = lengths.enumerated().map { settings.outputLength(axis: $0, length: $1) }
        let row = ShapeMath.saturatingProduct(settings.windows.kernelSize + [filters])
        let pixels = ShapeMath.saturatingProduct([input.first ?? 1] + lengths)
        return WorkingSet(outputShape: [input.first ?? 1] + sizes + [filters],
                          scratch: min(ShapeMath.saturatingProduct([pixels, row]), max(convolutionColumnLimit, row)),
                          scratchMeaning: "the columns of every tap's contribution")
    }
}

extension Builtins {
    static func registerTransposedConvolution(_ registry: LayerRegistry) {
        for rank in 1...3 {
            registry.register("Conv\(rank)DTranspose", aliases: ["Convolution\(rank)DTranspose"], origin: "builtin",
                              summary: "\(rank)-D transposed convolution with output_padding, strides, dilation and valid/same padding.",
                              factory: channelsFirstCapable(TransposedConvolution.factory(rank: rank)))
        }
    }
}
