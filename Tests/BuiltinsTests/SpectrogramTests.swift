import XCTest
@testable import Builtins
import LayerRegistry

/// STFTSpectrogram's framing and layouts by hand (the fixture `stft_spectrogram` checks every
/// mode against Keras).
final class SpectrogramTests: XCTestCase {
    /// A real-mode layer whose kernel picks tap `f` for bin `f` (frame_length 4, fft_length 4: 3
    /// bins), so each output row is the first three samples of its frame.
    private func model(_ extra: String, input: [Int?]) throws -> Model {
        var kernel = [Float](repeating: 0, count: 12)
        for bin in 0..<3 { kernel[bin * 3 + bin] = 1 }
        let layer = #"{"class_name": "STFTSpectrogram", "config": {"name": "s", "mode": "real", "frame_length": 4, "frame_step": 2, "fft_length": 4\#(extra)}}"#
        return try HandBuilt.model(input: input, layers: [layer], weights: ["s/real_kernel": ([4, 1, 3], kernel)])
    }

    func testFramesOnARunTimeLength() throws {
        let valid = try model("", input: [nil, 1])
        let six = try HandBuilt.run(valid, shape: [1, 6, 1], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(six.shape, [1, 2, 3])
        XCTAssertEqual(six.data, [1, 2, 3, 3, 4, 5])
        XCTAssertThrowsError(try HandBuilt.run(valid, shape: [1, 3, 1], [1, 2, 3])) { error in
            XCTAssertTrue("\(error)".contains("a frame spans 4 steps but the input has 3"), "\(error)")
        }
        // "same": ⌈5 / 2⌉ = 3 frames, (2·2 + 4 − 5) / 2 = 1 zero before.
        let same = try model(#", "padding": "same""#, input: [nil, 1])
        let five = try HandBuilt.run(same, shape: [1, 5, 1], [1, 2, 3, 4, 5])
        XCTAssertEqual(five.shape, [1, 3, 3])
        XCTAssertEqual(five.data, [0, 1, 2, 2, 3, 4, 4, 5, 0])
    }

    func testChannelLayouts() throws {
        // Two channels: channels-last interleaves them; each gets its own three bins.
        let last = try HandBuilt.run(try model("", input: [4, 2]), shape: [1, 4, 2], [1, 10, 2, 20, 3, 30, 4, 40])
        XCTAssertEqual(last.shape, [1, 1, 6])
        XCTAssertEqual(last.data, [1, 2, 3, 10, 20, 30])
        let image = try HandBuilt.run(try model(#", "expand_dims": true"#, input: [4, 2]), shape: [1, 4, 2], [1, 10, 2, 20, 3, 30, 4, 40])
        XCTAssertEqual(image.shape, [1, 1, 3, 2])
        XCTAssertEqual(image.data, [1, 10, 2, 20, 3, 30])
        let first = try HandBuilt.run(try model(#", "data_format": "channels_first""#, input: [2, 4]), shape: [1, 2, 4], [1, 2, 3, 4, 10, 20, 30, 40])
        XCTAssertEqual(first.shape, [1, 6, 1])
        XCTAssertEqual(first.data, [1, 2, 3, 10, 20, 30])
    }

    func testConfigErrors() {
        let step = HandBuilt.buildError(input: [8, 1], layers: [#"{"class_name": "STFTSpectrogram", "config": {"name": "s", "frame_length": 4, "frame_step": 5}}"#])
        XCTAssertTrue(step?.contains("'frame_step' must be from 1 to frame_length (4), found 5") == true, step ?? "built")
        let fft = HandBuilt.buildError(input: [8, 1], layers: [#"{"class_name": "STFTSpectrogram", "config": {"name": "s", "frame_length": 4, "fft_length": 2}}"#])
        XCTAssertTrue(fft?.contains("'fft_length' must be at least frame_length (4)") == true, fft ?? "built")
        let mode = HandBuilt.buildError(input: [8, 1], layers: [#"{"class_name": "STFTSpectrogram", "config": {"name": "s", "mode": "phase"}}"#])
        XCTAssertTrue(mode?.contains("'mode' must be one of") == true, mode ?? "built")
    }

    /// MelSpectrogram has no weights, so its config alone could ask for hours of transforms: a
    /// call past 2^38 butterflies is refused before any runs.
    func testMelSpectrogramRefusesACallOfTooManyTransforms() throws {
        let layer = #"{"class_name": "MelSpectrogram", "config": {"name": "m", "fft_length": 1048576, "sequence_stride": 1, "num_mel_bins": 1}}"#
        let model = try HandBuilt.model(input: [nil], layers: [layer])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 600_000], [Float](repeating: 0, count: 600_000))) { error in
            XCTAssertTrue("\(error)".contains("more than the 2^38 butterflies one call may take"), "\(error)")
        }
    }
}
