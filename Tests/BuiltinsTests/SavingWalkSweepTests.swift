import Foundation
import XCTest
import Builtins
import LayerRegistry
@testable import ModelSpec

/// The config walk against what Keras wrote, for every swept archive (Tests/KerasFiles/sweep) and
/// every walk fixture: each group the walk places a layer at that exists in the file carries the
/// `name` attribute of that layer, and every group holding variables is one the walk placed.
/// The loader never reads those names; here they check that the walk is exact, layer by layer,
/// including the groups of layers without variables.
final class SavingWalkSweepTests: XCTestCase {
    func testTheWalkPlacesEveryLayerWhereKerasSavedIt() throws {
        let tests = KerasArchiveSweepTests.tests.appendingPathComponent("KerasFiles")
        let sweep = try FileManager.default.contentsOfDirectory(atPath: tests.appendingPathComponent("sweep").path)
            .filter { $0.hasSuffix(".keras") }.map { "sweep/" + $0 }
        let walk = try FileManager.default.contentsOfDirectory(atPath: tests.appendingPathComponent("walk").path)
            .filter { $0.hasSuffix(".keras") && !$0.hasSuffix(".stripped.keras") }.map { "walk/" + $0 }
        let registry = LayerRegistry.withBuiltins()
        var named = 0
        for file in (sweep + walk).sorted() {
            let path = tests.appendingPathComponent(file).path
            do {
                let bytes = try FileBytes.read(path: path)
                var weights: [UInt8] = []
                var config: [UInt8] = []
                try bytes.withUnsafeBytes { raw in
                    let archive = try ZipArchive(bytes: raw, source: path, kind: .spec)
                    for member in archive.members where member.name == "model.weights.h5" { weights = try archive.extract(member) }
                    for member in archive.members where member.name == "config.json" { config = try archive.extract(member) }
                }
                let graph = try GraphSpec.parse(config, source: path)
                let places = try SavingWalk.places(graph, className: { registry.registration(for: $0)?.savedChildren.className ?? $0.className }) {
                    try registry.savedChildren(of: $0)
                }
                let root = try HDF5File(bytes: weights, source: path).root
                var placed: Set<String> = []
                for place in places where !place.group.isEmpty {
                    placed.insert(place.group)
                    guard let vars = try? root.group(place.group + "/vars") else { continue }
                    guard case let .string(name)? = try vars.attribute("name") else { continue }
                    XCTAssertEqual(name, place.names.last, "\(file): '\(place.group)'")
                    named += 1
                }
                // Every group holding variables (a dataset) is one the walk placed.
                func check(_ group: HDF5Group, _ at: String, depth: Int) throws {
                    guard depth < 32 else { return }
                    for member in try group.memberNames() where try group.isGroup(member) {
                        let inner = at.isEmpty ? member : at + "/" + member
                        if member == "vars" {
                            let held = try group.group(member).memberNames()
                            if !held.isEmpty, !at.isEmpty { XCTAssertTrue(placed.contains(at), "\(file): '\(inner)' holds \(held.count) variables the walk places no layer at") }
                        } else if !(at.isEmpty && member == "optimizer") {
                            try check(try group.group(member), inner, depth: depth + 1)
                        }
                    }
                }
                try check(root, "", depth: 0)
            } catch {
                XCTFail("\(file): \(error)")
            }
        }
        XCTAssertGreaterThan(named, 1000)
    }

    /// A user's layer (`nnbuild_test>Scale`, y = x ⊙ scale, registered here with no sub-layers)
    /// in a `.keras` file: saved at `layers/scale` by its class name, its own variable bound, the
    /// output Keras's within 1e-5 (tools/make_keras_files.py --walk custom).
    func testAUserLayerWithItsOwnVariablesLoadsFromAKerasFile() throws {
        struct Scale: Layer {
            let scale: Weight
            let outputShape: [Int?]
            func forward(_ input: Tensor) throws -> Tensor {
                var output = input
                for index in output.data.indices { output.data[index] *= scale[index % scale.count] }
                return output
            }
        }
        let registry = LayerRegistry.withBuiltins()
        registry.register("nnbuild_test>Scale") { context in
            Scale(scale: try context.weight("scale", shape: [try context.inputDimension(-1)]), outputShape: context.inputShape)
        }
        let walk = KerasArchiveSweepTests.tests.appendingPathComponent("KerasFiles/walk")
        for file in ["custom.keras", "custom.stripped.keras"] {
            let (description, weights) = try ModelFile.load(path: walk.appendingPathComponent(file).path)
            let model = try Model.build(description, registry: registry, weights: weights)
            let input = try Npy.read(FileBytes.read(path: walk.appendingPathComponent("custom.input.npy").path), source: "input")
            let expected = try Npy.read(FileBytes.read(path: walk.appendingPathComponent("custom.expected.npy").path), source: "expected")
            let output = try model.predict(Tensor(shape: input.shape, data: input.values))
            XCTAssertEqual(output.shape, expected.shape, file)
            for (got, want) in zip(output.data, expected.values) {
                XCTAssertLessThanOrEqual(abs(Double(got) - Double(want)) / (1 + abs(Double(want))), 1e-5, file)
            }
        }
    }
}
