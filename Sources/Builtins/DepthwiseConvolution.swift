import CKernels
import LayerRegistry

// Depthwise and separable convolutions over 1 or 2 spatial axes, channels last, with strides,
// dilation, valid/same padding and spatial sizes that may be known only at run time.

/// What the depthwise and separable layers share: the windows, the input's spatial sizes as
/// built (nil = run time), its channels and the depth multiplier.
struct DepthwiseShape: Sendable {
    let windows: ConvolutionWindows
    let inputSize: [Int?]
    let channels: Int
    let multiplier: Int

    /// Reads `data_format`, `depth_multiplier` and the windows for a layer over `rank` spatial axes.
    static func read(_ context: LayerContext, rank: Int) throws -> DepthwiseShape {
        try context.requireRank(rank + 1, meaning: rank == 1 ? "(batch, steps, channels)" : "(batch, height, width, channels)")
        try requireChannelsLast(context)
        let channels = try context.inputDimension(rank)
        let multiplier = try context.positiveInt("depth_multiplier", default: 1)
        // Keras's TensorFlow backend runs strides with dilation by decomposing them: accepted.
        let windows = try ConvolutionWindows.read(context, rank: rank, paddings: ["valid", "same"], stridedDilation: true)
        return DepthwiseShape(windows: windows, inputSize: Array(context.inputShape.prefix(rank)), channels: channels, multiplier: multiplier)
    }

    /// The output's spatial sizes as built (nil = run time), or the misfit as a config error.
    func outputSize(_ context: LayerContext) throws -> [Int?] {
        switch windows.outputLengths(inputSize) {
        case let .success(sizes): return sizes
        case let .failure(message): throw context.error("\(message.text) (input \(describeShape(context.inputShape)))", key: "kernel_size")
        }
    }

    /// The windows over a run-time input of shape `input` (batch first), checked against the built shape.
    func geometry(_ input: [Int], label: String) throws -> VolumeGeometry {
        try checkInput(shape: input, built: inputSize + [channels], label: label)
        return try geometry(spatial: Array(input.dropFirst().prefix(inputSize.count)), label: label)
    }

    /// The windows over spatial sizes `spatial` (already checked).
    func geometry(spatial: [Int], label: String) throws -> VolumeGeometry {
        let geometry = try windows.axes(spatial, label: label)
        try ShapeMath.sampleCount(geometry.axes.map(\.output) + [channels, multiplier], at: label)
        return geometry
    }

    /// The spatial output sizes of a run-time input shape (batch first), empty sizes when the
    /// kernel does not fit.
    func outputSizes(_ input: [Int]) -> [Int] {
        let lengths = Array(input.dropFirst().prefix(inputSize.count))
        return lengths.enumerated().map { windows.window(axis: $0, length: $1)?.output ?? 0 }
    }
}

/// `DepthwiseConv1D` / `DepthwiseConv2D`: each input channel convolved with its own
/// `depth_multiplier` filters, y[..., c·M + m] = activation(Σ x[..., c]·kernel[..., c, m] + bias).
///
/// Config: `kernel_size`, `strides` (1), `padding` ("valid" | "same"), `dilation_rate` (1),
/// `depth_multiplier` (1), `activation` ("linear"), `use_bias` (true), `data_format` ("channels_last").
/// Weights: `kernel` (k..., in, depth_multiplier; `depthwise_kernel` in Keras 2's files), `bias` (in · depth_multiplier).
///
/// A BatchNormalization right after it (over the channels) is applied in the same store, as
/// `normalization`, and then an element-wise activation after that (`FusesNext`): MobileNet's
/// depthwise → BatchNormalization → ReLU6 is one pass over the output instead of three.
public struct DepthwiseConvolution: AbsorbsActivation {
    let label: String
    let shape: DepthwiseShape
    public let kernel: Weight
    public let bias: Weight?
    /// A folded BatchNormalization, y·scale + shift per output channel, before the activation.
    var normalization: ChannelScale?
    /// A ZeroPadding2D right before it, taken over (`SpatialPadding`'s `FusesNext`): its zeros
    /// are not written out; the kernel leaves their taps out, as it does for "same" padding.
    var padding: SpatialPadding?
    public internal(set) var activation: Activation
    public let outputShape: [Int?]

    static func factory(rank: Int) -> @Sendable (LayerContext) throws -> any Layer {
        { context in
            let shape = try DepthwiseShape.read(context, rank: rank)
            let outputSize = try shape.outputSize(context)
            try context.sampleCount(outputSize + [shape.channels, shape.multiplier], key: "depth_multiplier")
            let width = shape.channels * shape.multiplier
            let activation = try Activation.from(context)
            // (tf-keras, Keras 2, wrote it as `depthwise_kernel`.)
            let kernel = try context.weight("kernel", alsoNamed: ["depthwise_kernel"], shape: shape.windows.kernelSize + [shape.channels, shape.multiplier])
            let bias = try context.bool("use_bias", default: true) ? try context.weight("bias", shape: [width]) : nil
            return DepthwiseConvolution(label: context.label, shape: shape, kernel: kernel, bias: bias, normalization: nil,
                                        padding: nil, activation: activation, outputShape: outputSize + [width])
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard let g = try windows(over: input.shape) else {
            var plain = self
            plain.padding = nil
            return try plain.forward(padding?.forward(input) ?? input)
        }
        let width = shape.channels * shape.multiplier
        let count = input.batch * g.outputPixels * width
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                depthwiseConvolution(x, batch: input.batch, kernel.values, bias?.values, into: buffer, geometry: g,
                                     channels: shape.channels, multiplier: shape.multiplier, normalization: normalization,
                                     activation: activation)
            }
            initialized = count
        }
        return Tensor(shape: [input.batch] + g.axes.suffix(shape.inputSize.count).map(\.output) + [width], data: data)
    }
}

extension DepthwiseConvolution {
    /// The windows over an input of `shape` (batch first, checked against the layer), a fused
    /// padding read in place; nil when the padding cannot be read in place there (an empty
    /// spatial axis), where the layer pads first (`forward`).
    func windows(over shape: [Int]) throws -> VolumeGeometry? {
        guard let padding else { return try self.shape.geometry(shape, label: label) }
        guard let (spatial, padded) = try padding.paddedSizes(of: shape, channels: self.shape.channels) else { return nil }
        var g = try self.shape.geometry(spatial: padded, label: label)
        for axis in 0..<2 { g.axes[axis + 1] = padding.readingInPlace(g.axes[axis + 1], axis: axis, length: spatial[axis]) }
        return g
    }

    /// This layer run on the output of `pad`, a 2-D zero padding (no cropping) of its input, with
    /// the padding read in place; nil when it cannot.
    func absorbing(_ pad: SpatialPadding) -> DepthwiseConvolution? {
        guard padding == nil, normalization == nil, activation == .linear, shape.inputSize.count == 2, pad.amounts.count == 2,
              pad.amounts.allSatisfy({ $0.0 >= 0 && $0.1 >= 0 }), pad.outputShape.count == 3,
              pad.outputShape[2] == shape.channels else { return nil }
        var fused = self
        fused.padding = pad
        return fused
    }

    /// Takes over a BatchNormalization of its output channels while nothing else is fused (its
    /// activation still linear), else an element-wise activation (`AbsorbsActivation`'s rule).
    public func fusing(_ next: any Layer) -> (any Layer)? {
        guard activation == .linear, next.maskBehavior == .propagates else { return nil }
        if let norm = next as? BatchNormalization {
            guard normalization == nil, norm.normalizesLastAxis(features: shape.channels * shape.multiplier),
                  let (scale, shift) = norm.channelAffine() else { return nil }
            var fused = self
            fused.normalization = ChannelScale(scale: scale, shift: shift)
            return fused
        }
        guard let absorbed = (next as? any ElementwiseActivationLayer)?.elementwiseActivation, absorbed.isElementwise else { return nil }
        var fused = self
        fused.activation = absorbed
        return fused
    }
}

/// A per-channel y·scale + shift (a folded BatchNormalization) applied in a kernel's store.
package struct ChannelScale: Sendable, Equatable {
    package let scale: [Float]
    package let shift: [Float]

    package init(scale: [Float], shift: [Float]) {
        self.scale = scale
        self.shift = shift
    }
}

extension DepthwiseConvolution: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        // A fused padding's zeros are never written: the windows see the padded sizes.
        let seen = padding.map { $0.workingSet(input: input).outputShape } ?? input
        return WorkingSet(outputShape: [input.first ?? 1] + shape.outputSizes(seen) + [shape.channels * shape.multiplier])
    }
}

/// `SeparableConv1D` / `SeparableConv2D`: a depthwise convolution (no bias) then a pointwise
/// (1×1) convolution, y = activation(pointwise(depthwise(x)) + bias).
///
/// Config: `filters`, `kernel_size`, `strides` (1), `padding` ("valid" | "same"), `dilation_rate` (1),
/// `depth_multiplier` (1), `activation` ("linear"), `use_bias` (true), `data_format` ("channels_last").
/// Weights: `depthwise_kernel` (k..., in, depth_multiplier), `pointwise_kernel` (1..., in · depth_multiplier, filters),
/// `bias` (filters).
public struct SeparableConvolution: AbsorbsActivation {
    let label: String
    let shape: DepthwiseShape
    let filters: Int
    public let depthwiseKernel: Weight
    public let pointwiseKernel: Weight
    /// The pointwise kernel packed for the AVX2 GEMM at load (nil where that path does not run).
    let packed: PackedKernel?
    public let bias: Weight?
    public internal(set) var activation: Activation
    public let outputShape: [Int?]

    static func factory(rank: Int) -> @Sendable (LayerContext) throws -> any Layer {
        { context in
            let filters = try context.positiveInt("filters")
            let shape = try DepthwiseShape.read(context, rank: rank)
            let outputSize = try shape.outputSize(context)
            try context.sampleCount(outputSize + [shape.channels, shape.multiplier], of: "the depthwise result", key: "depth_multiplier")
            let width = shape.channels * shape.multiplier
            try context.sampleCount(outputSize + [filters], key: "filters")
            let activation = try Activation.from(context)
            let depthwise = try context.weight("depthwise_kernel", shape: shape.windows.kernelSize + [shape.channels, shape.multiplier])
            let pointwise = try context.weight("pointwise_kernel", shape: Array(repeating: 1, count: rank) + [width, filters])
            let bias = try context.bool("use_bias", default: true) ? try context.weight("bias", shape: [filters]) : nil
            return SeparableConvolution(label: context.label, shape: shape, filters: filters, depthwiseKernel: depthwise,
                                        pointwiseKernel: pointwise, packed: PackedKernel(pointwise, patch: width, filters: filters, groups: 1),
                                        bias: bias, activation: activation, outputShape: outputSize + [filters])
        }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let g = try shape.geometry(input.shape, label: label)
        try ShapeMath.sampleCount(g.axes.map(\.output) + [filters], at: label)
        let width = shape.channels * shape.multiplier, pixels = g.outputPixels
        let depthwise = [Float](unsafeUninitializedCapacity: input.batch * pixels * width) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                depthwiseConvolution(x, batch: input.batch, depthwiseKernel.values, nil, into: buffer, geometry: g,
                                     channels: shape.channels, multiplier: shape.multiplier)
            }
            initialized = buffer.count
        }
        // The pointwise step is a 1×1 convolution over the depthwise result, one row of pixels per image.
        let unit = WindowAxis(input: 1, size: 1, stride: 1, dilation: 1, padBefore: 0, output: 1)
        let row = WindowAxis(input: pixels, size: 1, stride: 1, dilation: 1, padBefore: 0, output: pixels)
        let pointwise = ConvolutionGeometry(rows: unit, columns: row, channels: width, filters: filters, groups: 1)
        let count = input.batch * pixels * filters
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            depthwise.withUnsafeBufferPointer { x in
                convolve2D(x, batch: input.batch, pointwiseKernel.values, bias?.values, into: buffer, geometry: pointwise,
                           activation: activation, packed: packed)
            }
            initialized = count
        }
        return Tensor(shape: [input.batch] + g.axes.suffix(shape.inputSize.count).map(\.output) + [filters], data: data)
    }
}

extension SeparableConvolution: PlansMemory {
    public func workingSet(input: [Int]) -> WorkingSet {
        let batch = input.first ?? 1, sizes = shape.outputSizes(input)
        return WorkingSet(outputShape: [batch] + sizes + [filters],
                          scratch: ShapeMath.saturatingProduct([batch] + sizes + [shape.channels, shape.multiplier]),
                          scratchMeaning: "the depthwise result")
    }
}

/// Depthwise convolution, then `normalization` (y·scale + shift per channel) and the activation,
/// on kernel path `path`: CKernels' direct kernel (`nnb_depthwise`, taps summed in registers,
/// bias, the normalization and ReLU / ReLU6 in its store) on the AVX2 and AVX-512 paths, split
/// over images × output rows; the portable `depthwiseConvolve` on the baseline path. Both sum each
/// output's taps in the same order whatever the batch, so a row's result never depends on it.
///
/// input [batch, D, H, W, C] · kernel [kd, kh, kw, C, M] + bias [C·M] → output [batch, oD, oH, oW, C·M]
/// (D = 1: the layers here have at most two spatial axes).
package func depthwiseConvolution(_ input: UnsafeBufferPointer<Float>, batch: Int, _ kernel: UnsafeBufferPointer<Float>,
                                  _ bias: UnsafeBufferPointer<Float>?, into output: UnsafeMutableBufferPointer<Float>,
                                  geometry g: VolumeGeometry, channels: Int, multiplier: Int, normalization: ChannelScale? = nil,
                                  activation: Activation = .linear, path: KernelPath = Gemm.kernelPath,
                                  splitWork: Int = depthwiseThreadedWork) {
    let width = channels * multiplier
    guard DepthwiseRows.runs(g, width: width, path: path) else {
        guard let normalization, let y = output.baseAddress, width > 0 else {
            depthwiseConvolve(input, batch: batch, kernel, bias, into: output, geometry: g, channels: channels,
                              multiplier: multiplier, activation: activation, splitWork: splitWork)
            return
        }
        // The portable path normalizes as BatchNormalization's own pass does, then activates.
        depthwiseConvolve(input, batch: batch, kernel, bias, into: output, geometry: g, channels: channels,
                          multiplier: multiplier, splitWork: splitWork)
        let count = min(output.count, batch * g.outputPixels * width)
        var index = 0
        while index + width <= count {
            for c in 0..<width { y[index + c] = y[index + c] * normalization.scale[c] + normalization.shift[c] }
            index += width
        }
        activation.apply(UnsafeMutableBufferPointer(start: y, count: count), axisLength: width)
        return
    }
    guard let x = input.baseAddress, kernel.baseAddress != nil, let y = output.baseAddress, batch > 0 else { return }
    withDepthwiseRows(kernel, bias, geometry: g, channels: channels, multiplier: multiplier, normalization: normalization,
                      activation: activation, path: path) { rows in
        let shared = UncheckedInOut(x: x, y: y)
        runInParts(batch * g.axes[1].output, work: ShapeMath.saturatingProduct([batch, g.outputPixels, g.taps, width]), splitWork: splitWork) { range in
            rows.run(shared.x, rows: g.axes[1], first: range.lowerBound, count: range.count, into: shared.y)
        }
    }
}

/// The direct depthwise kernel (`nnb_depthwise`) with one layer's kernel, bias, normalization and
/// activation, run on ranges of output rows: `depthwiseConvolution`'s AVX2 and AVX-512 path, and
/// `PointwiseDepthwise`'s, which gives it a few input rows at a time.
struct DepthwiseRows {
    let columns: WindowAxis
    let channels: Int
    let multiplier: Int
    let kernel: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    let scale: UnsafePointer<Float>?
    let shift: UnsafePointer<Float>?
    /// The activation the kernel's store applies, and the one applied after it on each range's rows.
    let fused: Int32
    let rest: Activation
    let level: Int32

    var width: Int { channels * multiplier }

    /// Whether the direct kernel runs geometry `g` with `width` output channels on `path`: AVX2
    /// or AVX-512, two spatial axes, and channels that fit the kernel's 32-bit lanes.
    static func runs(_ g: VolumeGeometry, width: Int, path: KernelPath) -> Bool {
        path >= .avx2 && width <= Int(Int32.max)
            && g.axes.count == 3 && g.axes[0] == WindowAxis(input: 1, size: 1, stride: 1, dilation: 1, padBefore: 0, output: 1)
    }

    /// Output rows first..<first+count, flat over images and the `rows` window's outputs, of the
    /// images at `x` (each `rows.input` rows of `columns.input` pixels), into their places at `y`.
    func run(_ x: UnsafePointer<Float>, rows: WindowAxis, first: Int, count: Int, into y: UnsafeMutablePointer<Float>) {
        nnb_depthwise(x, rows.input, columns.input, channels, multiplier, kernel, rows.size, columns.size,
                      rows.stride, columns.stride, rows.dilation, columns.dilation, rows.padBefore, columns.padBefore,
                      rows.output, columns.output, bias, scale, shift, fused, y, first, count, level)
        let rowLength = columns.output * width
        rest.apply(UnsafeMutableBufferPointer(start: y + first * rowLength, count: count * rowLength), axisLength: width)
    }
}

/// Calls `body` with the direct depthwise kernel for geometry `g` (two spatial axes, `g.axes[0]`
/// flat) on kernel path `path` (AVX2 or AVX-512); `kernel` is not empty.
func withDepthwiseRows<T>(_ kernel: UnsafeBufferPointer<Float>, _ bias: UnsafeBufferPointer<Float>?, geometry g: VolumeGeometry,
                          channels: Int, multiplier: Int, normalization: ChannelScale?, activation: Activation, path: KernelPath,
                          _ body: (DepthwiseRows) -> T) -> T {
    let fused: Int32
    switch activation {
    case .relu: fused = NNB_ACTIVATION_RELU
    case .relu6: fused = NNB_ACTIVATION_RELU6
    default: fused = NNB_ACTIVATION_LINEAR
    }
    // An activation the store does not apply runs on each range's rows while they are in cache.
    let rest: Activation = fused == NNB_ACTIVATION_LINEAR ? activation : .linear
    let scale = normalization?.scale ?? [], shift = normalization?.shift ?? []
    return scale.withUnsafeBufferPointer { scale in shift.withUnsafeBufferPointer { shift in
        body(DepthwiseRows(columns: g.axes[2], channels: channels, multiplier: multiplier,
                           kernel: kernel.baseAddress!, bias: bias?.baseAddress,
                           scale: normalization == nil ? nil : scale.baseAddress, shift: normalization == nil ? nil : shift.baseAddress,
                           fused: fused, rest: rest, level: Int32(path.rawValue)))
    }}
}

/// Below this many multiply-adds a depthwise convolution runs on one thread. Each of its
/// multiply-adds loads its own input, so it runs at about a quarter of a product's rate (32 against
/// 110-120 G/s on the AMD EPYC), and an eighth of `Gemm.threadedWork` is about as much time as
/// the quarter convolutions take (`convolutionThreadedWork`): MobileNetV2's 14×14 and 7×7
/// depthwise layers, 0.4-1 M multiply-adds each, ran on one thread under `Gemm.threadedWork`.
let depthwiseThreadedWork = Gemm.threadedWork / 8

extension Builtins {
    static func registerDepthwiseConvolution(_ registry: LayerRegistry) {
        registry.register("DepthwiseConv2D", origin: "builtin",
                          summary: "2-D depthwise convolution (depth_multiplier filters per channel) with strides, dilation and valid/same padding.",
                          factory: channelsFirstCapable(DepthwiseConvolution.factory(rank: 2)))
        registry.register("DepthwiseConv1D", origin: "builtin",
                          summary: "1-D depthwise convolution (depth_multiplier filters per channel) with strides, dilation and valid/same padding.",
                          factory: channelsFirstCapable(DepthwiseConvolution.factory(rank: 1)))
        registry.register("SeparableConv2D", aliases: ["SeparableConvolution2D"], origin: "builtin",
                          summary: "2-D depthwise then pointwise convolution with strides, dilation and valid/same padding.",
                          factory: channelsFirstCapable(SeparableConvolution.factory(rank: 2)))
        registry.register("SeparableConv1D", aliases: ["SeparableConvolution1D"], origin: "builtin",
                          summary: "1-D depthwise then pointwise convolution with strides, dilation and valid/same padding.",
                          factory: channelsFirstCapable(SeparableConvolution.factory(rank: 1)))
    }
}
