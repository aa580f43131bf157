#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import LayerRegistry
import ModelSpec

/// `nnbuild infer SPEC WEIGHTS --stream`: JSON Lines in, JSON Lines out, one answer line per input
/// line and in the same order, for `RDD.pipe` and shell pipelines. The model is loaded once.
///
/// A line is one of:
/// - one sample of a one-input model: a JSON array of the input's per-sample shape;
/// - `{"instances": [row, ...]}` (TF Serving's row format), each row an array, or for a model of
///   several inputs an object keyed by input name; `signature_name` is accepted and ignored;
/// - for a model of several inputs, one sample as an object keyed by input name.
///
/// Its answer is the row's output array (an object keyed by output name for a model of several
/// outputs), `{"predictions": [...]}` for an `instances` line, or `{"error": "where: what"}` for
/// a line that cannot run. Lines are gathered into batches of up to `--batch-size` rows; a batch
/// runs and its answers are written (one `write`, so a pipe reader sees them at once) when it is
/// full, when input stalls for `stallMilliseconds`, and at end of input. NaN and infinities are
/// written as null.
struct StreamRunner {
    /// Longest line accepted, in bytes; a longer one is skipped to its end and answered with an
    /// error, so memory stays bounded whatever arrives. Parsing takes about 10× a line's size.
    static let lineLimit = 16 << 20
    /// How long input may be quiet before the rows already read run and their answers are written.
    static let stallMilliseconds: Int32 = 5

    let model: Model
    let batchSize: Int
    let threads: Int
    let failFast: Bool
    let sink: OutputSink

    /// One input line, parsed: its rows for every input in model order, or why it cannot run.
    struct Request {
        var line: Int
        var rows: Int
        var batches: [Tensor]
        var instances: Bool
        var failure: NNError?
    }

    /// Runs until end of input. Returns the number of lines answered with an error, and the
    /// first such error; with `failFast` the first bad line is thrown instead, after every line
    /// before it is answered.
    func run(input: Int32 = 0) throws -> (refused: Int, first: NNError?) {
        var reader = LineReader(descriptor: input, limit: StreamRunner.lineLimit)
        var pending: [Request] = []
        var pendingRows = 0
        var refused = 0
        var first: NNError?
        var number = 0
        /// Answers the pending lines. A line the model refused while running (a token id out of
        /// range, a batch past the memory limit) counts like a line that did not parse; with
        /// `failFast` the answers stop before the first refused line, which is thrown.
        func flush() throws {
            guard !pending.isEmpty else { return }
            let answers = answer(pending)
            pending.removeAll(keepingCapacity: true)
            pendingRows = 0
            var text = ""
            func write() throws { try Array(text.utf8).withUnsafeBytes { try sink.write($0) } }
            for line in answers {
                if let failure = line.failure {
                    if failFast {
                        try write()
                        throw failure
                    }
                    refused += 1
                    if first == nil { first = failure }
                }
                text += line.text + "\n"
            }
            try write()
        }
        while true {
            let event = try reader.next(waiting: pending.isEmpty ? -1 : StreamRunner.stallMilliseconds)
            switch event {
            case .stalled:
                try flush()
                continue
            case .end:
                try flush()
                return (refused, first)
            case let .line(bytes):
                number += 1
                pending.append(parse(bytes, line: number))
            case let .tooLong(count):
                number += 1
                pending.append(Request(line: number, rows: 0, batches: [], instances: false, failure: NNError(
                    .input, "<stdin>: line \(number)", "is \(count) bytes long; a line may hold at most \(StreamRunner.lineLimit) bytes (16 MiB); split its rows across several lines")))
            }
            // With --fail-fast a bad line stops the stream now, after the lines before it are answered.
            if failFast, pending.last?.failure != nil { try flush() }
            pendingRows += pending.last?.rows ?? 0
            if pendingRows >= batchSize { try flush() }
        }
    }

    // MARK: reading a line

    func parse(_ bytes: [UInt8], line: Int) -> Request {
        let source = "<stdin>: line \(line)"
        do {
            guard bytes.contains(where: { ![0x20, 0x09, 0x0D].contains($0) }) else {
                throw NNError(.input, source, "is empty; expected a sample (a JSON array), {\"instances\": [...]} or an object keyed by input name")
            }
            let value = try JSONParser.parse(bytes, source: source)
            if case let .object(members) = value, members.contains(where: { $0.0 == "instances" }) {
                return try instances(members, source: source, line: line)
            }
            let batches = try sample(value, source: source)
            return Request(line: line, rows: 1, batches: batches, instances: false)
        } catch let error as NNError {
            return Request(line: line, rows: 0, batches: [], instances: false, failure: error)
        } catch {
            return Request(line: line, rows: 0, batches: [], instances: false, failure: NNError(.input, source, "\(error)"))
        }
    }

    var inputNames: String { ModelInputs.describe(model.inputs) }

    /// One sample: an array for a one-input model, or an object keyed by input name.
    func sample(_ value: JSONValue, source: String) throws -> [Tensor] {
        if case let .object(members) = value {
            let byName = try keyed(members, source: source)
            return try model.inputs.map { port in
                try rows(byName[port.name] ?? .null, port: port, source: "\(source): \(port.name)", instances: false)
            }
        }
        guard model.inputs.count == 1, let port = model.inputs.first else {
            throw NNError(.input, source, "the model has \(model.inputs.count) inputs (\(inputNames)); expected an object keyed by input name, found \(value.typeDescription)")
        }
        return [try rows(value, port: port, source: source, instances: false)]
    }

    /// `{"instances": [...]}`: rows, each an array or (any model) an object keyed by input name.
    func instances(_ members: [(String, JSONValue)], source: String, line: Int) throws -> Request {
        if let stray = members.first(where: { !["instances", "signature_name"].contains($0.0) }) {
            throw NNError(.input, "\(source): \(stray.0)", "is not a key of an instances line; expected {\"instances\": [...]} (and optionally \"signature_name\")")
        }
        guard let list = members.first(where: { $0.0 == "instances" })?.1, case let .array(items) = list, !items.isEmpty else {
            throw NNError(.input, "\(source): instances", "expected a non-empty array of rows")
        }
        let objects = items.compactMap { item -> [(String, JSONValue)]? in
            if case let .object(members) = item { return members }
            return nil
        }
        var batches: [Tensor] = []
        if objects.isEmpty {
            guard model.inputs.count == 1, let port = model.inputs.first else {
                throw NNError(.input, "\(source): instances", "the model has \(model.inputs.count) inputs (\(inputNames)); expected each row to be an object keyed by input name")
            }
            batches = [try rows(list, port: port, source: "\(source): instances", instances: true)]
        } else {
            guard objects.count == items.count else {
                throw NNError(.input, "\(source): instances", "mixes rows that are objects and rows that are not; expected every row in one form")
            }
            var columns: [String: [JSONValue]] = [:]
            for (index, object) in objects.enumerated() {
                let byName = try keyed(object, source: "\(source): instances[\(index)]")
                for port in model.inputs { columns[port.name, default: []].append(byName[port.name] ?? .null) }
            }
            batches = try model.inputs.map { port in
                try rows(.array(columns[port.name] ?? []), port: port, source: "\(source): instances: \(port.name)", instances: true)
            }
        }
        return Request(line: line, rows: items.count, batches: batches, instances: true)
    }

    /// An object's members by input name: every input once, no other key.
    func keyed(_ members: [(String, JSONValue)], source: String) throws -> [String: JSONValue] {
        var byName: [String: JSONValue] = [:]
        for (key, value) in members {
            guard model.inputs.contains(where: { $0.name == key }) else {
                throw NNError(.input, "\(source): \(key)", "names no input of the model; its inputs are \(inputNames)")
            }
            guard byName.updateValue(value, forKey: key) == nil else {
                throw NNError(.input, "\(source): \(key)", "is given twice; give each input once")
            }
        }
        let missing = model.inputs.filter { byName[$0.name] == nil }
        guard missing.isEmpty else {
            throw NNError(.input, source, "holds no value for \(ModelInputs.describe(missing)); expected one value per input (\(inputNames))")
        }
        return byName
    }

    /// One sample (its per-sample shape exactly) or, for `instances`, rows with the batch first.
    func rows(_ value: JSONValue, port: Model.Port, source: String, instances: Bool) throws -> Tensor {
        let array = try JSONArray.read(value, source: source, strings: port.takesStrings)
        let expected = port.shape.count + (instances ? 1 : 0)
        guard array.shape.count == expected else {
            let what = instances ? "rows of shape \(describeShape(port.shape))" : "one sample of shape \(describeShape(port.shape))"
            throw NNError(.input, source, "expected \(what), found an array of shape \(array.shape)\(instances ? "" : "; give several rows as {\"instances\": [...]}")")
        }
        return try model.batch(from: array, source: source, input: port.name)
    }

    // MARK: answering

    /// Every request's answer line, in order, with the error it carries. The requests that parsed
    /// run as one batch (in chunks of `batchSize` rows); if that fails, each runs alone, so an
    /// error lands on its own line.
    func answer(_ requests: [Request]) -> [(text: String, failure: NNError?)] {
        let good = requests.filter { $0.failure == nil }
        var outputs: [Int: Result<[Tensor], NNError>] = [:]
        if let joined = try? predict(good.map(\.batches), rows: good.reduce(0) { $0 + $1.rows }) {
            var offset = 0
            for request in good {
                outputs[request.line] = .success(joined.map { $0.rows(offset..<(offset + request.rows)) })
                offset += request.rows
            }
        } else {
            for request in good {
                let source = "<stdin>: line \(request.line)"
                do {
                    outputs[request.line] = .success(try predict([request.batches], rows: request.rows))
                } catch let error as NNError {
                    outputs[request.line] = .failure(NNError(error.kind, source, error.description))
                } catch {
                    outputs[request.line] = .failure(NNError(.input, source, "\(error)"))
                }
            }
        }
        return requests.map { request in
            let outcome: Result<[Tensor], NNError> = request.failure.map { .failure($0) } ?? outputs[request.line] ?? .success([])
            switch outcome {
            case let .failure(error):
                return (JSONWriter.string(.object([("error", .string(error.description))])), error)
            case let .success(tensors):
                return (encode(tensors, instances: request.instances), nil)
            }
        }
    }

    /// Runs `parts` (each a list of per-input batches) as one batch, `batchSize` rows at a time.
    func predict(_ parts: [[Tensor]], rows: Int) throws -> [Tensor] {
        let joined = model.inputs.indices.map { input in Tensor.concatenating(parts.map { $0[input] }) }
        var results: [Tensor] = []
        var start = 0
        while start < rows {
            let end = min(start + batchSize, rows)
            let chunk = joined.map { $0.rows(start..<end) }
            let outputs: [Tensor]
            if chunk.count == 1, model.outputs.count == 1, let only = chunk.first {
                outputs = [try model.predict(only, threads: threads)]
            } else {
                outputs = try model.predict(chunk)
            }
            results = results.isEmpty ? outputs : zip(results, outputs).map { Tensor.concatenating([$0, $1]) }
            start = end
        }
        return results
    }

    /// A line's answer: per row an array (or an object keyed by output name), the one row bare
    /// for a sample line, every row under "predictions" for an instances line.
    func encode(_ outputs: [Tensor], instances: Bool) -> String {
        let rows = outputs.first?.batch ?? 0
        let encoded = (0..<rows).map { row -> String in
            let values = outputs.map { output in StreamRunner.compact(output.rows(row..<(row + 1)), axis: 1, offset: 0) }
            guard model.outputs.count != 1 else { return values.first ?? "null" }
            return "{" + zip(model.outputs, values).map { JSONWriter.string(.string($0.name)) + ": " + $1 }.joined(separator: ", ") + "}"
        }
        if instances { return "{\"predictions\": [" + encoded.joined(separator: ", ") + "]}" }
        return encoded.first ?? "null"
    }

    /// JSON text of `tensor` from `axis` on, on one line; NaN and infinities as null.
    static func compact(_ tensor: Tensor, axis: Int, offset: Int) -> String {
        if axis == tensor.shape.count {
            let value = tensor.data[offset]
            return value.isFinite ? "\(value)" : "null"
        }
        let stride = tensor.shape[(axis + 1)...].reduce(1, *)
        return "[" + (0..<tensor.shape[axis]).map { compact(tensor, axis: axis + 1, offset: offset + $0 * stride) }.joined(separator: ", ") + "]"
    }
}


/// Lines from a descriptor, read with `poll` so a caller can tell a quiet input from a closed one.
/// At most `limit` bytes of one line are held; the rest of a longer line is counted and dropped.
struct LineReader {
    enum Event {
        case line([UInt8])
        case tooLong(Int)
        case stalled
        case end
    }

    let descriptor: Int32
    let limit: Int
    private var buffer: [UInt8] = []
    private var start = 0
    /// Bytes of an over-long line dropped so far, while skipping to its end.
    private var skipped: Int?
    /// Where the search for the next newline resumes: bytes before it hold none, so a long line
    /// arriving in many reads is scanned once, not once per read.
    private var scanned = 0
    private var closed = false

    init(descriptor: Int32, limit: Int) {
        self.descriptor = descriptor
        self.limit = limit
    }

    /// The next line (without its `\n` or `\r\n`), or `.stalled` when nothing arrives within
    /// `waiting` milliseconds (-1: wait for ever), or `.end`.
    mutating func next(waiting: Int32) throws -> Event {
        while true {
            if let newline = buffer[min(max(start, scanned), buffer.count)...].firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffer[start..<newline])
                start = newline + 1
                scanned = start
                if let dropped = skipped {
                    skipped = nil
                    return .tooLong(dropped + line.count)
                }
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return line.count > limit ? .tooLong(line.count) : .line(line)
            }
            // No whole line held: drop an over-long one's bytes, keep the rest at the front.
            scanned = buffer.count - start
            if buffer.count - start > limit || skipped != nil {
                skipped = (skipped ?? 0) + buffer.count - start
                buffer.removeAll(keepingCapacity: true)
                start = 0
                scanned = 0
            } else if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            if closed {
                defer { buffer.removeAll(); skipped = nil; scanned = 0 }
                if let dropped = skipped { return .tooLong(dropped) }
                return buffer.isEmpty ? .end : .line(buffer.last == UInt8(ascii: "\r") ? Array(buffer.dropLast()) : buffer)
            }
            var status = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&status, 1, waiting)
            if ready < 0 {
                if errno == EINTR { continue }
                throw NNError(.io, "<stdin>", "cannot wait for input: \(OutputTarget.reason(errno))")
            }
            if ready == 0 { return .stalled }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw NNError(.io, "<stdin>", "cannot read the input: \(OutputTarget.reason(errno))")
            }
            if count == 0 { closed = true } else { buffer += chunk[..<count] }
        }
    }
}

extension Infer {
    /// `infer --stream`: answers every line, then exits 1 when a line was refused, naming the first.
    func streamLines(_ built: Model, into sink: OutputSink) throws {
        let runner = StreamRunner(model: built, batchSize: batchSize, threads: runtime.count, failFast: failFast, sink: sink)
        let (refused, first) = try runner.run()
        try sink.commit()
        if let first {
            throw NNError(.input, "<stdin>", "\(refused) line\(refused == 1 ? " was" : "s were") answered with an error; the first: \(first.description)")
        }
    }
}
