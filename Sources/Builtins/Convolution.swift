import LayerRegistry

/// `Conv2D` and `Conv1D`: y = activation(conv(x, kernel) + bias), channels-last, as im2col + GEMM.
///
/// Config: `filters`, `kernel_size`, `strides` (1), `padding` ("valid"; "same"; Conv1D also
/// "causal"), `dilation_rate` (1), `groups` (1), `use_bias` (true), `activation` ("linear").
/// Weights: `kernel` (kh, kw, in/groups, filters) — (k, in/groups, filters) for Conv1D — and `bias` (filters).
public struct Convolution: Layer {
    public let rank: Int
    public let filters: Int
    public let groups: Int
    public let channels: Int
    public let kernelSize: [Int]
    public let strides: [Int]
    public let dilation: [Int]
    public let padding: String
    public let kernel: Weight
    public let bias: Weight?
    public let activation: Activation
    public let outputShape: [Int?]

    static func factory(rank: Int) -> LayerFactory {
        { context in
            let meaning = rank == 2 ? "(batch, height, width, channels)" : "(batch, steps, channels)"
            try context.requireRank(rank + 1, meaning: meaning)
            if context.has("data_format"), try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"]) != "channels_last" {
                throw context.error("data_format \"channels_first\" is not supported; nnbuild runs channels_last models", key: "data_format")
            }
            let filters = try context.positiveInt("filters", maximum: 1 << 20)
            let kernelSize = try context.positiveInts("kernel_size", count: rank)
            let strides = try context.positiveInts("strides", count: rank, default: Array(repeating: 1, count: rank))
            let dilation = try context.positiveInts("dilation_rate", count: rank, default: Array(repeating: 1, count: rank))
            let padding = try context.choice("padding", default: "valid", allowed: rank == 1 ? ["valid", "same", "causal"] : ["valid", "same"])
            if strides.contains(where: { $0 > 1 }) && dilation.contains(where: { $0 > 1 }) {
                throw context.error("strides \(strides) > 1 together with dilation_rate \(dilation) > 1 is not allowed (as in Keras)", key: "strides")
            }
            let groups = try context.positiveInt("groups", default: 1)
            let channels = try context.inputDimension(-1)
            guard channels % groups == 0, filters % groups == 0 else {
                throw context.error("groups \(groups) must divide both the input channels (\(channels)) and filters (\(filters))", key: "groups")
            }
            let activation = try Activation.from(context)
            let kernel = try context.weight("kernel", shape: kernelSize + [channels / groups, filters])
            let bias = try context.bool("use_bias", default: true) ? try context.weight("bias", shape: [filters]) : nil
            var spatial: [Int?] = Array(context.inputShape.dropLast())
            for axis in 0..<rank {
                guard let size = spatial[axis] else {
                    guard rank == 1 else { throw context.error("needs known height and width, found \(describeShape(context.inputShape))") }
                    continue
                }
                let geometry = WindowGeometry.make(input: (1, size), kernel: (1, kernelSize[axis]), strides: (1, strides[axis]),
                                                   dilation: (1, dilation[axis]), padding: padding)
                guard geometry.isValid else {
                    throw context.error("kernel_size \(kernelSize[axis]) (dilation \(dilation[axis])) does not fit input size \(size) with padding \"\(padding)\" (input \(describeShape(context.inputShape)))", key: "kernel_size")
                }
                spatial[axis] = geometry.outputWidth
            }
            return Convolution(rank: rank, filters: filters, groups: groups, channels: channels, kernelSize: kernelSize, strides: strides,
                               dilation: dilation, padding: padding, kernel: kernel, bias: bias, activation: activation,
                               outputShape: spatial + [filters])
        }
    }

    func geometry(height: Int, width: Int) -> WindowGeometry {
        rank == 2
            ? WindowGeometry.make(input: (height, width), kernel: (kernelSize[0], kernelSize[1]), strides: (strides[0], strides[1]),
                                  dilation: (dilation[0], dilation[1]), padding: padding)
            : WindowGeometry.make(input: (1, width), kernel: (1, kernelSize[0]), strides: (1, strides[0]), dilation: (1, dilation[0]), padding: padding)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let height = rank == 2 ? input.shape[1] : 1
        let width = input.shape[rank]
        let g = geometry(height: height, width: width)
        guard g.isValid else {
            throw NNError(.input, "Conv\(rank)D", "kernel \(kernelSize) does not fit an input of shape \(input.shape)")
        }
        let outputShape = [input.batch] + (rank == 2 ? [g.outputHeight, g.outputWidth] : [g.outputWidth]) + [filters]
        var output = [Float](repeating: 0, count: outputShape.reduce(1, *))
        input.data.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                ConvolutionKernels.convolve(x.baseAddress!, batch: input.batch, channels: channels, kernel: kernel.values.baseAddress!,
                                            bias: bias?.values.baseAddress, filters: filters, groups: groups, geometry: g, output: y.baseAddress!)
                activation.apply(y, axisLength: filters)
            }
        }
        return Tensor(shape: outputShape, data: output)
    }
}

extension Builtins {
    static func registerConvolution(_ registry: LayerRegistry) {
        registry.register("Conv2D", aliases: ["Convolution2D"], origin: "builtin", summary: "2-D convolution (channels last), as im2col + GEMM.",
                          factory: Convolution.factory(rank: 2))
        registry.register("Conv1D", aliases: ["Convolution1D"], origin: "builtin", summary: "1-D convolution over time; padding valid, same or causal.",
                          factory: Convolution.factory(rank: 1))
    }
}
