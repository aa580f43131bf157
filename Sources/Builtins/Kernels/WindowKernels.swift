/// The geometry of a 2-D sliding window over channels-last data (1-D uses height 1): sizes,
/// strides, dilation and explicit padding on each side.
public struct WindowGeometry: Sendable, Equatable {
    public var inputHeight, inputWidth: Int
    public var kernelHeight, kernelWidth: Int
    public var strideHeight, strideWidth: Int
    public var dilationHeight, dilationWidth: Int
    public var padTop, padBottom, padLeft, padRight: Int

    public var outputHeight: Int { (inputHeight + padTop + padBottom - ((kernelHeight - 1) * dilationHeight + 1)) / strideHeight + 1 }
    public var outputWidth: Int { (inputWidth + padLeft + padRight - ((kernelWidth - 1) * dilationWidth + 1)) / strideWidth + 1 }

    /// Whether the window fits the padded input at least once.
    public var isValid: Bool {
        inputHeight + padTop + padBottom >= (kernelHeight - 1) * dilationHeight + 1
            && inputWidth + padLeft + padRight >= (kernelWidth - 1) * dilationWidth + 1
    }

    /// Keras's padding: "valid" (none), "same" (output = ceil(input / stride), the extra cell on
    /// the bottom/right), or "causal" (1-D: everything on the left).
    public static func make(input: (Int, Int), kernel: (Int, Int), strides: (Int, Int), dilation: (Int, Int), padding: String) -> WindowGeometry {
        func pads(_ size: Int, _ k: Int, _ s: Int, _ d: Int) -> (Int, Int) {
            switch padding {
            case "same":
                let output = (size + s - 1) / s
                let total = max((output - 1) * s + (k - 1) * d + 1 - size, 0)
                return (total / 2, total - total / 2)
            case "causal":
                return ((k - 1) * d, 0)
            default:
                return (0, 0)
            }
        }
        let (top, bottom) = pads(input.0, kernel.0, strides.0, dilation.0)
        let (left, right) = pads(input.1, kernel.1, strides.1, dilation.1)
        return WindowGeometry(inputHeight: input.0, inputWidth: input.1, kernelHeight: kernel.0, kernelWidth: kernel.1,
                              strideHeight: strides.0, strideWidth: strides.1, dilationHeight: dilation.0, dilationWidth: dilation.1,
                              padTop: top, padBottom: bottom, padLeft: left, padRight: right)
    }
}

/// Convolution kernels: im2col + GEMM, and a direct naive twin.
public enum ConvolutionKernels {
    /// Largest im2col buffer, in floats; larger batches are processed in slices.
    static let columnBudget = 1 << 22

    /// output[b, oh, ow, f] = bias[f] + Σ input[b, ih, iw, g·cg + c] · kernel[kh, kw, c, f]
    /// input (batch, H, W, C), kernel (KH, KW, C/groups, F), output (batch, OH, OW, F).
    public static func convolve(_ input: UnsafePointer<Float>, batch: Int, channels: Int,
                                kernel: UnsafePointer<Float>, bias: UnsafePointer<Float>?, filters: Int, groups: Int,
                                geometry g: WindowGeometry, output: UnsafeMutablePointer<Float>) {
        let outH = g.outputHeight, outW = g.outputWidth
        let groupChannels = channels / groups, groupFilters = filters / groups
        let depth = g.kernelHeight * g.kernelWidth * groupChannels
        let pixels = outH * outW
        let direct = g.kernelHeight == 1 && g.kernelWidth == 1 && g.strideHeight == 1 && g.strideWidth == 1
            && g.padTop + g.padBottom + g.padLeft + g.padRight == 0 && groups == 1
        if let bias {
            for row in 0..<(batch * pixels) { (output + row * filters).update(from: bias, count: filters) }
        }
        if direct {
            cblasGemm(input, lda: channels, kernel, ldb: filters, output, ldc: filters, m: batch * pixels, n: filters, k: channels, accumulate: bias != nil)
            return
        }
        let slice = max(1, min(batch, columnBudget / max(pixels * depth, 1)))
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: slice * pixels * depth)
        defer { columns.deallocate() }
        var start = 0
        while start < batch {
            let count = min(slice, batch - start)
            for group in 0..<groups {
                im2col(input + start * g.inputHeight * g.inputWidth * channels, batch: count, channels: channels,
                       firstChannel: group * groupChannels, groupChannels: groupChannels, geometry: g, columns: columns)
                cblasGemm(columns, lda: depth, kernel + group * groupFilters, ldb: filters,
                          output + start * pixels * filters + group * groupFilters, ldc: filters,
                          m: count * pixels, n: groupFilters, k: depth, accumulate: bias != nil)
            }
            start += count
        }
    }

    /// Rows of `depth = KH·KW·groupChannels` values, one row per output pixel; padded cells are 0.
    static func im2col(_ input: UnsafePointer<Float>, batch: Int, channels: Int, firstChannel: Int, groupChannels: Int,
                       geometry g: WindowGeometry, columns: UnsafeMutablePointer<Float>) {
        let outH = g.outputHeight, outW = g.outputWidth
        var row = columns
        for b in 0..<batch {
            let image = input + b * g.inputHeight * g.inputWidth * channels
            for oh in 0..<outH {
                for ow in 0..<outW {
                    for kh in 0..<g.kernelHeight {
                        let ih = oh * g.strideHeight - g.padTop + kh * g.dilationHeight
                        for kw in 0..<g.kernelWidth {
                            let iw = ow * g.strideWidth - g.padLeft + kw * g.dilationWidth
                            if ih >= 0, ih < g.inputHeight, iw >= 0, iw < g.inputWidth {
                                row.update(from: image + (ih * g.inputWidth + iw) * channels + firstChannel, count: groupChannels)
                            } else {
                                row.update(repeating: 0, count: groupChannels)
                            }
                            row += groupChannels
                        }
                    }
                }
            }
        }
    }

    /// The naive twin of `convolve`: direct loops in double precision.
    public static func naiveConvolve(_ input: [Float], batch: Int, channels: Int, kernel: [Float], bias: [Float]?, filters: Int,
                                     groups: Int, geometry g: WindowGeometry) -> [Float] {
        let outH = g.outputHeight, outW = g.outputWidth
        let groupChannels = channels / groups, groupFilters = filters / groups
        var output = [Float](repeating: 0, count: batch * outH * outW * filters)
        for b in 0..<batch {
            for oh in 0..<outH {
                for ow in 0..<outW {
                    for f in 0..<filters {
                        let group = f / groupFilters
                        var sum = Double(bias?[f] ?? 0)
                        for kh in 0..<g.kernelHeight {
                            for kw in 0..<g.kernelWidth {
                                let ih = oh * g.strideHeight - g.padTop + kh * g.dilationHeight
                                let iw = ow * g.strideWidth - g.padLeft + kw * g.dilationWidth
                                guard ih >= 0, ih < g.inputHeight, iw >= 0, iw < g.inputWidth else { continue }
                                for c in 0..<groupChannels {
                                    let x = input[((b * g.inputHeight + ih) * g.inputWidth + iw) * channels + group * groupChannels + c]
                                    let w = kernel[((kh * g.kernelWidth + kw) * groupChannels + c) * filters + f]
                                    sum += Double(x) * Double(w)
                                }
                            }
                        }
                        output[((b * outH + oh) * outW + ow) * filters + f] = Float(sum)
                    }
                }
            }
        }
        return output
    }
}

/// Pooling kernels over channels-last windows; padded cells never count.
public enum PoolingKernels {
    /// output[b, oh, ow, c] = max or mean of input[b, window, c] over the cells inside the input.
    public static func pool(_ input: UnsafePointer<Float>, batch: Int, channels: Int, geometry g: WindowGeometry, average: Bool,
                            output: UnsafeMutablePointer<Float>) {
        let outH = g.outputHeight, outW = g.outputWidth
        var out = output
        for b in 0..<batch {
            let image = input + b * g.inputHeight * g.inputWidth * channels
            for oh in 0..<outH {
                let h0 = max(oh * g.strideHeight - g.padTop, 0), h1 = min(oh * g.strideHeight - g.padTop + g.kernelHeight, g.inputHeight)
                for ow in 0..<outW {
                    let w0 = max(ow * g.strideWidth - g.padLeft, 0), w1 = min(ow * g.strideWidth - g.padLeft + g.kernelWidth, g.inputWidth)
                    out.update(repeating: average ? 0 : -.infinity, count: channels)
                    for ih in h0..<max(h1, h0) {
                        for iw in w0..<max(w1, w0) {
                            let cell = image + (ih * g.inputWidth + iw) * channels
                            if average {
                                for c in 0..<channels { out[c] += cell[c] }
                            } else {
                                for c in 0..<channels where cell[c] > out[c] || cell[c].isNaN { out[c] = cell[c] }
                            }
                        }
                    }
                    if average {
                        let scale = 1 / Float(max((h1 - h0) * (w1 - w0), 1))
                        for c in 0..<channels { out[c] *= scale }
                    }
                    out += channels
                }
            }
        }
    }
}

/// c = a · b (+ c) with explicit leading dimensions, row-major.
@inline(__always)
func cblasGemm(_ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int,
               m: Int, n: Int, k: Int, accumulate: Bool) {
    Gemm.gemm(a, lda: lda, b, ldb: ldb, c, ldc: ldc, m: m, n: n, k: k, accumulate: accumulate)
}
