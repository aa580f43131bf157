import XCTest
import Builtins
import LayerRegistry

/// Builds a one-layer model around `layer` (a JSON layer object) for `input` shape, with weights.
func buildSingle(_ layer: String, input: [Int?], weights: [(String, [Int], [Float])] = []) throws -> Model {
    let shape = "[null, " + input.map { $0.map(String.init) ?? "null" }.joined(separator: ", ") + "]"
    let description = try ModelDescription.parse(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": \#(shape)}}, \#(layer)]}}"#, source: "test.json")
    var offset = 0
    var entries: [String] = []
    var data: [UInt8] = []
    for (name, dims, values) in weights {
        entries.append("\"\(name)\": {\"dtype\": \"F32\", \"shape\": \(dims), \"data_offsets\": [\(offset), \(offset + values.count * 4)]}")
        offset += values.count * 4
        for value in values { data += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
    }
    let header = Array(("{" + entries.joined(separator: ", ") + "}").utf8)
    let store = weights.isEmpty ? nil : try WeightStore(bytes: withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + data)
    return try Model.build(description, registry: .withBuiltins(), weights: store)
}

func assertClose(_ got: [Float], _ want: [Float], accuracy: Float = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, "count", file: file, line: line)
    for (index, (a, b)) in zip(got, want).enumerated() where abs(a - b) > accuracy * (1 + abs(b)) {
        XCTFail("[\(index)]: got \(a), want \(b)", file: file, line: line)
        return
    }
}

final class CoreTests: XCTestCase {
    /// Reshape on a sequence of run-time length: the -1 axis per call, planned from the call's input.
    func testReshapeOnARunTimeLength() throws {
        let layer = #"{"class_name": "Reshape", "config": {"name": "r", "target_shape": [-1, 4]}}"#
        let model = try HandBuilt.model(input: [nil, 6], layers: [layer])
        XCTAssertEqual(model.outputShape, [nil, 4])
        let y = try HandBuilt.run(model, shape: [1, 2, 6], Array(0..<12).map(Float.init))
        XCTAssertEqual(y.shape, [1, 3, 4])
        XCTAssertThrowsError(try HandBuilt.run(model, shape: [1, 3, 6], Array(repeating: 0, count: 18))) { error in
            XCTAssertTrue("\(error)".contains("18 is no multiple of 4"), "\(error)")
        }
        let reshape = try XCTUnwrap(model.steps.last?.layer as? Reshape)
        XCTAssertEqual(reshape.workingSet(input: [2, 6, 6]).outputShape, [2, 9, 4])
    }

    /// Dense reads its kernel in place for a first single row, packs it for a second call or a
    /// batch, and splits a large product across threads: every path must give the same numbers.
    func testDenseInPlaceAndPackedPathsAgree() throws {
        var random = SplitMix(seed: 5)
        // 70000 × 1 would grow 16-fold packed: it is refused, and a batch takes the OpenBLAS path.
        for (inputs, units, threads) in [(300, 37, 1), (1030, 1100, 2), (7, 3, 2), (70000, 1, 2)] {
            let kernel = random.floats(inputs * units), bias = random.floats(units)
            for activation in ["relu", "linear"] {
                let model = try buildSingle(#"{"class_name": "Dense", "config": {"name": "d", "units": \#(units), "activation": "\#(activation)"}}"#,
                                            input: [inputs], weights: [("d/kernel", [inputs, units], kernel), ("d/bias", [units], bias)])
                let x = random.floats(3 * inputs)
                var want = [Float](repeating: 0, count: 3 * units)
                for row in 0..<3 {
                    for unit in 0..<units {
                        var sum = Double(bias[unit])
                        for i in 0..<inputs { sum += Double(x[row * inputs + i]) * Double(kernel[i * units + unit]) }
                        want[row * units + unit] = activation == "relu" ? Float(max(sum, 0)) : Float(sum)
                    }
                }
                let first = Array(x[0..<inputs])
                let once = try model.predict(Tensor(shape: [1, inputs], data: first), threads: threads)
                let twice = try model.predict(Tensor(shape: [1, inputs], data: first), threads: threads)
                let batch = try model.predict(Tensor(shape: [3, inputs], data: x), threads: threads)
                let label = "\(inputs)×\(units) \(activation), \(threads) threads"
                // A float32 sum of 1,030 products of values in [-1, 1] drifts by about 1e-5.
                let tolerance: Float = inputs > 50000 ? 1e-3 : inputs > 500 ? 1e-4 : 1e-5
                assertClose(once.data, Array(want[0..<units]), tolerance: tolerance, "in place: " + label)
                assertClose(twice.data, Array(want[0..<units]), tolerance: tolerance, "packed: " + label)
                assertClose(batch.data, want, tolerance: tolerance, "batch: " + label)
            }
        }
    }

    func testDenseLiteral() throws {
        // [1, 2] · [[1, 2, 3], [4, 5, 6]] + [0.5, 0, -1] = [9.5, 12, 14]
        let model = try buildSingle(#"{"class_name": "Dense", "config": {"name": "d", "units": 3}}"#, input: [2],
                                    weights: [("d/kernel", [2, 3], [1, 2, 3, 4, 5, 6]), ("d/bias", [3], [0.5, 0, -1])])
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 2], data: [1, 2])).data, [9.5, 12, 14])
    }

    func testDenseAppliesToTheLastAxisOfSequences() throws {
        let model = try buildSingle(#"{"class_name": "Dense", "config": {"name": "d", "units": 1, "use_bias": false, "activation": "relu"}}"#, input: [3, 2],
                                    weights: [("d/kernel", [2, 1], [1, -1])])
        XCTAssertEqual(model.outputShape, [3, 1])
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 3, 2], data: [1, 2, 5, 1, 0, 0])).data, [0, 4, 0])
    }

    func testDenseChecksTheInputRank() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Dense", "config": {"units": 1}}"#, input: [nil])) { error in
            XCTAssertTrue("\(error)".contains("needs input axis 1 to have a known size"), "\(error)")
        }
    }

    func testUnknownActivationIsAnErrorNotLinear() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Dense", "config": {"units": 1, "activation": "relu7"}}"#, input: [2])) { error in
            XCTAssertEqual((error as? NNError)?.location, "test.json: config.layers[1].config.activation")
            XCTAssertTrue("\(error)".contains("unknown activation 'relu7'"), "\(error)")
        }
    }

    func testWrongConfigTypesNameTheKey() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Dense", "config": {"units": "32"}}"#, input: [2])) { error in
            XCTAssertEqual("\(error)", #"test.json: config.layers[1].config.units: layer 'dense' (Dense): 'units' must be an integer, found "32""#)
        }
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Dense", "config": {"units": 0}}"#, input: [2])) { error in
            XCTAssertTrue("\(error)".contains("'units' must be a positive integer, found 0"), "\(error)")
        }
    }

    func testAbsurdDenseIsRefusedBeforeAllocating() {
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Dense", "config": {"units": 200000000}}"#, input: [100000])) { error in
            XCTAssertTrue("\(error)".contains("weight 'kernel' would have shape [100000, 200000000] (80.0 TB); the largest accepted is 268435456 elements"), "\(error)")
        }
    }

    func testFlattenReshapeRepeatVector() throws {
        let flat = try buildSingle(#"{"class_name": "Flatten"}"#, input: [2, 3, 2])
        XCTAssertEqual(flat.outputShape, [12])
        let reshape = try buildSingle(#"{"class_name": "Reshape", "config": {"target_shape": [-1, 3]}}"#, input: [6])
        XCTAssertEqual(reshape.outputShape, [2, 3])
        XCTAssertEqual(try reshape.predict(Tensor(shape: [1, 6], data: [1, 2, 3, 4, 5, 6])).shape, [1, 2, 3])
        XCTAssertThrowsError(try buildSingle(#"{"class_name": "Reshape", "config": {"target_shape": [4]}}"#, input: [6]))
        let repeatVector = try buildSingle(#"{"class_name": "RepeatVector", "config": {"n": 3}}"#, input: [2])
        XCTAssertEqual(try repeatVector.predict(Tensor(shape: [1, 2], data: [1, 2])).data, [1, 2, 1, 2, 1, 2])
    }

    func testTrainingOnlyLayersAreIdentity() throws {
        for name in ["Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout"] {
            let model = try buildSingle(#"{"class_name": "\#(name)", "config": {"rate": 0.5, "stddev": 1.0}}"#, input: [2, 2, 1])
            XCTAssertEqual(try model.predict(Tensor(shape: [1, 2, 2, 1], data: [1, 2, 3, 4])).data, [1, 2, 3, 4], name)
        }
    }

    func testGemmMatchesItsNaiveTwin() {
        var generator = SystemRandomNumberGenerator()
        for (m, n, k) in [(1, 1, 1), (1, 7, 5), (1, 256, 64), (3, 5, 7), (17, 9, 33), (64, 10, 128)] {
            let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &generator) }
            let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &generator) }
            for transposeB in [false, true] {
                var fast = [Float](repeating: 0.5, count: m * n), slow = fast
                Gemm.gemm(a, b, &fast, m: m, n: n, k: k, transposeB: transposeB, accumulate: true)
                Gemm.naiveGemm(a, b, &slow, m: m, n: n, k: k, transposeB: transposeB, accumulate: true)
                assertClose(fast, slow, accuracy: 1e-5)
            }
        }
    }
}
