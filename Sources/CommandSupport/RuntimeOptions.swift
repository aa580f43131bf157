import ArgumentParser
import Builtins
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry
import ModelSpec

/// Options about how the engine runs, shared by every command that runs a model.
package struct RuntimeOptions: ParsableArguments {
    package init() {}

    @Option(help: "Threads to run on (default: every core this process may run on; never more than those, as its CPU affinity and cgroup CPU quota allow). A batch is split across them; a single row uses them inside matrix products.")
    package var threads: Int?

    /// The thread count in force: --threads, else every active core, at most the cores the
    /// process may run on (Gemm.usableThreads).
    package var count: Int { Gemm.usableThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount) }

    package func validate() throws {
        if let threads { try ArgumentBounds.check(threads, "--threads", ArgumentBounds.threads) }
    }

    /// `settings` with this thread count.
    package func applied(to settings: ExecutionSettings) -> ExecutionSettings {
        var settings = settings
        settings.threads = count
        return settings
    }
}

/// The memory limit, taken by every command that builds a model (through `ModelArguments`).
package struct MemoryOptions: ParsableArguments {
    package init() {}

    @Option(name: .customLong("max-memory"),
            help: ArgumentHelp("Most memory one layer may take for one call (output, scratch and input), e.g. 512M, 4G or plain bytes (default 4G).",
                               valueName: "size"))
    package var maxMemory: String?

    /// Accepted sizes: 1 MiB to 1 PiB.
    package static let range = (1 << 20)...(1 << 50)

    /// `--max-memory` in bytes: an integer with an optional K, M, G or T suffix (powers of 1024, an
    /// optional trailing "B" or "iB"); nil when the text is not one.
    package static func bytes(_ text: String) -> Int? {
        var digits = text.trimmingSpaces().uppercased()
        for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
            digits.removeLast(suffix.count)
            break
        }
        var shift = 0
        if let last = digits.last, let index = ["K", "M", "G", "T", "P"].firstIndex(of: String(last)) {
            shift = 10 * (index + 1)
            digits.removeLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.count <= 18, let number = Int(digits) else {
            return nil
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : bytes
    }

    package func validate() throws {
        guard let maxMemory else { return }
        guard let bytes = MemoryOptions.bytes(maxMemory) else {
            throw ValidationError("--max-memory must be a size such as 512M, 4G or 1073741824, found '\(maxMemory)'")
        }
        guard MemoryOptions.range.contains(bytes) else {
            throw ValidationError("--max-memory must be between 1M and 1P, found '\(maxMemory)' (\(bytes) bytes)")
        }
    }

    /// The execution settings these options give.
    package var settings: ExecutionSettings {
        ExecutionSettings(memoryLimit: maxMemory.flatMap(MemoryOptions.bytes) ?? ExecutionSettings.defaultMemoryLimit)
    }
}
