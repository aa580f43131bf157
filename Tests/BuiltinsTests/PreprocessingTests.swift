import XCTest
import Builtins
import LayerRegistry

final class PreprocessingTests: XCTestCase {
    func testRescalingFixturesMatchKeras() {
        assertMatchesKeras("rescaling_scalar")
        assertMatchesKeras("rescaling_per_channel")
    }

    func testNormalizationFixturesMatchKeras() {
        assertMatchesKeras("normalization_adapt")
        assertMatchesKeras("normalization_axes")
        assertMatchesKeras("normalization_given")
        assertMatchesKeras("normalization_invert")
    }

    func testRescalingBroadcastsPerChannelAndPassesTheMask() throws {
        let model = try buildSingle(#"{"class_name": "Rescaling", "config": {"scale": [1, 10], "offset": {"class_name": "__numpy__", "config": {"value": [0.5, -1], "dtype": "float32"}}}}"#,
                                    input: [nil, 2])
        let output = try model.nodes[1].layer.apply(Tensor(shape: [1, 3, 2], data: [1, 2, 3, 4, 5, 6], mask: [true, false, true]))
        XCTAssertEqual(output.data, [1.5, 19, 3.5, 39, 5.5, 59])
        XCTAssertEqual(output.mask, [true, false, true])
    }

    func testRescalingThatDoesNotBroadcastNamesTheKey() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Rescaling", "config": {"scale": [1, 2, 3]}}"#, input: [4, 2])) { error in
            XCTAssertTrue("\(error)".contains("config.scale"), "\(error)")
            XCTAssertTrue("\(error)".contains("is neither 1 nor 2"), "\(error)")
        }
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Rescaling", "config": {"scale": [2, 2]}}"#, input: [3, nil])) { error in
            XCTAssertTrue("\(error)".contains("no known size"), "\(error)")
        }
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Rescaling", "config": {"scale": [[1], [2, 3]]}}"#, input: [3])) { error in
            XCTAssertTrue("\(error)".contains("rectangular list of numbers"), "\(error)")
        }
    }

    func testNormalizationReadsAdaptedWeightsAndReadsPastAnInt64Count() throws {
        // An I64 `count` as Keras stores it, beside the float statistics.
        let header = Array(#"{"n/count": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]}, "n/mean": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}, "n/variance": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}}"#.utf8)
        var data = withUnsafeBytes(of: Int64(40).littleEndian, Array.init)
        for value: Float in [1, -2, 4, 0.25] { data += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
        let store = try WeightStore(bytes: withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + data)
        XCTAssertEqual(store.entry(named: "n/count")?.dtype, .i64)
        XCTAssertEqual(store.floats(store.entry(named: "n/count")!).array, [40])
        let description = try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 2]}}, {"class_name": "Normalization", "config": {"name": "n", "axis": [-1]}}]}}"#, source: "test.json")
        let model = try Model.build(description, registry: .withBuiltins(), weights: store)
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [5, -1])).data, [2, 2])
    }

    func testNormalizationGivenInTheConfigAndInverted() throws {
        let given = try buildSingle(#"{"class_name": "Normalization", "config": {"axis": null, "mean": 1, "variance": 4}}"#, input: [2])
        XCTAssertEqual(try given.predict(Tensor(shape: [1, 2], data: [3, -1])).data, [1, -1])
        let inverted = try buildSingle(#"{"class_name": "Normalization", "config": {"mean": [1, 2], "variance": [4, 0], "invert": true}}"#, input: [2])
        XCTAssertEqual(try inverted.predict(Tensor(shape: [1, 2], data: [3, 5])).data, [7, 2 + 5 * 1e-7])
    }

    func testNormalizationRefusesHalfGivenStatisticsAndTheBatchAxis() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Normalization", "config": {"mean": [1, 2]}}"#, input: [2])) { error in
            XCTAssertTrue("\(error)".contains("'mean' is given but 'variance' is not"), "\(error)")
        }
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Normalization", "config": {"axis": 0, "mean": 1, "variance": 1}}"#, input: [2])) { error in
            XCTAssertTrue("\(error)".contains("other than the batch axis"), "\(error)")
        }
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Normalization", "config": {"mean": [1, 2, 3], "variance": [1, 1, 1]}}"#, input: [2])) { error in
            XCTAssertTrue("\(error)".contains("expected 1 or 2"), "\(error)")
        }
    }
}
