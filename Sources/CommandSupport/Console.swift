import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ModelSpec

/// Runs `body`, turning nnbuild errors into one line per problem on stderr and exit code 1.
package func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error where error is NNError || error is NNErrors {
        for problem in error.nnClassifiedProblems { Console.error("error[\(problem.kind)]: \(problem.text)") }
        throw ExitCode(1)
    }
}

package enum Console {
    package static func error(_ line: String) {
        fputs(line + "\n", stderr)
    }

    package static var stderrIsTerminal: Bool { isatty(2) != 0 }
}
