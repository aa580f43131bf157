import XCTest
@testable import Builtins
import LayerRegistry

/// TextVectorization's steps on strings worked out by hand (the fixtures `text_vectorization` and
/// `string_lookup` check whole layers against Keras), and what the string layers refuse.
final class StringLayerTests: XCTestCase {
    func text(_ config: String, input: [Int?] = [1]) throws -> Model {
        try HandBuilt.model(input: input, layers: [#"{"class_name": "TextVectorization", "config": {\#(config)}}"#], dtype: "string")
    }

    /// ASCII letters lowered and ASCII punctuation removed (not "Ü"), cut at ASCII white space
    /// (a vertical tab too, not a no-break space), bigrams after the words, padded with 0.
    func testTextVectorizationStandardizesSplitsAndJoinsAsTensorFlow() throws {
        let model = try text(#""vocabulary": ["hello", "world", "hello world", "über"], "ngrams": 2, "output_sequence_length": 5"#)
        let out = try model.predict(Tensor(shape: [3, 1], strings: ["Hello, WORLD!", "\tworld\u{0B}hello  ", "Über über\u{A0}x"]))
        // 0 padding, 1 unknown, then the terms from 2.
        XCTAssertEqual(out.shape, [3, 5])
        XCTAssertEqual(out.data, [2, 3, 4, 0, 0,
                                  3, 2, 1, 0, 0,
                                  1, 1, 1, 0, 0])
    }

    /// Without an output_sequence_length every row is padded to the batch's longest.
    func testRowsArePaddedToTheLongestOfTheBatch() throws {
        let model = try text(#""vocabulary": ["a", "b"], "split": "character", "standardize": null"#)
        let out = try model.predict(Tensor(shape: [2, 1], strings: ["ab", "bäb"]))
        XCTAssertEqual(out.shape, [2, 3])
        XCTAssertEqual(out.data, [2, 3, 0, 3, 1, 3])
    }

    func testConfigsKerasDoesNotRunAreRefused() {
        let cases: [(String, [Int?], String)] = [
            (#""vocabulary": ["a"], "standardize": {"module": "builtins", "class_name": "function", "config": "custom"}"#, [1], "serialized Python function"),
            (#""vocabulary": ["a"], "ragged": true"#, [1], "'ragged' is true"),
            (#""vocabulary": ["a"], "output_mode": "one_hot""#, [1], "TextVectorization does not have"),
            (#""vocabulary": ["a"], "output_mode": "multi_hot", "output_sequence_length": 4"#, [1], "only with int"),
            (#""vocabulary": ["a"]"#, [3], "its input must be (batch,) or (batch, 1) strings"),
            (#""vocabulary": null"#, [1], "'vocabulary' is null"),
        ]
        for (config, input, fragment) in cases {
            let message = HandBuilt.buildError(input: input, layers: [#"{"class_name": "TextVectorization", "config": {\#(config)}}"#], dtype: "string")
            XCTAssertTrue(message?.contains(fragment) == true, "\(config): \(message ?? "built")")
        }
    }

    /// How many tokens a string makes depends on its text, not its shape: past the call's memory
    /// limit they are refused (a hostile request of one long string with n-grams would otherwise
    /// make tens of times its size in tokens).
    func testTokensPastTheMemoryLimitAreRefused() throws {
        let model = try text(#""vocabulary": ["a"], "split": "character", "ngrams": 3, "output_mode": "count""#)
        let long = Tensor(shape: [1, 1], strings: [String(repeating: "ab", count: 50_000)])
        let small = ExecutionSettings(memoryLimit: 1 << 20)  // 262,144 indices; the text makes 299,997
        XCTAssertThrowsError(try model.predict([long], settings: small)) { error in
            XCTAssertTrue("\(error)".contains("make more than 262144 tokens, past the memory limit of 1.0 MiB"), "\(error)")
        }
        XCTAssertEqual(try model.predict([long]).first?.data.reduce(0, +), 299_997)
    }

    /// TF-IDF needs one weight per term; only the lookups have it.
    func testTfIdfNeedsAWeightPerTermAndALookup() {
        let short = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "StringLookup", "config": {"vocabulary": ["a", "b"], "idf_weights": [1.0], "output_mode": "tf_idf"}}"#], dtype: "string")
        XCTAssertTrue(short?.contains("'idf_weights' holds 1 weights for 2 vocabulary terms") == true, short ?? "built")
        let encoding = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "CategoryEncoding", "config": {"num_tokens": 4, "output_mode": "tf_idf"}}"#])
        XCTAssertTrue(encoding?.contains("only a lookup with IDF weights has") == true, encoding ?? "built")
    }

    /// A string input reaches only the layers that read strings; the others are refused by name,
    /// and a string layer given numbers is refused too.
    func testStringsAndNumbersMeetOnlyTheirOwnLayers() {
        let dense = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "Dense", "config": {"name": "d", "units": 2}}"#], dtype: "string")
        XCTAssertTrue(dense?.contains("layer 'd' (Dense): its input holds strings") == true, dense ?? "built")
        let lookup = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "StringLookup", "config": {"vocabulary": ["a"]}}"#])
        XCTAssertTrue(lookup?.contains("reads strings, but its input holds numbers") == true, lookup ?? "built")
        let inverted = HandBuilt.buildError(input: [3], layers: [#"{"class_name": "StringLookup", "config": {"vocabulary": ["a"], "invert": true}}"#], dtype: "string")
        XCTAssertTrue(inverted?.contains("would output strings") == true, inverted ?? "built")
    }
}
