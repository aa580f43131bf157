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
public let layerRegistryABIVersion: Int32 = 3

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
    ///
    /// Loading a plugin runs its code with the user's rights: only load plugins you trust.
    @discardableResult
    public static func load(_ path: String, into registry: LayerRegistry) throws -> [String] {
        let file = try resolve(path)
        guard let handle = dlopen(file, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw NNError(.plugin, path, "cannot be loaded as a shared library: \(reason)")
        }
        guard let versionAddress = try function(versionSymbol, in: handle, path: path) else {
            throw NNError(.plugin, path, "does not export \(versionSymbol); is it an nnbuild plugin?")
        }
        typealias VersionFunction = @convention(c) () -> Int32
        let version = unsafeBitCast(versionAddress, to: VersionFunction.self)()
        guard version == layerRegistryABIVersion else {
            throw NNError(.plugin, path, "was built for layer registry ABI version \(version), this nnbuild has version \(layerRegistryABIVersion); rebuild the plugin against this nnbuild")
        }
        guard let registerAddress = try function(registerSymbol, in: handle, path: path) else {
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

    /// The plugin's path as a file: relative to the working directory and made absolute, so that
    /// dlopen never searches the library path (`libm.so.6` is not the system's libm).
    static func resolve(_ path: String) throws -> String {
        var file = path
        if !file.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard getcwd(&buffer, buffer.count) != nil else {
                throw NNError(.plugin, path, "cannot resolve the plugin's path: the working directory is unknown")
            }
            file = String(cString: buffer) + "/" + file
        }
        var status = stat()
        guard stat(file, &status) == 0 else {
            throw NNError(.plugin, path, "no such plugin file" + (path.contains("/") ? "" : " in the working directory (plugins are files, never looked up on the library path)"))
        }
        guard status.st_mode & S_IFMT == S_IFREG else { throw NNError(.plugin, path, "is not a regular file") }
        return file
    }

    /// The address of an exported function, or nil when the symbol is absent. A symbol that is not
    /// a function in executable memory (for example `int nnbuild_plugin_abi_version = 1;`) is
    /// refused rather than called.
    static func function(_ name: String, in handle: UnsafeMutableRawPointer, path: String) throws -> UnsafeMutableRawPointer? {
        guard let address = dlsym(handle, name) else { return nil }
        var info: (UnsafeRawPointer?, UnsafeRawPointer?, UnsafeRawPointer?, UnsafeRawPointer?) = (nil, nil, nil, nil) // Dl_info
        var symbol: UnsafeMutableRawPointer?
        guard pluginDladdr1(address, &info, &symbol, 1 /* RTLD_DL_SYMENT */) != 0, let symbol else {
            throw NNError(.plugin, path, "\(name) is not described in the library's symbol table")
        }
        // Elf64_Sym: st_name (4 bytes), then st_info, whose low 4 bits are the type (STT_FUNC = 2).
        let type = symbol.load(fromByteOffset: 4, as: UInt8.self) & 0xF
        guard type == 2 || type == 10 /* STT_GNU_IFUNC */, isExecutable(address) else {
            throw NNError(.plugin, path, "\(name) is a data symbol, expected a function: declare it as `int32_t \(name)(void)` (or @_cdecl func)")
        }
        return address
    }

    /// Whether `address` lies in a mapping with execute permission (/proc/self/maps).
    static func isExecutable(_ address: UnsafeMutableRawPointer) -> Bool {
        guard let file = fopen("/proc/self/maps", "r") else { return false }
        defer { fclose(file) }
        let target = UInt(bitPattern: address)
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(cString: line)
            let fields = text.split(separator: " ", maxSplits: 2)
            guard fields.count >= 2 else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let low = UInt(range[0], radix: 16), let high = UInt(range[1], radix: 16) else { continue }
            if low <= target, target < high { return fields[1].contains("x") }
        }
        return false
    }

    /// Paths from the NNBUILD_PLUGIN_PATH environment variable (colon-separated).
    public static var environmentPaths: [String] {
        guard let value = getenv("NNBUILD_PLUGIN_PATH") else { return [] }
        return String(cString: value).split(separator: ":").map(String.init).filter { !$0.isEmpty }
    }
}

/// glibc's dladdr1 (a GNU extension the Glibc module does not declare).
@_silgen_name("dladdr1")
private func pluginDladdr1(_ address: UnsafeRawPointer, _ info: UnsafeMutableRawPointer, _ extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ flags: Int32) -> Int32

extension LayerRegistry {
    /// The registry a plugin's registration entry point receives.
    public static func fromPluginArgument(_ pointer: UnsafeMutableRawPointer) -> LayerRegistry {
        Unmanaged<LayerRegistry>.fromOpaque(pointer).takeUnretainedValue()
    }
}
