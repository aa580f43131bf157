import FuzzSupport
import ModelSpec

/// Reads every group, attribute and dataset below `group`, as a converter would.
private func readEverything(_ group: HDF5Group, depth: Int) {
    guard depth < 8 else { return }
    for name in expectingNNError("attributeNames", { try group.attributeNames() }) ?? [] {
        _ = expectingNNError("attribute", { try group.attribute(name) })
    }
    for name in expectingNNError("memberNames", { try group.memberNames() }) ?? [] {
        if expectingNNError("isGroup", { try group.isGroup(name) }) == true {
            if let child = expectingNNError("group", { try group.group(name) }) { readEverything(child, depth: depth + 1) }
        } else if let dataset = expectingNNError("dataset", { try group.dataset(name) }) {
            _ = expectingNNError("value", { try dataset.value() })
            if let floats = expectingNNError("floats", { try dataset.floats() }) {
                // The storage must hold exactly the values the shape describes.
                var count = 1
                for size in dataset.shape {
                    let (product, overflow) = count.multipliedReportingOverflow(by: size)
                    guard size >= 0, !overflow else { fuzzFailure("dataset \(dataset.path) has shape \(dataset.shape), whose product overflows") }
                    count = product
                }
                guard floats.count == count else { fuzzFailure("dataset \(dataset.path) of shape \(dataset.shape) gave \(floats.count) values") }
                _ = floats.withBuffer { $0.reduce(0, +) }
            }
        }
    }
}

/// Any bytes as an HDF5 file: open it and read everything in it, as loading a `.keras` or `.h5`
/// model does. Errors (NNError only) are the expected outcome; a crash, trap, hang, leak, another
/// error type, or a dataset whose values disagree with its shape is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHDF5(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    guard let file = expectingNNError("HDF5File", { try HDF5File(bytes: bytes, source: "fuzz.h5") }),
          let root = expectingNNError("root", { try file.root }) else { return 0 }
    readEverything(root, depth: 0)
    return 0
}
