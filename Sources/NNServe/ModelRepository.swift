#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import LayerRegistry
import ModelSpec

/// One version of a served model, built whole before the server starts.
public struct ServedVersion: Sendable {
    public let version: Int
    public let model: Model
    /// Seconds spent reading and building it (reported in /metrics).
    public let loadSeconds: Double
}

/// Every version of one `--model NAME=PATH`, and which one a request without a version reaches.
public struct ServedModel: Sendable {
    public let name: String
    public let path: String
    /// By version number, ascending.
    public let versions: [ServedVersion]

    /// The highest version, as TF Serving's default policy serves.
    public var latest: ServedVersion? { versions.last }

    public func version(_ number: Int) -> ServedVersion? { versions.first { $0.version == number } }
}

/// How a `--model` argument becomes models: the one place that decides what a PATH is.
public enum ModelRepository {
    /// Splits `NAME=PATH`. The name must be usable in a URL path segment.
    public static func parseArgument(_ text: String) throws -> (name: String, path: String) {
        guard let equals = text.firstIndex(of: "=") else {
            throw NNError(.input, "--model \(text)", "expected NAME=PATH (a model name, '=', then its directory)")
        }
        let name = String(text[..<equals]), path = String(text[text.index(after: equals)...])
        let allowed = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || "-_.".contains(c)) }
        guard !name.isEmpty, name.allSatisfy(allowed) else {
            throw NNError(.input, "--model \(text)", "expected a model name of ASCII letters, digits, '-', '_' or '.', found '\(name)'")
        }
        guard !path.isEmpty else { throw NNError(.input, "--model \(text)", "expected a path after '='") }
        return (name, path)
    }

    /// Loads every version under `path`: a directory holding `model.json` and
    /// `weights.safetensors` is version 1; a directory of numbered subfolders holds one version
    /// each. Any version failing to load fails the whole model (never served half-built).
    public static func load(name: String, path: String, registry: LayerRegistry, settings: ExecutionSettings) throws -> ServedModel {
        guard FileManager.default.fileExists(atPath: path) else {
            throw NNError(.io, path, "model '\(name)': no such file or directory")
        }
        guard isDirectory(path) else {
            // A Keras model file (.keras archive or legacy .h5) is version 1 of its model.
            guard ModelFile.isModelFile(path: path) else {
                throw NNError(.io, path, "model '\(name)': expected a .keras or .h5 model file, or a directory holding model.json and weights.safetensors (or numbered version subfolders); this file is neither")
            }
            return ServedModel(name: name, path: path, versions: [try loadFile(path, registry: registry, settings: settings)])
        }
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("model.json").path) {
            return ServedModel(name: name, path: path, versions: [try loadVersion(1, url, registry: registry, settings: settings)])
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let numbers = entries.compactMap { entry -> Int? in
            guard !entry.isEmpty, entry.allSatisfy(\.isASCII), entry.allSatisfy(\.isNumber), let number = Int(entry), number >= 0 else { return nil }
            return isDirectory(url.appendingPathComponent(entry).path) ? number : nil
        }.sorted()
        guard !numbers.isEmpty else {
            throw NNError(.io, path, "model '\(name)': expected model.json and weights.safetensors, or numbered version subfolders (1/, 2/, ...), found neither")
        }
        let versions = try numbers.map { number in
            try loadVersion(number, url.appendingPathComponent(String(number)), registry: registry, settings: settings)
        }
        return ServedModel(name: name, path: path, versions: versions)
    }

    /// Whether `path` names a directory (following symbolic links, as `fileExists` does).
    static func isDirectory(_ path: String) -> Bool {
        let attributes = try? FileManager.default.attributesOfItem(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path)
        return attributes?[.type] as? FileAttributeType == .typeDirectory
    }

    /// Runs one all-zero row (empty strings for a string input) through the model before it is served, as TF Serving's SavedModel
    /// warm-up does: a model that cannot run fails start-up, and no client's request is the
    /// engine's first call (whose in-place weight path rounds differently from later calls,
    /// until the batch-invariance work of issue 17 lands).
    static func warmUp(_ model: Model) throws {
        let batches = try model.inputs.map { port in
            let shape = [1] + port.shape.map { $0 ?? 1 }
            return port.takesStrings ? Tensor(shape: shape, strings: [String](repeating: "", count: shape.reduce(1, *))) : try Tensor(zeros: shape)
        }
        do {
            _ = try model.predict(batches)
        } catch let error as NNError where error.kind == .input && model.inputs.contains(where: \.takesStrings) {
            // A lookup without OOV slots refuses the empty string, as Keras does; the model ran
            // up to it, which is what warming up checks.
        }
    }

    /// A Keras model file as version 1. Its weights are converted into memory nnbuild owns as
    /// they are read (HDF5 datasets are never used in place), so the file may change under the server.
    static func loadFile(_ path: String, registry: LayerRegistry, settings: ExecutionSettings) throws -> ServedVersion {
        let start = DispatchTime.now().uptimeNanoseconds
        let (description, store) = try ModelFile.load(path: path)
        let model = try Model.build(description, registry: registry, weights: store, settings: settings)
        try warmUp(model)
        return ServedVersion(version: 1, model: model, loadSeconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// One version directory: the spec and its weights, copied into memory (`.copy`) so that a
    /// file truncated or replaced while the server runs cannot kill it.
    static func loadVersion(_ number: Int, _ directory: URL, registry: LayerRegistry, settings: ExecutionSettings) throws -> ServedVersion {
        let start = DispatchTime.now().uptimeNanoseconds
        let spec = directory.appendingPathComponent("model.json").path
        let weights = directory.appendingPathComponent("weights.safetensors").path
        let description = try ModelDescription.load(path: spec)
        let store = try WeightStore(path: weights, loading: .copy)
        let model = try Model.build(description, registry: registry, weights: store, settings: settings)
        try warmUp(model)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return ServedVersion(version: number, model: model, loadSeconds: seconds)
    }
}
