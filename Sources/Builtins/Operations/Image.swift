import LayerRegistry

// Keras 3 image operations in a graph: `ops.image.resize`, the same framing and resampling as the
// Resizing layer (ImagePreprocessing.swift).

extension Builtins {
    static func registerImageOperations(_ registry: LayerRegistry) {
        registry.register(LayerRegistry.operationName("Resize"), origin: "builtin",
                          summary: "ops.image.resize: resizes images as tf.image.resize does, optionally cropped or padded to the target's aspect ratio.",
                          factory: channelsFirstCapable(resizeOperation))
    }
}

/// `ops.image.resize(images, size, …)` on (batch, height, width, channels) images (channels-first
/// images through `channelsFirstCapable`).
///
/// Config: `size` ((height, width)), `interpolation` ("bilinear" | "nearest" | "bicubic" | "area" |
/// "lanczos3" | "lanczos5"), `crop_to_aspect_ratio` (false), `pad_to_aspect_ratio` (false),
/// `fill_mode` ("constant"), `fill_value` (0), `antialias` (false), `data_format` ("channels_last").
private func resizeOperation(_ context: LayerContext) throws -> any NodeLayer {
    try oneTensor(context)
    guard context.inputShape.count == 3 else {
        throw context.error("expects images of shape (batch, height, width, channels), found \(describeShape(context.inputShape))")
    }
    let channels = try context.inputDimension(-1)
    try requireChannelsLast(context)
    let size = try context.positiveInts("size", count: 2, maximum: 1 << 20)
    let name = try context.choice("interpolation", default: "bilinear", allowed: kerasResizeInterpolations.map(\.rawValue))
    let crop = try context.bool("crop_to_aspect_ratio", default: false)
    let pad = try context.bool("pad_to_aspect_ratio", default: false)
    guard !(crop && pad) else {
        throw context.error("only one of 'crop_to_aspect_ratio' and 'pad_to_aspect_ratio' can be true, found both", key: "pad_to_aspect_ratio")
    }
    _ = try context.choice("fill_mode", default: "constant", allowed: ["constant"])
    let fill = try context.float("fill_value", default: 0)
    let antialias = try context.bool("antialias", default: false)
    try context.sampleCount([size[0], size[1], channels], key: "size")
    let resize = ImageResize(height: size[0], width: size[1], interpolation: Interpolation(rawValue: name) ?? .bilinear,
                             aspect: crop ? .crop : (pad ? .pad(fill: fill) : .stretch), antialias: antialias)
    let label = context.label
    return OperationNode(name: "Resize", outputShapes: [[size[0], size[1], channels]]) { inputs in
        try resize(inputs[0], label: label)
    }
}
