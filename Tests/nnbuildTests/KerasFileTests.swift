import Foundation
import XCTest
import ModelSpec

/// Real Keras files (tools/make_keras_files.py, Tests/KerasFiles): a `.keras` archive and a legacy
/// `.h5` (from Keras 3, and from tf-keras as Keras 2 writes it) of a CNN, a masked BiLSTM, a GRU, a residual model with a nested Sequential, a model
/// with Bidirectional and TimeDistributed wrappers and a MobileNetV2 block (whose depthwise kernel Keras 2 names `depthwise_kernel`) each run from the file alone and match Keras's
/// predictions within 1e-5; a whole model file where the weights belong is refused, naming what to do.
final class KerasFileTests: CLITestCase {
    static let files = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KerasFiles")
    static let cases = ["cnn", "bilstm_masked", "gru", "residual_nested", "wrappers", "depthwise"]

    static func file(_ name: String) -> String { files.appendingPathComponent(name).path }

    func maxError(_ got: String, _ expected: String) throws -> Double {
        let a = try Npy.read(FileBytes.read(path: got), source: got)
        let b = try Npy.read(FileBytes.read(path: expected), source: expected)
        XCTAssertEqual(a.shape, b.shape, got)
        var worst = 0.0
        for (x, y) in zip(a.values, b.values) {
            let error = abs(Double(x) - Double(y)) / (1 + abs(Double(y)))
            worst = error.isNaN ? .infinity : max(worst, error)
        }
        return worst
    }

    func testEachModelFileRunsAloneAndMatchesKeras() throws {
        for name in Self.cases {
            // Keras 3's .keras and legacy .h5, and a true Keras 2 .h5 from tf-keras, with its own predictions.
            for (format, expected) in [("keras", "expected"), ("h5", "expected"), ("keras2.h5", "keras2.expected")] {
                let out = path("\(name).\(format).npy")
                let result = try run(["infer", Self.file("\(name).\(format)"), "--input", Self.file("\(name).input.npy"), "-o", out])
                XCTAssertEqual(result.status, 0, "\(name).\(format): \(result.stderr)")
                guard result.status == 0 else { continue }
                XCTAssertLessThanOrEqual(try maxError(out, Self.file("\(name).\(expected).npy")), 1e-5, "\(name).\(format)")
            }
        }
    }

    /// What only Keras 2 writes (tools/make_keras_files.py's KERAS2_ONLY): TensorFlow functions on
    /// Keras tensors (TFOpLambda: `x + 3.0`, `1.0 - tanh(x)`, relu6, sigmoid, silu, maximum...) and
    /// layer names holding `/`, as tf-keras's MobileNetV3 has them; reductions, reshapes, concat,
    /// stack, transpose, matmul, softmax and slices (SlicingOpLambda); image resizing, split and
    /// gather; the other element-wise functions, comparisons, where, clip, cast, tile, repeat,
    /// cumsum, argmax and the composed reductions; ConvNeXt's LayerScale with
    /// its weight named `gamma`; InceptionResNetV2's `Custom>CustomScaleLayer`: each runs within 1e-5 of tf-keras.
    func testWhatOnlyKerasTwoWritesRunsFromTheFile() throws {
        for name in ["tf_functions", "tf_shape_functions", "tf_image_functions", "tf_math_functions", "layer_scale", "custom_scale"] {
            let out = path("\(name).npy")
            let result = try run(["infer", Self.file("\(name).keras2.h5"), "--input", Self.file("\(name).input.npy"), "-o", out])
            XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
            guard result.status == 0 else { continue }
            XCTAssertLessThanOrEqual(try maxError(out, Self.file("\(name).keras2.expected.npy")), 1e-5, name)
        }
    }

    /// Adapted IntegerLookup, StringLookup and TextVectorization layers (one TF-IDF, whose weights the
    /// weights file holds under their name) keep their vocabularies in the archive's
    /// assets (tools/make_keras_files.py --assets): read from the .keras file, and from the assets
    /// folder `convert` writes beside model.json and weights.safetensors.
    func testAdaptedVocabulariesAreReadFromTheAssets() throws {
        for (name, asset) in [("adapted_lookup", "integer_lookup_1"), ("adapted_string_lookup", "string_lookup_1"), ("adapted_text", "text_vectorization_1"), ("adapted_tfidf", "text_vectorization")] {
            let input = Self.file("\(name).input.npy"), expected = Self.file("\(name).expected.npy")
            let out = path("\(name).npy")
            let direct = try run(["infer", Self.file("\(name).keras"), "--input", input, "-o", out])
            XCTAssertEqual(direct.status, 0, direct.stderr)
            XCTAssertLessThanOrEqual(try maxError(out, expected), 1e-5, name)
            let folder = path("\(name)_converted")
            let converted = try run(["convert", Self.file("\(name).keras"), folder])
            XCTAssertEqual(converted.status, 0, converted.stderr)
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/assets/layers/\(asset)/vocabulary.txt"), name)
            let fromFolder = try run(["infer", folder + "/model.json", folder + "/weights.safetensors", "--input", input, "-o", path("\(name)_converted.npy")])
            XCTAssertEqual(fromFolder.status, 0, fromFolder.stderr)
            XCTAssertLessThanOrEqual(try maxError(path("\(name)_converted.npy"), expected), 1e-5, name)
            // Without the assets folder the vocabulary is missing, and said so.
            try FileManager.default.removeItem(atPath: folder + "/assets")
            let without = try run(["validate", folder + "/model.json", folder + "/weights.safetensors"])
            XCTAssertNotEqual(without.status, 0)
            XCTAssertTrue(without.stderr.contains("'vocabulary' is null"), without.stderr)
        }
    }

    func testValidateCompareEvalAndBenchTakeAModelFileAlone() throws {
        let model = Self.file("gru.keras")
        let validated = try run(["validate", model])
        XCTAssertEqual(validated.status, 0)
        // The file holds its weights, which loading checked.
        let summary = String(decoding: validated.stdout, as: UTF8.self)
        XCTAssertTrue(summary.contains("Weights: every tensor found with the expected shape, none unused."), summary)
        let compared = try run(["compare", model, "--input", Self.file("gru.input.npy"), "--expected", Self.file("gru.expected.npy")])
        XCTAssertEqual(compared.status, 0, compared.stderr)
    }

    func testAModelFileGivenAsTheWeightsIsRefused() throws {
        let result = try run(["validate", path("model.json"), Self.file("cnn.keras")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("this is a whole Keras model archive (.keras), not a weights file; pass it alone in place of the spec and weights"), result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
    }

    func testAModelFileWithWeightsBesideItIsRefused() throws {
        let result = try run(["infer", Self.file("cnn.keras"), path("weights.safetensors"), "--input", Self.file("cnn.input.npy")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("is a whole Keras model file, which holds its own weights; pass it alone"), result.stderr)
    }

    func testASpecWithoutWeightsIsRefusedWhereWeightsAreNeeded() throws {
        let result = try run(["infer", path("model.json"), "--input", path("x.json")])
        XCTAssertEqual(result.status, 64, "a usage error, as a missing argument was before")
        XCTAssertTrue(result.stderr.contains("a JSON spec needs its weight file after it"), result.stderr)
    }

    /// A model file that is not there is named as missing, not taken for a spec without weights.
    func testAMissingModelFileIsNamedAsMissing() throws {
        let result = try run(["infer", path("nope.keras"), "--input", path("x.json")])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("nope.keras"), result.stderr)
        XCTAssertFalse(result.stderr.contains("needs its weight file"), result.stderr)
    }
}

/// The malformed corpus (tools/make_keras_files.py --malformed): each file is refused by
/// `nnbuild validate` with exit 1 and one error line holding its fragment, and nothing in its
/// folder changes.
final class KerasMalformedTests: CLITestCase {
    func testMalformedCorpus() throws {
        let folder = KerasFileTests.files.appendingPathComponent("malformed")
        let lines = try String(contentsOf: folder.appendingPathComponent("cases.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertGreaterThanOrEqual(lines.count, 10)
        for line in lines {
            let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { XCTFail("bad line '\(line)'"); continue }
            // A copy in the test's own folder, so that the check of "nothing changed" covers the folder.
            let source = folder.appendingPathComponent(parts[0])
            let copy = dir.appendingPathComponent(parts[0])
            try FileManager.default.copyItem(at: source, to: copy)
            let before = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            let bytes = try Data(contentsOf: copy)
            let result = try run(["validate", copy.path])
            XCTAssertEqual(result.status, 1, parts[0])
            XCTAssertFalse(result.signaled, parts[0])
            let errors = result.stderr.split(separator: "\n")
            XCTAssertEqual(errors.count, 1, "\(parts[0]): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("error[") && result.stderr.contains(parts[1]), "\(parts[0]): \(result.stderr)")
            XCTAssertEqual(try Data(contentsOf: copy), bytes, parts[0])
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), before, parts[0])
        }
    }
}

/// Weights saved alone (`model.save_weights("cnn.weights.h5")`) run beside the model's JSON spec.
final class KerasWeightsFileTests: CLITestCase {
    func testWeightsH5BesideItsSpecMatchesKeras() throws {
        let out = path("cnn.npy")
        let result = try run(["infer", KerasFileTests.file("cnn.json"), KerasFileTests.file("cnn.weights.h5"),
                              "--input", KerasFileTests.file("cnn.input.npy"), "-o", out])
        XCTAssertEqual(result.status, 0, result.stderr)
        let compared = try run(["compare", KerasFileTests.file("cnn.json"), KerasFileTests.file("cnn.weights.h5"),
                                "--input", KerasFileTests.file("cnn.input.npy"), "--expected", KerasFileTests.file("cnn.expected.npy")])
        XCTAssertEqual(compared.status, 0, compared.stderr)
    }
}
