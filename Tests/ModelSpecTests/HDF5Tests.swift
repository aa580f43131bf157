import Foundation
import XCTest
@testable import ModelSpec

/// The HDF5 reader against files h5py and Keras wrote (Tests/HDF5Fixtures, made by
/// tools/make_hdf5_fixtures.py) and against the malformed corpus in Tests/HDF5Fixtures/malformed.
final class HDF5Tests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("HDF5Fixtures")

    func open(_ name: String) throws -> HDF5File {
        try HDF5File(path: HDF5Tests.fixtures.appendingPathComponent(name).path)
    }

    static let layoutData: [Float] = (0..<60).map { (Float($0) - 30) / 8 }
    static let longConfig = #"{"class_name": "Sequential", "config": {"layers": ["# + (0..<200).map {
        #"{"class_name": "Dense", "config": {"name": "dense_\#($0)", "units": \#($0 + 1)}}"#
    }.joined(separator: ", ") + "]}}"

    /// The same content written with superblock 0 (symbol-table groups, layout v3), 2 (object
    /// header v2, link messages) and 3 (layout v4 chunk indexes) reads back identically.
    func testEverySuperblockVersionReadsTheSameContent() throws {
        for name in ["sb0.h5", "sb2.h5", "sb3.h5"] {
            let root = try open(name).root
            XCTAssertEqual(try root.memberNames(), ["attrs", "big", "filled", "layouts", "model_weights", "signed", "types", "unsigned"], name)
            XCTAssertEqual(try root.attributeNames().sorted(), ["fixed", "model_config", "names", "numbers", "title"], name)
            XCTAssertEqual(try root.attribute("title"), .string("nnbuild"), name)
            XCTAssertEqual(try root.attribute("fixed"), .string("abc"), name)
            XCTAssertEqual(try root.attribute("numbers"), .numbers(shape: [3], values: [1.5, -2.0, 3.25]), name)
            XCTAssertEqual(try root.attribute("names"), .strings(["x", "yz"]), name)
            XCTAssertEqual(try root.attribute("model_config"), .string(HDF5Tests.longConfig), name)
            XCTAssertNil(try root.attribute("absent"), name)

            let dense = try root.group("model_weights").group("dense")
            XCTAssertEqual(try dense.attribute("weight_names"), .strings(["dense/kernel:0", "dense/bias:0"]), name)
            let kernel = try dense.dataset("kernel")
            XCTAssertEqual(kernel.shape, [3, 4])
            XCTAssertEqual(kernel.elementType, "float32")
            XCTAssertEqual(try kernel.floats().array, (0..<12).map { Float($0) / 4 }, name)
            XCTAssertEqual(try root.dataset("model_weights/dense/bias").floats().array, [0.5, -0.5, 1.0, 2.0], name)
            XCTAssertEqual(try root.dataset("model_weights/dense/bias").path, "/model_weights/dense/bias")
            XCTAssertTrue(try root.isGroup("model_weights"))
            XCTAssertFalse(try dense.isGroup("kernel"))

            let types = try root.group("types")
            XCTAssertEqual(try types.dataset("f16").floats().array, [1.0, -2.5, 65504.0, 0.0], name)
            XCTAssertEqual(try types.dataset("f16").elementType, "float16")
            XCTAssertEqual(try types.dataset("f64").value(), .numbers(shape: [2, 2], values: [1e-3, 2.0, -3.0, 1e10]), name)
            for (member, type) in [("i8", "int8"), ("i16", "int16"), ("i32", "int32"), ("i32be", "int32"), ("i64", "int64"), ("i64be", "int64")] {
                let d = try root.group("signed").dataset(member)
                XCTAssertEqual(d.elementType, type, "\(name) \(member)")
                XCTAssertEqual(try d.floats().array, [0, -1, 2, -100], "\(name) \(member)")
            }
            for (member, type) in [("u8", "uint8"), ("u16be", "uint16"), ("u32", "uint32"), ("u64", "uint64")] {
                let d = try root.group("unsigned").dataset(member)
                XCTAssertEqual(d.elementType, type, "\(name) \(member)")
                XCTAssertEqual(try d.value(), .numbers(shape: [4], values: [0, 1, 2, 100]), "\(name) \(member)")
            }
            XCTAssertEqual(try types.dataset("scalar").shape, [])
            XCTAssertEqual(try types.dataset("scalar").floats().array, [7.5], name)
            XCTAssertEqual(try types.dataset("vlen").value(), .strings(["alpha", "β", ""]), name)
            XCTAssertEqual(try types.dataset("fixedstr").value(), .strings(["ab", "cde"]), name)
            XCTAssertEqual(try types.dataset("vlen").elementType, "string")
            XCTAssertThrowsError(try types.dataset("vlen").floats(), name)

            // Only the first chunk was written; the others read as the fill value 2.5.
            let filled: [Float] = (0..<60).map { (i: Int) -> Float in i / 10 < 4 && i % 10 < 3 ? HDF5Tests.layoutData[i] : 2.5 }
            XCTAssertEqual(try root.dataset("filled").floats().array, filled, name)
            XCTAssertEqual(try root.dataset("filled").value(), .numbers(shape: [6, 10], values: filled.map(Double.init)), name)
            let layouts = try root.group("layouts")
            for member in ["contiguous", "chunked", "gzip", "shuffle_gzip", "single_chunk", "fletcher", "compact", "early"] {
                let d = try layouts.dataset(member)
                XCTAssertEqual(d.shape, [6, 10], "\(name) \(member)")
                XCTAssertEqual(try d.floats().array, HDF5Tests.layoutData, "\(name) \(member)")
            }
        }
    }

    /// A group of 60 members: several symbol-table nodes under a B-tree in superblock 0.
    func testLargeSymbolTableGroup() throws {
        let big = try open("sb0.h5").root.group("big")
        XCTAssertEqual(try big.memberNames(), (0..<60).map { String(format: "m%03d", $0) })
        XCTAssertEqual(try big.dataset("m037").value(), .numbers(shape: [1], values: [37]))
    }

    /// h5py keeps a group of more than 8 members in dense link storage (a fractal heap indexed
    /// by a v2 B-tree) in libver v108+ files.
    func testDenseLinkStorage() throws {
        for name in ["sb2.h5", "sb3.h5"] {
            let big = try open(name).root.group("big")
            XCTAssertEqual(try big.memberNames(), (0..<60).map { String(format: "m%03d", $0) }, name)
            XCTAssertEqual(try big.dataset("m037").value(), .numbers(shape: [1], values: [37]), name)
        }
    }

    /// More than 8 attributes go to dense attribute storage in v108+ files; one over 64 kB is a
    /// 'huge' heap object there, which Keras never writes, refused by name.
    func testManyAndHugeAttributes() throws {
        for name in ["sb0.h5", "sb2.h5", "sb3.h5"] {
            let root = try open(name).root
            let attrs = try root.group("attrs")
            XCTAssertEqual(try attrs.attributeNames().sorted(), (0..<12).map { String(format: "a%02d", $0) }, name)
            XCTAssertEqual(try attrs.attribute("a07"), .numbers(shape: [], values: [7]), name)
        }
        XCTAssertThrowsError(try open("huge_attribute.h5").root.attribute("huge")) { error in
            XCTAssertTrue("\(error)".contains("a huge heap object is not supported"), "\(error)")
        }
    }

    /// A group that tracks creation order lists its members in that order, not by name.
    func testCreationOrder() throws {
        XCTAssertEqual(try open("ordered.h5").root.memberNames(), ["zeta", "alpha", "mid"])
    }

    /// What Keras 3 writes inside a .keras archive (model.weights.h5) and a legacy model.save("m.h5").
    func testKerasFiles() throws {
        let weights = try open("keras3.weights.h5").root
        let kernel = try weights.dataset("layers/dense/vars/0")
        XCTAssertEqual(kernel.shape, [4, 3])
        XCTAssertEqual(try kernel.floats().array, (0..<12).map { Float($0) / 10 })
        XCTAssertEqual(try weights.dataset("layers/dense_1/vars/1").floats().array, [0, 0.1])

        let legacy = try open("legacy.h5").root
        guard case .string(let config)? = try legacy.attribute("model_config") else {
            return XCTFail("legacy.h5 has no model_config string")
        }
        XCTAssertTrue(config.contains("\"Sequential\""))
        let group = try legacy.group("model_weights").group("dense")
        guard case .strings(let names)? = try group.attribute("weight_names") else { return XCTFail("no weight_names") }
        XCTAssertEqual(names.count, 2)
        XCTAssertEqual(try group.dataset(names[0]).floats().array, (0..<12).map { Float($0) / 10 })
    }

    /// The file is opened through ModelSpec's one file-opening path: a directory or a device is
    /// refused by its type, and bytes that are not HDF5 say so.
    func testSpecialFilesAndNonHDF5AreRefused() throws {
        XCTAssertThrowsError(try HDF5File(path: HDF5Tests.fixtures.path)) { error in
            XCTAssertTrue("\(error)".contains("is a directory, expected a regular file"), "\(error)")
        }
        XCTAssertThrowsError(try HDF5File(path: "/dev/zero")) { error in
            XCTAssertTrue("\(error)".contains("is a character device"), "\(error)")
        }
        XCTAssertThrowsError(try HDF5File(bytes: Array("{\"not\": \"hdf5\"}".utf8), source: "x.h5")) { error in
            XCTAssertEqual((error as? NNError)?.location, "x.h5")
            XCTAssertTrue("\(error)".contains("no HDF5 signature"), "\(error)")
        }
    }

    func testMissingMemberNamesTheGroup() throws {
        XCTAssertThrowsError(try open("sb0.h5").root.group("model_weights").dataset("nope")) { error in
            XCTAssertTrue("\(error)".contains("group '/model_weights' has no member 'nope'"), "\(error)")
        }
    }

    /// Each file of the malformed corpus is refused with one error whose message holds the fragment
    /// listed in cases.txt; reading everything in it never traps.
    func testMalformedCorpus() throws {
        let directory = HDF5Tests.fixtures.appendingPathComponent("malformed")
        let cases = try String(contentsOf: directory.appendingPathComponent("cases.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains("\t") }
        XCTAssertGreaterThanOrEqual(cases.count, 8)
        for line in cases {
            let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
            let path = directory.appendingPathComponent(parts[0]).path
            do {
                try HDF5Tests.readEverything(try HDF5File(path: path).root)
                XCTFail("\(parts[0]) was accepted")
            } catch let error as NNError {
                XCTAssertTrue(error.message.contains(parts[1]), "\(parts[0]): \(error.message)")
                XCTAssertTrue(error.message.hasPrefix("HDF5: "), "\(parts[0]): \(error.message)")
                if ProcessInfo.processInfo.environment["HDF5_PRINT"] != nil { print(parts[0], error) }
                XCTAssertEqual(error.location, path)
            }
        }
    }

    /// Reads every member, attribute and dataset below `group`.
    static func readEverything(_ group: HDF5Group, depth: Int = 0) throws {
        guard depth < 16 else { return }
        for name in try group.attributeNames() { _ = try group.attribute(name) }
        for name in try group.memberNames() {
            if try group.isGroup(name) {
                try readEverything(try group.group(name), depth: depth + 1)
            } else {
                let d = try group.dataset(name)
                _ = try d.value()
                if d.elementType != "string" { _ = try d.floats() }
            }
        }
    }
}
