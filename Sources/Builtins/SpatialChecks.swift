import LayerRegistry

// Checks shared by the convolution, pooling and reshaping families.

/// Largest output a spatial layer may produce per sample, in elements (8 GiB of float32, as for
/// weights), so an absurd spec fails with a message instead of an allocation failure.
let maximumSampleElements = 1 << 31

/// Fails on `data_format: "channels_first"`: nnbuild runs channels-last models only.
func requireChannelsLast(_ context: LayerContext) throws {
    let format = try context.choice("data_format", default: "channels_last", allowed: ["channels_last", "channels_first"])
    guard format == "channels_last" else {
        throw context.error("data_format \"channels_first\" is not supported; nnbuild runs channels_last models (expected \"channels_last\")", key: "data_format")
    }
}

/// The element count of `dims`, nil when it overflows or passes `maximumSampleElements`.
func boundedCount(_ dims: [Int]) -> Int? {
    var count = 1
    for size in dims {
        let (product, overflow) = count.multipliedReportingOverflow(by: max(size, 0))
        guard !overflow, product <= maximumSampleElements else { return nil }
        count = product
    }
    return count
}

/// Fails when a per-sample output shape (known axes only) is larger than nnbuild accepts.
func requireOutputSize(_ context: LayerContext, _ shape: [Int?], key: String? = nil) throws {
    guard boundedCount(shape.compactMap { $0 }) != nil else {
        throw context.error("the output would have shape \(describeShape(shape)), more than \(maximumSampleElements) values per sample; expected a smaller configuration", key: key)
    }
}

/// Fails when a run-time output of per-sample shape `shape` is larger than nnbuild accepts.
func requireOutputSize(_ shape: [Int], label: String) throws {
    guard boundedCount(shape) != nil else {
        throw NNError(.input, label, "the output would have \(shape.map(String.init).joined(separator: "×")) values per sample, more than \(maximumSampleElements)")
    }
}

/// Checks a run-time input against the per-sample shape a layer was built for (nil = any size).
func checkInput(_ input: Tensor, built: [Int?], label: String) throws {
    guard input.shape.count == built.count + 1, zip(input.shape.dropFirst(), built).allSatisfy({ $1 == nil || $0 == $1 }) else {
        throw NNError(.input, label, "expects input of shape \(describeShape(built)), found \(input.shape)")
    }
}
