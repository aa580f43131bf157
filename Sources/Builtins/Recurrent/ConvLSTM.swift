import LayerRegistry

/// `ConvLSTM1D` and `ConvLSTM2D`: an LSTM whose input and recurrent projections are convolutions
/// and whose states are images (columns, filters) or (rows, columns, filters), channels last.
///
/// Each step: z = conv(x, kernel, strides, padding, dilation) + bias + conv(h, recurrent_kernel,
/// stride 1, "same"), gates i, f, c, o along the last axis as in LSTM; then per pixel exactly the
/// LSTM gate arithmetic (`LSTMCell.gates`, one row per pixel). It runs on the same sequence runner
/// as every recurrent layer (masks, go_backwards, return_sequences, return_state, initial_state),
/// with all steps' input convolutions done at once, and the convolutions are `convolve2D`'s
/// (a 1-D one is a 2-D one of height one).
///
/// Config: `filters`, `kernel_size`, `strides` (1), `padding` ("valid" | "same"), `dilation_rate`
/// (1), `data_format` ("channels_last"), `activation` ("tanh"), `recurrent_activation` ("sigmoid"),
/// `use_bias` (true), and the sequence options of every recurrent layer.
/// Weights: `kernel` (k..., channels, 4·filters), `recurrent_kernel` (k..., filters, 4·filters), `bias` (4·filters).
struct ConvLSTMCell: SpatialRecurrentCell {
    let filters: Int
    /// Output pixels per step.
    let pixels: Int
    let kernel: Weight
    let recurrentKernel: Weight
    let inputBias: Weight?
    let activation: Activation
    let recurrentActivation: Activation
    /// The input convolution of one step's image, and the recurrent one of the state image.
    let inputGeometry: ConvolutionGeometry
    let recurrentGeometry: ConvolutionGeometry
    let packedInput: PackedKernel?
    let packedRecurrent: PackedKernel?
    let inputStepShape: [Int]
    let outputStepShape: [Int]

    var units: Int { pixels * filters }
    var gateWidth: Int { pixels * 4 * filters }
    var stateCount: Int { 2 }
    var stateShapes: [[Int]] { [outputStepShape, outputStepShape] }
    var scratchPerRow: Int { gateWidth }

    /// The factory of ConvLSTM`rank`D.
    static func factory(rank: Int) -> @Sendable (LayerContext) throws -> any NodeLayer {
        { context in
            let axes = rank == 1 ? "columns, channels" : "rows, columns, channels"
            let sequence = try SequenceOptions.read(context, rank: rank + 2, meaning: "(batch, steps, \(axes))")
            try requireChannelsLast(context)
            let filters = try context.positiveInt("filters", maximum: 1 << 16)
            let kernelSize = try context.positiveInts("kernel_size", count: rank)
            let strides = try context.positiveInts("strides", count: rank, default: Array(repeating: 1, count: rank))
            let dilation = try context.positiveInts("dilation_rate", count: rank, default: Array(repeating: 1, count: rank))
            let padding = WindowPadding(rawValue: try context.choice("padding", default: "valid", allowed: ["valid", "same"])) ?? .valid
            if strides.contains(where: { $0 > 1 }) && dilation.contains(where: { $0 > 1 }) {
                throw context.error("strides \(strides) together with dilation_rate \(dilation) is not supported (Keras refuses strides > 1 with dilation_rate > 1); expected one of them to be 1", key: "dilation_rate")
            }
            let cellOptions = try CellOptions.read(context, defaultRecurrent: "sigmoid", unitsKey: nil)
            // Spatial sizes must be known when the model is built.
            let image = Array(context.inputShape.dropFirst())
            let known = image.compactMap { $0 }
            guard known.count == image.count else {
                throw context.error("the image axes of the input must be known when the model is built, found input \(describeShape(context.inputShape)) (a None image size is not supported)")
            }
            let channels = known[rank]
            var windows: [WindowAxis] = []
            for axis in 0..<rank {
                guard let window = WindowAxis.place(input: known[axis], size: kernelSize[axis], stride: strides[axis], dilation: dilation[axis], padding: padding) else {
                    let span = (kernelSize[axis] - 1) * dilation[axis] + 1
                    throw context.error("the kernel spans \(span) cells along image axis \(axis) but the input has \(known[axis]) with padding \"valid\"; expected at least \(span) or padding \"same\" (input \(describeShape(context.inputShape)))", key: "kernel_size")
                }
                windows.append(window)
            }
            let outputImage = windows.map(\.output) + [filters]
            _ = try context.sampleCount(outputImage.map(Optional.some), of: "each step's output", key: "filters")
            _ = try context.sampleCount((windows.map(\.output) + [4 * filters]).map(Optional.some), of: "each step's gate projections", key: "filters")
            let kernel = try context.weight("kernel", shape: kernelSize + [channels, 4 * filters])
            let recurrentKernel = try context.weight("recurrent_kernel", shape: kernelSize + [filters, 4 * filters])
            let bias = cellOptions.useBias ? try context.weight("bias", shape: [4 * filters]) : nil
            let single = WindowAxis(input: 1, size: 1, stride: 1, dilation: 1, padBefore: 0, output: 1)
            let inputRows = rank == 1 ? single : windows[0], inputColumns = windows[rank - 1]
            var recurrentAxes: [WindowAxis] = []
            for axis in 0..<rank {
                // Keras's recurrent convolution: stride 1, no dilation, "same" padding: always fits.
                guard let window = WindowAxis.place(input: windows[axis].output, size: kernelSize[axis], stride: 1, dilation: 1, padding: .same) else {
                    throw context.error("the recurrent kernel does not fit the state image \(describeShape(outputImage.map(Optional.some)))", key: "kernel_size")
                }
                recurrentAxes.append(window)
            }
            let cell = ConvLSTMCell(
                filters: filters, pixels: ShapeMath.saturatingProduct(windows.map(\.output)), kernel: kernel, recurrentKernel: recurrentKernel,
                inputBias: bias, activation: cellOptions.activation, recurrentActivation: cellOptions.recurrentActivation,
                inputGeometry: ConvolutionGeometry(rows: inputRows, columns: inputColumns, channels: channels, filters: 4 * filters, groups: 1),
                recurrentGeometry: ConvolutionGeometry(rows: rank == 1 ? single : recurrentAxes[0], columns: recurrentAxes[rank - 1],
                                                       channels: filters, filters: 4 * filters, groups: 1),
                packedInput: PackedKernel(kernel, patch: kernel.count / (4 * filters), filters: 4 * filters, groups: 1),
                packedRecurrent: PackedKernel(recurrentKernel, patch: recurrentKernel.count / (4 * filters), filters: 4 * filters, groups: 1),
                inputStepShape: known, outputStepShape: outputImage)
            return try RecurrentCall.make(RecurrentLayer(cell: cell, options: sequence, context: context), returnState: sequence.returnState, context: context)
        }
    }

    /// images × [H, W, C] → images × [H', W', 4F] (bias added).
    func projectInputs(_ input: UnsafePointer<Float>, images: Int, into projected: UnsafeMutablePointer<Float>) {
        convolve2D(UnsafeBufferPointer(start: input, count: images * inputGeometry.inputCount), batch: images, kernel.values, inputBias?.values,
                   into: UnsafeMutableBufferPointer(start: projected, count: images * gateWidth), geometry: inputGeometry, packed: packedInput)
    }

    func step(projected: UnsafeMutablePointer<Float>, states: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        let h = states, c = states + rows * units
        // scratch = conv(h, recurrent_kernel): rows × [H', W', 4F].
        convolve2D(UnsafeBufferPointer(start: h, count: rows * units), batch: rows, recurrentKernel.values, nil,
                   into: UnsafeMutableBufferPointer(start: scratch, count: rows * gateWidth), geometry: recurrentGeometry, packed: packedRecurrent)
        for index in 0..<(rows * gateWidth) { projected[index] += scratch[index] }
        LSTMCell.gates(projected, h: h, c: c, rows: rows * pixels, units: filters, activation: activation, recurrentActivation: recurrentActivation)
    }
}

extension Builtins {
    static func registerConvLSTM(_ registry: LayerRegistry) {
        registry.register("ConvLSTM1D", origin: "builtin", summary: "LSTM with 1-D convolutions for its input and recurrent projections.",
                          factory: ConvLSTMCell.factory(rank: 1))
        registry.register("ConvLSTM2D", origin: "builtin", summary: "LSTM with 2-D convolutions for its input and recurrent projections.",
                          factory: ConvLSTMCell.factory(rank: 2))
    }
}
