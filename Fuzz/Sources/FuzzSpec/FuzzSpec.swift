import Builtins
import FuzzSupport
import LayerRegistry
import ModelSpec

private let registry = LayerRegistry.withBuiltins()
/// A quarter of a gigabyte a layer: well under libFuzzer's 2 GB RSS limit (a peak, ASan's overhead and quarantine included), so that a layer planning more is
/// refused with the memory-limit error (what the check is for) rather than reaching that limit
/// with an allocation the 4 GB default allows; one seen at 2.1 GB after 41,000 inputs.
private let settings = ExecutionSettings(memoryLimit: 256 << 20)

/// Any bytes as a model spec: parse, then build every layer (without weights) and run one sample.
/// Errors are the expected outcome; a crash, trap, hang, leak or non-NNError error is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    guard let description = expectingNNError("ModelDescription.parse", { try ModelDescription.parse(bytes, source: "fuzz") }),
          let model = expectingNNError("Model.build", { try Model.build(description, registry: registry, settings: settings) }) else { return 0 }
    // One sample per input, keeping the model's own sizes up to 64 per axis (an unknown axis
    // becomes 3), so that what a layer makes of a small input is what runs; the harness's own
    // product is checked. A string input gets the string "1" in every element.
    var batches: [Tensor] = []
    for port in model.inputs {
        let shape = port.shape.map { min($0 ?? 3, 64) }
        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard size > 0, !overflow, product <= 1 << 16 else { return 0 }
            count = product
        }
        batches.append(port.takesStrings ? Tensor(shape: [1] + shape, strings: [String](repeating: "1", count: count))
                                         : Tensor(shape: [1] + shape, data: [Float](repeating: 1, count: count)))
    }
    _ = expectingNNError("Model.predict") { try model.predict(batches) }
    return 0
}
