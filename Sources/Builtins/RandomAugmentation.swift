import LayerRegistry

/// The random augmentation layers of Keras 3 (keras/src/layers/preprocessing/image_preprocessing),
/// which are the identity at inference: each transforms only when `training` is true. Their config
/// is still read and checked, key by key, so a malformed spec is refused and `nnbuild layers`
/// lists what each takes. RandomCrop is the identity at inference too, but Keras declares its
/// output as (height, width), so it is accepted only where the input already has that size.
public struct InferenceIdentity: Layer {
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    public func forward(_ input: Tensor) throws -> Tensor { input }
}

/// A config key of an augmentation layer and how it is read.
enum AugmentationKey {
    /// A number or a list of `count` numbers (0: any count), each finite; null allowed.
    case numbers(String, count: Int)
    case integer(String)
    case flag(String)
    case text(String)
    case choice(String, default: String, allowed: [String])
}

let augmentationLayers: [(name: String, keys: [AugmentationKey])] = {
    let range = AugmentationKey.numbers("value_range", count: 2)
    let fill: [AugmentationKey] = [.choice("fill_mode", default: "reflect", allowed: ["reflect", "wrap", "constant", "nearest", "crop"]),
                                   .choice("interpolation", default: "bilinear", allowed: ["nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area"]),
                                   .numbers("fill_value", count: 1)]
    return [
        ("RandomFlip", [.choice("mode", default: "horizontal_and_vertical", allowed: ["horizontal", "vertical", "horizontal_and_vertical"])]),
        ("RandomRotation", [.numbers("factor", count: 0)] + fill),
        ("RandomZoom", [.numbers("height_factor", count: 0), .numbers("width_factor", count: 0)] + fill),
        ("RandomTranslation", [.numbers("height_factor", count: 0), .numbers("width_factor", count: 0)] + fill),
        ("RandomShear", [.numbers("x_factor", count: 0), .numbers("y_factor", count: 0)] + fill),
        ("RandomContrast", [.numbers("factor", count: 0), range]),
        ("RandomBrightness", [.numbers("factor", count: 0), range]),
        ("RandomGrayscale", [.numbers("factor", count: 0)]),
        ("RandomHue", [.numbers("factor", count: 0), range]),
        ("RandomSaturation", [.numbers("factor", count: 0), range]),
        ("RandomSharpness", [.numbers("factor", count: 0), range]),
        ("RandomInvert", [.numbers("factor", count: 0), range]),
        ("RandomPosterization", [.numbers("factor", count: 0), range]),
        ("RandomColorDegeneration", [.numbers("factor", count: 0), range]),
        ("RandomColorJitter", [range, .numbers("brightness_factor", count: 0), .numbers("contrast_factor", count: 0),
                               .numbers("saturation_factor", count: 0), .numbers("hue_factor", count: 0)]),
        ("RandomGaussianBlur", [.numbers("factor", count: 0), .numbers("kernel_size", count: 0), .numbers("sigma", count: 0), range]),
        ("RandomErasing", [.numbers("factor", count: 0), .numbers("scale", count: 0), .numbers("fill_value", count: 0), range]),
        ("RandomPerspective", [.numbers("factor", count: 0), .numbers("scale", count: 0), .numbers("fill_value", count: 1),
                               .choice("interpolation", default: "bilinear", allowed: ["nearest", "bilinear"])]),
        ("RandomElasticTransform", [.numbers("factor", count: 0), .numbers("scale", count: 0), range] + fill),
        ("AugMix", [range, .integer("num_chains"), .integer("chain_depth"), .numbers("factor", count: 0), .numbers("alpha", count: 1),
                    .flag("all_ops"), .text("interpolation")]),
        ("CutMix", [.numbers("factor", count: 0)]),
        ("MixUp", [.numbers("alpha", count: 1)]),
        ("RandAugment", [range, .integer("num_ops"), .numbers("factor", count: 0), .text("interpolation")]),
        // Not named Random, but random all the same, and the identity at inference.
        ("Solarization", [.numbers("addition_factor", count: 0), .numbers("threshold_factor", count: 0), range]),
    ]
}()

extension InferenceIdentity {
    /// Reads `keys`, then `data_format` and `seed`, which every augmentation layer has.
    static func augmentationFactory(_ keys: [AugmentationKey]) -> LayerFactory {
        { context in
            for key in keys {
                switch key {
                case let .numbers(name, count):
                    guard let values = try context.numbers(name) else { continue }
                    guard values.allSatisfy(\.isFinite), count == 0 || values.count == count else {
                        throw context.error("'\(name)' must be \(count == 1 ? "a number" : count == 0 ? "finite numbers" : "a list of \(count) numbers"), found \(values)", key: name)
                    }
                case let .integer(name): _ = try context.optionalInt(name)
                case let .flag(name): _ = try context.bool(name, default: false)
                case let .text(name): _ = try context.string(name, default: "")
                case let .choice(name, defaultValue, allowed): _ = try context.choice(name, default: defaultValue, allowed: allowed)
                }
            }
            _ = try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"])
            _ = try context.optionalInt("seed")
            return InferenceIdentity(outputShape: context.inputShape)
        }
    }

    /// RandomCrop: config `height`, `width`, `data_format`, `seed`; the input's spatial size must
    /// already be (height, width).
    static func cropFactory(_ context: LayerContext) throws -> any Layer {
        let height = try context.positiveInt("height"), width = try context.positiveInt("width")
        let format = try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"])
        _ = try context.optionalInt("seed")
        let rank = context.inputShape.count
        guard rank == 3 else { throw context.error("expects images (height, width, channels), found \(describeShape(context.inputShape))") }
        let axes = format == "channels_last" ? (0, 1) : (1, 2)
        let found = (context.inputShape[axes.0], context.inputShape[axes.1])
        guard found.0 == height, found.1 == width else {
            throw context.error("is the identity at inference in Keras, which still declares its output (\(height), \(width)); expected an input of that size, found \(describeShape(context.inputShape))", key: "height")
        }
        return InferenceIdentity(outputShape: context.inputShape)
    }
}

extension Builtins {
    static func registerRandomAugmentation(_ registry: LayerRegistry) {
        for (name, keys) in augmentationLayers {
            registry.register(name, origin: "builtin", summary: "Random augmentation: the identity at inference.",
                              factory: InferenceIdentity.augmentationFactory(keys))
        }
        registry.register("RandomCrop", origin: "builtin", summary: "Random crop: the identity at inference, on inputs of its size.",
                          factory: InferenceIdentity.cropFactory)
    }
}
