import LayerRegistry

// Direct convolution kernels over up to three spatial axes (depth, rows, columns), channels last:
// depthwise, transposed and grouped 3-D convolutions. Each output pixel gathers its taps through
// per-axis tap tables, and the innermost loop runs over contiguous output channels.

/// The spatial axes of a convolution as three axes (depth, rows, columns): a 1-D or 2-D
/// convolution has 1-cell leading axes with 1-tap windows.
package struct VolumeGeometry: Sendable, Equatable {
    package var axes: [WindowAxis]

    /// `axes` (one to three, outermost first), padded in front with 1-cell axes.
    package init(_ axes: [WindowAxis]) {
        let unit = WindowAxis(input: 1, size: 1, stride: 1, dilation: 1, padBefore: 0, output: 1)
        self.axes = Array(repeating: unit, count: max(0, 3 - axes.count)) + axes.suffix(3)
    }

    // Saturating: the layers check the element counts (ShapeMath.sampleCount) before a kernel runs.
    package var inputPixels: Int { ShapeMath.saturatingProduct(axes.map(\.input)) }
    package var outputPixels: Int { ShapeMath.saturatingProduct(axes.map(\.output)) }
    package var taps: Int { ShapeMath.saturatingProduct(axes.map(\.size)) }
}

/// For each position along one axis, the (tap, source position) pairs that reach it, in
/// compressed rows: pairs `starts[p]..<starts[p + 1]` of `taps` and `sources`. A transposed
/// convolution reads a convolution's table backwards: input i sends tap t to output `sources`.
struct TapTable: Sendable {
    var starts: [Int] = [0]
    var taps: [Int] = []
    var sources: [Int] = []

    /// A convolution's: output o reads input o·stride − padBefore + t·dilation.
    init(convolution a: WindowAxis) {
        for o in 0..<a.output {
            for t in 0..<a.size {
                let i = o * a.stride - a.padBefore + t * a.dilation
                if i >= 0, i < a.input { taps.append(t); sources.append(i) }
            }
            starts.append(taps.count)
        }
    }
}

/// The pointers every slice of one direct convolution reads (and writes, each its own pixels).
private struct DirectPointers: @unchecked Sendable {
    let x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>
}

/// Runs `accumulate(out, in, tap)` for every (input pixel, tap) reaching each output pixel of the
/// batch, after filling the `width` channels of `out` with the bias (or zeros), then applies the
/// activation, split across threads as `runInParts` decides. Inlined so that each caller's
/// `accumulate` is inlined into the loop instead of called per tap.
@inline(__always)
private func gather(_ p: DirectPointers, batch: Int, tables: [TapTable], inputSizes: [Int], outputSizes: [Int],
                    kernelSizes: [Int], inputWidth: Int, width: Int, work: Int, activation: Activation, splitWork: Int,
                    _ accumulate: @escaping @Sendable (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void) {
    let perImage = outputSizes[0] * outputSizes[1] * outputSizes[2]
    let inputPerImage = inputSizes[0] * inputSizes[1] * inputSizes[2]
    let pixels = batch * perImage
    let run = { @Sendable (range: Range<Int>) in
        let t0 = tables[0], t1 = tables[1], t2 = tables[2]
        for pixel in range {
            let image = pixel / perImage
            var rest = pixel - image * perImage
            let o2 = rest % outputSizes[2]
            rest /= outputSizes[2]
            let o1 = rest % outputSizes[1], o0 = rest / outputSizes[1]
            let out = p.y + pixel * width
            if let bias = p.bias { out.update(from: bias, count: width) } else { out.update(repeating: 0, count: width) }
            let imageBase = p.x + image * inputPerImage * inputWidth
            for a in t0.starts[o0]..<t0.starts[o0 + 1] {
                for b in t1.starts[o1]..<t1.starts[o1 + 1] {
                    let rowSource = (t0.sources[a] * inputSizes[1] + t1.sources[b]) * inputSizes[2]
                    let rowTap = (t0.taps[a] * kernelSizes[1] + t1.taps[b]) * kernelSizes[2]
                    for c in t2.starts[o2]..<t2.starts[o2 + 1] {
                        accumulate(out, imageBase + (rowSource + t2.sources[c]) * inputWidth, rowTap + t2.taps[c])
                    }
                }
            }
        }
        activation.apply(UnsafeMutableBufferPointer(start: p.y + range.lowerBound * width, count: range.count * width), axisLength: width)
    }
    runInParts(pixels, work: work, splitWork: splitWork, run)
}

/// Depthwise convolution: each input channel c convolved with its own `multiplier` filters,
/// output channel c·multiplier + m, then bias and activation.
///
/// input [batch, D, H, W, C] · kernel [kd, kh, kw, C, M] + bias [C·M] → output [batch, oD, oH, oW, C·M]
package func depthwiseConvolve(_ input: UnsafeBufferPointer<Float>, batch: Int, _ kernel: UnsafeBufferPointer<Float>,
                               _ bias: UnsafeBufferPointer<Float>?, into output: UnsafeMutableBufferPointer<Float>,
                               geometry g: VolumeGeometry, channels: Int, multiplier: Int, activation: Activation = .linear,
                               splitWork: Int = Gemm.threadedWork) {
    guard let x = input.baseAddress, let w = kernel.baseAddress, let y = output.baseAddress, batch > 0 else { return }
    let width = channels * multiplier
    let pointers = DirectPointers(x: x, w: w, bias: bias?.baseAddress, y: y)
    gather(pointers, batch: batch, tables: g.axes.map(TapTable.init(convolution:)), inputSizes: g.axes.map(\.input),
           outputSizes: g.axes.map(\.output), kernelSizes: g.axes.map(\.size), inputWidth: channels, width: width,
           work: ShapeMath.saturatingProduct([batch, g.outputPixels, g.taps, width]), activation: activation, splitWork: splitWork) { out, source, tap in
        let weights = pointers.w + tap * width
        if multiplier == 1 {
            for c in 0..<width { out[c] += source[c] * weights[c] }
        } else {
            for c in 0..<channels {
                let value = source[c]
                for m in 0..<multiplier { out[c * multiplier + m] += value * weights[c * multiplier + m] }
            }
        }
    }
}

/// Grouped convolution over three axes by direct gathering: output filter f of group
/// f / (F/groups) sums its group's channels over every tap.
///
/// input [batch, D, H, W, C] · kernel [kd, kh, kw, C/groups, F] + bias [F] → output [batch, oD, oH, oW, F]
package func directConvolve(_ input: UnsafeBufferPointer<Float>, batch: Int, _ kernel: UnsafeBufferPointer<Float>,
                            _ bias: UnsafeBufferPointer<Float>?, into output: UnsafeMutableBufferPointer<Float>,
                            geometry g: VolumeGeometry, channels: Int, filters: Int, groups: Int, activation: Activation = .linear,
                            splitWork: Int = Gemm.threadedWork) {
    guard let x = input.baseAddress, let w = kernel.baseAddress, let y = output.baseAddress, batch > 0 else { return }
    let pointers = DirectPointers(x: x, w: w, bias: bias?.baseAddress, y: y)
    let groupChannels = channels / groups, groupFilters = filters / groups
    gather(pointers, batch: batch, tables: g.axes.map(TapTable.init(convolution:)), inputSizes: g.axes.map(\.input),
           outputSizes: g.axes.map(\.output), kernelSizes: g.axes.map(\.size), inputWidth: channels, width: filters,
           work: ShapeMath.saturatingProduct([batch, g.outputPixels, g.taps, groupChannels, filters]), activation: activation, splitWork: splitWork) { out, source, tap in
        accumulateProduct(out, source, pointers.w + tap * groupChannels * filters, groupChannels: groupChannels,
                          groupFilters: groupFilters, filters: filters, groups: groups)
    }
}

/// Transposed convolution (the adjoint of a convolution) as one GEMM and a scatter: a chunk of
/// input pixels times the kernel gives every tap's contribution, columns [pixels, taps·F], which
/// are added where each tap lands (col2im), then bias and activation. `g`'s axes are the forward
/// convolutions from this layer's output to its input (axis.input output cells, axis.output input
/// cells); `kernel` is Keras's kernel rearranged at load to [C, taps, F] (`transposedKernelColumns`).
/// The column buffer holds at most `columnLimit` floats (at least one pixel's).
///
/// input [batch, D, H, W, C] · kernel [C, kd·kh·kw, F] + bias [F] → output [batch, oD, oH, oW, F]
package func transposedConvolve(_ input: UnsafeBufferPointer<Float>, batch: Int, _ kernel: UnsafeBufferPointer<Float>,
                                _ bias: UnsafeBufferPointer<Float>?, into output: UnsafeMutableBufferPointer<Float>,
                                geometry g: VolumeGeometry, channels: Int, filters: Int, activation: Activation = .linear,
                                columnLimit: Int = convolutionColumnLimit) {
    guard let x = input.baseAddress, let w = kernel.baseAddress, let y = output.baseAddress, batch > 0 else { return }
    let outputPerImage = g.inputPixels, inputPerImage = g.outputPixels
    for pixel in 0..<(batch * outputPerImage) {
        if let b = bias?.baseAddress { (y + pixel * filters).update(from: b, count: filters) } else { (y + pixel * filters).update(repeating: 0, count: filters) }
    }
    // Where input position i sends tap t: output i·stride − padBefore + t·dilation, as a convolution's table.
    let tables = g.axes.map(TapTable.init(convolution:))
    let sizes = g.axes.map(\.output), outputSizes = g.axes.map(\.input), kernelSizes = g.axes.map(\.size)
    let taps = g.taps, row = taps * filters
    let pixels = batch * inputPerImage
    let chunk = max(1, min(pixels, columnLimit / max(row, 1)))
    let columns = UnsafeMutablePointer<Float>.allocate(capacity: chunk * row)
    defer { columns.deallocate() }
    var first = 0
    while first < pixels {
        let count = min(chunk, pixels - first)
        Gemm.gemm(x + first * channels, w, columns, m: count, n: row, k: channels)
        for local in 0..<count {
            let pixel = first + local
            let image = pixel / inputPerImage
            var rest = pixel - image * inputPerImage
            let i2 = rest % sizes[2]
            rest /= sizes[2]
            let i1 = rest % sizes[1], i0 = rest / sizes[1]
            let source = columns + local * row
            let imageBase = y + image * outputPerImage * filters
            let t0 = tables[0], t1 = tables[1], t2 = tables[2]
            for a in t0.starts[i0]..<t0.starts[i0 + 1] {
                for b in t1.starts[i1]..<t1.starts[i1 + 1] {
                    let rowTarget = (t0.sources[a] * outputSizes[1] + t1.sources[b]) * outputSizes[2]
                    let rowTap = (t0.taps[a] * kernelSizes[1] + t1.taps[b]) * kernelSizes[2]
                    for c in t2.starts[i2]..<t2.starts[i2 + 1] {
                        let target = imageBase + (rowTarget + t2.sources[c]) * filters
                        let contribution = source + (rowTap + t2.taps[c]) * filters
                        for f in 0..<filters { target[f] += contribution[f] }
                    }
                }
            }
        }
        first += count
    }
    activation.apply(UnsafeMutableBufferPointer(start: y, count: batch * outputPerImage * filters), axisLength: filters)
}

/// out[F] += source[C] · weights[C/groups, F], block-diagonal over groups.
@inline(__always)
private func accumulateProduct(_ out: UnsafeMutablePointer<Float>, _ source: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                               groupChannels: Int, groupFilters: Int, filters: Int, groups: Int) {
    for group in 0..<groups {
        let target = out + group * groupFilters
        for c in 0..<groupChannels {
            let value = source[group * groupChannels + c]
            let row = weights + c * filters + group * groupFilters
            for f in 0..<groupFilters { target[f] += value * row[f] }
        }
    }
}

/// Keras's transposed-convolution kernel [taps, F, C] as [C, taps, F], the right-hand matrix
/// [C, taps·F] of `transposedConvolve`'s product.
package func transposedKernelColumns(_ kernel: UnsafeBufferPointer<Float>, taps: Int, filters: Int, channels: Int) -> [Float] {
    var result = [Float](repeating: 0, count: taps * filters * channels)
    for tap in 0..<taps {
        for f in 0..<filters {
            for c in 0..<channels { result[(c * taps + tap) * filters + f] = kernel[(tap * filters + f) * channels + c] }
        }
    }
    return result
}

// MARK: Naive twins, kept for tests: plain loops over the window positions, in double precision.

/// The naive twin of `depthwiseConvolve` (no activation).
package func naiveDepthwiseConvolve(_ x: [Float], batch: Int, _ w: [Float], _ bias: [Float]?, geometry g: VolumeGeometry,
                                    channels: Int, multiplier: Int) -> [Float] {
    let a = g.axes, width = channels * multiplier
    var y = [Float](repeating: 0, count: batch * g.outputPixels * width)
    for n in 0..<batch {
        for o0 in 0..<a[0].output { for o1 in 0..<a[1].output { for o2 in 0..<a[2].output {
            for c in 0..<channels { for m in 0..<multiplier {
                var sum = Double(bias?[c * multiplier + m] ?? 0)
                for t0 in 0..<a[0].size { for t1 in 0..<a[1].size { for t2 in 0..<a[2].size {
                    let i0 = o0 * a[0].stride - a[0].padBefore + t0 * a[0].dilation
                    let i1 = o1 * a[1].stride - a[1].padBefore + t1 * a[1].dilation
                    let i2 = o2 * a[2].stride - a[2].padBefore + t2 * a[2].dilation
                    guard (0..<a[0].input).contains(i0), (0..<a[1].input).contains(i1), (0..<a[2].input).contains(i2) else { continue }
                    let xv = x[(((n * a[0].input + i0) * a[1].input + i1) * a[2].input + i2) * channels + c]
                    let wv = w[(((t0 * a[1].size + t1) * a[2].size + t2) * channels + c) * multiplier + m]
                    sum += Double(xv) * Double(wv)
                }}}
                y[(((n * a[0].output + o0) * a[1].output + o1) * a[2].output + o2) * width + c * multiplier + m] = Float(sum)
            }}
        }}}
    }
    return y
}

/// The naive twin of `directConvolve` (no activation).
package func naiveDirectConvolve(_ x: [Float], batch: Int, _ w: [Float], _ bias: [Float]?, geometry g: VolumeGeometry,
                                 channels: Int, filters: Int, groups: Int) -> [Float] {
    let a = g.axes, groupChannels = channels / groups, groupFilters = filters / groups
    var y = [Float](repeating: 0, count: batch * g.outputPixels * filters)
    for n in 0..<batch {
        for o0 in 0..<a[0].output { for o1 in 0..<a[1].output { for o2 in 0..<a[2].output {
            for f in 0..<filters {
                let group = f / groupFilters
                var sum = Double(bias?[f] ?? 0)
                for t0 in 0..<a[0].size { for t1 in 0..<a[1].size { for t2 in 0..<a[2].size {
                    let i0 = o0 * a[0].stride - a[0].padBefore + t0 * a[0].dilation
                    let i1 = o1 * a[1].stride - a[1].padBefore + t1 * a[1].dilation
                    let i2 = o2 * a[2].stride - a[2].padBefore + t2 * a[2].dilation
                    guard (0..<a[0].input).contains(i0), (0..<a[1].input).contains(i1), (0..<a[2].input).contains(i2) else { continue }
                    for c in 0..<groupChannels {
                        let xv = x[(((n * a[0].input + i0) * a[1].input + i1) * a[2].input + i2) * channels + group * groupChannels + c]
                        let wv = w[(((t0 * a[1].size + t1) * a[2].size + t2) * groupChannels + c) * filters + f]
                        sum += Double(xv) * Double(wv)
                    }
                }}}
                y[(((n * a[0].output + o0) * a[1].output + o1) * a[2].output + o2) * filters + f] = Float(sum)
            }
        }}}
    }
    return y
}

/// The naive twin of `transposedConvolve` (no activation), as a scatter: every input pixel adds
/// kernel[tap] · x to output position i·stride − padBefore + t·dilation. Reads Keras's own kernel
/// layout [kd, kh, kw, F, C].
package func naiveTransposedConvolve(_ x: [Float], batch: Int, _ w: [Float], _ bias: [Float]?, geometry g: VolumeGeometry,
                                     channels: Int, filters: Int) -> [Float] {
    let a = g.axes
    var sums = [Double](repeating: 0, count: batch * g.inputPixels * filters)
    for n in 0..<batch {
        for i0 in 0..<a[0].output { for i1 in 0..<a[1].output { for i2 in 0..<a[2].output {
            for t0 in 0..<a[0].size { for t1 in 0..<a[1].size { for t2 in 0..<a[2].size {
                let o0 = i0 * a[0].stride - a[0].padBefore + t0 * a[0].dilation
                let o1 = i1 * a[1].stride - a[1].padBefore + t1 * a[1].dilation
                let o2 = i2 * a[2].stride - a[2].padBefore + t2 * a[2].dilation
                guard (0..<a[0].input).contains(o0), (0..<a[1].input).contains(o1), (0..<a[2].input).contains(o2) else { continue }
                let out = (((n * a[0].input + o0) * a[1].input + o1) * a[2].input + o2) * filters
                for f in 0..<filters {
                    for c in 0..<channels {
                        let xv = x[(((n * a[0].output + i0) * a[1].output + i1) * a[2].output + i2) * channels + c]
                        let wv = w[(((t0 * a[1].size + t1) * a[2].size + t2) * filters + f) * channels + c]
                        sums[out + f] += Double(xv) * Double(wv)
                    }
                }
            }}}
        }}}
    }
    return sums.enumerated().map { Float($1 + Double(bias?[$0 % filters] ?? 0)) }
}
