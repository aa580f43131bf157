import XCTest
@testable import Builtins
import LayerRegistry

final class ResizingTests: XCTestCase {
    func testKerasResizingEveryInterpolation() {
        for method in ["bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5"] {
            assertMatchesKeras("resizing_\(method)_down")
            assertMatchesKeras("resizing_\(method)_up")
        }
    }

    func testKerasResizingAspectRatiosAndRunTimeSizes() {
        for name in ["resizing_crop_to_aspect_ratio", "resizing_crop_to_aspect_ratio_wide", "resizing_pad_to_aspect_ratio",
                     "resizing_pad_to_aspect_ratio_tall", "resizing_unknown_size"] {
            assertMatchesKeras(name)
        }
    }

    func testKerasResizingWithAntialias() {
        for name in ["resizing_antialias_bilinear", "resizing_antialias_bicubic", "resizing_antialias_lanczos3",
                     "resizing_antialias_area_nearest", "resizing_antialias_up"] {
            assertMatchesKeras(name)
        }
    }

    func testKerasCenterCrop() {
        assertMatchesKeras("center_crop")
        assertMatchesKeras("center_crop_smaller_input")
        assertMatchesKeras("center_crop_unknown_size")
    }

    /// Keras's framing arithmetic: a centred crop to the target's aspect ratio, and padding of the
    /// same amount on both sides (an odd difference loses a row).
    func testFrames() {
        let crop = ImageResize(height: 5, width: 4, interpolation: .bilinear, aspect: .crop)
        let cropped = crop.frame(height: 8, width: 11)  // keeps 8 × 6 (8·4/5 = 6.4 → 6), from column 2
        XCTAssertTrue(cropped == (0, 0, -2, -3), "\(cropped)")
        let pad = ImageResize(height: 6, width: 6, interpolation: .bilinear, aspect: .pad(fill: 1))
        let padded = pad.frame(height: 7, width: 4)  // to 7 × 7: one column each side (3 / 2 → 1)
        XCTAssertTrue(padded == (0, 0, 1, 1), "\(padded)")
        XCTAssertTrue(ImageResize(height: 2, width: 2, interpolation: .area, aspect: .stretch).frame(height: 5, width: 3) == (0, 0, 0, 0))
    }

    func testNearestPicksHalfPixelCentres() {
        XCTAssertEqual(ResampleWeights.nearest(input: 5, output: 2).indices, [1, 3])
        XCTAssertEqual(ResampleWeights.nearest(input: 2, output: 5).indices, [0, 0, 1, 1, 1])
    }

    func testConfigErrors() throws {
        let cases: [(String, String)] = [
            (#""height": 2"#, "config.width"),
            (#""height": 0, "width": 2"#, "config.height"),
            (#""height": 2, "width": 2, "interpolation": "gaussian""#, "config.interpolation"),
            (#""height": 2, "width": 2, "crop_to_aspect_ratio": true, "pad_to_aspect_ratio": true"#, "only one of"),
            (#""height": 2, "width": 2, "fill_mode": "reflect""#, "config.fill_mode"),
            (#""height": 2, "width": 2, "antialias": "yes""#, "config.antialias"),
        ]
        for (options, text) in cases {
            let layer = #"{"class_name": "Resizing", "config": {"name": "r", \#(options)}}"#
            let message = try XCTUnwrap(HandBuilt.buildError(input: [4, 4, 1], layers: [layer]), options)
            XCTAssertTrue(message.contains(text), "\(options): \(message)")
        }
        let crop = #"{"class_name": "CenterCrop", "config": {"name": "c", "height": 2, "width": 3}}"#
        let model = try HandBuilt.model(input: [nil, nil, 1], layers: [crop])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 4, 2, 1], Array(repeating: 1, count: 8))) { error in
            XCTAssertTrue("\(error)".contains("found a 4×2 image; expected at least 2×3"), "\(error)")
        }
    }

    /// `ops.image.resize` nodes in a Functional model (Tests/GraphFixtures/image_resize_ops), each
    /// output within 1e-5 of Keras.
    func testKerasImageResizeOperation() throws {
        let name = "image_resize_ops"
        let entry = try XCTUnwrap(try GraphFixtureTests.manifest().cases[name])
        let model = try GraphFixtureTests.model(name)
        var batches: [String: Tensor] = [:]
        for port in entry.inputs {
            batches[port.name] = try model.batch(from: GraphFixtureTests.array(name, port.file), source: port.file, input: port.name)
        }
        let results = try model.predict(batches)
        XCTAssertEqual(entry.outputs.count, 6)
        for port in entry.outputs {
            let expected = try GraphFixtureTests.array(name, port.file)
            let got = try XCTUnwrap(results[port.name], port.name)
            XCTAssertEqual(got.shape, expected.shape, port.name)
            var worst = 0.0
            for (a, b) in zip(got.data, expected.values) {
                let error: Double = abs(Double(a) - Double(b)) / (1 + abs(Double(b)))
                worst = error.isNaN ? .infinity : max(worst, error)
            }
            XCTAssertLessThanOrEqual(worst, 1e-5, "output \(port.name)")
        }
    }

    /// Outputs past the per-sample limit are refused when the model is built, and a padded
    /// frame too large is refused at run time before anything is allocated.
    func testHugeOutputsAreRefusedWithTheFigure() throws {
        let huge = #"{"class_name": "Resizing", "config": {"name": "r", "height": 1048576, "width": 1048576}}"#
        let message = try XCTUnwrap(HandBuilt.buildError(input: [2, 2, 1], layers: [huge]))
        XCTAssertTrue(message.contains("2^40 values per sample"), message)
        let upsample = #"{"class_name": "UpSampling3D", "config": {"name": "u", "size": [4096, 4096, 4096]}}"#
        let upsampleMessage = try XCTUnwrap(HandBuilt.buildError(input: [1, 1, 1, 1], layers: [upsample]))
        XCTAssertTrue(upsampleMessage.contains("config.size") && upsampleMessage.contains("2^36 values per sample"), upsampleMessage)
        let padded = #"{"class_name": "Resizing", "config": {"name": "r", "height": 1, "width": 1048576, "pad_to_aspect_ratio": true}}"#
        let model = try HandBuilt.model(input: [nil, nil, 1], layers: [padded])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 4096, 1, 1], Array(repeating: 1, count: 4096))) { error in
            XCTAssertTrue("\(error)".contains("the framed image"), "\(error)")
        }
    }
}
