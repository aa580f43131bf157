import Foundation
import XCTest
import ModelSpec

/// Runs the built `nnbuild` binary as a user would and checks its output and exit codes.
final class CLITests: CLITestCase {
    static var binary: URL {
        // The test executable sits next to the products in <scratch path>/<config>/, whichever
        // scratch path built it (.build, or tools/sanitize.sh's .build-asan and .build-tsan).
        let candidates = [
            URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent(),
            Bundle(for: CLITests.self).bundleURL.deletingLastPathComponent(),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug"),
        ]
        let dir = candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("nnbuild").path) } ?? candidates[2]
        return dir.appendingPathComponent("nnbuild")
    }

    /// Whether the binary runs under a sanitizer (tools/sanitize.sh sets NNBUILD_SANITIZER): its
    /// shadow memory needs terabytes of address space, so tests that bound the address space
    /// with `ulimit -v` cannot run there.
    static var underSanitizer: Bool { ProcessInfo.processInfo.environment["NNBUILD_SANITIZER"] != nil }

    func softmax(_ logits: [Double]) -> [Double] {
        let e = logits.map { Foundation.exp($0 - logits.max()!) }
        return e.map { $0 / e.reduce(0, +) }
    }

    func testValidatePrintsASummary() throws {
        let result = try run(["validate", path("model.json"), path("weights.safetensors")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.text.contains("out (Dense)"), result.text)
        XCTAssertTrue(result.text.contains("(None, 2)"), result.text)
        XCTAssertTrue(result.text.contains("Total params: 6"), result.text)
    }

    /// A 16-bit dtype policy is computed in float32 here; validate says so instead of staying silent.
    func testValidateNotesAMixedPrecisionPolicy() throws {
        try write("mixed.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 2]}}, {"class_name": "Dense", "config": {"name": "out", "units": 2, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}, "registered_name": null}}}]}}"#)
        let result = try run(["validate", path("mixed.json"), path("weights.safetensors")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.text.contains("note: 1 layer(s) ('out') use dtype policy mixed_float16; nnbuild computes in float32"), result.text)
        let plain = try run(["validate", path("model.json")])
        XCTAssertFalse(plain.text.contains("dtype policy"), plain.text)
    }

    /// Keras 3 saves its preprocessing layers' calls (and any called with training=True) with
    /// training=True; predict replaces it with False, as nnbuild does, and validate says so.
    func testValidateNotesCallsSavedWithTrainingTrue() throws {
        let fixture = "\(MultiIOTests.graphFixtures)/auto_contrast"
        let result = try run(["validate", "\(fixture)/model.json", "\(fixture)/weights.safetensors"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.text.contains("note: 2 call(s) ('contrast', 'signed') were saved with training=True; nnbuild runs them at inference, as Keras's predict() does"), result.text)
        let plain = try run(["validate", path("model.json")])
        XCTAssertFalse(plain.text.contains("training=True"), plain.text)
    }

    /// Layers that run fused are named, so the per-layer summary does not mislead.
    func testValidateNamesTheLayersThatRunFused() throws {
        try write("fused.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 2]}}, {"class_name": "Dense", "config": {"name": "out", "units": 2}}, {"class_name": "ReLU", "config": {"name": "act"}}]}}"#)
        let result = try run(["validate", path("fused.json"), path("weights.safetensors")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.text.contains("act (ReLU)"), result.text)
        XCTAssertTrue(result.text.contains("Runs fused, each group as one pass with the same results: out + act."), result.text)
        XCTAssertFalse(try run(["validate", path("model.json")]).text.contains("Runs fused"))
    }

    func testInferFromJSONOnStandardInputToStandardOutput() throws {
        let result = try run(["infer", path("model.json"), path("weights.safetensors")], stdin: Data("[[1, 0], [0, 1]]".utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let output = try JSONArray.read(try JSONParser.parse(result.text, source: "out"), source: "out")
        XCTAssertEqual(output.shape, [2, 2])
        let expected = softmax([1, 0]) + softmax([2, 1])
        for (a, b) in zip(output.values, expected) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
    }

    func testInferNpyInAndOutAndReplacesExistingOutput() throws {
        try Data(Npy.encode(NumericArray(shape: [1, 2], values: [1, 1]))).write(to: dir.appendingPathComponent("x.npy"))
        try write("y.npy", "old contents")
        let result = try run(["infer", path("model.json"), path("weights.safetensors"), "--input", path("x.npy"), "--output", path("y.npy")])
        XCTAssertEqual(result.status, 0, result.stderr)
        let output = try Npy.read(FileBytes.read(path: path("y.npy")), source: "y")
        let expected = softmax([3, 0])
        XCTAssertEqual(Double(output.values[0]), expected[0], accuracy: 1e-6)
    }

    func testTopKWithClassNames() throws {
        try write("classes.txt", "negative\npositive\n")
        let result = try run(["infer", path("model.json"), path("weights.safetensors"), "--top-k", "1", "--class-names", path("classes.txt")], stdin: Data("[[3, 0]]".utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let score = Float(softmax([3, -2])[0])
        XCTAssertEqual(result.text, "[[{\"class\": \"negative\", \"index\": 0, \"score\": \(Double(score))}]]\n")
    }

    func testWrongInputShapeIsOneClearError() throws {
        let result = try run(["infer", path("model.json"), path("weights.safetensors")], stdin: Data("[[1, 2, 3]]".utf8))
        XCTAssertEqual(result.status, 1)
        XCTAssertFalse(result.signaled)
        XCTAssertEqual(result.stderr, "error[input]: <stdin>: input has shape 1×3, expected (None, 2) with the batch first\n")
    }

    func testMalformedJSONSpecNamesLineAndColumn() throws {
        try write("bad.json", "{\"class_name\": \"Sequential\",\n \"config\": {\"layers\": [}\n}")
        let result = try run(["validate", path("bad.json")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("error[json]: \(path("bad.json")):2:24: invalid JSON"), result.stderr)
    }

    func testUnknownLayerSuggestsNames() throws {
        try write("unknown.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 2, "input_shape": [2]}}, {"class_name": "Dens", "config": {"units": 2}}]}}"#)
        let result = try run(["validate", path("unknown.json")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("config.layers[1].class_name: unknown layer type 'Dens' (layer 'dens'); closest registered: 'Dense'"), result.stderr)
    }

    func testWeightProblemsAreListedOnePerLine() throws {
        try writeBlob("bad.safetensors", [("sequential/out/kernel", [3, 2], [1, 2, 3, 4, 5, 6]), ("sequential/other/kernel", [1], [0])])
        let result = try run(["validate", path("model.json"), path("bad.safetensors")])
        XCTAssertEqual(result.status, 1)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 3, result.stderr)
        XCTAssertTrue(lines[0].contains("layer 'out' (Dense): weight 'kernel' ('sequential/out/kernel') has shape [3, 2], expected [2, 2]"), result.stderr)
        XCTAssertTrue(lines[1].contains("layer 'out' (Dense): weight 'bias' of shape [2] is missing"), result.stderr)
        XCTAssertTrue(lines[2].contains("tensor 'sequential/other/kernel' (shape [1]) is not used"), result.stderr)
    }

    func testMissingFilesAreClearErrors() throws {
        let result = try run(["infer", path("nope.json"), path("weights.safetensors")])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error[io]: \(path("nope.json")): no such file\n")
    }

    func testCompareFailsPastTheTolerance() throws {
        try write("x.json", "[[1, 0]]")
        try write("good.json", "[[" + softmax([1, 0]).map { String($0) }.joined(separator: ", ") + "]]")
        try write("wrong.json", "[[0.5, 0.5]]")
        let good = try run(["compare", path("model.json"), path("weights.safetensors"), "-i", path("x.json"), "-e", path("good.json")])
        XCTAssertEqual(good.status, 0, good.text + good.stderr)
        XCTAssertTrue(good.text.contains("argmax agreement: 1/1 rows"), good.text)
        let wrong = try run(["compare", path("model.json"), path("weights.safetensors"), "-i", path("x.json"), "-e", path("wrong.json")])
        XCTAssertEqual(wrong.status, 2)
        XCTAssertTrue(wrong.text.contains("FAIL"), wrong.text)
    }

    func testBenchJSONHasTheDocumentedKeys() throws {
        let result = try run(["bench", path("model.json"), path("weights.safetensors"), "--batch", "1,4", "--seconds", "0.05", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        guard case let .array(items) = try JSONParser.parse(result.text, source: "bench") else { return XCTFail(result.text) }
        XCTAssertEqual(items.count, 2)
        for item in items {
            guard case let .object(members) = item else { return XCTFail() }
            XCTAssertEqual(members.map(\.0), ["batch", "samples_per_s", "p50_ms", "p90_ms", "p99_ms", "load_ms", "peak_rss_mb", "kernel_path", "threads"])
            let path = members.first { $0.0 == "kernel_path" }?.1
            XCTAssertTrue(["baseline", "avx2", "avx512"].contains { path == .string($0) }, "\(members)")
        }
    }

    /// A process confined to one CPU (taskset, a container's cpuset) runs on one thread whatever
    /// --threads asks: a pool sized by the CPUs online put a worker on the caller's own core and
    /// ran at 60% of one thread's speed.
    func testBenchUsesNoMoreThreadsThanTheCoresItMayRunOn() throws {
        guard try shell("command -v taskset") == 0 else { throw XCTSkip("no taskset to confine the process") }
        func threads(_ result: Run) throws -> JSONValue? {
            XCTAssertEqual(result.status, 0, result.stderr)
            guard case let .array(items) = try JSONParser.parse(result.text, source: "bench"), case let .object(members)? = items.first else {
                XCTFail(result.text)
                return nil
            }
            return members.first { $0.0 == "threads" }?.1
        }
        let arguments = ["bench", path("model.json"), path("weights.safetensors"), "--batch", "1", "--seconds", "0.05", "--threads", "2", "--json"]
        XCTAssertEqual(try threads(run(arguments, shell: "taskset -p -c 0 $$ >/dev/null")), .int(1))
    }

    func testHelpDocumentsExitCodes() throws {
        let result = try run(["--help"])
        XCTAssertEqual(result.status, 0)
        XCTAssertTrue(result.text.contains("Exit codes: 0 success; 1 invalid model, weights or input"), result.text)
        // The help wraps to the terminal's width: compare with whitespace collapsed.
        let text = result.text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(text.contains("2 compare found a difference past its tolerance; 64 usage error"), text)
        XCTAssertTrue(text.contains("NNBUILD_KERNELS=baseline, run portable code"), text)
    }

    func testUsageErrorsUseArgumentParserExitCode() throws {
        let result = try run(["infer", path("model.json")])
        XCTAssertEqual(result.status, 64)
    }
}

/// Plugin loading failures, each one clear error with no crash.
final class PluginCLITests: XCTestCase {
    func run(_ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = arguments
        if let environment { process.environment = environment }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit)
        return (process.terminationStatus, text)
    }

    /// Compiles a C shared library exporting the given source, or skips when no C compiler exists.
    func sharedLibrary(_ source: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-plugin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Gone with the test: every test that builds a plugin left one of these in /tmp.
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let c = dir.appendingPathComponent("plugin.c"), so = dir.appendingPathComponent("libplugin.so")
        try Data(source.utf8).write(to: c)
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cc.arguments = ["cc", "-shared", "-fPIC", "-o", so.path, c.path]
        try cc.run()
        cc.waitUntilExit()
        try XCTSkipUnless(cc.terminationStatus == 0, "no C compiler to build a test plugin")
        return so.path
    }

    func testMissingPluginFile() throws {
        let (status, stderr) = try run(["--plugin", "/nonexistent/libx.so", "layers"])
        XCTAssertEqual(status, 1)
        XCTAssertEqual(stderr, "error[plugin]: /nonexistent/libx.so: no such plugin file\n")
    }

    func testLibraryWithoutTheEntryPoints() throws {
        let path = try sharedLibrary("int unrelated(void) { return 1; }\n")
        let (status, stderr) = try run(["layers", "--plugin", path])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(stderr.contains("does not export nnbuild_plugin_abi_version; is it an nnbuild plugin?"), stderr)
    }

    /// The plugin ABI version `nnbuild --version` prints.
    func abiVersion() throws -> Int {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["--version"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let version = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // "nnbuild 0.5.0 (layer plugin ABI version 3)"
        return try XCTUnwrap(Int(version.split(separator: " ").last?.filter(\.isNumber) ?? ""), version)
    }

    func testIncompatibleABIVersionNamesBoth() throws {
        let path = try sharedLibrary("int nnbuild_plugin_abi_version(void) { return 999; }\nvoid nnbuild_plugin_register(void *r) {}\n")
        let (status, stderr) = try run(["layers"], environment: ["NNBUILD_PLUGIN_PATH": path])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(stderr.contains("was built for layer registry ABI version 999, this nnbuild has version \(try abiVersion())"), stderr)
    }

    func testPluginThatRegistersNothing() throws {
        let path = try sharedLibrary("int nnbuild_plugin_abi_version(void) { return \(try abiVersion()); }\nvoid nnbuild_plugin_register(void *r) {}\n")
        let (status, stderr) = try run(["--plugin", path, "layers"])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(stderr.contains("registered no layer type"), stderr)
    }

    func testNotASharedLibrary() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-plugin-\(UUID().uuidString).so").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, stderr) = try run(["--plugin", path, "layers"])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(stderr.contains("cannot be loaded as a shared library"), stderr)
    }
}
