import Foundation
import XCTest
import Builtins
import LayerRegistry

/// Small models written inline (layer JSON plus named weights) for tests whose expected numbers
/// are worked out by hand.
enum HandBuilt {
    /// A Sequential model taking per-sample `input`, with `layers` given as JSON objects and weights
    /// as name → (shape, values) (zeros for every weight when `weights` is nil).
    static func model(input: [Int?], layers: [String], weights: [String: ([Int], [Float])]? = nil, fuse: Bool = true,
                      dtype: String = "float32") throws -> Model {
        let shape = ([nil] + input).map { $0.map(String.init) ?? "null" }.joined(separator: ", ")
        let inputLayer = #"{"class_name": "InputLayer", "config": {"name": "input", "batch_shape": [\#(shape)], "dtype": "\#(dtype)"}}"#
        let text = #"{"class_name": "Sequential", "config": {"name": "sequential", "layers": [\#(([inputLayer] + layers).joined(separator: ", "))]}}"#
        let description = try ModelDescription.parse(text)
        let store = try weights.map { try WeightStore(bytes: safetensors($0)) }
        return try Model.build(description, registry: .withBuiltins(), weights: store, fuse: fuse)
    }

    /// Runs `model` on a batch of `shape` holding `values`.
    static func run(_ model: Model, shape: [Int], _ values: [Float]) throws -> Tensor {
        try model.predict(Tensor(shape: shape, data: values))
    }

    /// The error text building such a model gives, or nil when it builds.
    static func buildError(input: [Int?], layers: [String], dtype: String = "float32") -> String? {
        do {
            _ = try model(input: input, layers: layers, dtype: dtype)
            return nil
        } catch {
            return error.nnProblems.joined(separator: "\n")
        }
    }

    /// A safetensors blob of float32 tensors.
    static func safetensors(_ tensors: [String: ([Int], [Float])]) -> [UInt8] {
        var header: [String] = []
        var data: [UInt8] = []
        for name in tensors.keys.sorted() {
            guard let (shape, values) = tensors[name] else { continue }
            let start = data.count
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data += $0 } }
            header.append(#""\#(name)": {"dtype": "F32", "shape": \#(shape), "data_offsets": [\#(start), \#(data.count)]}"#)
        }
        var json = Array(("{" + header.joined(separator: ", ") + "}").utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes += $0 }
        return bytes + json + data
    }
}

/// Asserts two float arrays agree to `tolerance` (absolute, plus relative to `expected`), NaN
/// matching NaN.
func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Float = 1e-5, _ context: @autoclosure () -> String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "element count \(context())", file: file, line: line)
    for (index, (a, e)) in zip(actual, expected).enumerated() {
        if a.isNaN && e.isNaN { continue }
        if !(abs(a - e) <= tolerance * (1 + abs(e))) {
            XCTFail("\(context()) element \(index): got \(a), expected \(e)\nactual \(actual)\nexpected \(expected)", file: file, line: line)
            return
        }
    }
}

/// Runs each Keras fixture of `names` (made by tools/make_fixtures.py); a missing one fails.
func assertMatchesKerasWherePresent(_ names: [String], tolerance: Double = 1e-5, file: StaticString = #filePath, line: UInt = #line) throws {
    var missing: [String] = []
    for name in names {
        if FileManager.default.fileExists(atPath: Fixtures.root.appendingPathComponent(name).appendingPathComponent("model.json").path) {
            assertMatchesKeras(name, tolerance: tolerance, file: file, line: line)
        } else {
            missing.append(name)
        }
    }
    if !missing.isEmpty { XCTFail("fixtures missing under \(Fixtures.root.path): \(missing.joined(separator: ", ")); run tools/make_fixtures.py", file: file, line: line) }
}

/// A seeded generator so random-shape tests are reproducible.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func floats(_ count: Int) -> [Float] {
        (0..<count).map { _ in Float.random(in: -1...1, using: &self) }
    }
}
