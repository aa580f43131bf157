import Foundation
import XCTest
import ModelSpec

/// `--output` never clobbers what it should not: the command's own files, devices, FIFOs,
/// symlinks, modes and owners; and no temporary file outlives a run. Every special file is made
/// in the test's own folder, never in the real /dev.
final class OutputSafetyTests: CLITestCase {
    /// The file's type bits from lstat (S_IFCHR, S_IFIFO, S_IFLNK, ...), or nil when it is absent.
    func type(_ name: String) -> mode_t? {
        var status = stat()
        return lstat(path(name), &status) == 0 ? status.st_mode & S_IFMT : nil
    }

    func leftovers() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.contains("nnbuild-tmp") }
    }

    func makeDevice(_ name: String, minor: Int) throws {
        try XCTSkipUnless(try shell("mknod \(name) c 1 \(minor)") == 0, "mknod needs root")
    }

    func testOutputNamingAFileTheCommandReadsIsRefused() throws {
        try write("classes.txt", "a\nb\n")
        try shell("ln weights.safetensors hardlink.bin && ln -s x.json link.json")
        let cases: [(String, String)] = [("x.json", "input"), ("model.json", "spec"), ("weights.safetensors", "weights"),
                                          ("classes.txt", "class names"), ("hardlink.bin", "weights"), ("link.json", "input")]
        for (name, role) in cases {
            let before = contents(name)
            let result = try run(model("infer") + ["--input", path("x.json"), "--class-names", path("classes.txt"), "--output", path(name)])
            XCTAssertEqual(result.status, 1, name)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("--output names the \(role) file"), result.stderr)
            XCTAssertEqual(contents(name), before, name)
        }
        XCTAssertEqual(leftovers(), [])
    }

    func testACharacterDeviceIsWrittenIntoNotReplaced() throws {
        try makeDevice("null", minor: 3)
        let result = try run(model("infer") + ["--input", path("x.json"), "--output", path("null")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(type("null"), S_IFCHR)
        XCTAssertEqual(leftovers(), [])
    }

    func testAWriteErrorOnAFullDeviceIsOneErrorLine() throws {
        try makeDevice("full", minor: 7)
        for name in ["full", "full.npy"] {
            if name == "full.npy" { try shell("ln -s full full.npy") }
            let result = try run(model("infer") + ["--input", path("x.json"), "--output", path(name)])
            XCTAssertEqual(result.status, 1)
            XCTAssertFalse(result.signaled)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.hasPrefix("error[io]: \(path(name)): cannot write the output"), result.stderr)
            XCTAssertTrue(result.stderr.contains("No space left on device"), result.stderr)
        }
        XCTAssertEqual(type("full"), S_IFCHR)
        XCTAssertEqual(type("full.npy"), S_IFLNK)
    }

    func testAFIFOIsWrittenIntoNotReplaced() throws {
        XCTAssertEqual(try shell("mkfifo pipe"), 0)
        // The reader gives up after 10 s, as it would wait forever when the FIFO is replaced.
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        reader.arguments = ["10", "/bin/sh", "-c", "cat pipe > got.json"]
        reader.currentDirectoryURL = dir
        try reader.run()
        let result = try run(model("infer") + ["--input", path("x.json"), "--output", path("pipe")])
        reader.waitUntilExit()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(type("pipe"), S_IFIFO)
        let got = try JSONArray.read(try JSONParser.parse(contents("got.json") ?? "", source: "got"), source: "got")
        XCTAssertEqual(got.shape, [2, 2])
    }

    func testASymlinkIsFollowedAndTheTemporaryFileGoesBesideItsTarget() throws {
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("real"), withIntermediateDirectories: true)
        try write("real/y.json", "old")
        try shell("ln -s real/y.json y.json && ln -s real/new.json dangling.json")
        for name in ["y.json", "dangling.json"] {
            let result = try run(model("infer") + ["--input", path("x.json"), "--output", path(name)])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(type(name), S_IFLNK, name)
        }
        XCTAssertTrue(contents("real/y.json")?.hasPrefix("[[") ?? false)
        XCTAssertTrue(contents("real/new.json")?.hasPrefix("[[") ?? false)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("real")).sorted(), ["new.json", "y.json"])
    }

    func testAReplacedFileKeepsItsModeAndOwner() throws {
        try write("y.npy", "old")
        XCTAssertEqual(chmod(path("y.npy"), 0o600), 0)
        let asRoot = geteuid() == 0
        if asRoot { XCTAssertEqual(chown(path("y.npy"), 1234, 4321), 0) }
        let result = try run(model("infer") + ["--input", path("x.json"), "--output", path("y.npy")])
        XCTAssertEqual(result.status, 0, result.stderr)
        let attributes = try FileManager.default.attributesOfItem(atPath: path("y.npy"))
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        if asRoot {
            XCTAssertEqual((attributes[.ownerAccountID] as? NSNumber)?.intValue, 1234)
            XCTAssertEqual((attributes[.groupOwnerAccountID] as? NSNumber)?.intValue, 4321)
        }
        XCTAssertEqual(try Npy.read(FileBytes.read(path: path("y.npy")), source: "y").shape, [2, 2])
    }

    func testStaleTemporaryFilesOfDeadProcessesAreRemoved() throws {
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        try write(".y.json.nnbuild-tmp-\(dead.processIdentifier)", "partial")
        try write(".y.json.nnbuild-tmp-1", "pid 1 is alive: kept")
        let result = try run(model("infer") + ["--input", path("x.json"), "--output", path("y.json")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(leftovers(), [".y.json.nnbuild-tmp-1"])
    }

    func testSIGTERMAndSIGINTRemoveTheTemporaryFile() throws {
        for signalNumber in [SIGTERM, SIGINT] {
            try write("y.json", "old")
            let process = Process()
            process.executableURL = CLITests.binary
            process.arguments = model("infer") + ["--output", path("y.json")]
            let input = Pipe()
            process.standardInput = input
            process.standardError = FileHandle.nullDevice
            try process.run()
            // The temporary file exists while the input is still being read from standard input.
            let deadline = Date().addingTimeInterval(20)
            while leftovers().isEmpty, Date() < deadline { usleep(20_000) }
            XCTAssertEqual(leftovers(), [".y.json.nnbuild-tmp-\(process.processIdentifier)"])
            kill(process.processIdentifier, signalNumber)
            process.waitUntilExit()
            try? input.fileHandleForWriting.close()
            XCTAssertEqual(process.terminationReason, .uncaughtSignal)
            XCTAssertEqual(process.terminationStatus, signalNumber)
            XCTAssertEqual(leftovers(), [])
            XCTAssertEqual(contents("y.json"), "old")
        }
    }

    func testADirectoryIsRefused() throws {
        let result = try run(model("infer") + ["--input", path("x.json"), "--output", dir.path])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error[io]: \(dir.path): is a directory, expected a file path for the output\n")
    }
}
