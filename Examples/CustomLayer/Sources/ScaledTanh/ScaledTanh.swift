import Foundation
import LayerRegistry

/// The Keras custom layer `my_layers>ScaledTanh`: y = scale · tanh(alpha ⊙ x), where `alpha` is a
/// trained weight per feature and `scale` a config value (default 1).
public struct ScaledTanh: Layer {
    let alpha: Weight
    let scale: Float
    public let outputShape: [Int?]
    public var maskBehavior: MaskBehavior { .propagates }

    public static func factory(_ context: LayerContext) throws -> any Layer {
        let features = try context.inputDimension(-1)
        return ScaledTanh(alpha: try context.weight("alpha", shape: [features]),
                          scale: try context.float("scale", default: 1), outputShape: context.inputShape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let features = alpha.count
        var output = input
        for index in output.data.indices {
            output.data[index] = scale * tanh(alpha[index % features] * input.data[index])
        }
        return output
    }
}

/// Registers the layer under its Keras 3 registered name and its class name.
public func registerScaledTanh(into registry: LayerRegistry) {
    registry.register("my_layers>ScaledTanh", aliases: ["ScaledTanh"], summary: "scale · tanh(alpha ⊙ x), a Keras custom layer.",
                      factory: ScaledTanh.factory)
}
