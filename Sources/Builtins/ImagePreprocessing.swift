import LayerRegistry

// Image preprocessing layers at inference: Resizing and CenterCrop, channels last. Both frame the
// image (crop or pad it to the target's aspect ratio) and resample it as `tf.image.resize` does.

/// How an image is brought to a target size: framed (cropped or padded to the target's aspect
/// ratio, or left as it is), then resampled with `interpolation`.
package struct ImageResize: Sendable {
    package enum Aspect: Sendable, Equatable {
        /// Stretch the whole image.
        case stretch
        /// Crop the largest centred window of the target's aspect ratio (`crop_to_aspect_ratio`).
        case crop
        /// Pad with `fill` on both sides to the target's aspect ratio (`pad_to_aspect_ratio`).
        case pad(fill: Float)
    }

    package var height: Int
    package var width: Int
    package var interpolation: Interpolation
    package var aspect: Aspect
    /// `tf.image.resize`'s antialias: a downsampling filter widened to cover every input cell.
    package var antialias = false

    /// The amounts added to (positive) or removed from (negative) the top, bottom, left and right
    /// of a height × width image, in Keras's float32 arithmetic (`backend/tensorflow/image.py`).
    package func frame(height inputHeight: Int, width inputWidth: Int) -> (top: Int, bottom: Int, left: Int, right: Int) {
        func truncated(_ numerator: Int, _ denominator: Int) -> Int { Int(Float(numerator) / Float(denominator)) }
        switch aspect {
        case .stretch:
            return (0, 0, 0, 0)
        case .crop:
            let cropHeight = max(min(inputHeight, truncated(inputWidth * height, width)), 1)
            let cropWidth = max(min(inputWidth, truncated(inputHeight * width, height)), 1)
            let top = truncated(inputHeight - cropHeight, 2), left = truncated(inputWidth - cropWidth, 2)
            return (-top, -(inputHeight - cropHeight - top), -left, -(inputWidth - cropWidth - left))
        case .pad:
            // Keras pads the same amount on both sides, so an odd difference loses one row.
            let top = truncated(max(inputHeight, truncated(inputWidth * height, width)) - inputHeight, 2)
            let left = truncated(max(inputWidth, truncated(inputHeight * width, height)) - inputWidth, 2)
            return (top, top, left, left)
        }
    }

    /// Resizes a batch of images [batch, H, W, C] to [batch, height, width, C].
    package func callAsFunction(_ input: Tensor, label: String) throws -> Tensor {
        guard input.rank == 4 else {
            throw NNError(.input, label, "expects images of shape (batch, height, width, channels), found \(input.shape)")
        }
        var image = input
        let frame = frame(height: input.shape[1], width: input.shape[2])
        if frame != (0, 0, 0, 0) {
            let framedHeight = input.shape[1] + frame.top + frame.bottom, framedWidth = input.shape[2] + frame.left + frame.right
            let shape = [input.batch, framedHeight, framedWidth, input.shape[3]]
            let count = try ShapeMath.sampleCount(Array(shape.dropFirst()), of: "the framed image", at: label) * input.batch
            var fill: Float = 0
            if case let .pad(value) = aspect { fill = value }
            let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                input.data.withUnsafeBufferPointer { x in
                    pad2D(x, batch: input.batch, height: input.shape[1], width: input.shape[2], channels: input.shape[3],
                          top: frame.top, bottom: frame.bottom, left: frame.left, right: frame.right, fill: fill, into: buffer)
                }
                initialized = count
            }
            image = Tensor(shape: shape, data: data)
        }
        let rows = ResampleWeights.resize(interpolation, input: image.shape[1], output: height, antialias: antialias)
        let columns = ResampleWeights.resize(interpolation, input: image.shape[2], output: width, antialias: antialias)
        let channels = image.shape[3]
        let count = try ShapeMath.sampleCount([height, width, channels], at: label) * image.batch
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            image.data.withUnsafeBufferPointer { x in
                resample2D(x, batch: image.batch, channels: channels, rows: rows, columns: columns, into: buffer)
            }
            initialized = count
        }
        return Tensor(shape: [image.batch, height, width, channels], data: data)
    }
}

/// The interpolations `tf.image.resize` accepts from Keras 3 (`RESIZE_INTERPOLATIONS`).
let kerasResizeInterpolations: [Interpolation] = [.bilinear, .nearest, .lanczos3, .lanczos5, .bicubic, .area]

/// Reads the target `height` and `width` (positive, at most 2^20 each).
private func targetSize(_ context: LayerContext) throws -> (Int, Int) {
    let height = try context.positiveInt("height", maximum: 1 << 20), width = try context.positiveInt("width", maximum: 1 << 20)
    return (height, width)
}

/// `Resizing`: resizes images to (`height`, `width`) as `tf.image.resize` does, after cropping
/// (`crop_to_aspect_ratio`) or padding (`pad_to_aspect_ratio`, with `fill_value`) them to the
/// target's aspect ratio. Spatial sizes may be unknown until run time.
///
/// Config: `height`, `width`, `interpolation` ("bilinear" | "nearest" | "bicubic" | "area" |
/// "lanczos3" | "lanczos5"), `crop_to_aspect_ratio` (false), `pad_to_aspect_ratio` (false),
/// `fill_mode` ("constant"), `fill_value` (0), `antialias` (false), `data_format` ("channels_last").
public struct Resizing: Layer {
    let label: String
    let inputShape: [Int?]
    let resize: ImageResize
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(3, meaning: spatialMeaning(2))
        let channels = try context.inputDimension(-1)
        try requireChannelsLast(context)
        let (height, width) = try targetSize(context)
        let name = try context.choice("interpolation", default: "bilinear", allowed: kerasResizeInterpolations.map(\.rawValue))
        let crop = try context.bool("crop_to_aspect_ratio", default: false)
        let pad = try context.bool("pad_to_aspect_ratio", default: false)
        guard !(crop && pad) else {
            throw context.error("only one of 'crop_to_aspect_ratio' and 'pad_to_aspect_ratio' can be true, found both", key: "pad_to_aspect_ratio")
        }
        _ = try context.choice("fill_mode", default: "constant", allowed: ["constant"])
        let fill = try context.float("fill_value", default: 0)
        let antialias = try context.bool("antialias", default: false)
        let resize = ImageResize(height: height, width: width, interpolation: Interpolation(rawValue: name) ?? .bilinear,
                                 aspect: crop ? .crop : (pad ? .pad(fill: fill) : .stretch), antialias: antialias)
        try context.sampleCount([height, width, channels])
        return Resizing(label: context.label, inputShape: context.inputShape, resize: resize, outputShape: [height, width, channels])
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputShape, label: label)
        return try resize(input, label: label)
    }
}

/// `CenterCrop`: the centred (`height`, `width`) window of each image, starting at
/// ⌊(size − target) / 2⌋; an image smaller than the target on either axis is instead cropped to
/// the target's aspect ratio and resized bilinearly (Keras's `smart_resize`). With sizes unknown
/// until run time Keras always slices, so a smaller image is then refused.
///
/// Config: `height`, `width`, `data_format` ("channels_last").
public struct CenterCrop: Layer {
    let label: String
    let inputShape: [Int?]
    let height: Int
    let width: Int
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(3, meaning: spatialMeaning(2))
        let channels = try context.inputDimension(-1)
        try requireChannelsLast(context)
        let (height, width) = try targetSize(context)
        try context.sampleCount([height, width, channels])
        return CenterCrop(label: context.label, inputShape: context.inputShape, height: height, width: width, outputShape: [height, width, channels])
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try checkInput(input, built: inputShape, label: label)
        let rows = input.shape[1], columns = input.shape[2]
        guard rows >= height, columns >= width else {
            guard inputShape[0] != nil, inputShape[1] != nil else {
                // Keras slices a run-time-sized image without resizing it, which a smaller one does not fit.
                throw NNError(.input, label, "crops \(height)×\(width) windows, found a \(rows)×\(columns) image; expected at least \(height)×\(width) (the layer was built for run-time sizes, where Keras does not resize)")
            }
            return try ImageResize(height: height, width: width, interpolation: .bilinear, aspect: .crop)(input, label: label)
        }
        let top = (rows - height) / 2, left = (columns - width) / 2
        let count = input.batch * height * width * input.shape[3]
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.data.withUnsafeBufferPointer { x in
                pad2D(x, batch: input.batch, height: rows, width: columns, channels: input.shape[3],
                      top: -top, bottom: -(rows - height - top), left: -left, right: -(columns - width - left), into: buffer)
            }
            initialized = count
        }
        return Tensor(shape: [input.batch, height, width, input.shape[3]], data: data)
    }
}

/// `AutoContrast`: each channel of each image stretched so that its least value becomes the low
/// end of `value_range` and its greatest the high end, as Keras computes it: the values mapped
/// from `value_range` to [0, 255] (skipped when that is the range), low and high over the image's
/// rows and columns, v · (255 / (high − low)) + (−low · scale), clipped to [0, 255], mapped back;
/// where that is NaN (a channel of one value) the input is kept. Unlike the random augmentation
/// layers it works at inference too.
///
/// Config: `value_range` ([0, 255]; sorted, as Keras sorts it).
public struct AutoContrast: Layer {
    let low: Float
    let high: Float
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        try context.requireRank(3, meaning: spatialMeaning(2))
        let range = try context.numbers("value_range") ?? [0, 255]
        guard range.count == 2, range.allSatisfy({ $0.isFinite && abs($0) <= Double(Float.greatestFiniteMagnitude) }) else {
            throw context.error("'value_range' must be 2 finite numbers, found \(range)", key: "value_range")
        }
        return AutoContrast(low: Float(range.min()!), high: Float(range.max()!), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.rank == 4 else { throw NNError(.input, "AutoContrast", "expects images (batch, height, width, channels), found shape \(input.shape)") }
        let pixels = input.shape[1] * input.shape[2], channels = input.shape[3]
        let range = ByteRange(low: low, high: high)
        var output = input
        output.data.withUnsafeMutableBufferPointer { y in
            input.data.withUnsafeBufferPointer { x in
                for image in 0..<input.batch {
                    let base = image * pixels * channels
                    for channel in 0..<channels {
                        var least = Float.infinity, most = -Float.infinity
                        var anyNaN = false
                        for pixel in 0..<pixels {
                            let v = range.toBytes(x[base + pixel * channels + channel])
                            if v.isNaN { anyNaN = true }
                            least = Swift.min(least, v)
                            most = Swift.max(most, v)
                        }
                        // TensorFlow's min and max propagate NaN: the whole channel is then NaN, so kept.
                        if anyNaN { continue }
                        let scale = 255 / (most - least), offset = -least * scale
                        for pixel in 0..<pixels {
                            let index = base + pixel * channels + channel
                            let stretched = range.toBytes(x[index]) * scale + offset
                            let result = range.fromBytes(stretched.isNaN ? stretched : Swift.min(Swift.max(stretched, 0), 255))
                            y[index] = result.isNaN ? x[index] : result
                        }
                    }
                }
            }
        }
        return output
    }
}

/// Keras's `_transform_value_range` between an image layer's `value_range` and [0, 255], in
/// float32 as Keras computes it (and no arithmetic at all when the range is [0, 255]).
struct ByteRange: Sendable {
    let low: Float
    let high: Float
    var identity: Bool { low == 0 && high == 255 }

    func toBytes(_ v: Float) -> Float { identity ? v : (v - low) / (high - low) * 255 + 0 }
    func fromBytes(_ v: Float) -> Float { identity ? v : (v - 0) / (255 - 0) * (high - low) + low }
}

extension Builtins {
    static func registerImagePreprocessing(_ registry: LayerRegistry) {
        registry.register("AutoContrast", origin: "builtin",
                          summary: "Stretches each channel of each image to the whole value_range (as Keras, at inference too).",
                          factory: AutoContrast.factory)
        registry.register("Resizing", origin: "builtin",
                          summary: "Resizes images as tf.image.resize does, optionally cropped or padded to the target's aspect ratio.",
                          factory: channelsFirstCapable(Resizing.factory))
        registry.register("CenterCrop", origin: "builtin",
                          summary: "Takes the centred height × width window of each image (resizes smaller images).",
                          factory: channelsFirstCapable(CenterCrop.factory))
    }
}
