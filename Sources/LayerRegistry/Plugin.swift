#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The registry ABI a plugin is built against. A plugin reports the version it was compiled with
/// and is refused when it differs; bump it whenever Layer, LayerContext, Tensor, Weight or
/// LayerRegistry change in a way that changes their layout or calling convention.
/// Version 2: factories return `NodeLayer` (several inputs and outputs), LayerContext carries
/// the call's input shapes, masks and arguments, and `Tensor(zeros:)` throws.
public let layerRegistryABIVersion: Int32 = 2

/// Loads layer plugins: shared libraries built against the LayerRegistry product that export
///
///     @_cdecl("nnbuild_plugin_abi_version") public func abiVersion() -> Int32 { layerRegistryABIVersion }
///     @_cdecl("nnbuild_plugin_register") public func register(_ registry: UnsafeMutableRawPointer) {
///         LayerRegistry.fromPluginArgument(registry).register("ScaledTanh", factory: ScaledTanh.factory)
///     }
public enum PluginLoader {
    public static let versionSymbol = "nnbuild_plugin_abi_version"
    public static let registerSymbol = "nnbuild_plugin_register"

    /// Loads the plugin at `path` and lets it register its layers into `registry`, all tagged with
    /// the plugin's path as their origin. Returns the names it registered.
    @discardableResult
    public static func load(_ path: String, into registry: LayerRegistry) throws -> [String] {
        var status = stat()
        guard stat(path, &status) == 0 else { throw NNError(.plugin, path, "no such plugin file") }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw NNError(.plugin, path, "cannot be loaded as a shared library: \(reason)")
        }
        guard let versionAddress = dlsym(handle, versionSymbol) else {
            throw NNError(.plugin, path, "does not export \(versionSymbol); is it an nnbuild plugin?")
        }
        typealias VersionFunction = @convention(c) () -> Int32
        let version = unsafeBitCast(versionAddress, to: VersionFunction.self)()
        guard version == layerRegistryABIVersion else {
            throw NNError(.plugin, path, "was built for layer registry ABI version \(version), this nnbuild has version \(layerRegistryABIVersion); rebuild the plugin against this nnbuild")
        }
        guard let registerAddress = dlsym(handle, registerSymbol) else {
            throw NNError(.plugin, path, "does not export \(registerSymbol)")
        }
        typealias RegisterFunction = @convention(c) (UnsafeMutableRawPointer) -> Void
        let session = registry.beginPluginSession(origin: path)
        unsafeBitCast(registerAddress, to: RegisterFunction.self)(Unmanaged.passUnretained(registry).toOpaque())
        let outcome = registry.endPluginSession(session)
        if !outcome.conflicts.isEmpty {
            throw NNError(.plugin, path, outcome.conflicts.joined(separator: "; "))
        }
        if outcome.registered.isEmpty {
            throw NNError(.plugin, path, "registered no layer type")
        }
        return outcome.registered
    }

    /// Paths from the NNBUILD_PLUGIN_PATH environment variable (colon-separated).
    public static var environmentPaths: [String] {
        guard let value = getenv("NNBUILD_PLUGIN_PATH") else { return [] }
        return String(cString: value).split(separator: ":").map(String.init).filter { !$0.isEmpty }
    }
}

extension LayerRegistry {
    /// The registry a plugin's registration entry point receives.
    public static func fromPluginArgument(_ pointer: UnsafeMutableRawPointer) -> LayerRegistry {
        Unmanaged<LayerRegistry>.fromOpaque(pointer).takeUnretainedValue()
    }
}
