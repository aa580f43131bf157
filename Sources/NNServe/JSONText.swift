import ModelSpec

/// Compact JSON text for responses. Floats in shortest round-trip form; NaN and infinities,
/// which JSON cannot express, become `null` (as `nnbuild infer` writes them).
public enum JSONText {
    /// A JSON string literal: ModelSpec's one quoting, which every JSON nnbuild writes uses.
    public static func string(_ text: String) -> String { JSONWriter.quote(text) }

    public static func number(_ value: Float) -> String { value.isFinite ? "\(value)" : "null" }

    /// `{"k": v, ...}` from already-written values, in the given order.
    public static func object(_ members: [(String, String)]) -> String {
        "{" + members.map { string($0.0) + ": " + $0.1 }.joined(separator: ", ") + "}"
    }

    public static func array(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }

    /// Nested arrays of `values` laid out in C order with `shape`; a shape of `[]` is a scalar.
    public static func tensor(_ values: ArraySlice<Float>, shape: ArraySlice<Int>) -> String {
        guard let first = shape.first else { return values.first.map(number) ?? "null" }
        let rest = shape.dropFirst()
        let stride = rest.reduce(1, *)
        var items: [String] = []
        items.reserveCapacity(first)
        for index in 0..<first {
            let start = values.startIndex + index * stride
            items.append(tensor(values[start..<start + stride], shape: rest))
        }
        return array(items)
    }

    /// TF Serving's error body.
    public static func error(_ message: String) -> String { object([("error", string(message))]) }
}
