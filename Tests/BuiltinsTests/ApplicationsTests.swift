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
        do {
            let manifest = try GraphFixtureTests.manifest()
            guard let entry = manifest.cases[name] else { return XCTFail("\(name) is not in the manifest", file: file, line: line) }
            let model = try GraphFixtureTests.model(name)
            var batches: [String: Tensor] = [:]
            for port in entry.inputs {
                batches[port.name] = try model.batch(from: GraphFixtureTests.array(name, port.file), source: port.file, input: port.name)
            }
            let results = try model.predict(batches)
            for port in entry.outputs {
                let expected = try GraphFixtureTests.array(name, port.file)
                guard let got = results[port.name] else { return XCTFail("\(name): no output '\(port.name)'", file: file, line: line) }
                XCTAssertEqual(got.shape, expected.shape, "\(name) output \(port.name)", file: file, line: line)
                var worst = 0.0
                for (a, b) in zip(got.data, expected.values) {
                    let error = abs(Double(a) - Double(b)) / (1 + abs(Double(b)))
                    worst = error.isNaN ? .infinity : max(worst, error)
                }
                XCTAssertLessThanOrEqual(worst, 1e-5, "\(name) output \(port.name): max relative error \(worst)", file: file, line: line)
            }
        } catch {
            XCTFail("\(name): \(error.nnProblems.joined(separator: "\n"))", file: file, line: line)
        }
    }

    func testMobileNetAtQuarterWidth() { assertApplicationMatchesKeras("app_mobilenet") }

    func testMobileNetV2AtWidth035() { assertApplicationMatchesKeras("app_mobilenet_v2") }

    func testMobileNetV3SmallAtWidth075() { assertApplicationMatchesKeras("app_mobilenet_v3_small") }

    /// Keras 3 numbers unnamed weights model-wide (`variable`, `variable_1`): ConvNeXt's second
    /// LayerScale found no weight before the binder accepted the numbered name.
    func testLayerScaleWeightsNumberedModelWide() { assertApplicationMatchesKeras("app_layer_scale_numbered") }
}
