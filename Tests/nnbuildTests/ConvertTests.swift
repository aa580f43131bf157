import Foundation
import XCTest

/// `nnbuild convert`: the output runs bit for bit as the archive it came from, converting twice
/// gives the same bytes, and existing files are refused unless --force is given.
final class ConvertTests: CLITestCase {
    func testConvertedModelRunsIdenticallyAndConvertingTwiceIsByteIdentical() throws {
        for name in KerasFileTests.cases {
            for format in ["keras", "h5"] {
                let source = KerasFileTests.file("\(name).\(format)")
                let input = KerasFileTests.file("\(name).input.npy")
                let first = path("\(name)-\(format)-a"), second = path("\(name)-\(format)-b")
                XCTAssertEqual(try run(["convert", source, first]).status, 0, "\(name).\(format)")
                XCTAssertEqual(try run(["convert", source, second]).status, 0, "\(name).\(format)")
                for file in ["model.json", "weights.safetensors"] {
                    XCTAssertEqual(FileManager.default.contents(atPath: first + "/" + file), FileManager.default.contents(atPath: second + "/" + file), "\(name).\(format) \(file)")
                }
                let fromArchive = try run(["infer", source, "--input", input, "-o", path("\(name)-\(format)-archive.npy")])
                let converted = try run(["infer", first + "/model.json", first + "/weights.safetensors", "--input", input, "-o", path("\(name)-\(format)-converted.npy")])
                XCTAssertEqual(fromArchive.status, 0, fromArchive.stderr)
                XCTAssertEqual(converted.status, 0, converted.stderr)
                XCTAssertEqual(contents("\(name)-\(format)-archive.npy"), contents("\(name)-\(format)-converted.npy"), "\(name).\(format)")
            }
        }
    }

    func testExistingFilesAreKeptUnlessForced() throws {
        let source = KerasFileTests.file("gru.keras")
        try FileManager.default.createDirectory(atPath: path("out"), withIntermediateDirectories: true)
        try write("out/model.json", "mine")
        let refused = try run(["convert", source, path("out")])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.stderr, "error[io]: \(path("out"))/model.json: already exists; pass --force to replace it\n")
        XCTAssertEqual(contents("out/model.json"), "mine")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out/weights.safetensors")))
        XCTAssertEqual(try run(["convert", source, path("out"), "--force"]).status, 0)
        XCTAssertNotEqual(contents("out/model.json"), "mine")
    }

    func testAJSONSpecIsNotConverted() throws {
        let result = try run(["convert", path("model.json"), path("out")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("expected a Keras model file (.keras or .h5) to convert"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out")))
    }
}
