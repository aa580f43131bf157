import LayerRegistry

/// `LayerScale` (keras.src.applications.convnext, as ConvNeXt uses it): y = x · gamma, gamma
/// learned per channel of the last axis.
/// Config: `init_values` (read, only its training-time initial value), `projection_dim` (the
/// length of gamma and of the input's last axis). Weight `variable` (Keras 3 names gamma so; tf-keras `gamma`),
/// shape (projection_dim,).
public struct LayerScale: Layer {
    public let gamma: Weight
    public let outputShape: [Int?]
    /// Keras's Layer default: no masking support, so the mask stops here.
    public var maskBehavior: MaskBehavior { .drops }

    static func factory(_ context: LayerContext) throws -> any Layer {
        _ = try context.double("init_values")
        let dim = try context.positiveInt("projection_dim")
        let last = try context.inputDimension(-1)
        guard last == dim else {
            throw context.error("'projection_dim' is \(dim), expected the input's last axis, \(last) (x · gamma would broadcast to another shape)", key: "projection_dim")
        }
        // (tf-keras, Keras 2, names it `gamma`.)
        return LayerScale(gamma: try context.weight("variable", alsoNamed: ["gamma"], shape: [dim]), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        scaleChannels(&output.data, gamma.values)
        return output
    }
}

/// x[r, c] · gamma[c] in place. x: (rows, channels) flat; gamma: (channels,).
func scaleChannels(_ x: inout [Float], _ gamma: UnsafeBufferPointer<Float>) {
    let channels = gamma.count
    guard channels > 0 else { return }
    x.withUnsafeMutableBufferPointer { y in
        var start = 0
        while start + channels <= y.count {
            for c in 0..<channels { y[start + c] *= gamma[c] }
            start += channels
        }
    }
}

extension Builtins {
    static func registerLayerScale(_ registry: LayerRegistry) {
        registry.register("LayerScale", origin: "builtin", summary: "x · gamma per channel (ConvNeXt's LayerScale).", factory: LayerScale.factory)
    }
}
