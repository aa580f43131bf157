import Foundation
import XCTest
import Builtins
import LayerRegistry

/// Keras 3's MultiHeadAttention clears the masks of the tensors it reads
/// (`backend.set_keras_mask(query, None)`, and value and key), so every reader that runs after it
/// sees them unmasked; GroupQueryAttention, Attention and AdditiveAttention leave them alone. The
/// fixtures (tools/make_graph_fixtures.py) are Keras's own predictions.
final class AttentionMaskClearingTests: XCTestCase {
    /// Two encoder blocks on Embedding(mask_zero) tokens: the first block's residual Add, and so the
    /// second block's attention, run unmasked in Keras; the pooling reads the mask the graph stored.
    func testTwoBlockEncoderWithImplicitPaddingMaskMatchesKeras() {
        assertAttentionFixtureMatchesKeras("transformer_two_blocks_masked")
    }

    /// Different query and value masks; a residual of the query and an attention whose query is the
    /// value, both after the first attention, see them unmasked; GroupQueryAttention keeps them.
    func testCrossAttentionClearsQueryAndValueMasksForLaterReaders() {
        assertAttentionFixtureMatchesKeras("mha_cross_masks")
    }

    /// Keras's Dropout at inference returns the tensor it is given, so an attention reading the
    /// Dropout's output clears the mask of the Dropout's input too, and the other way round.
    func testDropoutOutputAndInputLoseTheirMaskTogether() {
        assertAttentionFixtureMatchesKeras("mha_dropout_alias")
    }

    /// Two attention calls on one masked tensor at one depth: Keras runs them in `nodes_by_depth`
    /// order (here the second in the document first), and only the first to run is masked.
    func testReadersAtOneDepthRunInKerasOrder() throws {
        assertAttentionFixtureMatchesKeras("mha_same_depth_readers")
        let model = try GraphFixtureTests.model("mha_same_depth_readers")
        XCTAssertEqual(model.nodes.map(\.spec.name).suffix(2), ["second_in_document", "first_in_document"])
    }

    /// The masks the model reports at build time (what `nnbuild validate` shows, what factories are
    /// given) follow the same rule as the run.
    func testBuildTimeMasksFollowTheClearedInputs() throws {
        func masks(_ name: String) throws -> [String: Bool] {
            let model = try GraphFixtureTests.model(name)
            return Dictionary(model.nodes.map { ($0.spec.name, $0.carriesMask) }, uniquingKeysWith: { $1 })
        }
        let encoder = try masks("transformer_two_blocks_masked")
        XCTAssertEqual(encoder["attention_0"], true)     // its query was masked when it ran
        XCTAssertEqual(encoder["residual_a_0"], false)   // Add([x, attention]): x's mask is gone
        XCTAssertEqual(encoder["attention_1"], false)
        let cross = try masks("mha_cross_masks")
        XCTAssertEqual(cross["cross"], true)
        XCTAssertEqual(cross["query_residual"], false)
        XCTAssertEqual(cross["after"], false)             // its query, the value of 'cross', is unmasked
        XCTAssertEqual(cross["gqa_residual"], true)       // GroupQueryAttention leaves its inputs' masks
        XCTAssertEqual(cross["reads_gqa_residual"], true)
        let alias = try masks("mha_dropout_alias")
        XCTAssertEqual(alias["embedding_residual"], false)
        XCTAssertEqual(alias["dropout_residual"], false)
    }
}
