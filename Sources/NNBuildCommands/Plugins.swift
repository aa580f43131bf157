import CommandSupport
import LayerRegistry

extension ModelArguments {
    /// The files loading the model reads (spec and plugins), which no output may overwrite.
    var reads: [(role: String, path: String?)] {
        [("spec", spec)] + (PluginLoader.environmentPaths + plugins.paths).map { ("plugin", $0) }
    }
}
