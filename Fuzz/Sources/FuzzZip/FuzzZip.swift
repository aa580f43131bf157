import Foundation
import FuzzSupport
import ModelSpec

/// Any bytes as a zip archive, through `Npz.read`: the bounded zip reader (central directory,
/// zip64, stored and deflate members, CRC, the inflate bounds) and then each member's `.npy`.
/// `.keras` archives go through the same `ZipArchive`. Errors are the expected outcome; a crash,
/// trap, hang, leak, non-NNError error, more memory than the limit, or an accepted archive whose
/// arrays disagree with their shapes or repeat a name is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzZip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    // 64 MiB of inflated members at most, well under libFuzzer's 2 GB RSS limit.
    guard let arrays = expectingNNError("Npz.read", { try Npz.read(bytes, source: "fuzz.npz", limit: 64 << 20) }) else { return 0 }
    var names = Set<String>()
    var total = 0
    for item in arrays {
        guard names.insert(item.name).inserted else { fuzzFailure("Npz.read returned the name '\(item.name)' twice") }
        var count = 1
        for dimension in item.array.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard dimension >= 0, !overflow else { fuzzFailure("'\(item.name)' has shape \(item.array.shape), whose product overflows") }
            count = product
        }
        guard count == item.array.values.count else {
            fuzzFailure("'\(item.name)' has shape \(item.array.shape) (\(count) elements) and \(item.array.values.count) values")
        }
        total += count
    }
    // float32 values are at most the inflated bytes (the narrowest dtype is 1 byte per value).
    guard total <= 64 << 20 else { fuzzFailure("Npz.read returned \(total) values from at most 64 MiB of members") }
    return 0
}
