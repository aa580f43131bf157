import ArgumentParser
import Builtins
import LayerRegistry

/// `--plugin PATH` (repeatable) plus NNBUILD_PLUGIN_PATH: shared libraries that register layers.
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugin"), help: ArgumentHelp("A layer plugin (.so file, relative to the working directory, never searched on the library path) to load; repeatable. NNBUILD_PLUGIN_PATH adds more (colon-separated). Loading a plugin runs its code: load only plugins you trust.", valueName: "path"))
    var paths: [String] = []

    /// The built-in registry with every plugin's layers added.
    func registry() throws -> LayerRegistry {
        let registry = LayerRegistry.withBuiltins()
        for path in PluginLoader.environmentPaths + paths {
            try PluginLoader.load(path, into: registry)
        }
        return registry
    }
}

extension ModelArguments {
    /// The files loading the model reads (spec and plugins), which no output may overwrite.
    var reads: [(role: String, path: String?)] {
        [("spec", spec)] + (PluginLoader.environmentPaths + plugins.paths).map { ("plugin", $0) }
    }
}
