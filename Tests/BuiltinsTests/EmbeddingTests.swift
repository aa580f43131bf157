import XCTest
import Builtins
import LayerRegistry

final class EmbeddingTests: XCTestCase {
    func embedding(maskZero: Bool) throws -> Model {
        try buildSingle(#"{"class_name": "Embedding", "config": {"name": "e", "input_dim": 4, "output_dim": 2, "mask_zero": \#(maskZero)}}"#, input: [3],
                        weights: [("e/embeddings", [4, 2], [0, 0, 1, 1, 2, 2, 3, 3])])
    }

    func testLooksUpRowsAndMakesAMask() throws {
        let output = try embedding(maskZero: true).nodes[1].layer.apply(Tensor(shape: [2, 3], data: [1, 3, 0, 0, 0, 0]))
        XCTAssertEqual(output.shape, [2, 3, 2])
        XCTAssertEqual(output.data, [1, 1, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(output.mask, [true, true, false, false, false, false])
        XCTAssertNil(try embedding(maskZero: false).nodes[1].layer.apply(Tensor(shape: [1, 3], data: [1, 0, 0])).mask)
        XCTAssertEqual(try embedding(maskZero: true).inputIndexLimit, 4)
    }

    func testTheSummaryMarksAMaskOnlyWithMaskZero() throws {
        XCTAssertTrue(try embedding(maskZero: true).nodes[1].carriesMask)
        XCTAssertFalse(try embedding(maskZero: false).nodes[1].carriesMask)
    }

    func testOutOfRangeIdsNameRowAndPosition() throws {
        let model = try embedding(maskZero: false)
        XCTAssertThrowsError(try model.predict(Tensor(shape: [2, 3], data: [1, 2, 3, 0, 4, 1]))) { error in
            XCTAssertTrue("\(error)".contains("token id 4 at batch row 1, position 1 is outside the embedding's range [0, 4)"), "\(error)")
        }
        XCTAssertThrowsError(try model.predict(Tensor(shape: [1, 3], data: [-1, 0, 0])))
        XCTAssertThrowsError(try model.predict(Tensor(shape: [1, 3], data: [.nan, 0, 0])))
    }

    /// A ReversibleEmbedding called on ids is an Embedding; its refusals name the key. (Both
    /// directions against Keras: the graph fixture reversible_embedding.)
    func testReversibleEmbeddingLooksUpIdsAndRefusesWhatItCannotMatch() throws {
        let table: [(String, [Int], [Float])] = [("r/embeddings", [4, 2], [0, 0, 1, 1, 2, 2, 3, 3])]
        let model = try buildSingle(#"{"class_name": "ReversibleEmbedding", "config": {"name": "r", "input_dim": 4, "output_dim": 2}}"#,
                                    input: [3], weights: table)
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 3], data: [3, 0, 1])).data, [3, 3, 0, 0, 1, 1])
        for (config, fragment) in [(#""mask_zero": true"#, "'mask_zero' true is not supported"),
                                   (#""reverse_dtype": "float16""#, "nnbuild computes the reverse projection in float32 only"),
                                   (#""logit_soft_cap": -1"#, "'logit_soft_cap' must be a positive float32 number")] {
            XCTAssertThrowsError(try buildSingle(#"{"class_name": "ReversibleEmbedding", "config": {"name": "r", "input_dim": 4, "output_dim": 2, \#(config)}}"#,
                                                 input: [3], weights: table)) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
            }
        }
    }

    func testMaskingMasksAndZeroesSteps() throws {
        let model = try buildSingle(#"{"class_name": "Masking", "config": {"mask_value": -1}}"#, input: [3, 2])
        let output = try model.nodes[1].layer.apply(Tensor(shape: [1, 3, 2], data: [1, 2, -1, -1, -1, 5]))
        XCTAssertEqual(output.data, [1, 2, 0, 0, -1, 5])
        XCTAssertEqual(output.mask, [true, false, true])
    }

    func testEmbeddingFixtureMatchesKeras() {
        assertMatchesKeras("embedding")
    }
}
