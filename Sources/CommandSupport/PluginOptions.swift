import ArgumentParser
import Builtins
import LayerRegistry

/// `--plugin PATH` (repeatable) plus NNBUILD_PLUGIN_PATH: shared libraries that register layers.
package struct PluginOptions: ParsableArguments {
    package init() {}

    @Option(name: .customLong("plugin"), help: ArgumentHelp("A layer plugin (.so file, relative to the working directory, never searched on the library path) to load; repeatable. NNBUILD_PLUGIN_PATH adds more (colon-separated). Loading a plugin runs its code: load only plugins you trust.", valueName: "path"))
    package var paths: [String] = []

    /// The built-in registry with every plugin's layers added.
    package func registry() throws -> LayerRegistry {
        let registry = LayerRegistry.withBuiltins()
        for path in PluginLoader.environmentPaths + paths {
            try PluginLoader.load(path, into: registry)
        }
        return registry
    }
}
