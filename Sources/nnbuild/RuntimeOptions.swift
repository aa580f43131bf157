import ArgumentParser
import Builtins

/// Options about how the engine runs, shared by every command that runs a model.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "Threads for matrix products (default: every core).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, found \(threads)") }
    }

    func apply() {
        if let threads { Gemm.setThreads(threads) }
    }
}
