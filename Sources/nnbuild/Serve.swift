import ArgumentParser
import CommandSupport
#if canImport(Glibc)
import Glibc
#endif

#if Serve
/// `nnbuild serve` as `nnbuild --help` lists it. The server is its own executable,
/// `nnbuild-serve`, built beside this one (Sources/nnbuild-serve): `NNBuild.main` replaces this
/// process with it before parsing anything, so its options, help and errors are its own.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve models over HTTP with TF Serving's REST API (see 'nnbuild serve --help')."
    )

    @Argument(parsing: .allUnrecognized) var arguments: [String] = []

    func run() throws { ServerExecutable.run(arguments) }
}

let serveSubcommands: [ParsableCommand.Type] = [Serve.self]

/// The server executable beside this one.
enum ServerExecutable {
    static let name = "nnbuild-serve"

    /// Replaces this process with the server, given `arguments` (those after `serve`); returns only
    /// to exit 1 with one line on stderr when it cannot be started.
    static func run(_ arguments: [String]) -> Never {
        let path = directory() + name
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        Console.error("error[io]: serve: cannot run the server executable \(path): \(reason). It is built beside nnbuild (`swift build` builds both); install the two together.")
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
#else
/// Built without trait Serve: no `serve` subcommand.
let serveSubcommands: [ParsableCommand.Type] = []
#endif
