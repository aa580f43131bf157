#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry
import ModelSpec

/// TF Serving's REST API as text in and text out, with no HTTP in it: the request bodies of
/// `:predict` (row and columnar formats), and the bodies of the predict, status and metadata
/// answers. Field names and layout follow tensorflow/serving's `g3doc/api_rest.md` and
/// `util/json_tensor.cc`.
public enum RestAPI {
    /// The one signature a Keras model exports.
    public static let defaultSignature = "serving_default"

    /// Which of TF Serving's two request layouts a body used; the answer uses the same one.
    public enum Format: Sendable { case row, columnar }

    /// A parsed `:predict` body: one batch per model input, in `Model.inputs` order.
    public struct PredictRequest: Sendable {
        public let format: Format
        public let batches: [Tensor]
        public var rows: Int { batches.first?.batch ?? 0 }
    }

    // MARK: - Requests

    /// Parses and checks a `:predict` body against `model`. Every problem is an `NNError` of kind
    /// `.input` naming where in the body it is (the server answers it with 400).
    public static func parsePredict(_ body: [UInt8], model: Model) throws -> PredictRequest {
        let root = try JSONParser.parse(body, source: "request body")
        guard case let .object(members) = root else {
            throw NNError(.input, "request body", "expected a JSON object with \"instances\" (row format) or \"inputs\" (columnar format), found \(root.typeDescription)")
        }
        let keys = Set(members.map(\.0))
        if let stray = members.map(\.0).first(where: { !["signature_name", "instances", "inputs"].contains($0) }) {
            throw NNError(.input, "request body: \(stray)", "unknown key '\(stray)'; a predict request has \"signature_name\" and one of \"instances\" or \"inputs\"")
        }
        if let signature = root["signature_name"] {
            guard case let .string(name) = signature else {
                throw NNError(.input, "request body: signature_name", "expected a string, found \(signature.typeDescription)")
            }
            guard name.isEmpty || name == defaultSignature else {
                throw NNError(.input, "request body: signature_name", "Serving signature name: \"\(name)\" not found in signature def; the model has \"\(defaultSignature)\"")
            }
        }
        switch (root["instances"], root["inputs"]) {
        case let (instances?, nil):
            return PredictRequest(format: .row, batches: try rowBatches(instances, model: model))
        case let (nil, inputs?):
            return PredictRequest(format: .columnar, batches: try columnarBatches(inputs, model: model))
        default:
            throw NNError(.input, "request body", keys.contains("instances")
                ? "\"instances\" and \"inputs\" are both given; a request uses one format"
                : "Missing 'inputs' or 'instances' key")
        }
    }

    /// Row format: a list with one entry per row; for named inputs each entry is an object
    /// keyed by input name (every row the same keys).
    static func rowBatches(_ instances: JSONValue, model: Model) throws -> [Tensor] {
        guard case let .array(rows) = instances, !rows.isEmpty else {
            throw NNError(.input, "request body: instances", "expected a non-empty list with one entry per row, found \(instances.brief())")
        }
        let named = rows.contains { if case .object = $0 { return !isBase64($0) } else { return false } }
        guard named else {
            let port = try onlyInput(model, format: "instances")
            return [try batch(.array(rows), port: port, model: model, source: "request body: instances")]
        }
        return try model.inputs.map { port in
            let column = try rows.enumerated().map { index, row -> JSONValue in
                guard case .object = row else {
                    throw NNError(.input, "request body: instances[\(index)]", "expected an object keyed by input name like the other rows, found \(row.typeDescription)")
                }
                try checkNames(row, model: model, source: "request body: instances[\(index)]")
                guard let value = row[port.name] else {
                    throw NNError(.input, "request body: instances[\(index)]", "no value for the model's input '\(port.name)' of shape \(describe(port.shape))")
                }
                return value
            }
            return try batch(.array(column), port: port, model: model, source: "request body: instances[*].\(port.name)")
        }
    }

    /// Columnar format: one value with the batch first, or an object of such values keyed by
    /// input name.
    static func columnarBatches(_ inputs: JSONValue, model: Model) throws -> [Tensor] {
        guard case .object = inputs else {
            let port = try onlyInput(model, format: "inputs")
            return [try batch(inputs, port: port, model: model, source: "request body: inputs")]
        }
        try checkNames(inputs, model: model, source: "request body: inputs")
        return try model.inputs.map { port in
            guard let value = inputs[port.name] else {
                throw NNError(.input, "request body: inputs", "no value for the model's input '\(port.name)' of shape \(describe(port.shape))")
            }
            return try batch(value, port: port, model: model, source: "request body: inputs.\(port.name)")
        }
    }

    static func onlyInput(_ model: Model, format: String) throws -> Model.Port {
        guard model.inputs.count == 1, let port = model.inputs.first else {
            throw NNError(.input, "request body: \(format)", "the model has \(model.inputs.count) inputs (\(model.inputs.map { "'\($0.name)'" }.joined(separator: ", "))); give each by name")
        }
        return port
    }

    static func checkNames(_ object: JSONValue, model: Model, source: String) throws {
        guard case let .object(members) = object else { return }
        try refuseBase64(object, port: model.inputs.count == 1 ? model.inputs.first : nil, source: source)
        let known = Set(model.inputs.map(\.name))
        if let stray = members.map(\.0).first(where: { !known.contains($0) }) {
            throw NNError(.input, source, "the model has no input named '\(stray)'; its inputs are \(model.inputs.map { "'\($0.name)'" }.joined(separator: ", "))")
        }
    }

    /// A batch for `port` from nested arrays (batch first): rectangular, numbers only (strings,
    /// or TF Serving's `{"b64": ...}` for UTF-8 text, for a string input), whole numbers for an
    /// integer input, and of the port's per-row shape.
    static func batch(_ value: JSONValue, port: Model.Port, model: Model, source: String) throws -> Tensor {
        try refuseBase64(value, port: port, source: source)
        let array = try JSONArray.read(port.takesStrings ? try decodingBase64(value, source: source) : value, source: source,
                                       strings: port.takesStrings)
        if port.dtype.hasPrefix("int") || port.dtype.hasPrefix("uint") || port.dtype == "bool" {
            if let index = array.values.firstIndex(where: { $0.rounded() != $0 || !$0.isFinite }) {
                throw NNError(.input, source, "the input '\(port.name)' is \(port.dtype), found \(array.values[index]) at flat position \(index)")
            }
        }
        let expected = [nil] + port.shape
        let matches = array.shape.count == expected.count && zip(array.shape, expected).allSatisfy { $1 == nil || $0 == $1 }
        guard matches, array.shape.allSatisfy({ $0 > 0 }) else {
            throw NNError(.input, source, "input has shape \(array.shape.map(String.init).joined(separator: "×")), expected \(describe(port.shape)) with the batch first")
        }
        if let strings = array.strings { return Tensor(shape: array.shape, strings: strings) }
        return Tensor(shape: array.shape, data: array.values)
    }

    /// Whether `value` is TF Serving's encoding of a binary string, `{"b64": "..."}`.
    static func isBase64(_ value: JSONValue) -> Bool {
        guard case let .object(members) = value, members.count == 1, members[0].0 == "b64" else { return false }
        return true
    }

    /// `value` with every `{"b64": "..."}` replaced by the text it encodes (which must be UTF-8:
    /// nnbuild's string layers compare text).
    static func decodingBase64(_ value: JSONValue, source: String) throws -> JSONValue {
        switch value {
        case let .array(items): return .array(try items.map { try decodingBase64($0, source: source) })
        case let .object(members) where isBase64(value):
            guard case let .string(encoded) = members[0].1, let bytes = Data(base64Encoded: encoded) else {
                throw NNError(.input, source, "{\"b64\": ...} must hold a base64 string (RFC 4648, with padding), found \(members[0].1.brief())")
            }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw NNError(.input, source, "{\"b64\": ...} decodes to bytes that are not UTF-8 text; nnbuild's string inputs take text")
            }
            return .string(text)
        default: return value
        }
    }

    /// `{"b64": "..."}` is TF Serving's encoding of a binary string (a DT_STRING value). A string
    /// input takes it as the UTF-8 text it encodes (`decodingBase64`); anywhere else it is refused
    /// as TF Serving refuses it for a float input, saying why, rather than read as an input named "b64".
    static func refuseBase64(_ value: JSONValue, port: Model.Port?, source: String) throws {
        func holdsBase64(_ value: JSONValue) -> Bool {
            if case let .array(items) = value { return items.contains(where: holdsBase64) }
            return isBase64(value)
        }
        guard port?.takesStrings != true, holdsBase64(value) else { return }
        let input = port.map { "the input '\($0.name)' takes \($0.dtype) numbers of shape \(describe($0.shape))" }
            ?? "this model takes each row as an object keyed by input name"
        throw NNError(.input, source, "{\"b64\": ...} is TF Serving's encoding of a binary string, for string inputs; \(input), given as nested lists")
    }

    static func describe(_ shape: [Int?]) -> String {
        "(" + shape.map { $0.map(String.init) ?? "None" }.joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
    }

    // MARK: - Answers

    /// `{"predictions": [...]}` for the row format (per row: the value, or an object keyed by
    /// output name), `{"outputs": ...}` for the columnar one.
    public static func predictResponse(_ results: [Tensor], format: Format, model: Model) -> String {
        let named = model.outputs.count > 1
        switch format {
        case .columnar:
            let values = zip(model.outputs, results).map { ($0.name, JSONText.tensor($1.data[...], shape: $1.shape[...])) }
            return JSONText.object([("outputs", named ? JSONText.object(values) : values.first?.1 ?? "null")])
        case .row:
            let rows = results.first?.batch ?? 0
            let predictions = (0..<rows).map { row -> String in
                let values = zip(model.outputs, results).map { port, result -> (String, String) in
                    let stride = result.shape.dropFirst().reduce(1, *)
                    return (port.name, JSONText.tensor(result.data[row * stride..<(row + 1) * stride], shape: result.shape.dropFirst()))
                }
                return named ? JSONText.object(values) : values.first?.1 ?? "null"
            }
            return JSONText.object([("predictions", JSONText.array(predictions))])
        }
    }

    /// `GET /v1/models/NAME[/versions/N]`: the status of the versions given.
    public static func statusResponse(_ versions: [ServedVersion]) -> String {
        let entries = versions.reversed().map { version in
            JSONText.object([
                ("version", JSONText.string(String(version.version))),
                ("state", JSONText.string("AVAILABLE")),
                ("status", JSONText.object([("error_code", JSONText.string("OK")), ("error_message", JSONText.string(""))])),
            ])
        }
        return JSONText.object([("model_version_status", JSONText.array(entries))])
    }

    /// `GET /v1/models/NAME[/versions/N]/metadata`: the signature, in the layout TF Serving
    /// prints a `GetModelMetadataResponse` (int64 sizes as strings, -1 for an unknown size).
    public static func metadataResponse(name: String, version: ServedVersion) -> String {
        func tensorInfo(_ port: Model.Port, prefix: String) -> (String, String) {
            let dims = ([nil] + port.shape).map { size in
                JSONText.object([("size", JSONText.string(String(size ?? -1))), ("name", JSONText.string(""))])
            }
            return (port.name, JSONText.object([
                ("dtype", JSONText.string(dtypeName(port.dtype))),
                ("tensor_shape", JSONText.object([("dim", JSONText.array(dims)), ("unknown_rank", "false")])),
                ("name", JSONText.string("\(prefix)\(port.name):0")),
            ]))
        }
        let model = version.model
        let signature = JSONText.object([
            ("inputs", JSONText.object(model.inputs.map { tensorInfo($0, prefix: "serving_default_") })),
            ("outputs", JSONText.object(model.outputs.map { tensorInfo($0, prefix: "StatefulPartitionedCall_") })),
            ("method_name", JSONText.string("tensorflow/serving/predict")),
        ])
        return JSONText.object([
            ("model_spec", JSONText.object([
                ("name", JSONText.string(name)), ("signature_name", JSONText.string("")),
                ("version", JSONText.string(String(version.version))),
            ])),
            ("metadata", JSONText.object([
                ("signature_def", JSONText.object([
                    ("signature_def", JSONText.object([(defaultSignature, signature)])),
                ])),
            ])),
        ])
    }

    /// TensorFlow's `DataType` enum name for a Keras dtype.
    static func dtypeName(_ dtype: String) -> String {
        switch dtype {
        case "float32": return "DT_FLOAT"
        case "float64": return "DT_DOUBLE"
        case "float16": return "DT_HALF"
        case "bfloat16": return "DT_BFLOAT16"
        case "int8": return "DT_INT8"
        case "int16": return "DT_INT16"
        case "int32": return "DT_INT32"
        case "int64": return "DT_INT64"
        case "uint8": return "DT_UINT8"
        case "uint16": return "DT_UINT16"
        case "bool": return "DT_BOOL"
        case "string": return "DT_STRING"
        default: return "DT_INVALID"
        }
    }
}
