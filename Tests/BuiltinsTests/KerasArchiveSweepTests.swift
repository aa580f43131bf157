import Foundation
import XCTest
import Builtins
import LayerRegistry

/// Every Keras 3 fixture of Tests/Fixtures and Tests/GraphFixtures, saved by Keras as a `.keras`
/// archive (tools/make_keras_files.py --sweep, Tests/KerasFiles/sweep), runs from the archive
/// exactly as from its model.json and weights.safetensors: the same outputs, bit for bit. So each
/// layer's `vars/<i>` numbering is bound to the variable Keras meant, for every layer those use.
final class KerasArchiveSweepTests: XCTestCase {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let sweep = tests.appendingPathComponent("KerasFiles/sweep")

    /// The fixture's inputs by name (a Sequential fixture's one input.npy, or a graph fixture's).
    static func inputs(_ group: String, _ name: String, _ model: Model) throws -> [String: Tensor] {
        let dir = tests.appendingPathComponent(group).appendingPathComponent(name)
        if group == "GraphFixtures" {
            let manifest = try GraphFixtureTests.manifest()
            guard let entry = manifest.cases[name] else { return [:] }
            var batches: [String: Tensor] = [:]
            for port in entry.inputs {
                batches[port.name] = try model.batch(from: GraphFixtureTests.array(name, port.file), source: port.file, input: port.name)
            }
            return batches
        }
        let path = dir.appendingPathComponent("input.npy").path
        let array = try Npy.read(FileBytes.read(path: path), source: path)
        guard let first = model.inputs.first?.name else { return [:] }
        return [first: try model.batch(from: array, source: path, input: first)]
    }

    func testEverySweptArchiveRunsBitForBitAsItsFixture() throws {
        let cases = try String(contentsOf: Self.sweep.appendingPathComponent("CASES.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        XCTAssertGreaterThan(cases.count, 200)
        var compared = 0
        for line in cases {
            let parts = line.split(separator: "/").map(String.init)
            guard parts.count == 2 else { XCTFail("bad line '\(line)'"); continue }
            let (group, name) = (parts[0], parts[1])
            let dir = Self.tests.appendingPathComponent(group).appendingPathComponent(name)
            let reference: Model
            do {
                let description = try ModelDescription.load(path: dir.appendingPathComponent("model.json").path)
                let weights = try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path)
                reference = try Model.build(description, registry: .withBuiltins(), weights: weights)
            } catch {
                continue  // a fixture nnbuild refuses (a layer it lacks) says nothing about the archive
            }
            do {
                let archive = Self.sweep.appendingPathComponent("\(group)__\(name).keras").path
                let (description, weights) = try ModelFile.load(path: archive)
                let model = try Model.build(description, registry: .withBuiltins(), weights: weights)
                let batches = try Self.inputs(group, name, reference)
                guard !batches.isEmpty else { continue }
                let expected = try reference.predict(batches)
                let got = try model.predict(batches)
                for (output, tensor) in expected {
                    let ours = got[output]
                    XCTAssertEqual(ours?.shape, tensor.shape, "\(line) output \(output)")
                    let same = ours.map { zip($0.data, tensor.data).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) } } ?? false
                    XCTAssertTrue(same, "\(line) output \(output): the archive's outputs differ from the fixture's")
                }
                compared += 1
            } catch {
                XCTFail("\(line): \(error.nnProblems.joined(separator: "\n"))")
            }
        }
        XCTAssertGreaterThan(compared, 150)
        print("KerasArchiveSweepTests: \(compared) of \(cases.count) archives compared")
    }
}
