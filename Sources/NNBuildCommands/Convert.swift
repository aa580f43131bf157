import ArgumentParser
import CommandSupport
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import LayerRegistry
import ModelSpec

/// `nnbuild convert MODEL OUT_DIR`: a Keras model file as the spec and blob nnbuild maps at once.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a .keras or .h5 model as model.json and weights.safetensors, for the fastest cold start.",
        discussion: """
        model.json is Keras's config, verbatim; weights.safetensors holds every weight as float32 keyed \
        by its Keras variable path, in name order, with no timestamp, so converting twice gives the same \
        bytes. A .keras file's assets (an adapted IntegerLookup's vocabulary) go to an assets folder \
        beside them, where nnbuild reads them back. Existing files are refused unless --force is given; each file is written beside and \
        renamed into place.
        """
    )

    @OptionGroup var model: ModelArguments

    @Argument(help: "The folder to write model.json and weights.safetensors into (made when missing).")
    var outputDirectory: String

    @Flag(help: "Replace model.json and weights.safetensors when they exist.")
    var force = false

    func run() throws {
        try reportingErrors {
            guard ModelFile.isModelFile(path: model.spec) else {
                throw NNError(.spec, model.spec, "expected a Keras model file (.keras or .h5) to convert; a JSON spec and its weights are already what convert writes")
            }
            let specPath = outputDirectory + "/model.json"
            let weightsPath = outputDirectory + "/weights.safetensors"
            var status = stat()
            if stat(outputDirectory, &status) == 0 {
                guard status.st_mode & S_IFMT == S_IFDIR else {
                    throw NNError(.io, outputDirectory, "exists and is not a folder; expected a folder to write model.json and weights.safetensors into")
                }
            }
            if !force {
                for path in [specPath, weightsPath] where access(path, F_OK) == 0 {
                    throw NNError(.io, path, "already exists; pass --force to replace it")
                }
            }
            let config = try ModelFile.configText(path: model.spec)
            let (built, store) = try model.loadWithStore(weights: nil)
            // What layers saved beside their variables (an adapted lookup's vocabulary), as the
            // archive's reader kept them, written to the assets folder beside
            // weights.safetensors, where nnbuild reads them back; refused, like the files above,
            // before anything is written.
            let assets = (store?.assets ?? [:]).sorted(by: { $0.key < $1.key })
            if !force, let existing = assets.map({ outputDirectory + "/assets/" + $0.key }).first(where: { access($0, F_OK) == 0 }) {
                throw NNError(.io, existing, "already exists; pass --force to replace it")
            }
            let blob = try Convert.safetensors(built.variables.map { ($0.path, $0.weight) })
            if stat(outputDirectory, &status) != 0, mkdir(outputDirectory, 0o777) != 0 {
                throw NNError(.io, outputDirectory, "cannot make the folder: \(String(cString: strerror(errno)))")
            }
            try Convert.write(blob, to: weightsPath, reads: model.spec)
            for (path, bytes) in assets {
                var folder = outputDirectory + "/assets"
                let parts = path.split(separator: "/").dropLast().map(String.init)
                for depth in 0...parts.count {
                    if stat(folder, &status) != 0, mkdir(folder, 0o777) != 0 {
                        throw NNError(.io, folder, "cannot make the folder: \(String(cString: strerror(errno)))")
                    }
                    if depth < parts.count { folder += "/" + parts[depth] }
                }
                try Convert.write(bytes, to: outputDirectory + "/assets/" + path, reads: model.spec)
            }
            try Convert.write(config, to: specPath, reads: model.spec)
        }
    }

    static func write(_ bytes: [UInt8], to path: String, reads: String) throws {
        let sink = try OutputTarget(path, reads: [("model", reads)]).open()
        do {
            try bytes.withUnsafeBytes { try sink.write($0) }
            try sink.commit()
        } catch {
            sink.discard()
            throw error
        }
    }

    /// A safetensors blob of `tensors` (float32, sorted by name), its header padded with spaces to
    /// a multiple of 8 bytes so every tensor is aligned.
    static func safetensors(_ tensors: [(String, Weight)]) throws -> [UInt8] {
        let sorted = tensors.sorted { $0.0 < $1.0 }
        var entries: [String] = []
        var offset = 0
        for (name, weight) in sorted {
            let end = offset + weight.count * 4
            entries.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(weight.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out += header
        for (_, weight) in sorted {
            weight.storage.withBuffer { values in
                for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            }
        }
        return out
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += formatted("\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
