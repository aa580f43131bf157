import LayerRegistry
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `STFTSpectrogram` (Keras 3, layers/preprocessing/stft_spectrogram.py): the short-time Fourier
/// transform of each channel of a (batch, time, channels) signal, as Keras computes it: a 1-D
/// convolution of each channel alone with the layer's two stored kernels (here summed in double), `real_kernel` and
/// `imag_kernel` (frame_length, 1, fft_length / 2 + 1: the window times cos and −sin, scaled
/// as `scaling` says; saved with the model, so `window`, `periodic` and `scaling` need no reading
/// here), at stride `frame_step`, then per `mode`:
/// - "real", "imag": one product; "stft": both, the real bins then the imaginary ones;
/// - "angle": atan2(imag, real);
/// - "psd": power = real² + imag², every bin but the first and last doubled;
/// - "magnitude": √max(power, ε); "log": log max(√max(power, ε), ε), ε = 1e-7.
///
/// Output (F bins, 2F for "stft"; T' frames: ⌊(T − frame_length) / frame_step⌋ + 1 for "valid",
/// ⌈T / frame_step⌉ for "same", padded as a convolution is): channels-last (T', channels · F),
/// channel by channel; with `expand_dims` (T', F, channels). Channels-first: (channels · F, T')
/// and (channels, T', F).
///
/// Config: `mode` ("log"), `frame_length` (256), `frame_step` (frame_length / 2), `fft_length`
/// (the power of two at or above frame_length), `padding` ("valid"), `expand_dims` (false),
/// `data_format` ("channels_last"), `window`, `periodic`, `scaling` (in the kernels).
public struct STFTSpectrogram: Layer {
    enum Mode: String, CaseIterable { case log, magnitude, psd, real, imag, angle, stft }

    let label: String
    let inputShape: [Int?]
    let mode: Mode
    let frameLength: Int
    let frameStep: Int
    /// fft_length / 2 + 1.
    let bins: Int
    let same: Bool
    let layout: Layout
    let realKernel: Weight?
    let imagKernel: Weight?
    public let outputShape: [Int?]

    static let epsilon: Float = 1e-7

    static func factory(_ context: LayerContext) throws -> any Layer {
        let shape = try context.requireRank(2, meaning: "(batch, time, channels)")
        let mode = Mode(rawValue: try context.choice("mode", default: "log", allowed: Mode.allCases.map(\.rawValue)))!
        let frameLength = try context.positiveInt("frame_length", default: 256, maximum: 1 << 20)
        let frameStep = try context.optionalInt("frame_step") ?? frameLength / 2
        guard frameStep >= 1, frameStep <= frameLength else {
            throw context.error("'frame_step' must be from 1 to frame_length (\(frameLength)), found \(frameStep)", key: "frame_step")
        }
        var defaultLength = 1
        while defaultLength < frameLength { defaultLength *= 2 }
        let fftLength = try context.optionalInt("fft_length") ?? defaultLength
        guard fftLength >= frameLength, fftLength <= 1 << 20 else {
            throw context.error("'fft_length' must be at least frame_length (\(frameLength)) and at most 2^20, found \(fftLength)", key: "fft_length")
        }
        let same = try context.choice("padding", default: "valid", allowed: ["valid", "same"]) == "same"
        let expandDims = try context.bool("expand_dims", default: false)
        let channelsFirst = try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"]) == "channels_first"
        _ = context.value("window", kind: "\"hann\", \"hamming\" or a list (in the kernels)", default: "\"hann\"")
        _ = try context.bool("periodic", default: false)
        if context.has("scaling") { _ = try context.choice("scaling", default: "density", allowed: ["density", "spectrum"]) }
        let time = channelsFirst ? shape[1] : shape[0]
        let channels = try context.inputDimension(channelsFirst ? 0 : 1)
        let bins = fftLength / 2 + 1
        var frames: Int?
        if let time {
            guard let count = frameCount(time: time, frameLength: frameLength, frameStep: frameStep, same: same) else {
                throw context.error("a frame spans \(frameLength) steps but the input has \(time) (padding \"valid\")", key: "frame_length")
            }
            frames = count
        }
        let kernelShape = [frameLength, 1, bins]
        let realKernel = mode == .imag ? nil : try context.weight("real_kernel", shape: kernelShape)
        let imagKernel = mode == .real ? nil : try context.weight("imag_kernel", shape: kernelShape)
        let layout = Layout(width: mode == .stft ? 2 * bins : bins, channelsFirst: channelsFirst, expandDims: expandDims)
        let outputShape = layout.shape(frames: frames, channels: channels)
        try context.sampleCount(outputShape.map { $0 ?? 1 })
        return STFTSpectrogram(label: context.label, inputShape: shape, mode: mode, frameLength: frameLength, frameStep: frameStep,
                               bins: bins, same: same, layout: layout,
                               realKernel: realKernel, imagKernel: imagKernel, outputShape: outputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputShape, label: label)
        let channelsFirst = layout.channelsFirst, width = layout.width
        let time = input.shape[channelsFirst ? 2 : 1], channels = input.shape[channelsFirst ? 1 : 2]
        guard let frames = Self.frameCount(time: time, frameLength: frameLength, frameStep: frameStep, same: same) else {
            throw NNError(.input, label, "a frame spans \(frameLength) steps but the input has \(time)")
        }
        let before = same ? max((frames - 1) * frameStep + frameLength - time, 0) / 2 : 0
        let sample = try ShapeMath.sampleCount([frames, channels, width], of: "the output", at: label)
        // One channel's signal, zero-padded: frame t is the frame_length values from t · frame_step.
        let padded = (frames - 1) * frameStep + frameLength
        var signal = [Float](repeating: 0, count: padded)
        var sums = [Double](repeating: 0, count: bins)
        var real = [Float](repeating: 0, count: realKernel == nil ? 0 : frames * bins)
        var imag = [Float](repeating: 0, count: imagKernel == nil ? 0 : frames * bins)
        var output = [Float](repeating: 0, count: input.batch * sample)
        for image in 0..<input.batch {
            for channel in 0..<channels {
                for step in 0..<min(time, padded - before) {
                    signal[before + step] = channelsFirst ? input.data[(image * channels + channel) * time + step]
                                                          : input.data[(image * time + step) * channels + channel]
                }
                if let realKernel { transform(signal, realKernel.values, frames: frames, into: &real, sums: &sums) }
                if let imagKernel { transform(signal, imagKernel.values, frames: frames, into: &imag, sums: &sums) }
                for frame in 0..<frames {
                    for bin in 0..<width {
                        let value = self.value(real, imag, frame * bins + bin % bins, bin: bin)
                        let at = switch (channelsFirst, layout.expandDims) {
                        case (false, false): frame * channels * width + channel * width + bin
                        case (false, true): (frame * width + bin) * channels + channel
                        case (true, false): (channel * width + bin) * frames + frame
                        case (true, true): (channel * frames + frame) * width + bin
                        }
                        output[image * sample + at] = value
                    }
                }
            }
        }
        return Tensor(shape: [input.batch] + layout.shape(frames: frames, channels: channels).map { $0 ?? 0 }, data: output)
    }

    /// Frames a signal of `time` steps gives; nil when a "valid" frame does not fit.
    static func frameCount(time: Int, frameLength: Int, frameStep: Int, same: Bool) -> Int? {
        if same { return (time + frameStep - 1) / frameStep }
        return time >= frameLength ? (time - frameLength) / frameStep + 1 : nil
    }

    /// Where the bins go: `width` per channel and frame (2F for "stft").
    struct Layout: Sendable {
        let width: Int
        let channelsFirst: Bool
        let expandDims: Bool

        func shape(frames: Int?, channels: Int) -> [Int?] {
            switch (channelsFirst, expandDims) {
            case (false, false): [frames, channels * width]
            case (false, true): [frames, width, channels]
            case (true, false): [channels * width, frames]
            case (true, true): [channels, frames, width]
            }
        }
    }

    /// Each frame of `signal` (frame t: the frame_length values from t · frame_step) times
    /// `kernel` (frame_length × bins), summed in double: a bin where the window's products cancel
    /// (the DC bin of a signal near zero mean) keeps its digits, where float32 sums in any order
    /// lose them (measured: Keras's float32 log spectrogram 6.7e-6 from the float64 one there).
    private func transform(_ signal: [Float], _ kernel: UnsafeBufferPointer<Float>, frames: Int, into out: inout [Float], sums: inout [Double]) {
        let bins = self.bins
        for frame in 0..<frames {
            for bin in 0..<bins { sums[bin] = 0 }
            for tap in 0..<frameLength {
                let x = Double(signal[frame * frameStep + tap])
                if x == 0 { continue }
                let row = tap * bins
                for bin in 0..<bins { sums[bin] += x * Double(kernel[row + bin]) }
            }
            for bin in 0..<bins { out[frame * bins + bin] = Float(sums[bin]) }
        }
    }

    /// Output bin `bin` (of 2F for "stft") of one frame, from that frame's products at `index`.
    private func value(_ real: [Float], _ imag: [Float], _ index: Int, bin: Int) -> Float {
        switch mode {
        case .real: return real[index]
        case .imag: return imag[index]
        case .stft: return bin < bins ? real[index] : imag[index]
        case .angle: return atan2f(imag[index], real[index])
        case .psd, .magnitude, .log:
            let power = real[index] * real[index] + imag[index] * imag[index]
            if mode == .psd { return bin == 0 || bin == bins - 1 ? power : power + power }
            let magnitude = max(power, Self.epsilon).squareRoot()
            return mode == .magnitude ? magnitude : logf(max(magnitude, Self.epsilon))
        }
    }
}

extension STFTSpectrogram: PlansMemory {
    /// The output for the input's time length (known only at run time for `(None, channels)`).
    public func workingSet(input: [Int]) -> WorkingSet {
        let first = layout.channelsFirst
        let time = input.count > 2 ? input[first ? 2 : 1] : 0, channels = input.count > 2 ? input[first ? 1 : 2] : 0
        let frames = Self.frameCount(time: time, frameLength: frameLength, frameStep: frameStep, same: same) ?? 0
        return WorkingSet(outputShape: [input.first ?? 1] + layout.shape(frames: frames, channels: channels).map { $0 ?? 0 })
    }
}

extension Builtins {
    static func registerSpectrogram(_ registry: LayerRegistry) {
        registry.register("STFTSpectrogram", origin: "builtin",
                          summary: "Short-time Fourier transform of each channel by the stored kernels (log, magnitude, psd, real, imag, angle, stft).",
                          factory: STFTSpectrogram.factory)
    }
}
