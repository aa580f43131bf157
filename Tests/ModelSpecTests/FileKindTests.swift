import Foundation
import XCTest
@testable import ModelSpec

/// A Keras file (.keras zip, .h5 / .weights.h5 HDF5) or an array given where a spec or weights
/// belong is named for what it is, with how to convert it.
final class FileKindTests: XCTestCase {
    static let zip: [UInt8] = [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00] + Array("\0\0config.json{}".utf8)
    static let hdf5: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x08, 0x00]
    static let npy: [UInt8] = Npy.encode(NumericArray(shape: [2], values: [1, 2]))

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-filekind-\(UUID().uuidString)")
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

    func error(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> NNError? {
        do {
            try body()
            XCTFail("expected an error", file: file, line: line)
        } catch let error as NNError {
            return error
        } catch {
            XCTFail("expected an NNError, got \(error)", file: file, line: line)
        }
        return nil
    }

    func testDetectsEachFormatByItsMagicBytes() {
        XCTAssertEqual(FileKind.detect(Self.zip), .kerasArchive)
        XCTAssertEqual(FileKind.detect(Self.hdf5), .hdf5)
        XCTAssertEqual(FileKind.detect(Self.npy), .npy)
        XCTAssertEqual(FileKind.detect(Array(#"{"class_name": "Sequential"}"#.utf8)), .other)
        XCTAssertEqual(FileKind.detect([0x89, 0x48, 0x44]), .other, "a prefix shorter than the magic is not that format")
        XCTAssertEqual(FileKind.detect([UInt8]()), .other)
    }

    func testKerasArchiveAsSpecSaysHowToPassIt() throws {
        let path = try file("my_model.keras", Self.zip)
        let found = error { _ = try ModelDescription.load(path: path) }
        XCTAssertEqual(found?.kind, .spec)
        XCTAssertEqual(found?.location, path)
        XCTAssertEqual(found?.message, "this is a zip file, as a Keras 3 model archive (.keras) is, not a JSON model spec; "
            + "pass it alone in place of the spec and weights (`nnbuild infer \(path) --input x.npy`)")
    }

    func testKerasArchiveAsWeights() throws {
        let path = try file("my_model.keras", Self.zip)
        let found = error { _ = try WeightStore(path: path) }
        XCTAssertEqual(found?.kind, .weights)
        XCTAssertTrue(found?.message.hasPrefix("this is a zip file, as a Keras 3 model archive (.keras) is, not a safetensors weight blob") ?? false,
                      found?.message ?? "")
        XCTAssertTrue(found?.message.contains("pass it alone in place of the spec and weights") ?? false)
    }

    func testLegacyH5AsSpecAndAsWeights() throws {
        let path = try file("model.h5", Self.hdf5)
        let asSpec = error { _ = try ModelDescription.load(path: path) }
        XCTAssertEqual(asSpec?.kind, .spec)
        XCTAssertTrue(asSpec?.message.hasPrefix("this is an HDF5 file, as a legacy Keras model (.h5) is, not a JSON model spec; pass it alone") ?? false,
                      asSpec?.message ?? "")
        let asWeights = error { _ = try WeightStore(path: path) }
        XCTAssertEqual(asWeights?.kind, .weights)
        XCTAssertTrue(asWeights?.message.contains("not a safetensors weight blob") ?? false, asWeights?.message ?? "")
        XCTAssertTrue(asWeights?.message.contains("`nnbuild infer \(path) --input x.npy`") ?? false)
    }

    func testWeightsOnlyH5SaysItHasNoArchitecture() throws {
        let path = try file("my_model.weights.h5", Self.hdf5)
        let found = error { _ = try WeightStore(path: path) }
        XCTAssertEqual(found?.kind, .weights)
        XCTAssertTrue(found?.message.contains("weights-only HDF5 file (.weights.h5") ?? false, found?.message ?? "")
        XCTAssertTrue(found?.message.contains("pass it as the weights after the model's JSON spec") ?? false)
    }

    func testNpyAsWeightsNamesTheArray() throws {
        let path = try file("x.npy", Self.npy)
        let found = error { _ = try WeightStore(path: path) }
        XCTAssertEqual(found?.kind, .weights)
        XCTAssertTrue(found?.message.hasPrefix("this is a NumPy array (.npy)") ?? false, found?.message ?? "")
    }

    func testInMemoryBytesAreCheckedToo() {
        let found = error { _ = try ModelDescription.parse(Self.hdf5, source: "<stdin>") }
        XCTAssertEqual(found?.kind, .spec)
        XCTAssertEqual(found?.location, "<stdin>")
    }

    func testOrdinaryFilesStillReachTheirReaders() throws {
        // A binary file of no known format still gets the JSON reader's message.
        let found = error { _ = try ModelDescription.parse(Array(0..<32), source: "bin") }
        XCTAssertEqual(found?.kind, .json)
    }
}
