import ArgumentParser
import Builtins
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Exits with `command`'s usage error when NNBUILD_KERNELS asks for a kernel path this build or
/// CPU cannot run, before anything runs.
package func refuseBadKernelRequest(_ command: ParsableCommand.Type) {
    if let problem = Gemm.kernelRequestProblem(ProcessInfo.processInfo.environment["NNBUILD_KERNELS"]) {
        command.exit(withError: ValidationError(problem + "."))
    }
}
