/// What a file is, told by its first bytes (its magic number), so that a file of another format
/// given where nnbuild expects a JSON spec or a safetensors blob is named for what it is, with
/// how to pass it instead, instead of failing deep inside the JSON or safetensors reader.
public enum FileKind: Sendable, Equatable {
    /// A Keras 3 model archive (`model.save("m.keras")`): a zip file.
    case kerasArchive
    /// An HDF5 file: a legacy Keras model (`.h5`) or a weights-only file (`.weights.h5`).
    case hdf5
    /// A NumPy array (`.npy`).
    case npy
    /// None of the above: left to the reader that was asked for.
    case other

    /// What nnbuild was expecting when it opened the file.
    public enum Expected: Sendable {
        case modelSpec, weights

        var noun: String {
            switch self {
            case .modelSpec: return "a JSON model spec"
            case .weights: return "a safetensors weight blob"
            }
        }

        var errorKind: NNError.Kind {
            switch self {
            case .modelSpec: return .spec
            case .weights: return .weights
            }
        }
    }

    /// Each format's own magic bytes; no two overlap.
    static let signatures: [(kind: FileKind, magic: [UInt8])] = [
        (.hdf5, [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]), // \x89HDF\r\n\x1a\n
        (.npy, Npy.magic),                                        // \x93NUMPY
        (.kerasArchive, [0x50, 0x4B, 0x03, 0x04]),                // PK\x03\x04, a zip's first local header
    ]

    /// The kind of a file whose first bytes are `prefix` (eight bytes are enough).
    public static func detect<Bytes: Collection>(_ prefix: Bytes) -> FileKind where Bytes.Element == UInt8 {
        for signature in signatures where prefix.count >= signature.magic.count {
            if zip(prefix, signature.magic).allSatisfy({ $0 == $1 }) { return signature.kind }
        }
        return .other
    }

    /// Throws one error naming the file's real format and its conversion when `prefix`, the first
    /// bytes of the file at `path`, is a format recognised here that cannot be read as `expected`.
    public static func check<Bytes: Collection>(_ prefix: Bytes, path: String, expected: Expected) throws where Bytes.Element == UInt8 {
        guard let (what, remedy) = detect(prefix).explanation(path: path) else { return }
        throw NNError(expected.errorKind, path, "this is \(what), not \(expected.noun); \(remedy)")
    }

    /// What the file is, and what to do with it; nil for `other`.
    func explanation(path: String) -> (what: String, remedy: String)? {
        let alone = "pass it alone in place of the spec and weights (`nnbuild infer \(path) --input x.npy`)"
        switch self {
        case .kerasArchive:
            return ("a zip file, as a Keras 3 model archive (.keras) is", alone)
        case .hdf5 where path.lowercased().hasSuffix(".weights.h5"):
            return ("a Keras weights-only HDF5 file (.weights.h5, from model.save_weights), which holds no architecture",
                    "pass it as the weights after the model's JSON spec (`nnbuild infer spec.json \(path) --input x.npy`)")
        case .hdf5:
            return ("an HDF5 file, as a legacy Keras model (.h5) is", alone)
        case .npy:
            return ("a NumPy array (.npy)", "arrays are inputs, labels or expected outputs (--input, --labels, --expected)")
        case .other:
            return nil
        }
    }
}
