import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if Serve
import CommandSupport
import Dispatch
import LayerRegistry
import ModelSpec
import NNServe

/// `nnbuild serve`: the thin front of NNServe. Loads every model whole, then serves TF
/// Serving's REST API until SIGTERM or SIGINT.
///
/// Its own executable, `nnbuild-serve`, which `nnbuild serve` replaces itself with (`execv`): the
/// server's packages (Hummingbird, SwiftNIO, swift-prometheus) are most of a binary that holds
/// them, and every other command's start paid for them (58 against 20 MB to map and relocate,
/// 2,838 against 688 protocol conformances for each runtime type check to scan).
@main
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nnbuild serve",
        abstract: "Serve models over HTTP with TF Serving's REST API.",
        discussion: """
        Endpoints: POST /v1/models/NAME[/versions/N]:predict (row format {"instances": [...]} or \
        columnar {"inputs": ...}), GET /v1/models/NAME[/versions/N] (version status), \
        GET /v1/models/NAME[/versions/N]/metadata (signature), GET /healthz, GET /metrics \
        (Prometheus text). PATH is a directory holding model.json and weights.safetensors (version \
        1), or a directory of numbered version subfolders (NAME/1/, NAME/2/): the highest is served \
        by default. A model that fails to load stops start-up (exit 1). SIGTERM drains requests in \
        flight, then exits 0. Port 0 picks a free port; the one bound is printed on standard output.
        """,
        version: versionText
    )

    /// As `nnbuild`'s own start: glibc's allocator set for loading (every thread its arena, for
    /// concurrent requests), and a bad NNBUILD_KERNELS refused before anything runs.
    static func main() {
        Allocator.start(oneArena: false)
        refuseBadKernelRequest(self)
        main(nil)
    }

    @Option(name: .customLong("model"), help: ArgumentHelp("A model to serve, as NAME=PATH; repeatable.", valueName: "name=path"))
    var models: [String]

    @Option(help: "Address to bind (default: loopback only).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one.")
    var port = 8501

    @Flag(inversion: .prefixedEnableDisable, help: "Merge concurrent requests to one model into one batch.")
    var batching = true

    @Option(help: "Most rows in one merged batch.")
    var maxBatchSize = 32

    @Option(help: "Longest a batch waits for more requests after its first, in microseconds. Adaptive: a batch waits only while other requests to the model are already received and on their way; a lone request runs at once.")
    var batchTimeoutMicros = 1000

    @Option(help: "Largest request body accepted, in bytes (413 past it).")
    var maxBodyBytes = 32 << 20

    @Option(help: "Seconds a request may take before it is answered 504.")
    var requestTimeout = 30.0

    @OptionGroup var plugins: PluginOptions

    @OptionGroup var memory: MemoryOptions

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one --model NAME=PATH") }
        try ArgumentBounds.check(port, "--port", 0...65535)
        try ArgumentBounds.check(maxBatchSize, "--max-batch-size", ArgumentBounds.rows)
        try ArgumentBounds.check(batchTimeoutMicros, "--batch-timeout-micros", 0...60_000_000)
        try ArgumentBounds.check(maxBodyBytes, "--max-body-bytes", 1...(1 << 40))
        try ArgumentBounds.check(requestTimeout, "--request-timeout", ArgumentBounds.seconds, aboveLowerBound: true)
    }

    func run() throws {
        var loaded: [ServedModel] = []
        try reportingErrors {
            let registry = try plugins.registry()
            var seen = Set<String>()
            for argument in models {
                let (name, path) = try ModelRepository.parseArgument(argument)
                guard seen.insert(name).inserted else {
                    throw NNError(.input, "--model \(argument)", "the name '\(name)' is given twice; each model needs its own name")
                }
                loaded.append(try Allocator.loading {
                    try ModelRepository.load(name: name, path: path, registry: registry, settings: runtime.applied(to: memory.settings))
                })
            }
        }
        var settings = ServeConfiguration()
        settings.host = host
        settings.port = port
        settings.batching = Batcher.Options(enabled: batching, maxRows: maxBatchSize, timeout: .microseconds(batchTimeoutMicros), threads: runtime.count)
        settings.maxBodyBytes = maxBodyBytes
        settings.requestTimeout = .milliseconds(Int64(requestTimeout * 1000))
        let server = ModelServer(models: loaded, configuration: settings)
        let names = loaded.map { "\($0.name) (version\($0.versions.count > 1 ? "s" : "") \($0.versions.map { String($0.version) }.joined(separator: ", ")))" }
        let host = self.host
        let outcome = ServeOutcome()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                try await server.run { port in
                    print("nnbuild serve: listening on http://\(host):\(port) serving \(names.joined(separator: ", "))")
                    fflush(stdout)
                }
            } catch {
                outcome.error = error
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error {
            Console.error("error[io]: serve: \(error)")
            throw ExitCode(1)
        }
    }
}

/// How the server task ended, handed back to the blocked main thread.
final class ServeOutcome: @unchecked Sendable {
    var error: Error?
}

#else
/// Built without trait Serve: the server's packages are not linked, so there is no server.
@main
enum ServeUnavailable {
    static func main() {
        fputs("Error: this nnbuild was built without the Serve trait, so it has no server; build it with the default traits.\n", stderr)
        exit(64)
    }
}
#endif
