import LayerRegistry

/// `CustomScaleLayer` (keras.src.applications.inception_resnet_v2, as InceptionResNetV2's
/// residual blocks use it; tf-keras's, written `Custom>CustomScaleLayer`, the same):
/// y = x₀ + x₁ · scale, called on a list of two tensors of one shape. Config: `scale` (a number).
/// No weights. Keras's Layer default for masks: none is passed on.
///
/// Each element is rounded as TensorFlow computes it, the product first (scale as float32), then
/// the sum.
public struct CustomScaleLayer: NodeLayer {
    public let scale: Float
    public let outputShapes: [[Int?]]

    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        let scale = try context.double("scale")
        guard scale.isFinite, abs(scale) <= Double(Float.greatestFiniteMagnitude) else {
            throw context.error("'scale' is \(scale), expected a finite float32 number", key: "scale")
        }
        let shapes = context.inputShapes
        guard shapes.count == 2 else {
            throw context.error("takes a list of 2 tensors (the residual and the branch it scales), called on \(shapes.count)")
        }
        guard shapes[0] == shapes[1] else {
            throw context.error("takes 2 tensors of one shape, called on \(describeShape(shapes[0])) and \(describeShape(shapes[1])) (nnbuild does not broadcast them)")
        }
        return CustomScaleLayer(scale: Float(scale), outputShapes: [shapes[0]])
    }

    public func call(_ inputs: [Tensor]) throws -> [Tensor] {
        guard inputs.count == 2 else { throw NNError(.input, "CustomScaleLayer", "expected 2 input tensors, found \(inputs.count)") }
        guard inputs[0].shape == inputs[1].shape else {
            throw NNError(.input, "CustomScaleLayer", "the inputs have shapes \(inputs[0].shape) and \(inputs[1].shape); expected one shape")
        }
        var output = Tensor(shape: inputs[0].shape, data: inputs[0].data)
        let scale = self.scale
        output.data.withUnsafeMutableBufferPointer { y in
            inputs[1].data.withUnsafeBufferPointer { branch in
                for index in y.indices {
                    let scaled = branch[index] * scale
                    y[index] = y[index] + scaled
                }
            }
        }
        return [output]
    }
}

extension Builtins {
    static func registerCustomScale(_ registry: LayerRegistry) {
        // tf-keras registers its class as serializable in the default package: "Custom>CustomScaleLayer".
        registry.register("CustomScaleLayer", aliases: ["Custom>CustomScaleLayer"], origin: "builtin",
                          summary: "x₀ + x₁ · scale on two tensors of one shape (InceptionResNetV2's residual blocks).",
                          factory: CustomScaleLayer.factory)
    }
}
