import ArgumentParser
import CommandSupport

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

    func run() throws { serverExecutable.run(arguments, for: "serve") }
}

let serveSubcommands: [ParsableCommand.Type] = [Serve.self]

/// The server executable beside this one.
let serverExecutable = SiblingExecutable(name: "nnbuild-serve", role: "the server executable")
#else
/// Built without trait Serve: no `serve` subcommand.
let serveSubcommands: [ParsableCommand.Type] = []
#endif
