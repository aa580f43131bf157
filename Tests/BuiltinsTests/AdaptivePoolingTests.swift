import XCTest
@testable import Builtins
import LayerRegistry

final class AdaptivePoolingTests: XCTestCase {
    /// Keras's bins: ⌊i·n / out⌋ ..< ⌈(i + 1)·n / out⌉, overlapping when out does not divide n,
    /// repeating cells when out > n.
    func testBinEdges() {
        XCTAssertEqual(adaptiveBins(input: 5, output: 3), [0..<2, 1..<4, 3..<5])
        XCTAssertEqual(adaptiveBins(input: 6, output: 3), [0..<2, 2..<4, 4..<6])
        XCTAssertEqual(adaptiveBins(input: 2, output: 4), [0..<1, 0..<1, 1..<2, 1..<2])
        XCTAssertEqual(adaptiveBins(input: 0, output: 2), [])
    }

    func testAverageAndMaxOnAHandComputedImage() throws {
        // x = 1…6 as a 2×3 image, pooled to 1×2: bins of columns 0..<2 and 1..<3.
        let average = try HandBuilt.model(input: [2, 3, 1], layers: [#"{"class_name": "AdaptiveAveragePooling2D", "config": {"name": "a", "output_size": [1, 2]}}"#])
        let y = try HandBuilt.run(average, shape: [1, 2, 3, 1], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(y.shape, [1, 1, 2, 1])
        assertClose(y.data, [3, 4])
        let maximum = try HandBuilt.model(input: [nil, 1], layers: [#"{"class_name": "AdaptiveMaxPooling1D", "config": {"name": "m", "output_size": 2}}"#])
        let z = try HandBuilt.run(maximum, shape: [1, 3, 1], [5, 1, 4])
        XCTAssertEqual(z.shape, [1, 2, 1])
        assertClose(z.data, [5, 4])
    }

    func testConfigErrors() throws {
        let cases: [(String, [Int?], String)] = [
            (#"{"class_name": "AdaptiveAveragePooling2D", "config": {"name": "a"}}"#, [4, 4, 1], "config.output_size"),
            (#"{"class_name": "AdaptiveAveragePooling2D", "config": {"name": "a", "output_size": [1, 2, 3]}}"#, [4, 4, 1], "config.output_size"),
            (#"{"class_name": "AdaptiveMaxPooling3D", "config": {"name": "a", "output_size": 0}}"#, [4, 4, 4, 1], "config.output_size"),
            (#"{"class_name": "AdaptiveMaxPooling1D", "config": {"name": "a", "output_size": 2, "data_format": "channels_middle"}}"#, [4, 1], "config.data_format"),
            (#"{"class_name": "AdaptiveMaxPooling1D", "config": {"name": "a", "output_size": 2}}"#, [4, 4, 1], "(batch, steps, channels)"),
        ]
        for (layer, input, text) in cases {
            let message = try XCTUnwrap(HandBuilt.buildError(input: input, layers: [layer]), layer)
            XCTAssertTrue(message.contains(text), "\(layer): \(message)")
        }
    }

    func testKerasAdaptivePooling() {
        for name in ["adaptive_avgpool1d", "adaptive_maxpool1d_more_bins", "adaptive_avgpool2d", "adaptive_maxpool2d",
                     "adaptive_avgpool3d", "adaptive_maxpool3d"] {
            assertMatchesKeras(name)
        }
    }
}
