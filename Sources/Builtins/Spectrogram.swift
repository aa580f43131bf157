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
        switch context.value("scaling", kind: "\"density\", \"spectrum\" or null (in the kernels)", default: "\"density\"") {
        case nil, .null?, .string("density")?, .string("spectrum")?: break
        case let other?: throw context.error("'scaling' must be \"density\", \"spectrum\" or null, found \(other.brief())", key: "scaling")
        }
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
                        let at = layout.index(frame: frame, channel: channel, bin: bin, frames: frames, channels: channels)
                        output[image * sample + at] = value(real, imag, frame * bins + bin % bins, bin: bin)
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

        /// Where bin `bin` of `frame` of `channel` sits in a sample of that shape.
        func index(frame: Int, channel: Int, bin: Int, frames: Int, channels: Int) -> Int {
            switch (channelsFirst, expandDims) {
            case (false, false): (frame * channels + channel) * width + bin
            case (false, true): (frame * width + bin) * channels + channel
            case (true, false): (channel * width + bin) * frames + frame
            case (true, true): (channel * frames + frame) * width + bin
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
        registry.register("MelSpectrogram", origin: "builtin",
                          summary: "Mel-scale spectrogram of (batch, time) signals, in decibels or power, as keras.ops.stft computes it.",
                          factory: MelSpectrogram.factory)
    }
}

/// `MelSpectrogram` (Keras 3, layers/preprocessing/mel_spectrogram.py): (batch, time) signals →
/// (batch, num_mel_bins, frames), as Keras computes it through `ops.stft` (TensorFlow's
/// `tf.signal.stft`): the signal reflected by fft_length / 2 at each end (`center`); frames of
/// fft_length every sequence_stride samples, ⌊time / stride⌋ + 1 of them for an even
/// fft_length; each frame times the window (periodic Hann or Hamming of sequence_length, or the
/// config's list, or none), centred in fft_length with zeros; |rfft|^mag_exp per bin; times the
/// HTK mel filter bank (triangles on mel = 1127 · ln(1 + f / 700) from min_freq to max_freq,
/// the DC bin left out); with `power_to_db`, 10 · log10(max(x, min_power)) less
/// 10 · log10(max(|ref_power|, min_power)), then no lower than the loudest value less top_db.
///
/// Computed in double (`RealTransform`: an FFT for every fft_length), rounded to float32 at the end.
///
/// The loudest value `top_db` counts down from is the sample's own here. Keras takes it over the
/// whole batch a call sees (`ops.max` of the batch), so in Keras a sample's quiet bins depend on
/// which other samples share its batch (`predict`'s batch_size); nnbuild gives every sample what
/// Keras gives it alone.
public struct MelSpectrogram: Layer {
    let label: String
    let inputShape: [Int?]
    let fftLength: Int
    let stride: Int
    /// The window, centred in fft_length (zeros around it), or nil for none.
    let window: [Double]?
    let magnitudeExponent: Double
    /// Each mel band's triangle: its first bin and its weights over the bins it covers (each bin
    /// lies in two bands at most, so this holds about 2 · (fft_length / 2 + 1) weights where the
    /// dense matrix Keras multiplies by holds bins × num_mel_bins).
    let filters: [(first: Int, weights: [Double])]
    let melBins: Int
    let decibels: (minPower: Double, reference: Double, topDB: Double)?
    let transform: RealTransform
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        let shape = try context.requireRank(1, meaning: "(batch, time)")
        let fftLength = try context.positiveInt("fft_length", default: 2048, maximum: 1 << 20)
        let stride = try context.positiveInt("sequence_stride", default: 512, maximum: 1 << 20)
        let sequenceLength = try context.optionalInt("sequence_length") ?? fftLength
        guard sequenceLength >= 1, sequenceLength <= fftLength else {
            throw context.error("'sequence_length' must be from 1 to fft_length (\(fftLength)), found \(sequenceLength)", key: "sequence_length")
        }
        var window: [Double]?
        switch context.value("window", kind: "\"hann\", \"hamming\", a list of sequence_length numbers or null", default: "\"hann\"") {
        case nil, .string("hann")?: window = periodicWindow(sequenceLength, a: 0.5)
        case .string("hamming")?: window = periodicWindow(sequenceLength, a: 0.54)
        case .null?: window = nil
        case .array?:
            guard let values = try context.numbers("window"), values.count == sequenceLength else {
                throw context.error("'window' must list sequence_length (\(sequenceLength)) numbers", key: "window")
            }
            window = values
        case let other?:
            throw context.error("'window' must be \"hann\", \"hamming\", a list or null, found \(other.brief())", key: "window")
        }
        if let shortWindow = window {
            let before = (fftLength - sequenceLength) / 2
            window = [Double](repeating: 0, count: before) + shortWindow + [Double](repeating: 0, count: fftLength - sequenceLength - before)
        }
        let rate = try context.double("sampling_rate", default: 16000)
        let melBins = try context.positiveInt("num_mel_bins", default: 128, maximum: 1 << 16)
        let low = try context.double("min_freq", default: 20)
        let high = try context.optionalDouble("max_freq") ?? Double(Int(rate / 2))
        guard rate > 0, low >= 0, high > low else {
            throw context.error("expected sampling_rate > 0 and 0 <= min_freq < max_freq, found \(rate), \(low), \(high)", key: "max_freq")
        }
        let toDB = try context.bool("power_to_db", default: true)
        let topDB = try context.double("top_db", default: 80)
        let exponent = try context.double("mag_exp", default: 2)
        let minPower = try context.double("min_power", default: 1e-10)
        let reference = try context.double("ref_power", default: 1)
        guard minPower > 0 else { throw context.error("'min_power' must be positive, found \(minPower)", key: "min_power") }
        let bins = fftLength / 2 + 1
        var frames: Int?
        if let time = shape[0] {
            guard time > fftLength / 2 else {
                throw context.error("the signal must be longer than fft_length / 2 (\(fftLength / 2)) to be reflected at its ends, found \(time) samples", key: "fft_length")
            }
            frames = frameCount(time: time, fftLength: fftLength, stride: stride)
        }
        let outputShape: [Int?] = [melBins, frames]
        try context.sampleCount(outputShape.map { $0 ?? 1 })
        return MelSpectrogram(label: context.label, inputShape: shape, fftLength: fftLength, stride: stride, window: window,
                              magnitudeExponent: exponent,
                              filters: melFilters(bins: bins, melBins: melBins, rate: rate, low: low, high: high),
                              melBins: melBins, decibels: toDB ? (minPower, reference, topDB) : nil,
                              transform: RealTransform(length: fftLength), outputShape: outputShape)
    }

    /// Frames of a signal of `time` samples (longer than fft_length / 2) once reflected by
    /// fft_length / 2 at each end: ⌊time / stride⌋ + 1 for an even fft_length.
    static func frameCount(time: Int, fftLength: Int, stride: Int) -> Int {
        (time + 2 * (fftLength / 2) - fftLength) / stride + 1
    }

    /// a − (1 − a) · cos(2πn / length): periodic Hann (a = 0.5) or Hamming (0.54), as TensorFlow's.
    static func periodicWindow(_ length: Int, a: Double) -> [Double] {
        (0..<length).map { a - (1 - a) * cos(2 * Double.pi * Double($0) / Double(length)) }
    }

    /// Keras's linear_to_mel_weight_matrix (bins × melBins, the DC row zero), band by band: the
    /// bins strictly inside a band's outer edges, found by bisection, so that building costs
    /// O(melBins · log bins + the weights) whatever the sizes.
    static func melFilters(bins: Int, melBins: Int, rate: Double, low: Double, high: Double) -> [(first: Int, weights: [Double])] {
        func mel(_ hertz: Double) -> Double { 1127 * log(1 + hertz / 700) }
        func binMel(_ bin: Int) -> Double { mel(rate / 2 * Double(bin) / Double(bins - 1)) }
        /// The first bin past the DC bin whose mel is above `value` (bins when none is).
        func firstAbove(_ value: Double) -> Int {
            var lower = 1, upper = bins
            while lower < upper {
                let middle = (lower + upper) / 2
                if binMel(middle) > value { upper = middle } else { lower = middle + 1 }
            }
            return lower
        }
        let lowMel = mel(low), highMel = mel(high)
        let edges = (0..<(melBins + 2)).map { lowMel + (highMel - lowMel) * Double($0) / Double(melBins + 1) }
        return (0..<melBins).map { band in
            guard bins > 1 else { return (0, []) }
            let first = firstAbove(edges[band])
            var weights: [Double] = []
            var bin = first
            while bin < bins {
                let value = binMel(bin)
                guard value < edges[band + 2] else { break }
                let lower = (value - edges[band]) / (edges[band + 1] - edges[band])
                let upper = (edges[band + 2] - value) / (edges[band + 2] - edges[band + 1])
                weights.append(max(0, min(lower, upper)))
                bin += 1
            }
            return (first, weights)
        }
    }

    /// The most butterflies (frames × transform size × its log) one call may take.
    static let workLimit = 1 << 38

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputShape, label: label)
        let time = input.shape[1], half = fftLength / 2
        guard time > half else {
            throw NNError(.input, label, "the signal must be longer than fft_length / 2 (\(half)) to be reflected at its ends, found \(time) samples")
        }
        let frames = Self.frameCount(time: time, fftLength: fftLength, stride: stride), bins = fftLength / 2 + 1
        // The layer has no weights: its config alone sets its cost, frames × one transform. A
        // spec asking for 2^20-point transforms at every sample of a long signal would run for
        // hours; a call past 2^38 butterflies (minutes; ten minutes of 48 kHz audio at Keras's
        // defaults takes 2^30) is refused.
        let work = ShapeMath.saturatingProduct([input.batch, frames, transform.size, transform.size.trailingZeroBitCount + 1, transform.chirp == nil ? 1 : 3])
        guard work <= Self.workLimit else {
            throw NNError(.input, label, "\(input.batch) signals of \(time) samples make \(frames) frames each of a \(fftLength)-point transform: more than the 2^38 butterflies one call may take (a longer sequence_stride or a shorter fft_length does less)")
        }
        let sample = try ShapeMath.sampleCount([melBins, frames], of: "the output", at: label)
        var padded = [Double](repeating: 0, count: time + 2 * half)
        var frame = [Double](repeating: 0, count: fftLength), power = [Double](repeating: 0, count: bins)
        var scratch = transform.scratch()
        var mels = [Double](repeating: 0, count: frames * melBins)
        var output = [Float](repeating: 0, count: input.batch * sample)
        for image in 0..<input.batch {
            let signal = input.data[(image * time)..<((image + 1) * time)]
            for index in padded.indices {
                // Reflection without repeating the edge sample: x[-1] = x[1], x[time] = x[time − 2].
                var at = index - half
                if at < 0 { at = -at }
                if at >= time { at = 2 * (time - 1) - at }
                padded[index] = Double(signal[signal.startIndex + at])
            }
            for f in 0..<frames {
                for n in 0..<fftLength { frame[n] = padded[f * stride + n] * (window?[n] ?? 1) }
                transform.power(frame, into: &power, scratch: &scratch)
                for bin in 0..<bins {
                    power[bin] = magnitudeExponent == 2 ? power[bin] : pow(power[bin].squareRoot(), magnitudeExponent)
                }
                for band in 0..<melBins {
                    let (first, weights) = filters[band]
                    var sum = 0.0
                    for (offset, weight) in weights.enumerated() { sum += power[first + offset] * weight }
                    mels[f * melBins + band] = sum
                }
            }
            if let (minPower, reference, topDB) = decibels {
                let offset = 10 * log10(max(abs(reference), minPower))
                var loudest = -Double.infinity
                for index in mels.indices {
                    mels[index] = 10 * log10(max(mels[index], minPower)) - offset
                    loudest = max(loudest, mels[index])
                }
                for index in mels.indices { mels[index] = max(mels[index], loudest - topDB) }
            }
            for band in 0..<melBins {
                for f in 0..<frames { output[image * sample + band * frames + f] = Float(mels[f * melBins + band]) }
            }
        }
        return Tensor(shape: [input.batch, melBins, frames], data: output)
    }
}

extension MelSpectrogram: PlansMemory {
    /// The output for the signal's length (known only at run time for `(None,)`).
    public func workingSet(input: [Int]) -> WorkingSet {
        let time = input.count > 1 ? input[1] : 0
        return WorkingSet(outputShape: [input.first ?? 1, melBins, time + 2 * (fftLength / 2) >= fftLength ? Self.frameCount(time: time, fftLength: fftLength, stride: stride) : 1])
    }
}

/// |DFT|² of real frames of one length, bins 0…length / 2, in double, in O(n log n) for every
/// length: an iterative radix-2 FFT for a power of two, else Bluestein's algorithm (the DFT as a
/// convolution with a chirp, done by radix-2 FFTs of a power of two ≥ 2·length − 1), so that an
/// fft_length of no power of two (a spec may ask for 2^20 − 1) costs no more than the next ones.
struct RealTransform: Sendable {
    let length: Int
    /// The radix-2 size: `length`, or the Bluestein convolution's.
    let size: Int
    /// e^(−2πi j / size) for j < size / 2: the butterflies' twiddles.
    let twiddles: (re: [Double], im: [Double])
    /// Bluestein: the chirp e^(−πi n² / length) for n < length, and the FFT of its conjugate
    /// laid out for a circular convolution of `size`.
    let chirp: (re: [Double], im: [Double])?
    let filter: (re: [Double], im: [Double])?

    init(length: Int) {
        let powerOfTwo = length & (length - 1) == 0
        var size = 1
        while size < (powerOfTwo ? length : 2 * length - 1) { size *= 2 }
        let half = size / 2
        let twiddles = (re: (0..<half).map { cos(-2 * Double.pi * Double($0) / Double(size)) },
                        im: (0..<half).map { sin(-2 * Double.pi * Double($0) / Double(size)) })
        self.length = length
        self.size = size
        self.twiddles = twiddles
        guard !powerOfTwo else {
            chirp = nil
            filter = nil
            return
        }
        // n² mod 2·length keeps the angle exact for large n.
        let angles = (0..<length).map { n in Double.pi * Double((n * n) % (2 * length)) / Double(length) }
        let chirp = (re: angles.map { cos($0) }, im: angles.map { -sin($0) })
        var re = [Double](repeating: 0, count: size), im = re
        for n in 0..<length {
            re[n] = chirp.re[n]; im[n] = -chirp.im[n]
            if n > 0 { re[size - n] = chirp.re[n]; im[size - n] = -chirp.im[n] }
        }
        Self.fft(&re, &im, size: size, twiddles: twiddles)
        self.chirp = chirp
        filter = (re, im)
    }

    /// In-place radix-2 FFT of (re, im), `size` a power of two; `inverse` conjugates the twiddles (unscaled).
    static func fft(_ re: inout [Double], _ im: inout [Double], size: Int, twiddles: (re: [Double], im: [Double]), inverse: Bool = false) {
        var j = 0
        for i in 1..<max(size, 1) {
            var bit = size >> 1
            while j & bit != 0 { j ^= bit; bit >>= 1 }
            j |= bit
            if i < j { re.swapAt(i, j); im.swapAt(i, j) }
        }
        var span = 1
        while span < size {
            let step = size / (2 * span)
            for start in stride(from: 0, to: size, by: 2 * span) {
                for k in 0..<span {
                    let wr = twiddles.re[k * step], wi = inverse ? -twiddles.im[k * step] : twiddles.im[k * step]
                    let a = start + k, b = a + span
                    let tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr
                    re[b] = re[a] - tr; im[b] = im[a] - ti
                    re[a] += tr; im[a] += ti
                }
            }
            span *= 2
        }
    }

    /// Scratch for `power`: two arrays of `size`.
    func scratch() -> (re: [Double], im: [Double]) {
        ([Double](repeating: 0, count: size), [Double](repeating: 0, count: size))
    }

    /// out[k] = |Σ x[n] e^(−2πi kn / length)|² for k ≤ length / 2.
    func power(_ x: [Double], into out: inout [Double], scratch: inout (re: [Double], im: [Double])) {
        let bins = length / 2 + 1
        for i in 0..<size { scratch.re[i] = 0; scratch.im[i] = 0 }
        guard let chirp, let filter else {
            for n in 0..<length { scratch.re[n] = x[n] }
            Self.fft(&scratch.re, &scratch.im, size: size, twiddles: twiddles)
            for k in 0..<bins { out[k] = scratch.re[k] * scratch.re[k] + scratch.im[k] * scratch.im[k] }
            return
        }
        // X[k] = chirp[k] · Σ (x[n] chirp[n]) conj(chirp[k − n]): a circular convolution of `size`.
        for n in 0..<length { scratch.re[n] = x[n] * chirp.re[n]; scratch.im[n] = x[n] * chirp.im[n] }
        Self.fft(&scratch.re, &scratch.im, size: size, twiddles: twiddles)
        for i in 0..<size {
            let r = scratch.re[i] * filter.re[i] - scratch.im[i] * filter.im[i]
            scratch.im[i] = scratch.re[i] * filter.im[i] + scratch.im[i] * filter.re[i]
            scratch.re[i] = r
        }
        Self.fft(&scratch.re, &scratch.im, size: size, twiddles: twiddles, inverse: true)
        // |chirp[k]| = 1, so only the convolution's magnitude counts (divided by size for the inverse).
        let scale = 1 / Double(size)
        for k in 0..<bins {
            let r = scratch.re[k] * scale, i = scratch.im[k] * scale
            out[k] = r * r + i * i
        }
    }
}
