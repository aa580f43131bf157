import LayerRegistry

// Checks shared by the convolution, pooling and reshaping families.

/// Fails on `data_format: "channels_first"`, for a factory that computes channels-last: a layer
/// registered through `channelsFirstCapable` never sees it (its channels-first form is built as
/// its channels-last one between transposes); the others (`ops.image.resize`) refuse it.
func requireChannelsLast(_ context: LayerContext) throws {
    let format = try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"])
    guard format == "channels_last" else {
        throw context.error("data_format \"channels_first\" is not supported here (expected \"channels_last\")", key: "data_format")
    }
}

/// Checks a run-time input against the per-sample shape a layer was built for (nil = any size).
func checkInput(_ input: Tensor, built: [Int?], label: String) throws {
    try checkInput(shape: input.shape, built: built, label: label)
}

/// `checkInput` for an input known by its shape (batch first).
func checkInput(shape: [Int], built: [Int?], label: String) throws {
    guard shape.count == built.count + 1, zip(shape.dropFirst(), built).allSatisfy({ $1 == nil || $0 == $1 }) else {
        throw NNError(.input, label, "expects input of shape \(describeShape(built)), found \(shape)")
    }
}
