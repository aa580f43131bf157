import ArgumentParser
import CommandSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Builtins
import Dispatch
import LayerRegistry
import ModelSpec

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput, latency, load time and peak memory of a model.",
        discussion: """
        Without --input a valid random batch is made for every model input (token ids inside the \
        range of the embedding that reads it); a model of several inputs takes an .npz. For each \
        batch size the model runs repeatedly for --seconds after a warm-up. --json prints one array with \
        an object per batch size with the keys batch, samples_per_s, p50_ms, p90_ms, p99_ms, load_ms, \
        peak_rss_mb (the process's peak resident memory so far, VmHWM, in MiB of 1,048,576 bytes), \
        kernel_path (the kernels that ran: avx512, avx2 or baseline; see NNBUILD_KERNELS), \
        threads (those the run could use: --threads, at most the cores this process may run on).
        """
    )

    @OptionGroup var model: ModelArguments

    @Argument(help: "The weights beside a spec: a safetensors blob keyed by Keras variable paths, or a Keras .weights.h5 file. Not given with a .keras or .h5 model file.")
    var weights: String?

    @Option(help: "Comma-separated batch sizes.")
    var batch = "1,64"

    @Option(help: "Seconds of timed runs per batch size.")
    var seconds = 3.0

    @Option(name: .shortAndLong, help: "Input rows (.npy or JSON), repeated to fill each batch (default: random).")
    var input: String?

    @Flag(help: "Print one JSON array with an object per batch size.")
    var json = false

    @Flag(help: "Also print the time each layer takes (median of runs), per batch size.")
    var profile = false

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        try model.validate(weights: weights)
        _ = try batchSizes()
        try ArgumentBounds.check(seconds, "--seconds", ArgumentBounds.seconds, aboveLowerBound: true)
    }

    func batchSizes() throws -> [Int] { try ArgumentBounds.list(batch, "--batch", ArgumentBounds.rows) }

    func run() throws {
        try reportingErrors {
            var loads: [Double] = []
            var built: Model?
            for _ in 0..<5 {
                // The previous load goes first: holding it while the next one packs its weights
                // would put two models' weights in the peak RSS this command reports.
                built = nil
                let start = DispatchTime.now().uptimeNanoseconds
                built = try model.load(weights: weights, required: true)
                loads.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            guard let built else { return }
            let loadMs = loads.sorted()[loads.count / 2]
            let graph = ModelInputs.needed(built, values: input.map { [$0] } ?? [])
            if graph, profile {
                throw NNError(.input, "--profile", "times the layers of a model of one input and one output; the model has inputs \(ModelInputs.describe(built.inputs)) and outputs \(ModelOutputs.describe(built))")
            }
            let rows = graph ? nil : try input.map { try built.batch(from: try InputFile.read(path: $0, strings: built.inputs.first?.takesStrings ?? false), source: $0) }
            let given = graph ? try input.map { try ModelInputs.read([$0], for: built) } : nil
            var results: [JSONValue] = []
            var lines: [String] = []
            for size in try batchSizes() {
                let batches = graph ? given?.tiled(to: size) ?? Bench.randomBatches(for: built, size: size)
                    : [rows.map { Bench.tile($0, to: size) } ?? Bench.randomBatch(for: built, size: size)]
                let batch = batches[0]
                let latencies = try Bench.time(built, batches, seconds: seconds, threads: runtime.count)
                let total = latencies.reduce(0, +)
                let perSecond = Double(size * latencies.count) / total
                let sorted = latencies.sorted()
                func quantile(_ q: Double) -> Double { sorted[min(Int(q * Double(sorted.count)), sorted.count - 1)] * 1000 }
                let rss = Bench.peakResidentMB()
                results.append(.object([
                    ("batch", .int(Int64(size))), ("samples_per_s", .double(perSecond.rounded(places: 1))),
                    ("p50_ms", .double(quantile(0.5).rounded(places: 4))), ("p90_ms", .double(quantile(0.9).rounded(places: 4))),
                    ("p99_ms", .double(quantile(0.99).rounded(places: 4))), ("load_ms", .double(loadMs.rounded(places: 3))),
                    ("peak_rss_mb", .double(rss.rounded(places: 1))), ("kernel_path", .string(Gemm.kernelPath.description)),
                    ("threads", .int(Int64(runtime.count))),
                ]))
                if profile {
                    var runs: [[Double]] = []
                    for _ in 0..<max(5, min(50, latencies.count / 2)) { runs.append(try built.profile(batch, settings: runtime.applied(to: built.settings))) }
                    let medians = (0..<built.steps.count).map { index in runs.map { $0[index] }.sorted()[runs.count / 2] }
                    let total = medians.reduce(0, +)
                    lines.append("  batch \(size) per layer (median ms, share; layers joined by + run fused, as one pass):")
                    for (step, time) in zip(built.steps, medians) {
                        let name = step.nodes.map { "\(built.nodes[$0].spec.name) (\(built.nodes[$0].spec.className))" }.joined(separator: " + ")
                        lines.append("    " + name.padded(to: 40)
                                     + formatted(" %9.3f %5.1f%%", time * 1000, 100 * time / max(total, 1e-12)))
                    }
                }
                lines.append(formatted("%8d %14.1f %10.3f %10.3f %10.3f %10.2f %12.1f", size, perSecond, quantile(0.5), quantile(0.9), quantile(0.99), loadMs, rss))
            }
            if json {
                print(JSONWriter.string(.array(results)))
            } else {
                print("kernels: \(Gemm.kernelPath) (the CPU's best: \(Gemm.cpuKernelPath)), threads: \(runtime.count)")
                print("model \(model.spec): input \(built.inputs.count == 1 ? describeShape(built.inputShape) : ModelInputs.describe(built.inputs)), \(built.parameterCount) parameters, \(latenciesNote)")
                print(["batch".leftPad(8), "samples/s".leftPad(14), "p50 ms".leftPad(10), "p90 ms".leftPad(10), "p99 ms".leftPad(10), "load ms".leftPad(10), "peak RSS MiB".leftPad(12)].joined(separator: " "))
                lines.forEach { print($0) }
            }
        }
    }

    var latenciesNote: String { "\(seconds) s per batch size" }

    /// Runs the model until `seconds` have passed (after a short warm-up); returns each run's seconds.
    static func time(_ model: Model, _ batches: [Tensor], seconds: Double, threads: Int) throws -> [Double] {
        let warmUpEnd = DispatchTime.now().uptimeNanoseconds + UInt64(min(0.3, seconds / 5) * 1e9)
        repeat { try run(model, batches, threads: threads) } while DispatchTime.now().uptimeNanoseconds < warmUpEnd
        var latencies: [Double] = []
        let end = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        repeat {
            let start = DispatchTime.now().uptimeNanoseconds
            try run(model, batches, threads: threads)
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        } while DispatchTime.now().uptimeNanoseconds < end || latencies.count < 3
        return latencies
    }

    /// `rows` repeated to a batch of `size`: the rows themselves when they are that batch (a copy
    /// would sit in memory beside them for the whole run, counted in the peak RSS bench reports).
    static func tile(_ rows: Tensor, to size: Int) -> Tensor {
        if rows.batch == size { return rows }
        return Tensor.concatenating((0..<size).map { rows.rows(($0 % rows.batch)..<($0 % rows.batch + 1)) })
    }

    /// A deterministic random batch: token ids in 1..<limit for index inputs, else N(0, 1).
    static func randomBatch(for model: Model, size: Int, seed: UInt64 = 42) -> Tensor {
        randomBatches(for: model, size: size, seed: seed).first ?? Tensor(shape: [size], data: [Float](repeating: 0, count: size))
    }

    /// The process's peak resident set size (VmHWM) in MB.
    static func peakResidentMB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
            return kb / 1024
        }
        return 0
    }
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Double {
    func rounded(places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
