import Foundation
import XCTest
@testable import Builtins
import LayerRegistry

/// Issue 15's normalization, activation, augmentation and LayerScale layers against Keras, and
/// the configs they refuse.
final class MiscLayerTests: XCTestCase {
    func testNewActivationsMatchKeras() { assertMatchesKeras("activations_keras3") }
    func testNormalizationOverAnyAxesMatchesKeras() { assertMatchesKeras("normalization_any_axes") }
    func testGroupNormalizationMatchesKeras() { assertMatchesKeras("group_normalization") }
    func testPReLUSharedOverARunTimeAxisMatchesKeras() { assertMatchesKeras("prelu_shared_runtime") }
    func testLayerScaleMatchesKeras() { assertMatchesKeras("layer_scale") }
    func testRandomAugmentationIsIdentityAtInferenceAsInKeras() { assertMatchesKeras("random_augmentation") }

    func testDiscretizationAndCategoryEncodingMatchKeras() {
        for name in ["discretization_int_count", "discretization_one_hot", "discretization_multi_hot", "category_encoding_modes"] {
            assertMatchesKeras(name)
        }
    }

    func testIntegerLookupMatchesKeras() {
        for name in ["integer_lookup_int", "integer_lookup_modes", "integer_lookup_invert"] { assertMatchesKeras(name) }
    }

    func testAdaptedIntegerLookupWithoutItsVocabularyIsRefused() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "IntegerLookup", "config": {"vocabulary": null}}"#, input: [3])) { error in
            XCTAssertTrue("\(error)".contains("config.vocabulary"), "\(error)")
            XCTAssertTrue("\(error)".contains("assets"), "\(error)")
        }
    }

    func testMultiHotOnSamplesOfTwoAxesIsRefused() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "CategoryEncoding", "config": {"num_tokens": 4, "output_mode": "count"}}"#, input: [2, 3])) { error in
            XCTAssertTrue("\(error)".contains("config.output_mode"), "\(error)")
            XCTAssertTrue("\(error)".contains("samples of one axis"), "\(error)")
        }
    }

    /// The contiguous kernel and the general walk (its naive twin) agree on trailing axes.
    func testNormalizeRowsMatchesTheGeneralWalk() {
        var generator = SystemRandomNumberGenerator()
        let dims = [3, 4, 5]
        var x = (0..<(2 * 60)).map { _ in Float.random(in: -3...3, using: &generator) }
        var y = x
        let gamma = (0..<20).map { Float($0) / 7 - 1 }, beta = (0..<20).map { Float($0) / 3 }
        let layout = AxisLayout(dims: dims, reduced: [1, 2], parameterAxes: [1, 2])
        XCTAssertTrue(layout.isTrailing)
        gamma.withUnsafeBufferPointer { g in
            beta.withUnsafeBufferPointer { b in
                x.withUnsafeMutableBufferPointer { normalizeRows($0, length: 20, epsilon: 1e-3, centered: true, varianceAroundMean: true, gamma: g, beta: b) }
                y.withUnsafeMutableBufferPointer { normalizeGroups($0, layout: layout, epsilon: 1e-3, centered: true, varianceAroundMean: true, gamma: g, beta: b) }
            }
        }
        for (a, b) in zip(x, y) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testThresholdAndGluAsALayerActivationAreRefusedByName() {
        for name in ["threshold", "glu"] {
            XCTAssertThrowsError(try buildSingle(#"{"class_name": "Activation", "config": {"activation": "\#(name)"}}"#, input: [4])) { error in
                XCTAssertTrue("\(error)".contains("config.activation"), "\(error)")
                XCTAssertTrue("\(error)".contains("keras.ops.\(name)"), "\(error)")
            }
        }
    }

    func testGroupsThatDoNotDivideTheChannelsAreRefused() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "GroupNormalization", "config": {"groups": 4}}"#, input: [3, 6])) { error in
            XCTAssertTrue("\(error)".contains("config.groups"), "\(error)")
            XCTAssertTrue("\(error)".contains("divide the 6 channels"), "\(error)")
        }
    }

    func testPReLUNotSharedAlongARunTimeAxisIsRefused() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "PReLU", "config": {"shared_axes": [2]}}"#, input: [nil, 4])) { error in
            XCTAssertTrue("\(error)".contains("config.shared_axes"), "\(error)")
            XCTAssertTrue("\(error)".contains("axis 1 has a size known only at run time"), "\(error)")
        }
    }

    func testRandomCropOnAnInputOfAnotherSizeIsRefused() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "RandomCrop", "config": {"height": 4, "width": 4}}"#, input: [8, 8, 3])) { error in
            XCTAssertTrue("\(error)".contains("config.height"), "\(error)")
            XCTAssertTrue("\(error)".contains("identity at inference"), "\(error)")
        }
    }

    func testAugmentationFactorThatIsNotANumberIsRefused() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "RandomRotation", "config": {"factor": "big"}}"#, input: [4, 4, 3])) { error in
            XCTAssertTrue("\(error)".contains("config.factor"), "\(error)")
        }
    }

    func testRMSNormalizationOverLeadingAxesIsRefusedAsKerasFails() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "RMSNormalization", "config": {"axis": [1, 2]}}"#, input: [4, 5, 3])) { error in
            XCTAssertTrue("\(error)".contains("config.axis"), "\(error)")
            XCTAssertTrue("\(error)".contains("Keras cannot broadcast its scale"), "\(error)")
        }
    }

    /// Keras's Softmax.call: masked entries enter as -1e9 and leave as 0.
    func testSoftmaxOnMaskedStepsGivesThemZeroAndNormalizesTheRest() throws {
        let model = try buildSingle(#"{"class_name": "Softmax", "config": {"axis": -1}}"#, input: [3])
        let output = try model.nodes[1].layer.apply(Tensor(shape: [1, 3], data: [1, 5, 2], mask: [true, false, true]))
        let e1 = Float(Foundation.exp(1.0)), e2 = Float(Foundation.exp(2.0))
        assertClose(output.data, [e1 / (e1 + e2), 0, e2 / (e1 + e2)])
    }

    func testSoftmaxOnAMaskedSequenceOfVectorsIsRefused() {
        let layers = #"{"class_name": "Embedding", "config": {"input_dim": 5, "output_dim": 2, "mask_zero": true}}, {"class_name": "Softmax", "config": {}}"#
        XCTAssertThrowsError(try buildSingle(layers, input: [3])) { error in
            XCTAssertTrue("\(error)".contains("(Softmax)"), "\(error)")
            XCTAssertTrue("\(error)".contains("mask"), "\(error)")
        }
    }

    /// Solarization, random like the Random* layers, is the identity at inference, as in Keras.
    func testSolarizationIsTheIdentityAtInference() throws {
        let model = try buildSingle(#"{"class_name": "Solarization", "config": {"name": "s", "addition_factor": 0.3, "threshold_factor": 0.5, "value_range": [0, 255]}}"#,
                                    input: [1, 1, 2])
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 1, 1, 2], data: [3, 250])).data, [3, 250])
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Solarization", "config": {"name": "s", "value_range": [0, 1, 2]}}"#, input: [1, 1, 2]))
    }
}
