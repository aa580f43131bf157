import Foundation
import XCTest

/// A package that uses only nnbuild's libraries does not fetch swift-argument-parser: the CLI's
/// dependency sits behind the `CommandLine` trait, which a library user turns off (`traits: []`).
final class PackageGraphTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `swift` driver: beside the running toolchain's tools, or on PATH.
    static var swift: String? {
        let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/swift" }
            + ["/opt/swift/usr/bin/swift"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `executable` with `arguments`: its exit status and its output and errors together.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, text: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    func testALibraryOnlyUserDoesNotFetchArgumentParser() throws {
        guard let swift = Self.swift else { throw XCTSkip("no swift driver on PATH") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-consumer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("Sources/Consumer"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("""
        // swift-tools-version:6.1
        import PackageDescription
        let package = Package(
            name: "Consumer",
            dependencies: [.package(name: "nnbuild", path: "\(Self.root.path)", traits: [])],
            targets: [.target(name: "Consumer", dependencies: [
                .product(name: "ModelSpec", package: "nnbuild"),
                .product(name: "LayerRegistry", package: "nnbuild"),
                .product(name: "Builtins", package: "nnbuild"),
            ])]
        )
        """.utf8).write(to: dir.appendingPathComponent("Package.swift"))
        try Data("import Builtins\n".utf8).write(to: dir.appendingPathComponent("Sources/Consumer/Consumer.swift"))

        let (status, text) = try Self.run(swift, ["package", "--package-path", dir.path, "resolve"])
        XCTAssertEqual(status, 0, text)
        XCTAssertFalse(text.contains("swift-argument-parser"), text)
        let checkouts = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(".build/checkouts").path)) ?? []
        XCTAssertEqual(checkouts, [], "nothing is checked out for a library-only user")
        let resolved = (try? String(contentsOf: dir.appendingPathComponent("Package.resolved"), encoding: .utf8)) ?? ""
        XCTAssertFalse(resolved.contains("swift-argument-parser"), resolved)
    }

    /// No module of nnbuild or of its dependencies imports the whole Foundation (only
    /// FoundationEssentials), and Hummingbird's default traits stay off: libFoundation and ICU
    /// would add about 7 MB to every process's resident memory, and time to every start.
    func testTheBinaryDoesNotLinkFoundationOrICU() throws {
        #if os(Linux)
        let (status, text) = try Self.run("/usr/bin/ldd", [CLITests.binary.path])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("libFoundationEssentials"), text)
        XCTAssertFalse(text.contains("libFoundation.so"), text)
        XCTAssertFalse(text.contains("FoundationICU"), text)
        XCTAssertFalse(text.contains("libFoundationInternationalization"), text)
        #else
        throw XCTSkip("ldd and ELF libraries: Linux only")
        #endif
    }

    /// The server's packages are linked only into nnbuild-serve: the `nnbuild` binary holds no
    /// symbol of SwiftNIO or Hummingbird (every other command's start would map and relocate them,
    /// and every runtime type check would scan their protocol conformances).
    func testTheCommandLineBinaryLinksNoServerPackage() throws {
        let bytes = try Data(contentsOf: CLITests.binary)
        // Each module's name as Swift's mangled symbols spell it: its length, then the name.
        for module in ["NIOCore", "Hummingbird", "Prometheus"] {
            XCTAssertNil(bytes.range(of: Data("\(module.count)\(module)".utf8)), "nnbuild holds symbols of module \(module)")
        }
        let server = CLITests.binary.deletingLastPathComponent().appendingPathComponent("nnbuild-serve")
        XCTAssertNotNil(try Data(contentsOf: server).range(of: Data("11Hummingbird".utf8)), "nnbuild-serve is the server")
    }

    /// `nnbuild serve` is nnbuild-serve's command: its help, reached either way, and its usage errors.
    func testServeRunsTheServerExecutable() throws {
        for arguments in [["serve", "--help"], ["help", "serve"]] {
            let (status, text) = try Self.run(CLITests.binary.path, arguments)
            XCTAssertEqual(status, 0, text)
            XCTAssertTrue(text.contains("USAGE: nnbuild serve --model <name=path>"), text)
        }
        let (status, text) = try Self.run(CLITests.binary.path, ["serve", "--port", "70000", "--model", "m=/nonexistent"])
        XCTAssertEqual(status, 64, text)
        XCTAssertTrue(text.contains("--port must be between 0 and 65535, found 70000"), text)
    }

    /// Without nnbuild-serve beside it, `nnbuild serve` says so in one line and exits 1.
    func testServeWithoutTheServerExecutableSaysWhere() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-alone-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let alone = dir.appendingPathComponent("nnbuild")
        try FileManager.default.copyItem(at: CLITests.binary, to: alone)
        let (status, text) = try Self.run(alone.path, ["serve", "--model", "m=x"])
        XCTAssertEqual(status, 1, text)
        XCTAssertEqual(text, "error[io]: serve: cannot run the server executable \(dir.path)/nnbuild-serve: No such file or directory. It is built beside nnbuild (`swift build` builds both); install the two together.\n")
        XCTAssertEqual(try Self.run(alone.path, ["infer", "--help"]).status, 0, "every other command runs alone")
    }
}
