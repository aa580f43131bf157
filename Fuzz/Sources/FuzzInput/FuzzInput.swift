import Foundation
import FuzzSupport
import ModelSpec

/// Any bytes as an `infer` input: `.npy` when they start with its magic string, JSON nested arrays
/// otherwise. Errors are the expected outcome; a crash, trap, hang, leak, non-NNError error, or an
/// array whose shape disagrees with its values is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    if Npy.isNpy(bytes) {
        let array = expectingNNError("Npy.read") { try Npy.read(bytes, source: "fuzz.npy") }
        if let array { checkArray(array, reader: "Npy.read") }
        readThroughNpyFile(bytes, expected: array)
    } else {
        guard let value = expectingNNError("JSONParser.parse", { try JSONParser.parse(bytes, source: "fuzz.json") }) else { return 0 }
        // As a numeric input reads it, and as a string input does.
        for strings in [false, true] {
            if let array = expectingNNError("JSONArray.read", { try JSONArray.read(value, source: "fuzz.json", strings: strings) }) {
                checkArray(array, reader: "JSONArray.read(strings: \(strings))")
            }
        }
    }
    return 0
}

/// What the commands rely on: the shape's product is the number of values, and writing the array
/// as `.npy` (what `infer --output x.npy` does) reads back bit for bit.
private func checkArray(_ array: NumericArray, reader: String) {
    var count = 1
    for size in array.shape {
        let (product, overflow) = count.multipliedReportingOverflow(by: size)
        guard size >= 0, !overflow else { fuzzFailure("\(reader) returned shape \(array.shape), whose product overflows") }
        count = product
    }
    let elements = array.strings?.count ?? array.values.count
    guard count == elements, array.strings == nil || array.values.isEmpty else {
        fuzzFailure("\(reader) returned shape \(array.shape) (\(count) elements) with \(array.values.count) values and \(array.strings?.count ?? 0) strings")
    }
    guard let back = expectingNNError("Npy.read of Npy.encode", { try Npy.read(Npy.encode(array), source: "round trip") }) else {
        fuzzFailure("\(reader) returned shape \(array.shape) that Npy.encode writes and Npy.read refuses")
    }
    guard back.shape == array.shape, sameBits(back.values, array.values), back.strings == array.strings else {
        fuzzFailure("\(reader): Npy.encode then Npy.read changed shape \(array.shape) to \(back.shape) or the values")
    }
}

// The mapped reader (`NpyFile`, what `nnbuild infer` streams a large .npy through) must accept
// exactly what `Npy.read` accepts and give the same values, whole and row by row.
private let npyPath: String = {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-fuzzinput-\(getpid()).npy").path
    atexit { unlink(npyPath) }
    return path
}()

private func readThroughNpyFile(_ bytes: [UInt8], expected: NumericArray?) {
    // Plain POSIX calls, one file per process overwritten in place: FileManager writing and removing
    // a file per input more than halved the runs per second.
    let descriptor = open(npyPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard descriptor >= 0 else { fuzzFailure("cannot write \(npyPath)") }
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
    guard written == bytes.count else { fuzzFailure("wrote \(written) of \(bytes.count) bytes to \(npyPath)") }
    let file = expectingNNError("NpyFile(path:)") { try NpyFile(path: npyPath) }
    guard let file, let expected else {
        // A file of strings is decoded as its rows are read: text that is not Unicode is refused
        // then, not when the file opens.
        if let file, file.holdsStrings, expectingNNError("NpyFile.all()", { try file.all() }) == nil { return }
        if (file == nil) != (expected == nil) {
            fuzzFailure("NpyFile(path:) \(file == nil ? "refuses" : "accepts") what Npy.read \(expected == nil ? "refuses" : "accepts")")
        }
        return
    }
    guard file.shape == expected.shape, file.dtype == expected.dtype else {
        fuzzFailure("NpyFile says \(file.shape) \(file.dtype), Npy.read says \(expected.shape) \(expected.dtype)")
    }
    guard let all = expectingNNError("NpyFile.all()", { try file.all() }), all.shape == expected.shape, sameBits(all.values, expected.values),
          all.strings == expected.strings else {
        fuzzFailure("NpyFile.all() differs from Npy.read")
    }
    // In at most 16 pieces: a (1e9, 0) array has a billion empty rows.
    var rows: [Float] = [], texts: [String] = []
    let step = max(1, (file.rowCount + 15) / 16)
    for start in stride(from: 0, to: file.rowCount, by: step) {
        let range = start..<min(start + step, file.rowCount)
        guard let piece = expectingNNError("NpyFile.array", { try file.array(range) }) else { fuzzFailure("NpyFile.array(\(range)) failed") }
        rows += piece.values
        texts += piece.strings ?? []
    }
    guard sameBits(rows, expected.values), texts == expected.strings ?? [] else { fuzzFailure("NpyFile rows, piece by piece, differ from Npy.read") }
}
