import Foundation
import XCTest
import Builtins
import LayerRegistry

/// Keras Applications at reduced width and input size, made by tools/make_graph_fixtures.py
/// (the `app_` cases) from keras.applications with random weights, BatchNormalization statistics
/// from a calibration batch, and float16 weights (the same rounded values Keras ran), so the plain
/// suite covers them without TensorFlow; tools/applications_test.py runs the full-size models
/// where TensorFlow is installed.
final class ApplicationsTests: XCTestCase {
    /// Every output of fixture `name` within max |ours - keras| / (1 + |keras|) <= 1e-5.
    func assertApplicationMatchesKeras(_ name: String, file: StaticString = #filePath, line: UInt = #line) {
        GraphFixtureTests.assertMatchesKeras(name, file: file, line: line)
    }

    func testMobileNetAtQuarterWidth() { assertApplicationMatchesKeras("app_mobilenet") }

    func testMobileNetV2AtWidth035() { assertApplicationMatchesKeras("app_mobilenet_v2") }

    func testMobileNetV3SmallAtWidth075() { assertApplicationMatchesKeras("app_mobilenet_v3_small") }

    /// Keras 3 numbers unnamed weights model-wide (`variable`, `variable_1`): ConvNeXt's second
    /// LayerScale found no weight before the binder accepted the numbered name.
    func testLayerScaleWeightsNumberedModelWide() { assertApplicationMatchesKeras("app_layer_scale_numbered") }
}
