import ModelSpec

/// Reads every group, attribute and dataset below `group`, as a converter would.
private func readEverything(_ group: HDF5Group, depth: Int) {
    guard depth < 8 else { return }
    for name in (try? group.attributeNames()) ?? [] { _ = try? group.attribute(name) }
    for name in (try? group.memberNames()) ?? [] {
        if (try? group.isGroup(name)) == true {
            if let child = try? group.group(name) { readEverything(child, depth: depth + 1) }
        } else if let dataset = try? group.dataset(name) {
            _ = try? dataset.value()
            if let floats = try? dataset.floats() { _ = floats.withBuffer { $0.reduce(0, +) } }
        }
    }
}

/// Any bytes as an HDF5 file: open it and read everything in it. Errors are fine; traps are not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHDF5(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let file = try? HDF5File(bytes: bytes, source: "fuzz"), let root = try? file.root else { return 0 }
    readEverything(root, depth: 0)
    return 0
}
