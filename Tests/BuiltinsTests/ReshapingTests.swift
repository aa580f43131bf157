import XCTest
@testable import Builtins
import LayerRegistry

final class ReshapingTests: XCTestCase {
    private func run(_ className: String, _ options: String, input: [Int?], batch: [Int], _ values: [Float]) throws -> Tensor {
        let layer = #"{"class_name": "\#(className)", "config": {"name": "layer"\#(options.isEmpty ? "" : ", " + options)}}"#
        let model = try HandBuilt.model(input: input, layers: [layer])
        let output = try HandBuilt.run(model, shape: batch, values)
        XCTAssertTrue(zip(model.outputShape, output.shape.dropFirst()).allSatisfy { $0 == nil || $0 == $1 },
                      "declared \(model.outputShape), produced \(output.shape)")
        return output
    }

    // MARK: - Hand-computed values

    func testZeroPadding2DForms() throws {
        // A 1×2 image [a, b] = [1, 2].
        let nested = try run("ZeroPadding2D", #""padding": [[1, 0], [0, 2]]"#, input: [1, 2, 1], batch: [1, 1, 2, 1], [1, 2])
        XCTAssertEqual(nested.shape, [1, 2, 4, 1])
        assertClose(nested.data, [0, 0, 0, 0,
                                  1, 2, 0, 0])
        let pair = try run("ZeroPadding2D", #""padding": [0, 1]"#, input: [1, 2, 1], batch: [1, 1, 2, 1], [1, 2])
        assertClose(pair.data, [0, 1, 2, 0])
        let mixed = try run("ZeroPadding2D", #""padding": [1, [0, 1]]"#, input: [1, 1, 1], batch: [1, 1, 1, 1], [5])
        XCTAssertEqual(mixed.shape, [1, 3, 2, 1])
        assertClose(mixed.data, [0, 0, 5, 0, 0, 0])
        let fallback = try run("ZeroPadding2D", "", input: [1, 1, 2], batch: [1, 1, 1, 2], [3, 4])
        XCTAssertEqual(fallback.shape, [1, 3, 3, 2])
        XCTAssertEqual(fallback.data.filter { $0 != 0 }, [3, 4])
        XCTAssertEqual(Array(fallback.data[8...9]), [3, 4])
    }

    func testZeroPadding1DAndCropping1DOnRunTimeLength() throws {
        let padded = try run("ZeroPadding1D", #""padding": [2, 1]"#, input: [nil, 1], batch: [2, 2, 1], [1, 2, 3, 4])
        XCTAssertEqual(padded.shape, [2, 5, 1])
        assertClose(padded.data, [0, 0, 1, 2, 0, 0, 0, 3, 4, 0])
        let cropped = try run("Cropping1D", #""cropping": [1, 2]"#, input: [nil, 2], batch: [1, 5, 2], (1...10).map(Float.init))
        assertClose(cropped.data, [3, 4, 5, 6])
        let defaults = try run("Cropping1D", "", input: [4, 1], batch: [1, 4, 1], [1, 2, 3, 4])
        assertClose(defaults.data, [2, 3])
    }

    func testCropping2D() throws {
        // x = 1…12 as a 3×4 image; crop one row off the top, one column off each side.
        let y = try run("Cropping2D", #""cropping": [[1, 0], 1]"#, input: [3, 4, 1], batch: [1, 3, 4, 1], (1...12).map(Float.init))
        XCTAssertEqual(y.shape, [1, 2, 2, 1])
        assertClose(y.data, [6, 7, 10, 11])
    }

    func testUpSampling() throws {
        let steps = try run("UpSampling1D", #""size": 3"#, input: [nil, 1], batch: [1, 2, 1], [1, 2])
        assertClose(steps.data, [1, 1, 1, 2, 2, 2])
        let nearest = try run("UpSampling2D", #""size": [2, 1]"#, input: [1, 2, 2], batch: [1, 1, 2, 2], [1, 10, 2, 20])
        XCTAssertEqual(nearest.shape, [1, 2, 2, 2])
        assertClose(nearest.data, [1, 10, 2, 20, 1, 10, 2, 20])
    }

    func testBilinearUsesHalfPixelCentres() throws {
        // Output column o samples (o + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped at the edges.
        let y = try run("UpSampling2D", #""size": [1, 2], "interpolation": "bilinear""#, input: [1, 2, 1], batch: [1, 1, 2, 1], [0, 1])
        assertClose(y.data, [0, 0.25, 0.75, 1])
    }

    func testAreaWeightsAtWholeFactorsPickTheNearestCell() {
        // Area weights at whole factors equal nearest-neighbour repetition.
        let area = ResampleWeights.area(input: 3, output: 6)
        for position in 0..<6 {
            let taps = (0..<area.taps).filter { area.weights[position * area.taps + $0] > 1e-3 }
            XCTAssertEqual(taps.map { area.indices[position * area.taps + $0] }, [position / 2])
        }
    }

    // MARK: - Errors

    func testConfigAndShapeErrors() throws {
        let cases: [(String, [Int?], String, String)] = [
            (#""class_name": "Cropping2D", "config": {"name": "crop", "cropping": [[2, 1], 0]}"#, [3, 4, 1], "config.cropping",
             "cropping (2, 1) removes 3 of the input's 3 rows; expected fewer than 3"),
            (#""class_name": "Cropping1D", "config": {"name": "crop", "cropping": 2}"#, [4, 1], "config.cropping",
             "removes 4 of the input's 4 steps"),
            (#""class_name": "ZeroPadding2D", "config": {"name": "pad", "padding": [1, 2, 3]}"#, [3, 4, 1], "config.padding",
             "must be an integer, a pair (rows, columns) or a pair of pairs ((top, bottom), (left, right)) of non-negative integers"),
            (#""class_name": "ZeroPadding1D", "config": {"name": "pad", "padding": -1}"#, [3, 1], "config.padding",
             "must be an integer or a pair (before, after) of non-negative integers"),
            (#""class_name": "ZeroPadding2D", "config": {"name": "pad", "data_format": "channels_middle"}"#, [3, 4, 1], "config.data_format",
             "found \"channels_middle\""),
            (#""class_name": "UpSampling2D", "config": {"name": "up", "interpolation": "cubic"}"#, [3, 4, 1], "config.interpolation",
             #"must be one of "nearest", "bilinear", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic", found "cubic""#),
            (#""class_name": "UpSampling1D", "config": {"name": "up", "size": 0}"#, [3, 1], "config.size",
             "'size' must be a positive integer, found 0"),
            (#""class_name": "UpSampling2D", "config": {"name": "up", "size": 65536}"#, [40000, 3, 1], "config.size",
             "more than the limit of 2^31"),
            (#""class_name": "UpSampling2D", "config": {"name": "up", "size": [1, 65536], "interpolation": "bilinear"}"#, [1, 20, 1], "config.size",
             "the largest side accepted is 1048576"),
            (#""class_name": "UpSampling2D", "config": {"name": "up"}"#, [3, 1], "layers[1]",
             "expects input of shape (batch, height, width, channels), found (None, 3, 1)"),
        ]
        for (layer, input, location, text) in cases {
            let message = try XCTUnwrap(HandBuilt.buildError(input: input, layers: ["{\(layer)}"]), layer)
            XCTAssertTrue(message.contains(location), "\(layer): \(message)")
            XCTAssertTrue(message.contains(text), "\(layer): \(message)")
        }
        let model = try HandBuilt.model(input: [nil, 1], layers: [#"{"class_name": "Cropping1D", "config": {"name": "crop", "cropping": [1, 1]}}"#])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 2, 1], [1, 2])) { error in
            XCTAssertTrue("\(error)".contains("removes every one of the input's 2 steps"), "\(error)")
        }
    }

    func testReshapingLayersDropTheMask() throws {
        for className in ["ZeroPadding1D", "Cropping1D", "UpSampling1D"] {
            let model = try HandBuilt.model(input: [4, 1], layers: [#"{"class_name": "\#(className)", "config": {"name": "layer"}}"#])
            XCTAssertEqual(try XCTUnwrap(model.nodes.last).layer.maskBehavior, .drops, className)
        }
    }

    // MARK: - Keras fixtures

    func testKerasZeroPadding2D() { assertMatchesKeras("zero_padding2d") }

    func testMoreKerasCases() throws {
        try assertMatchesKerasWherePresent([
            "zero_padding2d_int", "zero_padding2d_pair", "zero_padding2d_nested", "zero_padding1d", "cropping1d", "cropping2d",
            "cropping2d_int", "upsampling1d", "upsampling2d_nearest", "upsampling2d_bilinear", "upsampling2d_bilinear_square",
            "upsampling2d_bicubic", "upsampling2d_area", "upsampling2d_lanczos3", "upsampling2d_lanczos5",
            "upsampling2d_gaussian", "upsampling2d_mitchellcubic",
        ])
    }

    // MARK: - 3-D layers, Permute and Identity (issue 15)

    func testKeras3DShapeLayersPermuteAndIdentity() {
        for name in ["zero_padding3d_int", "zero_padding3d_nested", "cropping3d", "cropping3d_default", "upsampling3d",
                     "upsampling3d_default", "upsampling2d_unknown_size", "padding_cropping2d_unknown_size", "permute_2d", "permute_3d", "permute_4d", "identity"] {
            assertMatchesKeras(name)
        }
    }

    func testZeroPadding3DAndCropping3DOnRunTimeSizes() throws {
        // A 2×1×1 volume [1, 2]: one slice of zeros in front, one column on the right.
        let padded = try run("ZeroPadding3D", #""padding": [[1, 0], 0, [0, 1]]"#, input: [nil, nil, nil, 1], batch: [1, 2, 1, 1, 1], [1, 2])
        XCTAssertEqual(padded.shape, [1, 3, 1, 2, 1])
        assertClose(padded.data, [0, 0, 1, 0, 2, 0])
        let cropped = try run("Cropping3D", #""cropping": [[1, 0], [0, 1], 0]"#, input: [nil, nil, nil, 1], batch: [1, 2, 2, 1, 1], [1, 2, 3, 4])
        XCTAssertEqual(cropped.shape, [1, 1, 1, 1, 1])
        assertClose(cropped.data, [3])
        let model = try HandBuilt.model(input: [nil, 3, 3, 1], layers: [#"{"class_name": "Cropping3D", "config": {"name": "crop"}}"#])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 2, 3, 3, 1], Array(repeating: 1, count: 18))) { error in
            XCTAssertTrue("\(error)".contains("removes every one of the input's 2 slices"), "\(error)")
        }
    }

    func testUpSampling3DRepeatsEachAxis() throws {
        let y = try run("UpSampling3D", #""size": [2, 1, 2]"#, input: [1, 2, 1, 1], batch: [1, 1, 2, 1, 1], [1, 2])
        XCTAssertEqual(y.shape, [1, 2, 2, 2, 1])
        assertClose(y.data, [1, 1, 2, 2, 1, 1, 2, 2])
    }

    func testPermuteMatchesItsNaiveTwin() {
        var random = SplitMix(seed: 11)
        for _ in 0..<30 {
            let rank = Int.random(in: 1...5, using: &random)
            let shape = (0..<rank).map { _ in Int.random(in: 1...4, using: &random) }
            let order = Array(0..<rank).shuffled(using: &random)
            let batch = Int.random(in: 1...2, using: &random)
            let x = random.floats(batch * shape.reduce(1, *))
            var got = [Float](repeating: .nan, count: x.count)
            x.withUnsafeBufferPointer { input in got.withUnsafeMutableBufferPointer { permuteAxes(input, batch: batch, shape: shape, order: order, into: $0) } }
            XCTAssertEqual(got, permuteAxesNaive(x, batch: batch, shape: shape, order: order), "shape \(shape) order \(order)")
        }
        // Swaps of two runs of axes (after kept ones) take the tiled transpose: sizes past a tile.
        for (shape, order) in [([37, 5, 19], [1, 2, 0]), ([37, 5, 19], [2, 0, 1]), ([3, 33, 17], [0, 2, 1]), ([2, 3, 18, 17], [0, 2, 3, 1]),
                               ([2, 18, 17, 3], [0, 3, 1, 2]), ([40, 1], [1, 0]),
                               // Several bands, and rows 4 KB apart (the other loop order).
                               ([130, 70], [1, 0]), ([1024, 19], [1, 0]), ([5, 1024], [1, 0])] {
            XCTAssertNotNil(transposeView(shape: shape, order: order), "\(order)")
            let x = random.floats(2 * shape.reduce(1, *))
            var got = [Float](repeating: .nan, count: x.count)
            x.withUnsafeBufferPointer { input in got.withUnsafeMutableBufferPointer { permuteAxes(input, batch: 2, shape: shape, order: order, into: $0) } }
            XCTAssertEqual(got, permuteAxesNaive(x, batch: 2, shape: shape, order: order), "shape \(shape) order \(order)")
        }
        XCTAssertNil(transposeView(shape: [2, 3, 4], order: [2, 1, 0]))
        XCTAssertNil(transposeView(shape: [2, 3, 4], order: [0, 1, 2]))
        // (2, 3) → (3, 2): a transpose.
        XCTAssertEqual(permuteAxesNaive([1, 2, 3, 4, 5, 6], batch: 1, shape: [2, 3], order: [1, 0]), [1, 4, 2, 5, 3, 6])
    }

    func testPermuteConfigErrorsAndMasks() throws {
        for dims in ["[1, 1]", "[2, 3]", "[1]", "\"x\""] {
            let layer = #"{"class_name": "Permute", "config": {"name": "permute", "dims": \#(dims)}}"#
            let message = try XCTUnwrap(HandBuilt.buildError(input: [3, 2], layers: [layer]), dims)
            XCTAssertTrue(message.contains("config.dims"), "\(dims): \(message)")
        }
        let permute = try HandBuilt.model(input: [4, 1], layers: [#"{"class_name": "Permute", "config": {"name": "p", "dims": [2, 1]}}"#])
        XCTAssertEqual(try XCTUnwrap(permute.nodes.last).layer.maskBehavior, .drops, "Keras's Permute does not support masking")
        let identity = try HandBuilt.model(input: [4, 1], layers: [#"{"class_name": "Identity", "config": {"name": "i"}}"#])
        XCTAssertEqual(try XCTUnwrap(identity.nodes.last).layer.maskBehavior, .propagates, "Keras's Identity keeps the mask")
    }
}
