import Foundation
import XCTest
@testable import ModelSpec

final class ModelDescriptionTests: XCTestCase {
    func testKeras3InputLayer() throws {
        let spec = try ModelDescription.parse(#"""
        {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": [
          {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1], "dtype": "float32", "name": "input_layer"}, "registered_name": null},
          {"module": "keras.layers", "class_name": "Flatten", "config": {"name": "flatten", "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}}}, "registered_name": null, "build_config": {"input_shape": [null, 28, 28, 1]}}
        ]}}
        """#)
        XCTAssertEqual(spec.format, .keras3)
        XCTAssertEqual(spec.name, "seq")
        XCTAssertEqual(spec.inputShape, [28, 28, 1])
        XCTAssertEqual(spec.inputDType, "float32")
        XCTAssertEqual(spec.layers.map(\.name), ["input_layer", "flatten"])
        XCTAssertEqual(spec.layers[1].path, "config.layers[1]")
    }

    func testKeras2BatchInputShapeOnFirstLayer() throws {
        let spec = try ModelDescription.parse(#"""
        {"class_name": "Sequential", "keras_version": "2.15.0", "backend": "tensorflow", "config": {"name": "sequential", "layers": [
          {"class_name": "Dense", "config": {"name": "dense", "units": 3, "batch_input_shape": [null, 5], "dtype": "float32"}}
        ]}}
        """#)
        XCTAssertEqual(spec.format, .keras2)
        XCTAssertEqual(spec.kerasVersion, "2.15.0")
        XCTAssertEqual(spec.inputShape, [5])
    }

    func testHandWrittenSpecGetsKerasDefaultNames() throws {
        let spec = try ModelDescription.parse(#"""
        {"class_name": "Sequential", "config": {"layers": [
          {"class_name": "Dense", "config": {"units": 4, "input_shape": [6]}},
          {"class_name": "Dense", "config": {"units": 2}},
          {"class_name": "SimpleRNN"}, {"class_name": "ReLU"}, {"class_name": "Conv2D"}, {"class_name": "GlobalAveragePooling2D"}
        ]}}
        """#)
        XCTAssertEqual(spec.format, .handwritten)
        XCTAssertEqual(spec.inputShape, [6])
        XCTAssertEqual(spec.layers.map(\.name), ["dense", "dense_1", "simple_rnn", "re_lu", "conv2d", "global_average_pooling2d"])
    }

    func testBuildConfigGivesTheInputShape() throws {
        let spec = try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 1}, "build_config": {"input_shape": [null, 7]}}]}}"#)
        XCTAssertEqual(spec.inputShape, [7])
    }

    func testUnknownTimeDimensionIsNil() throws {
        let spec = try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, null], "dtype": "int32"}}]}}"#)
        XCTAssertEqual(spec.inputShape, [nil])
        XCTAssertEqual(spec.inputDType, "int32")
    }

    func testFunctionalModelIsReadAsAGraph() throws {
        XCTAssertThrowsError(try ModelDescription.parse(#"{"class_name": "Functional", "config": {"layers": []}}"#)) { error in
            XCTAssertTrue("\(error)".contains("the model has no layers"), "\(error)")
        }
        let text = #"{"class_name": "Functional", "config": {"name": "f", "layers": [{"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": [null, 3]}, "inbound_nodes": []}, {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2}, "inbound_nodes": [[["x", 0, 0, {}]]]}], "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}}"#
        let description = try ModelDescription.parse(text)
        XCTAssertEqual(description.inputShape, [3])
        XCTAssertEqual(description.graph.outputNames, ["d"])
    }

    func testMissingInputShapeSaysHowToFixIt() {
        XCTAssertThrowsError(try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 1}}]}}"#, source: "m.json")) { error in
            XCTAssertEqual((error as? NNError)?.location, "m.json: config.layers[0]")
            XCTAssertTrue("\(error)".contains("InputLayer"), "\(error)")
        }
    }

    func testErrorsNameTheJSONPath() {
        XCTAssertThrowsError(try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 3]}}, {"class_name": 5}]}}"#, source: "m.json")) { error in
            XCTAssertEqual((error as? NNError)?.location, "m.json: config.layers[1].class_name")
        }
        XCTAssertThrowsError(try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, -3]}}]}}"#, source: "m.json")) { error in
            XCTAssertEqual((error as? NNError)?.location, "m.json: config.layers[0].config.batch_shape[1]")
        }
    }

    func testDuplicateLayerNamesAreRefused() {
        XCTAssertThrowsError(try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"name": "d", "units": 1, "input_shape": [2]}}, {"class_name": "Dense", "config": {"name": "d", "units": 1}}]}}"#)) { error in
            XCTAssertTrue("\(error)".contains("used twice"), "\(error)")
        }
    }

    func testSnakeCaseMatchesKeras() {
        XCTAssertEqual(DefaultNamer.snakeCase("BatchNormalization"), "batch_normalization")
        XCTAssertEqual(DefaultNamer.snakeCase("LSTM"), "lstm")
        XCTAssertEqual(DefaultNamer.snakeCase("GRU"), "gru")
        XCTAssertEqual(DefaultNamer.snakeCase("MaxPooling2D"), "max_pooling2d")
        XCTAssertEqual(DefaultNamer.snakeCase("LeakyReLU"), "leaky_re_lu")
    }

    /// The hand-written substitutions give what Keras's regular expressions give, on class names
    /// and on random strings of capitals, lower-case letters, digits, symbols and non-ASCII.
    func testSnakeCaseMatchesTheRegularExpressions() {
        func regex(_ name: String) -> String {
            var text = name.filter { $0.isLetter || $0.isNumber || $0 == "_" }
            text = text.replacingOccurrences(of: "(.)([A-Z][a-z]+)", with: "$1_$2", options: .regularExpression)
            text = text.replacingOccurrences(of: "([a-z])([A-Z])", with: "$1_$2", options: .regularExpression)
            return text.lowercased()
        }
        var names = ["Conv2D", "SimpleRNN", "ReLU", "PReLU", "GRUCell", "MultiHeadAttention", "ABCDef", "aB", "AbC", "a", "", "A",
                     "Zz", "_A_b", "x-Y z", "ÉtéAbc", "e\u{301}Abc", "ÀBc", "日本Ab", "a1B2cD", "ConvLSTM2D", "TFOpLambda", "aAAa"]
        let alphabet = Array("AZMaqz09_-. ÉéßΣσ日\u{301}")
        var state: UInt64 = 12345
        for _ in 0..<3000 {
            var name = ""
            state = state &* 6364136223846793005 &+ 1442695040888963407
            for step in 0..<Int(state >> 60) {
                name.append(alphabet[Int((state >> UInt64(4 * (step % 12))) % UInt64(alphabet.count))])
                state = state &* 6364136223846793005 &+ 1442695040888963407
            }
            names.append(name)
        }
        for name in names { XCTAssertEqual(DefaultNamer.snakeCase(name), regex(name), name) }
    }
}
