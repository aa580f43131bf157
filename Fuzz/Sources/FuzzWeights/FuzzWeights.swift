import Builtins
import FuzzSupport
import LayerRegistry
import ModelSpec

private let registry = LayerRegistry.withBuiltins()
private let description = try? ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}}, {"class_name": "Dense", "config": {"name": "dense", "units": 3}}, {"class_name": "Dense", "config": {"name": "dense_1", "units": 2}}]}}"#)

/// Any bytes as a safetensors blob: check it, read every tensor, and bind it to a small model.
/// Errors are the expected outcome; a crash, trap, hang, leak or non-NNError error is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWeights(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    guard let store = expectingNNError("WeightStore", { try WeightStore(bytes: bytes, source: "fuzz") }) else { return 0 }
    checkEntries(store)
    var sum: Float = 0
    for entry in store.entries { sum += store.floats(entry).withBuffer { $0.reduce(0, +) } }
    if let description, let model = expectingNNError("Model.build", { try Model.build(description, registry: registry, weights: store) }) {
        _ = expectingNNError("Model.predict") { try model.predict(Tensor(shape: [1, 4], data: [1, 2, 3, sum.isFinite ? 0 : 1])) }
    }
    return 0
}

/// What binding relies on when a store is accepted: one entry per name, names that are whole
/// strings (json-c keys end at NUL, so "bias\u0000" would shadow "bias"), and each entry's byte
/// range the size its dtype and shape say.
private func checkEntries(_ store: WeightStore) {
    var seen = Set<String>()
    for entry in store.entries {
        guard !entry.name.utf8.contains(0) else { fuzzFailure("WeightStore accepted a tensor name with NUL: \(entry.name.debugDescription)") }
        guard seen.insert(entry.name).inserted else { fuzzFailure("WeightStore accepted the name \(entry.name.debugDescription) twice") }
        var bytes = entry.dtype.size
        for size in entry.shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: size)
            guard size >= 0, !overflow else { fuzzFailure("WeightStore accepted '\(entry.name)' of shape \(entry.shape), whose size overflows") }
            bytes = product
        }
        guard bytes == entry.offsets.count else {
            fuzzFailure("WeightStore accepted '\(entry.name)': \(entry.dtype) \(entry.shape) is \(bytes) bytes, its offsets span \(entry.offsets.count)")
        }
    }
}
