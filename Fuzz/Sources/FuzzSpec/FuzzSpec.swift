import Builtins
import LayerRegistry
import ModelSpec

private let registry = LayerRegistry.withBuiltins()

/// Any bytes as a model spec: parse, then build every layer (without weights) and run one sample.
/// Errors are the expected outcome; a crash, trap, hang or leak is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let description = try? ModelDescription.parse(bytes, source: "fuzz"),
          let model = try? Model.build(description, registry: registry) else { return 0 }
    let shape = model.inputShape.map { min($0 ?? 3, 64) }
    let count = shape.reduce(1, *)
    if count <= 1 << 16, shape.allSatisfy({ $0 > 0 }) {
        _ = try? model.predict(Tensor(shape: [1] + shape, data: [Float](repeating: 1, count: count)))
    }
    return 0
}
