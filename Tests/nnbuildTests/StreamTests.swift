import Foundation
import XCTest
import ModelSpec

/// `nnbuild infer --stream`: JSON Lines in, one answer line per input line, in order.
final class StreamTests: CLITestCase {
    /// The test model's softmax for x = [a, b]: logits [a + 2b, 1 - a].
    func expected(_ a: Double, _ b: Double) -> [Double] {
        let logits = [a + 2 * b, 1 - a]
        let top = logits.max() ?? 0
        let exps = logits.map { Foundation.exp($0 - top) }
        let sum = exps.reduce(0, +)
        return exps.map { $0 / sum }
    }

    func lines(_ run: Run) -> [String] {
        run.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    func json(_ line: String, file: StaticString = #filePath, line number: UInt = #line) throws -> Any {
        try XCTUnwrap(try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]), "not JSON: \(line)", file: file, line: number)
    }

    func assertClose(_ got: Any?, _ want: [Double], file: StaticString = #filePath, line: UInt = #line) {
        guard let values = got as? [Double], values.count == want.count else {
            return XCTFail("expected \(want), found \(String(describing: got))", file: file, line: line)
        }
        for (g, w) in zip(values, want) { XCTAssertEqual(g, w, accuracy: 1e-6, file: file, line: line) }
    }

    func stream(_ text: String, _ extra: [String] = []) throws -> Run {
        try run(model("infer") + ["--stream"] + extra, stdin: Data(text.utf8))
    }

    func testEveryLineFormOfAOneInputModel() throws {
        let result = try stream("[1, 0]\n{\"instances\": [[0, 1], [2, 3]]}\n{\"signature_name\": \"serving_default\", \"instances\": [[1, 1]]}\r\n[0.5, -1]")
        XCTAssertEqual(result.status, 0, result.stderr)
        let answers = lines(result)
        XCTAssertEqual(answers.count, 4, result.text)
        assertClose(try json(answers[0]), expected(1, 0))
        let predictions = try XCTUnwrap((try json(answers[1]) as? [String: Any])?["predictions"] as? [Any], answers[1])
        XCTAssertEqual(predictions.count, 2)
        assertClose(predictions.first, expected(0, 1))
        assertClose(predictions.last, expected(2, 3))
        assertClose(((try json(answers[2]) as? [String: Any])?["predictions"] as? [Any])?.first, expected(1, 1))
        assertClose(try json(answers[3]), expected(0.5, -1))
    }

    func testAnswersKeepTheOrderOfTheLinesAcrossBatches() throws {
        // 60 lines of three forms, batches of 7 rows: each answer must belong to its own line.
        var text = ""
        var want: [[[Double]]] = []
        for index in 0..<60 {
            let a = Double(index % 13) / 4, b = Double(index % 7) / 3 - 1
            if index % 5 == 0 {
                text += "{\"instances\": [[\(a), \(b)], [\(b), \(a)]]}\n"
                want.append([expected(a, b), expected(b, a)])
            } else {
                text += "[\(a), \(b)]\n"
                want.append([expected(a, b)])
            }
        }
        let result = try stream(text, ["--batch-size", "7"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let answers = lines(result)
        XCTAssertEqual(answers.count, 60)
        for (answer, rows) in zip(answers, want) {
            if rows.count == 1 {
                assertClose(try json(answer), rows[0])
            } else {
                let predictions = (try json(answer) as? [String: Any])?["predictions"] as? [Any]
                assertClose(predictions?.first, rows[0])
                assertClose(predictions?.last, rows[1])
            }
        }
    }

    func testAnAnswerIsWrittenAsSoonAsInputStalls() throws {
        // One line is written and its answer read while standard input is still open: the batch
        // (256 rows) is far from full, so only the stall can release it.
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = model("infer") + ["--stream"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        input.fileHandleForWriting.write(Data("[1, 0]\n".utf8))
        final class Box: @unchecked Sendable { var line = Data() }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let reader = output.fileHandleForReading
        DispatchQueue.global().async {
            while !box.line.contains(UInt8(ascii: "\n")) {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                box.line += chunk
            }
            done.signal()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "no answer while standard input stayed open")
        assertClose(try json(String(decoding: box.line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), expected(1, 0))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
    }

    func testABadLineIsAnsweredInPlaceAndTheExitCodeIsOne() throws {
        let result = try stream("[1, 0]\n[1, 2, 3]\nnot json\n{\"instances\": []}\n{\"rows\": [[1, 0]]}\n\n[0, 1]\n")
        XCTAssertEqual(result.status, 1)
        let answers = lines(result)
        XCTAssertEqual(answers.count, 7, result.text)
        assertClose(try json(answers[0]), expected(1, 0))
        let errors = try answers[1...5].map { try XCTUnwrap((try json($0) as? [String: Any])?["error"] as? String, $0) }
        XCTAssertTrue(errors[0].hasPrefix("<stdin>: line 2: "), errors[0])
        XCTAssertTrue(errors[0].contains("expected (None, 2)"), errors[0])
        XCTAssertTrue(errors[1].contains("line 3") && errors[1].contains("invalid JSON"), errors[1])
        XCTAssertTrue(errors[2].contains("instances") && errors[2].contains("non-empty array"), errors[2])
        XCTAssertTrue(errors[3].contains("line 5: rows: names no input of the model"), errors[3])
        XCTAssertTrue(errors[4].hasPrefix("<stdin>: line 6: is empty; expected a sample"), errors[4])
        assertClose(try json(answers[6]), expected(0, 1))
        XCTAssertTrue(result.stderr.contains("5 lines were answered with an error; the first: <stdin>: line 2"), result.stderr)
    }

    func testALineTheModelRefusesWhileRunningCountsAsABadLine() throws {
        // Token id 99999 parses and has the right shape; the Embedding refuses it only when the
        // batch runs. Its line gets the error, its batch-mates their answers, and the exit code is 1.
        let specs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("specs/text_simplernn").path
        let model = ["infer", specs + "/model.json", specs + "/weights.safetensors", "--stream"]
        let good = "[" + Array(repeating: "3", count: 24).joined(separator: ", ") + "]\n"
        let bad = "[" + Array(repeating: "99999", count: 24).joined(separator: ", ") + "]\n"
        let result = try run(model, stdin: Data((good + bad + good).utf8))
        XCTAssertEqual(result.status, 1, result.stderr)
        let answers = lines(result)
        XCTAssertEqual(answers.count, 3, result.text)
        XCTAssertEqual(answers.first, answers.last)
        let error = try XCTUnwrap((try json(answers[1]) as? [String: Any])?["error"] as? String, answers[1])
        XCTAssertTrue(error.hasPrefix("<stdin>: line 2: ") && error.contains("token id 99999"), error)
        let stopped = try run(model + ["--fail-fast"], stdin: Data((good + bad + good).utf8))
        XCTAssertEqual(stopped.status, 1)
        XCTAssertEqual(lines(stopped), [answers[0]])
        XCTAssertTrue(stopped.stderr.hasPrefix("error[input]: <stdin>: line 2: "), stopped.stderr)
    }

    func testFailFastStopsAtTheFirstBadLine() throws {
        let result = try stream("[1, 0]\n[0, 1]\n[1]\n[1, 1]\n", ["--fail-fast"])
        XCTAssertEqual(result.status, 1)
        let answers = lines(result)
        XCTAssertEqual(answers.count, 2, result.text)
        assertClose(try json(answers[0]), expected(1, 0))
        assertClose(try json(answers[1]), expected(0, 1))
        XCTAssertTrue(result.stderr.hasPrefix("error[input]: <stdin>: line 3: "), result.stderr)
    }

    func testALineLongerThanTheCapIsRefusedAndTheStreamGoesOn() throws {
        // 17 MiB of spaces inside an array: past the 16 MiB cap, answered with an error line.
        let long = "[1, " + String(repeating: " ", count: 17 << 20) + "0]"
        let result = try stream("[1, 0]\n" + long + "\n[0, 1]\n")
        XCTAssertEqual(result.status, 1)
        let answers = lines(result)
        XCTAssertEqual(answers.count, 3)
        let error = try XCTUnwrap((try json(answers[1]) as? [String: Any])?["error"] as? String)
        XCTAssertTrue(error.contains("line 2") && error.contains("at most 16777216 bytes"), error)
        assertClose(try json(answers[2]), expected(0, 1))
    }

    func testUsageClashes() throws {
        XCTAssertEqual(try run(model("infer") + ["--fail-fast"]).status, 64)
        let clash = try run(model("infer") + ["--stream", "--input", path("x.json")])
        XCTAssertEqual(clash.status, 64)
        XCTAssertTrue(clash.stderr.contains("--stream reads JSON Lines from standard input"), clash.stderr)
    }

    // MARK: graph models

    func fixture(_ name: String, _ file: String) -> String { "\(MultiIOTests.graphFixtures)/\(name)/\(file)" }

    func npy(_ path: String) throws -> NumericArray { try Npy.read(try FileBytes.read(path: path), source: path) }

    /// Row `row` of `array` as JSON nested arrays.
    func rowJSON(_ array: NumericArray, _ row: Int) -> String {
        let shape = Array(array.shape.dropFirst())
        let size = shape.reduce(1, *)
        return JSONArray.text(NumericArray(shape: shape, values: Array(array.values[(row * size)..<((row + 1) * size)]))).replacingOccurrences(of: "\n", with: "")
    }

    func flat(_ value: Any?) -> [Double] {
        if let number = value as? Double { return [number] }
        return (value as? [Any] ?? []).flatMap(flat)
    }

    func testAMultiInputModelTakesObjectsKeyedByInputName() throws {
        let name = "two_input_image_tabular"
        let image = try npy(fixture(name, "input_image.npy")), tabular = try npy(fixture(name, "input_tabular.npy"))
        let head = try npy(fixture(name, "output_head.npy"))
        let rows = image.shape[0]
        var text = ""
        for row in 0..<rows { text += "{\"tabular\": \(rowJSON(tabular, row)), \"image\": \(rowJSON(image, row))}\n" }
        text += "{\"instances\": [" + (0..<rows).map { "{\"image\": \(rowJSON(image, $0)), \"tabular\": \(rowJSON(tabular, $0))}" }.joined(separator: ", ") + "]}\n"
        text += "[1, 2]\n{\"image\": \(rowJSON(image, 0))}\n"
        let result = try run(["infer", fixture(name, "model.json"), fixture(name, "weights.safetensors"), "--stream", "--batch-size", "3"], stdin: Data(text.utf8))
        XCTAssertEqual(result.status, 1)
        let answers = lines(result)
        XCTAssertEqual(answers.count, rows + 3, result.text)
        let size = head.values.count / rows
        var got: [Double] = []
        for answer in answers.prefix(rows) { got += flat(try json(answer)) }
        let batch = flat((try json(answers[rows]) as? [String: Any])?["predictions"])
        XCTAssertEqual(got.count, head.values.count)
        XCTAssertEqual(batch.count, head.values.count)
        for (index, want) in head.values.enumerated() {
            XCTAssertEqual(got[index], Double(want), accuracy: 1e-4 * (1 + abs(Double(want))), "row \(index / size)")
            XCTAssertEqual(batch[index], Double(want), accuracy: 1e-4 * (1 + abs(Double(want))), "instance \(index / size)")
        }
        XCTAssertTrue(answers[rows + 1].contains("the model has 2 inputs") && answers[rows + 1].contains("expected an object keyed by input name"), answers[rows + 1])
        XCTAssertTrue(answers[rows + 2].contains("holds no value for 'tabular'"), answers[rows + 2])
    }

    /// A string input's values are JSON strings, in a sample line and in instances, batched with
    /// the other lines; a number there is answered with an error in place.
    func testAStringInputTakesJSONStrings() throws {
        let name = "structured_strings"
        let expected = try npy(fixture(name, "output_output.npy")).values
        // The fixture's rows (input_thal.npy, input_sex.npy, input_age.npy).
        let thal = ["fixed", "normal", "reversible", "1", "normal"], sex = [0, 1, 1, 0, 2], age = [63, 37, 41, 56, 70]
        let rows = (0..<5).map { "{\"thal\": [\"\(thal[$0])\"], \"sex\": [\(sex[$0])], \"age\": [\(age[$0])]}" }
        let text = rows.joined(separator: "\n") + "\n{\"instances\": [\(rows[2]), \(rows[4])]}\n{\"thal\": [3], \"sex\": [1], \"age\": [1]}\n"
        let result = try run(["infer", fixture(name, "model.json"), fixture(name, "weights.safetensors"), "--stream", "--batch-size", "4"], stdin: Data(text.utf8))
        XCTAssertEqual(result.status, 1)
        let answers = lines(result)
        XCTAssertEqual(answers.count, 7, result.text)
        for row in 0..<5 { XCTAssertEqual(flat(try json(answers[row])).first ?? .nan, Double(expected[row]), accuracy: 1e-6, "row \(row)") }
        let batch = flat((try json(answers[5]) as? [String: Any])?["predictions"])
        XCTAssertEqual(batch.count, 2)
        XCTAssertEqual(batch.first ?? .nan, Double(expected[2]), accuracy: 1e-6)
        XCTAssertEqual(batch.last ?? .nan, Double(expected[4]), accuracy: 1e-6)
        XCTAssertTrue(answers[6].contains("expected a string, found an integer"), answers[6])
    }

    func testAMultiOutputModelAnswersAnObjectKeyedByOutputName() throws {
        let name = "two_output"
        let features = try npy(fixture(name, "input_features.npy"))
        let heads = [("class_head", try npy(fixture(name, "output_class_head.npy"))), ("value_head", try npy(fixture(name, "output_value_head.npy")))]
        let text = "\(rowJSON(features, 0))\n{\"instances\": [\(rowJSON(features, 0)), \(rowJSON(features, 1))]}\n"
        let result = try run(["infer", fixture(name, "model.json"), fixture(name, "weights.safetensors"), "--stream"], stdin: Data(text.utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let answers = lines(result)
        XCTAssertEqual(answers.count, 2)
        let single = try XCTUnwrap(try json(answers[0]) as? [String: Any], answers[0])
        let predictions = try XCTUnwrap((try json(answers[1]) as? [String: Any])?["predictions"] as? [[String: Any]], answers[1])
        XCTAssertEqual(predictions.count, 2)
        for (head, array) in heads {
            let size = array.values.count / array.shape[0]
            for (row, object) in [(0, single), (0, predictions[0]), (1, predictions[1])] {
                let got = flat(object[head])
                let want = array.values[(row * size)..<((row + 1) * size)].map(Double.init)
                XCTAssertEqual(got.count, want.count, "\(head) row \(row)")
                for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-4 * (1 + abs(w)), "\(head) row \(row)") }
            }
        }
    }
}
