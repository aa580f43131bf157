import Foundation
import ModelSpec
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `nnbuild serve` as a TF Serving client sees it: a real server process on loopback (port 0,
/// so the kernel picks a free one), spoken to with curl.
final class ServeTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The binary beside the test executable, whichever scratch path built it (.build, or
    /// tools/sanitize.sh's .build-asan and .build-tsan).
    static var binary: URL {
        let candidates = [
            URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent(),
            Bundle(for: ServeTests.self).bundleURL.deletingLastPathComponent(),
            root.appendingPathComponent(".build/debug"),
        ]
        let dir = candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("nnbuild").path) } ?? candidates[2]
        return dir.appendingPathComponent("nnbuild")
    }

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnbuild-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    // MARK: - Helpers

    /// A running `nnbuild serve`; stopped with SIGTERM.
    final class Server {
        let process = Process()
        var port = 0
        let output = Pipe(), errors = Pipe()

        init(_ arguments: [String]) throws {
            process.executableURL = ServeTests.binary
            process.arguments = ["serve", "--port", "0"] + arguments
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            // The first line of standard output names the bound port; wait at most 60 s.
            var text = ""
            let deadline = Date().addingTimeInterval(60)
            while !text.contains("\n"), Date() < deadline, process.isRunning {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            guard let range = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
                  let port = Int(text[range].split(separator: ":").last ?? "") else {
                process.terminate()
                throw NSError(domain: "ServeTests", code: 1, userInfo: [NSLocalizedDescriptionKey: "server did not start: \(text)"])
            }
            self.port = port
        }

        /// SIGTERM, then the exit status (waits at most 30 s).
        func stop() -> Int32 {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            let deadline = Date().addingTimeInterval(30)
            while process.isRunning, Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL); return -1 }
            return process.terminationStatus
        }

        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    }

    struct Reply {
        var status: Int
        var body: String
        var json: JSONValue? { try? JSONParser.parse(body, source: "reply") }
    }

    /// One HTTP request with curl (a body file for POST).
    static func request(_ port: Int, _ path: String, body: Data? = nil, bodyFile: URL? = nil) throws -> Reply {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        var arguments = ["-s", "-S", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"]
        let input = Pipe()
        if let bodyFile {
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@\(bodyFile.path)"]
        } else if body != nil {
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
            process.standardInput = input
        }
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        if let body {
            input.fileHandleForWriting.write(body)
            try input.fileHandleForWriting.close()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var text = String(decoding: data, as: UTF8.self)
        guard let newline = text.lastIndex(of: "\n") else { return Reply(status: 0, body: text) }
        let status = Int(text[text.index(after: newline)...]) ?? 0
        text = String(text[..<newline])
        return Reply(status: status, body: text)
    }

    /// A client that sends a predict request's head and only the start of its body, and the
    /// rest when told: a request the server has received and not yet read whole.
    final class SlowRequest {
        let socket: Int32

        init(_ port: Int, _ path: String, _ json: String) throws {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.socket = socket
            body = Array(json.utf8)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard socket >= 0, connected == 0 else {
                throw NSError(domain: "ServeTests", code: 2, userInfo: [NSLocalizedDescriptionKey: "cannot connect to port \(port)"])
            }
            send("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
            send(body[..<(body.count / 2)])
        }

        let body: [UInt8]

        func send<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
            let array = Array(bytes)
            _ = array.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, 0) }
        }

        func send(_ text: String) { send(Array(text.utf8)) }

        /// Sends the rest of the body and returns the status line's code (0 if none came).
        func finish() -> Int {
            send(body[(body.count / 2)...])
            var reply: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 4096)
            while !String(decoding: reply, as: UTF8.self).contains("\r\n") {
                let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break }
                reply += chunk[..<count]
            }
            let line = String(decoding: reply, as: UTF8.self).split(separator: " ")
            return line.count > 1 ? Int(line[1]) ?? 0 : 0
        }

        deinit { close(socket) }
    }

    /// Waits (at most 3 s) until /metrics counts `count` predict requests in flight.
    @discardableResult
    static func waitInFlight(_ port: Int, _ count: Int) -> Bool {
        func reached() -> Bool { (try? request(port, "/metrics").body.contains("nnbuild_predict_requests_in_flight \(count).0")) ?? false }
        var polls = 0
        while !reached(), polls < 150 {
            usleep(20_000)
            polls += 1
        }
        return reached()
    }

    static func post(_ port: Int, _ path: String, _ json: String) throws -> Reply {
        try request(port, path, body: Data(json.utf8))
    }

    /// Every number in a JSON value, in document order.
    static func numbers(_ value: JSONValue?) -> [Float] {
        switch value {
        case let .int(number)?: return [Float(number)]
        case let .double(number)?: return [Float(number)]
        case let .array(items)?: return items.flatMap { numbers($0) }
        case let .object(members)?: return members.flatMap { numbers($0.1) }
        default: return []
        }
    }

    /// `nnbuild infer` on the same rows, as the numbers it prints.
    func infer(_ spec: String, _ weights: String, inputs: [String], extra: [String] = []) throws -> [Float] {
        let process = Process()
        process.executableURL = ServeTests.binary
        process.arguments = ["infer", spec, weights] + inputs.flatMap { ["--input", $0] } + extra
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return Self.numbers(try JSONParser.parse(String(decoding: data, as: UTF8.self), source: "infer"))
    }

    func write(_ name: String, _ text: String) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        return url
    }

    func writeBlob(_ name: String, _ tensors: [(String, [Int], [Float])]) throws {
        var offset = 0
        var entries: [String] = []
        var data: [UInt8] = []
        for (tensor, shape, values) in tensors {
            entries.append("\"\(tensor)\": {\"dtype\": \"F32\", \"shape\": \(shape), \"data_offsets\": [\(offset), \(offset + values.count * 4)]}")
            offset += values.count * 4
            for value in values { data += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
        }
        let header = Array(("{" + entries.joined(separator: ", ") + "}").utf8)
        var blob = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init)
        blob += header + data
        try Data(blob).write(to: dir.appendingPathComponent(name))
    }

    /// `tiny/1` and `tiny/2`: 2 → 2 softmax models with different weights, as version folders.
    func makeVersionedModel() throws -> URL {
        let spec = #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 2]}}, {"class_name": "Dense", "config": {"name": "out", "units": 2, "activation": "softmax"}}]}}"#
        for (version, kernel) in [(1, [Float](arrayLiteral: 1, -1, 2, 0)), (2, [0, 0, 0, 0])] {
            _ = try write("tiny/\(version)/model.json", spec)
            try writeBlob("tiny/\(version)/weights.safetensors", [("sequential/out/kernel", [2, 2], kernel), ("sequential/out/bias", [2], [0, 1])])
        }
        return dir.appendingPathComponent("tiny")
    }

    /// TF Serving's own example model, half_plus_two (y = 0.5 x + 2 on a scalar per row), as a
    /// Rescaling layer.
    func makeHalfPlusTwo() throws -> URL {
        _ = try write("half_plus_two/model.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null], "name": "x"}}, {"class_name": "Rescaling", "config": {"name": "y", "scale": 0.5, "offset": 2.0}}]}}"#)
        try writeBlob("half_plus_two/weights.safetensors", [])
        return dir.appendingPathComponent("half_plus_two")
    }

    var specs: URL { Self.root.appendingPathComponent("specs") }
    var fixtures: URL { Self.root.appendingPathComponent("Tests/GraphFixtures") }

    // MARK: - Tests

    /// Every GET endpoint, and predict in both formats, on a model with two versions.
    func testEndpointsAndVersions() throws {
        let server = try Server(["--model", "tiny=\(try makeVersionedModel().path)"])
        let port = server.port
        XCTAssertEqual(try Self.request(port, "/healthz").status, 200)

        let status = try Self.request(port, "/v1/models/tiny")
        XCTAssertEqual(status.status, 200)
        XCTAssertEqual(status.json, try JSONParser.parse(#"{"model_version_status": [{"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}, {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}"#, source: "expected"))
        let one = try Self.request(port, "/v1/models/tiny/versions/1")
        XCTAssertEqual(one.json?["model_version_status"], try JSONParser.parse(#"[{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]"#, source: "expected"))

        let metadata = try Self.request(port, "/v1/models/tiny/metadata")
        XCTAssertEqual(metadata.status, 200)
        XCTAssertEqual(metadata.json?["model_spec"], try JSONParser.parse(#"{"name": "tiny", "signature_name": "", "version": "2"}"#, source: "expected"))
        let signature = metadata.json?["metadata"]?["signature_def"]?["signature_def"]?["serving_default"]
        XCTAssertEqual(signature?["method_name"], .string("tensorflow/serving/predict"))
        guard case let .object(inputs)? = signature?["inputs"], let input = inputs.first?.1 else { return XCTFail(metadata.body) }
        XCTAssertEqual(input["dtype"], .string("DT_FLOAT"))
        XCTAssertEqual(input["tensor_shape"], try JSONParser.parse(#"{"dim": [{"size": "-1", "name": ""}, {"size": "2", "name": ""}], "unknown_rank": false}"#, source: "expected"))
        XCTAssertEqual(try Self.request(port, "/v1/models/tiny/versions/1/metadata").json?["model_spec"]?["version"], .string("1"))

        // Version 2 has zero kernels: softmax([0, 1]) on every row. Version 1: x·[[1,-1],[2,0]] + [0,1].
        let latest = try Self.post(port, "/v1/models/tiny:predict", #"{"signature_name": "serving_default", "instances": [[1, 0], [0, 1]]}"#)
        XCTAssertEqual(latest.status, 200, latest.body)
        let e = Float(M_E)
        let p0 = 1 / (1 + e), p1 = e / (1 + e)
        XCTAssertEqual(Self.numbers(latest.json?["predictions"]), [p0, p1, p0, p1].map { Float($0) }, accuracy: 1e-6)
        let first = try Self.post(port, "/v1/models/tiny/versions/1:predict", #"{"instances": [[1, 0]]}"#)
        // logits [1, 0] → softmax [e/(1+e), 1/(1+e)].
        XCTAssertEqual(Self.numbers(first.json?["predictions"]), [p1, p0], accuracy: 1e-6)
        let columnar = try Self.post(port, "/v1/models/tiny/versions/1:predict", #"{"inputs": [[1, 0]]}"#)
        XCTAssertEqual(columnar.status, 200, columnar.body)
        XCTAssertNotNil(columnar.json?["outputs"], columnar.body)
        XCTAssertEqual(Self.numbers(columnar.json?["outputs"]), [p1, p0], accuracy: 1e-6)

        let metrics = try Self.request(port, "/metrics")
        XCTAssertEqual(metrics.status, 200)
        for name in ["nnbuild_requests_total{code=\"200\"}", "nnbuild_request_duration_seconds_bucket", "nnbuild_batch_size_rows_bucket", "nnbuild_model_load_seconds{model=\"tiny\",version=\"2\"}"] {
            XCTAssertTrue(metrics.body.contains(name), "missing \(name) in\n\(metrics.body)")
        }
        XCTAssertEqual(server.stop(), 0)
    }

    /// The predict examples of api_rest.md, sent and checked verbatim on half_plus_two.
    func testOfficialTFServingExamples() throws {
        let server = try Server(["--model", "half_plus_two=\(try makeHalfPlusTwo().path)"])
        // "curl -d '{"instances": [1.0, 2.0, 5.0]}' -X POST http://localhost:8501/v1/models/half_plus_two:predict"
        let row = try Self.post(server.port, "/v1/models/half_plus_two:predict", #"{"instances": [1.0, 2.0, 5.0]}"#)
        XCTAssertEqual(row.status, 200, row.body)
        XCTAssertEqual(row.json, try JSONParser.parse(#"{ "predictions": [2.5, 3.0, 4.5] }"#, source: "api_rest.md"))
        let columnar = try Self.post(server.port, "/v1/models/half_plus_two:predict", #"{"inputs": [1.0, 2.0, 5.0]}"#)
        XCTAssertEqual(columnar.json, try JSONParser.parse(#"{ "outputs": [2.5, 3.0, 4.5] }"#, source: "expected"))
        XCTAssertEqual(server.stop(), 0)
    }

    /// Named inputs (row objects and a columnar object) and named outputs, bit-for-bit as
    /// `nnbuild infer` gives them.
    func testMultiInputAndMultiOutputModels() throws {
        let twoIn = fixtures.appendingPathComponent("two_input_image_tabular"), twoOut = fixtures.appendingPathComponent("two_output")
        let server = try Server(["--model", "two_in=\(twoIn.path)", "--model", "two_out=\(twoOut.path)"])
        func rows(_ file: URL) throws -> JSONValue {
            JSONArray.value(try Npy.read(Array(try Data(contentsOf: file)), source: file.path))
        }
        let image = try rows(twoIn.appendingPathComponent("input_image.npy")), tabular = try rows(twoIn.appendingPathComponent("input_tabular.npy"))
        guard case let .array(images) = image, case let .array(tables) = tabular else { return XCTFail() }
        func text(_ value: JSONValue) -> String { JSONArray.text(try! JSONArray.read(value, source: "x")) }
        let instances = zip(images, tables).map { "{\"image\": \(text(.array([$0])).dropFirst().dropLast()), \"tabular\": \(text(.array([$1])).dropFirst().dropLast())}" }
        let expected = try infer(twoIn.appendingPathComponent("model.json").path, twoIn.appendingPathComponent("weights.safetensors").path,
                                 inputs: ["image=\(twoIn.appendingPathComponent("input_image.npy").path)", "tabular=\(twoIn.appendingPathComponent("input_tabular.npy").path)"])
        let row = try Self.post(server.port, "/v1/models/two_in:predict", "{\"instances\": [\(instances.joined(separator: ", "))]}")
        XCTAssertEqual(row.status, 200, row.body)
        XCTAssertEqual(Self.numbers(row.json?["predictions"]), expected)
        let columnar = try Self.post(server.port, "/v1/models/two_in:predict", "{\"inputs\": {\"tabular\": \(text(tabular)), \"image\": \(text(image))}}")
        XCTAssertEqual(columnar.status, 200, columnar.body)
        XCTAssertEqual(Self.numbers(columnar.json?["outputs"]), expected)

        let features = twoOut.appendingPathComponent("input_features.npy")
        let out = try Self.post(server.port, "/v1/models/two_out:predict", "{\"inputs\": \(text(try rows(features)))}")
        XCTAssertEqual(out.status, 200, out.body)
        let outputs = out.json?["outputs"]
        let both = try infer(twoOut.appendingPathComponent("model.json").path, twoOut.appendingPathComponent("weights.safetensors").path, inputs: [features.path])
        XCTAssertEqual(Self.numbers(outputs?["class_head"]) + Self.numbers(outputs?["value_head"]), both)
        let perRow = try Self.post(server.port, "/v1/models/two_out:predict", "{\"instances\": \(text(try rows(features)))}")
        guard case let .array(predictions)? = perRow.json?["predictions"], predictions.count == 3 else { return XCTFail(perRow.body) }
        XCTAssertNotNil(predictions[0]["class_head"], perRow.body)
        XCTAssertNotNil(predictions[0]["value_head"], perRow.body)
        XCTAssertEqual(server.stop(), 0)
    }

    /// A string input (keras.io's structured-data classifier, `structured_strings`) takes JSON
    /// strings and TF Serving's `{"b64": ...}` in both formats, with Keras's outputs; its metadata
    /// says DT_STRING.
    func testStringInputsTakeTextAndBase64() throws {
        let model = fixtures.appendingPathComponent("structured_strings")
        let server = try Server(["--model", "structured=\(model.path)"])
        let expected = try Npy.read(Array(try Data(contentsOf: model.appendingPathComponent("output_output.npy"))), source: "output").values
        // The fixture's rows: thal fixed, normal, reversible, "1", normal; sex 0, 1, 1, 0, 2; age 63, 37, 41, 56, 70.
        let thal = ["fixed", "normal", "reversible", "1", "normal"], sex = [0, 1, 1, 0, 2], age = [63, 37, 41, 56, 70]
        let rows = (0..<5).map { "{\"thal\": [\"\(thal[$0])\"], \"sex\": [\(sex[$0])], \"age\": [\(age[$0]).0]}" }
        let row = try Self.post(server.port, "/v1/models/structured:predict", "{\"instances\": [\(rows.joined(separator: ", "))]}")
        XCTAssertEqual(row.status, 200, row.body)
        XCTAssertEqual(Self.numbers(row.json?["predictions"]), expected, accuracy: 1e-6)
        let encoded = thal.map { "[{\"b64\": \"\(Data($0.utf8).base64EncodedString())\"}]" }
        let columnar = try Self.post(server.port, "/v1/models/structured:predict",
                                     "{\"inputs\": {\"thal\": [\(encoded.joined(separator: ", "))], \"sex\": \(sex.map { [$0] }), \"age\": \(age.map { [Double($0)] })}}")
        XCTAssertEqual(columnar.status, 200, columnar.body)
        XCTAssertEqual(Self.numbers(columnar.json?["outputs"]), expected, accuracy: 1e-6)
        let bad = try Self.post(server.port, "/v1/models/structured:predict", #"{"inputs": {"thal": [[{"b64": "gA=="}]], "sex": [[0]], "age": [[1.0]]}}"#)
        XCTAssertEqual(bad.status, 400, bad.body)
        XCTAssertTrue(bad.body.contains("decodes to bytes that are not UTF-8 text"), bad.body)
        let numbers = try Self.post(server.port, "/v1/models/structured:predict", #"{"inputs": {"thal": [[1]], "sex": [[0]], "age": [[1.0]]}}"#)
        XCTAssertEqual(numbers.status, 400, numbers.body)
        XCTAssertTrue(numbers.body.contains("expected a string, found an integer"), numbers.body)
        let metadata = try Self.request(server.port, "/v1/models/structured/metadata")
        XCTAssertEqual(metadata.json?["metadata"]?["signature_def"]?["signature_def"]?["serving_default"]?["inputs"]?["thal"]?["dtype"], .string("DT_STRING"), metadata.body)
        XCTAssertEqual(server.stop(), 0)
    }

    /// 400 for every bad request, 404 for unknown models and versions, 413 past the body cap,
    /// each as {"error": ...}.
    func testErrorStatuses() throws {
        let server = try Server(["--model", "tiny=\(try makeVersionedModel().path)"])
        let port = server.port
        func check(_ reply: Reply, _ status: Int, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(reply.status, status, reply.body, file: file, line: line)
            guard case let .string(message)? = reply.json?["error"] else { return XCTFail("no error in \(reply.body)", file: file, line: line) }
            XCTAssertTrue(message.contains(fragment), "'\(message)' lacks '\(fragment)'", file: file, line: line)
        }
        check(try Self.post(port, "/v1/models/tiny:predict", #"{"instances": [[1, 0]"#), 400, "request body")
        check(try Self.post(port, "/v1/models/tiny:predict", #"{"instances": [[1, 0, 3]]}"#), 400, "input has shape 1×3, expected (2,) with the batch first")
        check(try Self.post(port, "/v1/models/tiny:predict", #"{"instances": [["a", "b"]]}"#), 400, "expected a number, found a string")
        // The element's path, which JSONArray builds only for a message.
        check(try Self.post(port, "/v1/models/tiny:predict", #"{"instances": [[1, 0], [2, "b"]]}"#), 400, "request body: instances: $[1][1]: expected a number")
        check(try Self.post(port, "/v1/models/tiny:predict", #"{"signature_name": "classify", "instances": [[1, 0]]}"#), 400, "\"classify\" not found")
        check(try Self.post(port, "/v1/models/tiny:predict", #"{"rows": [[1, 0]]}"#), 400, "unknown key 'rows'")
        // TF Serving's binary-string encoding, for string inputs: refused as such, in either format.
        check(try Self.post(port, "/v1/models/tiny:predict", #"{"instances": [{"b64": "AAAA"}]}"#), 400, "{\"b64\": ...} is TF Serving's encoding of a binary string")
        check(try Self.post(port, "/v1/models/tiny:predict", #"{"inputs": {"b64": "AAAA"}}"#), 400, "takes float32 numbers of shape (2,)")
        check(try Self.post(port, "/v1/models/tiny:predict", #"{}"#), 400, "Missing 'inputs' or 'instances' key")
        check(try Self.post(port, "/v1/models/nope:predict", #"{"instances": [[1, 0]]}"#), 404, "Servable not found for request: Latest(nope)")
        check(try Self.request(port, "/v1/models/nope"), 404, "Latest(nope)")
        check(try Self.post(port, "/v1/models/tiny/versions/7:predict", #"{"instances": [[1, 0]]}"#), 404, "Specific(tiny, 7)")
        check(try Self.request(port, "/v1/models/tiny/versions/7/metadata"), 404, "Specific(tiny, 7)")
        // 64 MB of a valid-looking body, refused before it is read.
        let big = dir.appendingPathComponent("big.json")
        var body = Data("{\"instances\": [".utf8)
        body.append(Data(repeating: UInt8(ascii: " "), count: 64 << 20))
        body.append(Data("[1, 0]]}".utf8))
        try body.write(to: big)
        check(try Self.request(port, "/v1/models/tiny:predict", bodyFile: big), 413, "--max-body-bytes")
        // Still serving afterwards.
        XCTAssertEqual(try Self.post(port, "/v1/models/tiny:predict", #"{"instances": [[1, 0]]}"#).status, 200)
        XCTAssertEqual(server.stop(), 0)
    }

    /// A request still waiting at `--request-timeout` is answered 504, and the server goes on. It
    /// waits because its batch waits (up to 2 s) for another request already received, whose
    /// body is still coming.
    func testRequestTimeout() throws {
        let server = try Server(["--model", "tiny=\(try makeVersionedModel().path)", "--request-timeout", "0.3",
                                 "--max-batch-size", "1000", "--batch-timeout-micros", "2000000"])
        let slow = try SlowRequest(server.port, "/v1/models/tiny:predict", #"{"instances": [[0, 1]]}"#)
        XCTAssertTrue(Self.waitInFlight(server.port, 1))
        let late = try Self.post(server.port, "/v1/models/tiny:predict", #"{"instances": [[1, 0]]}"#)
        XCTAssertEqual(late.status, 504, late.body)
        guard case let .string(message)? = late.json?["error"] else { return XCTFail(late.body) }
        XCTAssertTrue(message.contains("--request-timeout"), message)
        XCTAssertEqual(slow.finish(), 200)
        XCTAssertEqual(try Self.post(server.port, "/v1/models/tiny:predict", #"{"instances": [[1, 0]]}"#).status, 200)
        XCTAssertEqual(server.stop(), 0)
    }

    /// Dynamic batching waits for company only when some is on its way: a lone request is
    /// answered at once, not after `--batch-timeout-micros` (2 s here), and so is a request
    /// whose batch was waiting for a client that then gave up.
    func testALoneRequestDoesNotWaitForTheBatchTimeout() throws {
        let server = try Server(["--model", "tiny=\(try makeVersionedModel().path)", "--max-batch-size", "1000", "--batch-timeout-micros", "2000000"])
        defer { _ = server.stop() }
        for _ in 0..<3 {
            let start = Date()
            XCTAssertEqual(try Self.post(server.port, "/v1/models/tiny:predict", #"{"instances": [[1, 0]]}"#).status, 200)
            XCTAssertLessThan(Date().timeIntervalSince(start), 1.0)
        }
        // A client that sends half a body and hangs up: the batch waiting for it stops waiting.
        var slow: SlowRequest? = try SlowRequest(server.port, "/v1/models/tiny:predict", #"{"instances": [[0, 1]]}"#)
        XCTAssertTrue(Self.waitInFlight(server.port, 1))
        let start = Date()
        let group = DispatchGroup()
        let port = server.port
        let statuses = Statuses()
        DispatchQueue.global().async(group: group) {
            statuses.add((try? Self.post(port, "/v1/models/tiny:predict", #"{"instances": [[1, 0]]}"#))?.status ?? 0)
        }
        XCTAssertTrue(Self.waitInFlight(port, 2))
        usleep(300_000)
        slow = nil
        XCTAssertNil(slow)
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(statuses.all, [200])
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.8)
    }

    /// A model that fails to load stops start-up with the CLI's message and exit 1.
    /// A `.keras` archive and a legacy `.h5` serve directly, as version 1, with Keras's answers.
    func testKerasModelFilesAreServedDirectly() throws {
        let folder = Self.root.appendingPathComponent("Tests/KerasFiles")
        let input = try Npy.read(FileBytes.read(path: folder.appendingPathComponent("cnn.input.npy").path), source: "input")
        let expected = try Npy.read(FileBytes.read(path: folder.appendingPathComponent("cnn.expected.npy").path), source: "expected")
        let server = try Server(["--model", "archive=\(folder.appendingPathComponent("cnn.keras").path)",
                                 "--model", "legacy=\(folder.appendingPathComponent("cnn.h5").path)", "--disable-batching"])
        defer { _ = server.stop() }
        let body = "{\"instances\": \(JSONArray.text(input))}"
        for name in ["archive", "legacy"] {
            let status = try Self.request(server.port, "/v1/models/\(name)")
            XCTAssertEqual(status.status, 200, status.body)
            let reply = try Self.post(server.port, "/v1/models/\(name):predict", body)
            XCTAssertEqual(reply.status, 200, reply.body)
            guard case let .array(rows)? = reply.json?["predictions"] else { return XCTFail("\(name): \(reply.body)") }
            let values = rows.flatMap { row -> [Double] in
                guard case let .array(items) = row else { return [] }
                return items.compactMap { if case let .double(v) = $0 { return v }; if case let .int(v) = $0 { return Double(v) }; return nil }
            }
            XCTAssertEqual(values.count, expected.values.count, name)
            for (ours, keras) in zip(values, expected.values) {
                XCTAssertLessThanOrEqual(abs(ours - Double(keras)) / (1 + abs(Double(keras))), 1e-5, name)
            }
        }
    }

    func testAModelThatFailsToLoadStopsStartUp() throws {
        let model = try makeVersionedModel()
        try Data([1, 2, 3]).write(to: model.appendingPathComponent("1/weights.safetensors"))
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["serve", "--port", "0", "--model", "tiny=\(model.path)"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 1, text)
        XCTAssertTrue(text.hasPrefix("error[weights]: \(model.path)/1/weights.safetensors"), text)
    }

    /// SIGTERM with requests in flight: each still gets its answer, then the process exits 0.
    func testSigtermDrainsRequestsInFlight() throws {
        // Batches wait 10 s for company on its way: a fifth request whose body comes only after
        // SIGTERM, so the requests are surely in flight then.
        let server = try Server(["--model", "tiny=\(try makeVersionedModel().path)", "--max-batch-size", "1000", "--batch-timeout-micros", "10000000"])
        let port = server.port
        let slow = try SlowRequest(port, "/v1/models/tiny:predict", #"{"instances": [[0, 1]]}"#)
        XCTAssertTrue(Self.waitInFlight(port, 1))
        let statuses = Statuses()
        let group = DispatchGroup()
        for _ in 0..<4 {
            DispatchQueue.global().async(group: group) {
                let reply = try? Self.post(port, "/v1/models/tiny:predict", #"{"instances": [[1, 0]]}"#)
                statuses.add(reply?.status ?? 0)
            }
        }
        // Bounded wait until all four are received and waiting for their batch.
        func allInFlight() -> Bool { (try? Self.request(port, "/metrics").body.contains("nnbuild_predict_requests_in_flight 5.0")) ?? false }
        var polls = 0
        while !allInFlight(), polls < 150 {
            usleep(20_000)
            polls += 1
        }
        XCTAssertTrue(allInFlight())
        kill(server.process.processIdentifier, SIGTERM)
        usleep(200_000)
        XCTAssertEqual(slow.finish(), 200)
        XCTAssertEqual(server.stop(), 0)
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(statuses.all, [200, 200, 200, 200])
    }

    final class Statuses: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Int] = []
        func add(_ value: Int) { lock.lock(); values.append(value); lock.unlock() }
        var all: [Int] { lock.lock(); defer { lock.unlock() }; return values }
    }

    /// 16 clients at once, each sending its own rows three times; every answer equals
    /// `nnbuild infer` on those rows, bit for bit. Dynamic batching is off: a row's result still
    /// depends on its batch-mates (issue 17's batch-invariance work). The server warms each model
    /// up, so `infer` is given the rows twice, one batch each, and its second (warm) answer counts.
    func testSixteenConcurrentClientsMatchInfer() throws {
        let mlp = specs.appendingPathComponent("tabular_mlp")
        let all = try Npy.read(Array(try Data(contentsOf: mlp.appendingPathComponent("eval_input.npy"))), source: "eval_input")
        let width = all.shape[1]
        var bodies: [String] = [], expected: [[Float]] = []
        for client in 0..<16 {
            let rows = 1 + client % 3, start = client * 4
            let slice = NumericArray(shape: [rows, width], values: Array(all.values[start * width..<(start + rows) * width]))
            let text = JSONArray.text(slice)
            let twice = NumericArray(shape: [2 * rows, width], values: slice.values + slice.values)
            let file = try write("client\(client).json", JSONArray.text(twice))
            let both = try infer(mlp.appendingPathComponent("model.json").path, mlp.appendingPathComponent("weights.safetensors").path,
                                 inputs: [file.path], extra: ["--batch-size", String(rows)])
            expected.append(Array(both[(both.count / 2)...]))
            bodies.append("{\"instances\": \(text)}")
        }
        // With dynamic batching on too: the kernels are batch-invariant, so a row's answer does
        // not depend on the other clients' rows it was batched with.
        for options in [["--disable-batching"], ["--max-batch-size", "64", "--batch-timeout-micros", "2000"]] {
            let server = try Server(["--model", "mlp=\(mlp.path)"] + options)
            let port = server.port
            let failures = Statuses()
            DispatchQueue.concurrentPerform(iterations: 16) { client in
                for _ in 0..<3 {
                    let reply = try? Self.post(port, "/v1/models/mlp:predict", bodies[client])
                    if reply?.status != 200 || Self.numbers(reply?.json?["predictions"]) != expected[client] { failures.add(client) }
                }
            }
            XCTAssertEqual(failures.all, [], "\(options)")
            XCTAssertEqual(server.stop(), 0)
        }
    }
}

func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(a) vs \(b)", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
