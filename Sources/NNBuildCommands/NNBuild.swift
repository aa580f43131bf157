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
import Builtins
import LayerRegistry
import ModelSpec

/// The command line of both executables, `nnbuild` and `nnbuild-plugins` (see `PluginRuntime`).
public enum CommandLineTool {
    public static func main() { NNBuild.main() }
}

struct NNBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nnbuild",
        abstract: "Run Keras models (Sequential and Functional: CNNs, residual graphs, recurrent layers, attention) without TensorFlow.",
        discussion: """
        A model is its architecture as JSON (what Keras 3 or 2 model.to_json() writes, or a hand-written \
        spec where omitted keys take Keras's defaults) plus a safetensors weight blob keyed by Keras \
        variable paths; or, in their place, the one .keras or .h5 file Keras saved (see `nnbuild convert`). \
        `nnbuild layers` lists the layer types this build knows.

        Exit codes: 0 success; 1 invalid model, weights or input (every problem is printed on stderr, \
        one per line); 2 compare found a difference past its tolerance; 64 usage error.

        Plugins: --plugin PATH and NNBUILD_PLUGIN_PATH load shared libraries that register layers; \
        a path is a file relative to the working directory, never searched on the library path. \
        Loading a plugin runs its code with your rights: load only plugins you trust.

        Environment: NNBUILD_PLUGIN_PATH, colon-separated layer plugins to load (as --plugin); \
        NNBUILD_KERNELS=baseline, run portable code (no AVX2 kernels; OpenBLAS only where a caller asks for it) instead; \
        NNBUILD_KERNELS=avx2 or avx512 forces that kernel path (the default is the best this CPU supports).
        """,
        version: versionText,
        // Each subcommand names itself (`commandName`): deriving the name from the type's name
        // (ArgumentParser's default) costs every run about a millisecond of runtime type lookups.
        subcommands: [Validate.self, Infer.self, Compare.self, Eval.self, Bench.self, Layers.self, Convert.self] + serveSubcommands
    )

    /// Accepts `--plugin PATH` before the subcommand too (`nnbuild --plugin x.so infer ...`) by
    /// moving it after the subcommand's name, where every subcommand declares it.
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        var leading: [String] = []
        while let first = arguments.first {
            if first == "--plugin", arguments.count >= 2 {
                leading += arguments.prefix(2)
                arguments.removeFirst(2)
            } else if first.hasPrefix("--plugin=") {
                leading.append(arguments.removeFirst())
            } else {
                break
            }
        }
        if !leading.isEmpty, !arguments.isEmpty { arguments.insert(contentsOf: leading, at: 1) } else { arguments = leading + arguments }
        #if Serve
        // `serve` is its own executable (see `Serve`): nothing here is parsed for it.
        if arguments.first == "serve" { serverExecutable.run(Array(arguments.dropFirst()), for: "serve") }
        if arguments.count >= 2, arguments[0] == "help", arguments[1] == "serve" { serverExecutable.run(["--help"], for: "serve") }
        #endif
        // A plugin needs the shared Swift runtime, which the release nnbuild does not link.
        PluginRuntime.handOffIfNeeded(arguments)
        // Packed weights get their own mappings while a model loads; afterwards freed outputs
        // stay in the heap for the next call's (see Allocator).
        Allocator.start(oneArena: true)
        if let first = arguments.first, !first.hasPrefix("-") {
            checkSubcommand(first)
        }
        refuseBadKernelRequest(self)
        main(arguments)
    }

    /// A word where the subcommand goes that names none is a usage error suggesting the closest
    /// (`nnbuild infrr` → did you mean 'infer'?), as a mistyped flag already gets.
    static func checkSubcommand(_ word: String) {
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        guard !names.contains(word) else { return }
        let lowered = word.lowercased()
        let closest = names.map { ($0, editDistance(lowered, $0)) }.min { ($0.1, $0.0) < ($1.1, $1.0) }
        let suggestion = closest.flatMap { $0.1 <= max(2, word.count / 3) ? " Did you mean '\($0.0)'?" : nil }
        exit(withError: ValidationError("unknown subcommand '\(word)'.\(suggestion ?? "") The subcommands are \(names.dropLast().joined(separator: ", ")); see 'nnbuild --help'."))
    }
}

/// The spec argument and plugin options every model-running subcommand takes.
struct ModelArguments: ParsableArguments {
    @Argument(help: "The model: a Keras file (.keras or .h5), or a spec (Keras to_json() output or a hand-written Sequential config) followed by its weights.")
    var spec: String

    @OptionGroup var plugins: PluginOptions

    @OptionGroup var memory: MemoryOptions

    /// A usage error when a JSON spec comes without its weights where the command needs them (a
    /// .keras or .h5 file holds its own).
    /// A path that does not exist is left to the loader, which names it (`no such file`): a
    /// missing `model.keras` is not a spec that lacks its weights.
    func validate(weights: String?) throws {
        if weights == nil, FileManager.default.fileExists(atPath: spec), !ModelFile.isModelFile(path: spec) {
            throw ValidationError("Missing expected argument '<weights>': a JSON spec needs its weight file after it; a .keras or .h5 model file is passed alone.")
        }
    }

    /// Loads the spec and optional weights and builds the model with built-ins and plugins, under
    /// the memory limit of `--max-memory` (which `predict` then uses too), with the allocator
    /// set for loading (`Allocator`).
    func load(weights: String?, required: Bool = false) throws -> Model {
        try loadWithStore(weights: weights, required: required).model
    }

    /// `load`, with the weight store the model was bound from (a `.keras` file's, its assets too).
    func loadWithStore(weights: String?, required: Bool = false) throws -> (model: Model, store: WeightStore?) {
        try Allocator.loading { try loadModel(weights: weights, required: required) }
    }

    private func loadModel(weights: String?, required: Bool) throws -> (model: Model, store: WeightStore?) {
        let registry = try plugins.registry()
        let description: ModelDescription
        let store: WeightStore?
        if ModelFile.isModelFile(path: spec) {
            if let weights {
                throw NNError(.spec, weights, "\(spec) is a whole Keras model file, which holds its own weights; pass it alone, without a weights file")
            }
            (description, store) = try ModelFile.load(path: spec)
        } else {
            description = try ModelDescription.load(path: spec)
            if required, weights == nil {
                throw NNError(.spec, spec, "a JSON spec needs its weights: give the weight file after the spec, or pass a .keras or .h5 model file alone")
            }
            store = try weights.map { try ModelFile.weights(path: $0) }
        }
        return (try Model.build(description, registry: registry, weights: store, settings: memory.settings), store)
    }
}
