import CommandSupport
#if canImport(Glibc)
import Glibc
#endif

/// An executable built beside this one that a command hands the whole process to: `nnbuild-serve`
/// for `nnbuild serve`, and `nnbuild-plugins` for a command that loads a layer plugin.
struct SiblingExecutable {
    let name: String
    /// What it is, for the error line ("the server executable").
    let role: String

    /// Replaces this process with the sibling, given `arguments` (its own, without its path);
    /// returns only to exit 1 with one line on stderr, `what` saying what needed it, when it
    /// cannot be started.
    func run(_ arguments: [String], for what: String) -> Never {
        let path = Self.directory() + name
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        Console.error("error[io]: \(what): cannot run \(role) \(path): \(reason). It is built beside nnbuild (`swift build` builds both); install the two together.")
        exit(1)
    }

    /// This executable's directory, with its slash: from /proc/self/exe, else from how it was invoked.
    static func directory() -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let length = readlink("/proc/self/exe", &buffer, 4096)
        let path = length > 0 ? String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments.first ?? ""
        guard let slash = path.lastIndex(of: "/") else { return "./" }
        return String(path[...slash])
    }
}

/// Layer plugins and the Swift runtime. A plugin is a shared library that links the shared Swift
/// runtime (libswiftCore.so), and it must find the very runtime nnbuild's own objects live in. The
/// release `nnbuild` links the Swift runtime and standard libraries statically, which starts each
/// command about 4 ms sooner (no relocation of a dozen libraries; `nnbuild infer` on cnn_cifar
/// 19.2 → 15.2 ms, see BENCHMARKS.md), so a command that names a plugin runs in `nnbuild-plugins`
/// instead: the same commands, built against the shared runtime.
enum PluginRuntime {
    static let sibling = SiblingExecutable(name: "nnbuild-plugins", role: "the executable that loads plugins")

    /// Whether this process runs on the shared Swift runtime (a plugin can be loaded here).
    static var isShared: Bool {
        guard let handle = dlopen("libswiftCore.so", RTLD_LAZY | RTLD_NOLOAD) else { return false }
        dlclose(handle)
        return true
    }

    /// Whether `arguments` (the command line after the executable) or the environment name a
    /// plugin: `--plugin PATH`, `--plugin=PATH`, or a non-empty NNBUILD_PLUGIN_PATH. Anything
    /// that looks like one counts; the sibling runs the same commands, so a false alarm costs only
    /// the start-up this was for.
    static func requested(_ arguments: [String], environment: String?) -> Bool {
        if let environment, !environment.isEmpty { return true }
        return arguments.contains { $0 == "--plugin" || $0.hasPrefix("--plugin=") }
    }

    /// Hands the process to `nnbuild-plugins` when a plugin is asked for and this process cannot load one.
    static func handOffIfNeeded(_ arguments: [String]) {
        let environment = getenv("NNBUILD_PLUGIN_PATH").map { String(cString: $0) }
        guard requested(arguments, environment: environment), !isShared else { return }
        sibling.run(arguments, for: "--plugin")
    }
}
