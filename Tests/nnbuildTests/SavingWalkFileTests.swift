import Foundation
import XCTest
import ModelSpec

/// Keras files whose saving_lib tracking names differ from the layers' names
/// (tools/make_keras_files.py --walk, Tests/KerasFiles/walk): a nested Sequential named `inner`
/// (`layers/sequential/layers/dense` holds its `dense_7`), Dense layers whose groups `dense`,
/// `dense_1` hold the layers named `dense_1`, `dense_2`, Bidirectional (with a given backward
/// layer) and TimeDistributed, MultiHeadAttention, a layer called twice, StackedRNNCells
/// (`lstm_cell`, `gru_cell`, `lstm_cell_1`) and a trained model with its optimizer's variables.
/// Each runs from the file alone and matches Keras within 1e-5, and so does a copy with every
/// `name` attribute removed: the groups are mapped by walking the config, not by names.
final class SavingWalkFileTests: CLITestCase {
    static let cases = ["nested", "renamed", "wrappers", "attention", "shared", "stacked", "compiled"]

    static func walk(_ name: String) -> String { KerasFileTests.file("walk/" + name) }

    static func input(_ name: String) -> String {
        let single = walk("\(name).input.npy")
        return FileManager.default.fileExists(atPath: single) ? single : walk("\(name).inputs.npz")
    }

    func testEachCaseAndItsNamelessCopyMatchKeras() throws {
        for name in Self.cases {
            for variant in ["keras", "stripped.keras"] {
                let out = path("\(name).\(variant).npy")
                let result = try run(["infer", Self.walk("\(name).\(variant)"), "--input", Self.input(name), "-o", out])
                XCTAssertEqual(result.status, 0, "\(name).\(variant): \(result.stderr)")
                guard result.status == 0 else { continue }
                let ours = try Npy.read(FileBytes.read(path: out), source: out)
                let expected = try Npy.read(FileBytes.read(path: Self.walk("\(name).expected.npy")), source: name)
                XCTAssertEqual(ours.shape, expected.shape, "\(name).\(variant)")
                var worst = 0.0
                for (got, want) in zip(ours.values, expected.values) {
                    let error: Double = abs(Double(got) - Double(want)) / (1 + abs(Double(want)))
                    worst = error.isNaN ? .infinity : max(worst, error)
                }
                XCTAssertLessThanOrEqual(worst, 1e-5, "\(name).\(variant)")
            }
        }
    }

    /// `nnbuild convert` keys every weight by its Keras variable path, exactly as
    /// tools/keras_export.py does for the same model (Tests/KerasFiles/export, from the .keras
    /// files; Keras loads the legacy .h5 of a model with the same paths), with the same values.
    /// (Keras 3 cannot load tf-keras's .h5 files: those keep the paths they record, less `:0`.)
    func testConvertWritesTheVariablePathsKerasExportWrites() throws {
        let sources = KerasFileTests.cases.flatMap { name in
            ["keras", "h5"].map { (name, KerasFileTests.file("\(name).\($0)")) }
        } + Self.cases.map { ("walk__" + $0, Self.walk("\($0).keras")) }
        for (name, source) in sources {
            let out = path("converted-\(name)-" + URL(fileURLWithPath: source).lastPathComponent)
            let result = try run(["convert", source, out])
            XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
            guard result.status == 0 else { continue }
            let ours = try WeightStore(path: out + "/weights.safetensors")
            let theirs = try WeightStore(path: KerasFileTests.file("export/\(name).safetensors"))
            XCTAssertEqual(ours.entries.map(\.name), theirs.entries.map(\.name), source)
            for entry in theirs.entries {
                guard let mine = ours.entry(named: entry.name) else { continue }
                XCTAssertEqual(mine.shape, entry.shape, "\(name) \(entry.name)")
                XCTAssertEqual(ours.floats(mine).array, theirs.floats(entry).array, "\(name) \(entry.name)")
            }
        }
    }
}
