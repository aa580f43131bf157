import LayerRegistry

/// `ConvLSTM1D`, `ConvLSTM2D` and `ConvLSTM3D`: an LSTM whose input and recurrent projections are
/// convolutions and whose states are images (columns, filters), (rows, columns, filters) or
/// (depth, rows, columns, filters), channels last.
///
/// Each step: z = conv(x, kernel, strides, padding, dilation) + bias + conv(h, recurrent_kernel,
/// stride 1, "same"), gates i, f, c, o along the last axis as in LSTM; then per pixel exactly the
/// LSTM gate arithmetic (`LSTMCell.gates`, one row per pixel). It runs on the same sequence runner
/// as every recurrent layer (masks, go_backwards, return_sequences, return_state, initial_state),
/// with all steps' input convolutions done at once, and the convolutions are `convolve2D`'s
/// (a 1-D one is a 2-D one of height one; a 3-D one sums 2-D ones over the depth taps).
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
    /// The input convolution of one step's image, and the recurrent one of the state image (per
    /// depth plane for ConvLSTM3D, whose depth windows are `inputDepth` and `recurrentDepth`).
    let inputGeometry: ConvolutionGeometry
    let recurrentGeometry: ConvolutionGeometry
    let inputDepth: WindowAxis?
    let recurrentDepth: WindowAxis?
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
            let axes = ["columns, channels", "rows, columns, channels", "depth, rows, columns, channels"][rank - 1]
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
            let sequence = try SequenceOptions.read(context, rank: rank + 2, meaning: "(batch, steps, \(axes))")
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
            let inputRows = rank == 1 ? single : windows[rank - 2], inputColumns = windows[rank - 1]
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
                recurrentGeometry: ConvolutionGeometry(rows: rank == 1 ? single : recurrentAxes[rank - 2], columns: recurrentAxes[rank - 1],
                                                       channels: filters, filters: 4 * filters, groups: 1),
                inputDepth: rank == 3 ? windows[0] : nil, recurrentDepth: rank == 3 ? recurrentAxes[0] : nil,
                // The 3-D convolution reads kernel planes, not whole packed kernels.
                packedInput: rank == 3 ? nil : PackedKernel(kernel, patch: kernel.count / (4 * filters), filters: 4 * filters, groups: 1),
                packedRecurrent: rank == 3 ? nil : PackedKernel(recurrentKernel, patch: recurrentKernel.count / (4 * filters), filters: 4 * filters, groups: 1),
                inputStepShape: known, outputStepShape: outputImage)
            return try RecurrentCall.make(RecurrentLayer(cell: cell, options: sequence, context: context), returnState: sequence.returnState, context: context)
        }
    }

    /// images × [(D,) H, W, C] → images × [(D',) H', W', 4F] (bias added).
    func projectInputs(_ input: UnsafePointer<Float>, images: Int, into projected: UnsafeMutablePointer<Float>) {
        if let inputDepth {
            convolveDepthwisePlanes(input, images: images, kernel.values, inputBias?.values, into: projected, depth: inputDepth, plane: inputGeometry)
            return
        }
        convolve2D(UnsafeBufferPointer(start: input, count: images * inputGeometry.inputCount), batch: images, kernel.values, inputBias?.values,
                   into: UnsafeMutableBufferPointer(start: projected, count: images * gateWidth), geometry: inputGeometry, packed: packedInput)
    }

    /// The padded copy the implicit GEMM reads (or one im2col chunk without it), plus, for
    /// ConvLSTM3D, the gathered input planes and a plane's result.
    func convolutionScratch(images: Int, rows: Int) -> Int {
        func scratch(_ geometry: ConvolutionGeometry, depth: WindowAxis?, count: Int, packed: Bool) -> Int {
            let padded = packed ? ShapeMath.saturatingProduct([count, geometry.paddedImageCount()]) : convolutionColumnLimit
            let planes = depth == nil ? 0 : ShapeMath.saturatingProduct([count, ShapeMath.saturatingSum(geometry.inputCount, geometry.outputCount)])
            return ShapeMath.saturatingSum(padded, planes)
        }
        return max(scratch(inputGeometry, depth: inputDepth, count: images, packed: packedInput != nil),
                   scratch(recurrentGeometry, depth: recurrentDepth, count: rows, packed: packedRecurrent != nil))
    }

    func step(projected: UnsafeMutablePointer<Float>, states: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        let h = states, c = states + rows * units
        // scratch = conv(h, recurrent_kernel): rows × [(D',) H', W', 4F].
        if let recurrentDepth {
            convolveDepthwisePlanes(h, images: rows, recurrentKernel.values, nil, into: scratch, depth: recurrentDepth, plane: recurrentGeometry)
        } else {
            convolve2D(UnsafeBufferPointer(start: h, count: rows * units), batch: rows, recurrentKernel.values, nil,
                       into: UnsafeMutableBufferPointer(start: scratch, count: rows * gateWidth), geometry: recurrentGeometry, packed: packedRecurrent)
        }
        for index in 0..<(rows * gateWidth) { projected[index] += scratch[index] }
        LSTMCell.gates(projected, h: h, c: c, rows: rows * pixels, units: filters, activation: activation, recurrentActivation: recurrentActivation)
    }
}

/// A 3-D convolution as a sum of 2-D ones: output plane d' gets, for each depth tap t reading
/// input plane d' · stride − padBefore + t · dilation (when inside), `convolve2D` of that plane with
/// the kernel's plane t. Keras's padding along depth is `depth`'s, as along the other axes.
///
/// input [images, D, H, W, C] · kernel [kd, kh, kw, C, F] + bias [F] → output [images, D', H', W', F]
package func convolveDepthwisePlanes(_ input: UnsafePointer<Float>, images: Int, _ kernel: UnsafeBufferPointer<Float>, _ bias: UnsafeBufferPointer<Float>?,
                             into output: UnsafeMutablePointer<Float>, depth: WindowAxis, plane: ConvolutionGeometry) {
    guard let w = kernel.baseAddress, images > 0 else { return }
    let inPlane = plane.inputCount, outPlane = plane.outputCount, tap = plane.patchSize * plane.filters
    var gathered = [Float](repeating: 0, count: images * inPlane), result = [Float](repeating: 0, count: images * outPlane)
    for outDepth in 0..<depth.output {
        for image in 0..<images {
            let target = output + (image * depth.output + outDepth) * outPlane
            if let bias {
                for pixel in 0..<(outPlane / plane.filters) { (target + pixel * plane.filters).update(from: bias.baseAddress!, count: plane.filters) }
            } else {
                target.update(repeating: 0, count: outPlane)
            }
        }
        for t in 0..<depth.size {
            let inDepth = outDepth * depth.stride - depth.padBefore + t * depth.dilation
            guard inDepth >= 0, inDepth < depth.input else { continue }
            gathered.withUnsafeMutableBufferPointer { g in
                for image in 0..<images {
                    (g.baseAddress! + image * inPlane).update(from: input + (image * depth.input + inDepth) * inPlane, count: inPlane)
                }
            }
            gathered.withUnsafeBufferPointer { g in
                result.withUnsafeMutableBufferPointer { r in
                    convolve2D(g, batch: images, UnsafeBufferPointer(start: w + t * tap, count: tap), nil, into: r, geometry: plane)
                }
            }
            for image in 0..<images {
                let target = output + (image * depth.output + outDepth) * outPlane
                for index in 0..<outPlane { target[index] += result[image * outPlane + index] }
            }
        }
    }
}

/// The naive twin of `convolveDepthwisePlanes`: a direct 3-D convolution accumulated in double
/// precision, kept for tests.
///
/// input [images, D, H, W, C] · kernel [kd, kh, kw, C, F] + bias [F] → output [images, D', H', W', F]
package func naiveConvolve3D(_ input: [Float], images: Int, _ kernel: [Float], _ bias: [Float]?, depth: WindowAxis, plane g: ConvolutionGeometry) -> [Float] {
    let axes = [depth, g.rows, g.columns], channels = g.channels, filters = g.filters
    var output = [Float](repeating: 0, count: images * depth.output * g.outputCount)
    for image in 0..<images {
        for od in 0..<axes[0].output {
            for oh in 0..<axes[1].output {
                for ow in 0..<axes[2].output {
                    for f in 0..<filters {
                        var sum = Double(bias?[f] ?? 0)
                        for td in 0..<axes[0].size {
                            let id = od * axes[0].stride - axes[0].padBefore + td * axes[0].dilation
                            guard id >= 0, id < axes[0].input else { continue }
                            for th in 0..<axes[1].size {
                                let ih = oh * axes[1].stride - axes[1].padBefore + th * axes[1].dilation
                                guard ih >= 0, ih < axes[1].input else { continue }
                                for tw in 0..<axes[2].size {
                                    let iw = ow * axes[2].stride - axes[2].padBefore + tw * axes[2].dilation
                                    guard iw >= 0, iw < axes[2].input else { continue }
                                    for c in 0..<channels {
                                        let x = input[(((image * axes[0].input + id) * axes[1].input + ih) * axes[2].input + iw) * channels + c]
                                        let w = kernel[(((td * axes[1].size + th) * axes[2].size + tw) * channels + c) * filters + f]
                                        sum += Double(x) * Double(w)
                                    }
                                }
                            }
                        }
                        output[(((image * axes[0].output + od) * axes[1].output + oh) * axes[2].output + ow) * filters + f] = Float(sum)
                    }
                }
            }
        }
    }
    return output
}

extension Builtins {
    static func registerConvLSTM(_ registry: LayerRegistry) {
        registry.register("ConvLSTM1D", origin: "builtin", summary: "LSTM with 1-D convolutions for its input and recurrent projections.",
                          savedChildren: .made("cell", className: "ConvLSTMCell", name: "conv_lstm_cell"), factory: channelsFirstCapable(channelAxis: 1, ConvLSTMCell.factory(rank: 1)))
        registry.register("ConvLSTM2D", origin: "builtin", summary: "LSTM with 2-D convolutions for its input and recurrent projections.",
                          savedChildren: .made("cell", className: "ConvLSTMCell", name: "conv_lstm_cell"), factory: channelsFirstCapable(channelAxis: 1, ConvLSTMCell.factory(rank: 2)))
        registry.register("ConvLSTM3D", origin: "builtin", summary: "LSTM with 3-D convolutions for its input and recurrent projections.",
                          savedChildren: .made("cell", className: "ConvLSTMCell", name: "conv_lstm_cell"), factory: channelsFirstCapable(channelAxis: 1, ConvLSTMCell.factory(rank: 3)))
    }
}
