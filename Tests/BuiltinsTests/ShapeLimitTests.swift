import XCTest
import Builtins
import LayerRegistry

/// Sizes from a spec are attacker-controlled: every layer refuses shapes whose element count
/// overflows or passes the per-sample limit, and what a layer allocates is bounded by the memory
/// limit, at build and per batch. None of these may trap the process.
final class ShapeLimitTests: XCTestCase {
    static let huge = Int(Int32.max)

    /// A model whose first layer (`className`, named "x") takes per-sample `input` itself, so the
    /// error names that layer.
    func buildError(_ className: String, input: [Int], config: String = "", settings: ExecutionSettings = .default) -> NNError? {
        let shape = "[null, " + input.map(String.init).joined(separator: ", ") + "]"
        let extra = config.isEmpty ? "" : ", " + config
        let text = #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "\#(className)", "config": {"name": "x", "batch_input_shape": \#(shape)\#(extra)}}]}}"#
        do {
            _ = try Model.build(try ModelDescription.parse(text, source: "m.json"), registry: .withBuiltins(), settings: settings)
            return nil
        } catch let error as NNError {
            return error
        } catch {
            return NNError(.io, "unexpected", "\(error)")
        }
    }

    func testEveryLayerRefusesAnInputWhoseElementCountOverflows() {
        let m = ShapeLimitTests.huge
        let cases: [(String, [Int], String)] = [
            ("Flatten", [m, m, m], ""),
            ("Reshape", [m, m, m], #""target_shape": [-1]"#),
            ("BatchNormalization", [2, m, m, m], #""axis": 1"#),
            ("LayerNormalization", [m, m, m], #""axis": [1, 2, 3], "scale": false, "center": false"#),
            ("RMSNormalization", [m, m, m], #""axis": [1, 2, 3]"#),
            ("UnitNormalization", [m, m, m], #""axis": [1, 2, 3]"#),
            ("Softmax", [2, m, m, m], #""axis": 1"#),
            ("Softmax", [m, m, m], #""axis": [1, 2, 3]"#),
            ("PReLU", [m, m, m], #""shared_axes": [1, 2, 3]"#),
            ("Dense", [m, m, m, 2], #""units": 2"#),
        ]
        for (className, input, config) in cases {
            guard let error = buildError(className, input: input, config: config) else {
                XCTFail("\(className) \(config) built on input \(input)")
                continue
            }
            XCTAssertEqual(error.kind, .layer, "\(className): \(error)")
            XCTAssertTrue(error.message.contains("layer 'x' (\(className))"), "\(className): \(error)")
            XCTAssertTrue(error.message.contains("values per sample"), "\(className): \(error)")
            XCTAssertTrue(error.message.contains("more than the limit of 2^31"), "\(className): \(error)")
        }
    }

    func testLayersRefuseConfigsWhoseOutputOverflows() {
        let cases: [(String, [Int], String, String)] = [
            ("Reshape", [4], #""target_shape": [65536, 65536, 65536, 65536, -1]"#, "target_shape"),
            ("Reshape", [4], #""target_shape": [2147483647, 2147483647, 2147483647, 2]"#, "target_shape"),
            ("RepeatVector", [65536], #""n": 268435456"#, "config.n"),
            ("UpSampling1D", [1 << 20, 2], #""size": 65536"#, "config.size"),
            ("ZeroPadding2D", [46340, 46340, 1], #""padding": 1000"#, "layers[0]"),
        ]
        for (className, input, config, location) in cases {
            guard let error = buildError(className, input: input, config: config) else {
                XCTFail("\(className) \(config) built")
                continue
            }
            XCTAssertEqual(error.kind, .layer, "\(className): \(error)")
            XCTAssertTrue(error.location.contains(location), "\(className): \(error)")
            XCTAssertTrue(error.message.contains("layer 'x' (\(className))") && error.message.contains("more than the limit of 2^31"), "\(className): \(error)")
        }
    }

    func testLayersThatMultiplyDataAreBoundedByTheMemoryLimit() {
        let cases: [(String, [Int], String, String)] = [
            ("RepeatVector", [16], #""n": 134217728"#, "8.0 GiB"),
            ("UpSampling2D", [1, 1, 2], #""size": [32768, 32768]"#, "8.0 GiB"),
            ("UpSampling1D", [16, 1024], #""size": 65536"#, "output 4.0 GiB"),
            ("ZeroPadding2D", [1, 1, 1], #""padding": 20000"#, "6.0 GiB"),
            ("ZeroPadding1D", [1, 512], #""padding": 1048576"#, "output 4.0 GiB"),
            ("Conv2D", [1, 1, 1], #""filters": 1, "kernel_size": 3, "padding": "same", "dilation_rate": 1048576"#, "zero-padded copy of the input 16.0 TiB"),
            ("Conv1D", [1, 1024], #""filters": 1, "kernel_size": 3, "padding": "same", "dilation_rate": 1048576"#, "zero-padded copy of the input 8.0 GiB"),
            ("TimeDistributed", [2, 1, 1, 1], #""layer": {"class_name": "Conv2D", "config": {"name": "c", "filters": 1, "kernel_size": 3, "padding": "same", "dilation_rate": 1048576}}"#,
             "zero-padded copy of the input 32.0 TiB"),
            // The input projections are made a chunk of steps at a time (WorkspaceTests), so a long
            // sequence costs memory through its output, not its scratch.
            ("LSTM", [1048576, 1], #""units": 2048, "return_sequences": true"#, "8.0 GiB"),
        ]
        for (className, input, config, figure) in cases {
            guard let error = buildError(className, input: input, config: config) else {
                XCTFail("\(className) \(config) built")
                continue
            }
            XCTAssertEqual(error.kind, .layer, "\(className): \(error)")
            XCTAssertTrue(error.message.contains("layer 'x' (\(className)): one sample would need"), "\(className): \(error)")
            XCTAssertTrue(error.message.contains(figure), "\(className): expected \(figure) in \(error)")
            XCTAssertTrue(error.message.contains("more than the memory limit of 4.0 GiB"), "\(className): \(error)")
        }
        // A higher limit lets the same 6 GiB layer build.
        XCTAssertNil(buildError("ZeroPadding2D", input: [1, 1, 1], config: #""padding": 20000"#, settings: ExecutionSettings(memoryLimit: 8 << 30)))
    }

    func testTheMemoryLimitIsCheckedPerBatchBeforeALayerRuns() throws {
        // 16 values repeated 1024 times: 64 KiB per sample.
        let text = #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 16]}}, {"class_name": "RepeatVector", "config": {"name": "r", "n": 1024}}]}}"#
        let description = try ModelDescription.parse(text, source: "m.json")
        let model = try Model.build(description, registry: .withBuiltins(), settings: ExecutionSettings(memoryLimit: 1 << 20))
        let small = Tensor(shape: [2, 16], data: [Float](repeating: 1, count: 32))
        XCTAssertEqual(try model.predict(small).shape, [2, 1024, 16])
        let large = Tensor(shape: [32, 16], data: [Float](repeating: 1, count: 512))
        let runs: [() throws -> Tensor] = [{ try model.predict(large) }, { try model.predict(large, threads: 2) }, { _ = try model.profile(large); return large }]
        for run in runs {
            XCTAssertThrowsError(try run()) { error in
                XCTAssertEqual((error as? NNError)?.kind, .input)
                XCTAssertTrue("\(error)".contains("layer 'r' (RepeatVector): a batch of 32 would need 2.0 MiB"), "\(error)")
            }
        }
        // Past the per-tensor limit, whatever the memory limit: 2^13 rows of 2^24 values.
        let wide = try Model.build(try ModelDescription.parse(text.replacingOccurrences(of: #""n": 1024"#, with: #""n": 1048576"#), source: "m.json"),
                                   registry: .withBuiltins())
        let rows = Tensor(shape: [1 << 13, 16], data: [Float](repeating: 0, count: 1 << 17))
        XCTAssertThrowsError(try wide.predict(rows, settings: ExecutionSettings(memoryLimit: 1 << 50))) { error in
            XCTAssertTrue("\(error)".contains("the output would hold 2^37 values (shape [8192, 1048576, 16]), more than the limit of 2^36"), "\(error)")
        }
        // The settings given to predict win over the model's.
        XCTAssertEqual(try model.predict(large, settings: ExecutionSettings(memoryLimit: 4 << 20)).shape, [32, 1024, 16])
        // A walk that passed is remembered for its shapes and limit only: under the model's own
        // limit the same batch is still refused, and the small batch still runs.
        XCTAssertThrowsError(try model.predict(large))
        XCTAssertEqual(try model.predict(small).shape, [2, 1024, 16])
        XCTAssertThrowsError(try Model.build(description, registry: .withBuiltins(), settings: ExecutionSettings(memoryLimit: 32 << 10))) { error in
            XCTAssertTrue("\(error)".contains("one sample would need 64.1 KiB"), "\(error)")
        }
    }

    func testPredictChecksDataAndMaskAgainstTheShape() throws {
        let conv = try HandBuilt.model(input: [8, 8, 3], layers: [#"{"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": 3, "padding": "same"}}"#])
        let short = Tensor(shape: [1, 8, 8, 3], data: [1, 2, 3])
        let runs: [() throws -> Tensor] = [{ try conv.predict(short) }, { try conv.predict(short, threads: 2) }, { _ = try conv.profile(short); return short }]
        for run in runs {
            XCTAssertThrowsError(try run()) { error in
                XCTAssertEqual((error as? NNError)?.kind, .input)
                XCTAssertTrue("\(error)".contains("must hold 192 values, found 3"), "\(error)")
            }
        }
        let long = Tensor(shape: [2, 8, 8, 3], data: [Float](repeating: 0, count: 2 * 192 + 1))
        XCTAssertThrowsError(try conv.predict(long, threads: 2))
        let sequence = try HandBuilt.model(input: [4, 2], layers: [#"{"class_name": "GlobalAveragePooling1D", "config": {"name": "g"}}"#])
        let masked = Tensor(shape: [2, 4, 2], data: [Float](repeating: 1, count: 16), mask: [true, false, true])
        XCTAssertThrowsError(try sequence.predict(masked)) { error in
            XCTAssertTrue("\(error)".contains("must hold 8 flags (batch × steps), found 3"), "\(error)")
        }
        // A layer run on its own checks too.
        XCTAssertThrowsError(try conv.steps[0].layer.apply(short))
    }

    func testBidirectionalRefusesALayerThatIsNotRecurrent() {
        let lstm = #"{"class_name": "LSTM", "config": {"name": "l", "units": 2}}"#
        for inner in [#"{"class_name": "Dense", "config": {"name": "d", "units": 2}}"#,
                      #"{"class_name": "Bidirectional", "config": {"name": "b", "layer": \#(lstm)}}"#] {
            let message = HandBuilt.buildError(input: [3, 2], layers: [#"{"class_name": "Bidirectional", "config": {"name": "bi", "layer": \#(inner)}}"#])
            XCTAssertTrue(message?.contains("layer 'bi' (Bidirectional): 'layer' must be a recurrent layer") ?? false, message ?? "built")
        }
        let backward = HandBuilt.buildError(input: [3, 2], layers: [#"{"class_name": "Bidirectional", "config": {"name": "bi", "layer": \#(lstm), "backward_layer": {"class_name": "Dense", "config": {"name": "d", "units": 2, "go_backwards": true}}}}"#])
        XCTAssertTrue(backward?.contains("'backward_layer' must be a recurrent layer") ?? false, backward ?? "built")
        XCTAssertNil(HandBuilt.buildError(input: [3, 2], layers: [#"{"class_name": "Bidirectional", "config": {"name": "bi", "layer": \#(lstm)}}"#]))
    }

    func testPReLUSharesAlphaAlongSharedAxes() throws {
        // x[i, j, k] = -(1 + flat index); alpha of shape (1, 3, 1) with shared_axes [1, 3]: y = x · alpha[j].
        let alpha: [Float] = [0.5, 0.25, 2]
        let model = try HandBuilt.model(input: [2, 3, 2], layers: [#"{"class_name": "PReLU", "config": {"name": "p", "shared_axes": [1, 3]}}"#],
                                        weights: ["p/alpha": ([1, 3, 1], alpha)])
        let x = (0..<24).map { -Float($0 + 1) }
        let expected = x.enumerated().map { index, value in value * alpha[(index / 2) % 3] }
        XCTAssertEqual(try HandBuilt.run(model, shape: [2, 2, 3, 2], x).data, expected)
        // Unshared: one alpha per element; positive values pass.
        let full = (0..<6).map { Float($0) / 10 }
        let unshared = try HandBuilt.model(input: [2, 3], layers: [#"{"class_name": "PReLU", "config": {"name": "p"}}"#],
                                           weights: ["p/alpha": ([2, 3], full)])
        let y = try HandBuilt.run(unshared, shape: [2, 2, 3], [-1, 2, -3, 4, -5, 6, -1, -1, -1, -1, -1, -1]).data
        assertClose(y, [-0, 2, -0.6, 4, -2, 6, -0, -0.1, -0.2, -0.3, -0.4, -0.5], tolerance: 1e-6)
    }
}
