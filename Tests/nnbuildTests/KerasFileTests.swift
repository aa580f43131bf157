import Foundation
import XCTest

/// `nnbuild validate` given a Keras file where the spec or the weights belong says what the file
/// is and how to convert it, with the usual `error[class]: where: what` line and exit code 1.
final class KerasFileTests: XCTestCase {
    static let specs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("specs")

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-kerasfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func nnbuild(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = arguments
        let err = Pipe()
        process.standardOutput = Pipe()
        process.standardError = err
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stderr)
    }

    /// The first bytes of a `.keras` archive: a zip whose first member is `metadata.json`.
    static let keras: [UInt8] = [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00] + Array("metadata.json".utf8)
    /// The HDF5 superblock signature, then a version byte.
    static let hdf5: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A, 0x00]

    func testKerasArchiveGivenAsTheSpec() throws {
        let path = try file("my_model.keras", Self.keras)
        let result = try nnbuild(["validate", path])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error[spec]: \(path): this is a zip file, as a Keras 3 model archive (.keras) is, not a JSON model spec; "
            + "nnbuild does not read .keras files yet: convert it with `python3 tools/keras_export.py \(path) out/`, "
            + "then pass out/model.json and out/weights.safetensors\n")
    }

    func testH5GivenAsTheWeights() throws {
        let path = try file("my_model.h5", Self.hdf5)
        let spec = Self.specs.appendingPathComponent("tabular_mlp/model.json").path
        let result = try nnbuild(["validate", spec, path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("error[weights]: \(path): this is an HDF5 file, as a legacy Keras model (.h5) is, not a safetensors weight blob; "),
                      result.stderr)
        XCTAssertTrue(result.stderr.contains("`python3 tools/keras_export.py \(path) out/`"), result.stderr)
    }
}
