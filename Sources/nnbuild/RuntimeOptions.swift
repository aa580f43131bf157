import ArgumentParser
import Builtins
import Foundation

/// Options about how the engine runs, shared by every command that runs a model.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "Threads to run on (default: every core). A batch is split across them; a single row uses them inside matrix products.")
    var threads: Int?

    /// The thread count in force: --threads, else every active core.
    var count: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }

    func validate() throws {
        if let threads { try ArgumentBounds.check(threads, "--threads", ArgumentBounds.threads) }
    }

    func apply() {
        Gemm.setThreads(count)
    }
}
