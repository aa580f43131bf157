/// The one error type of nnbuild: what went wrong, where, and of which class.
///
/// `location` names the file, the JSON path (`config.layers[3].config.kernel_size`), the layer,
/// or line:column, whatever the raiser knows. `description` is the one line a user sees.
public struct NNError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The error class; each maps to a documented exit code and a section in docs/errors.md.
    public enum Kind: String, Sendable, CaseIterable {
        /// The text is not JSON (syntax error, nesting too deep, not UTF-8).
        case json
        /// The JSON is a model description nnbuild cannot accept (wrong type, missing key, bad value).
        case spec
        /// A layer type no factory is registered for.
        case unknownLayer
        /// A layer's configuration or its input shape is invalid.
        case layer
        /// The weight blob is malformed, or a weight is missing, unused or of the wrong shape.
        case weights
        /// The input data is malformed or does not fit the model.
        case input
        /// A file could not be read or written.
        case io
        /// A plugin could not be loaded.
        case plugin
    }

    public var kind: Kind
    public var location: String
    public var message: String

    public init(_ kind: Kind, _ location: String, _ message: String) {
        self.kind = kind
        self.location = location
        self.message = message
    }

    public var description: String {
        location.isEmpty ? message : "\(location): \(message)"
    }
}

/// Several problems found together (for example every missing, unused and mis-shaped weight),
/// reported one per line.
public struct NNErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [NNError]

    public init(_ errors: [NNError]) {
        self.errors = errors
    }

    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}

extension Error {
    /// Each problem with its class, for printing one per line as `error[class]: where: what`.
    public var nnClassifiedProblems: [(kind: String, text: String)] {
        if let many = self as? NNErrors { return many.errors.map { ($0.kind.rawValue, $0.description) } }
        if let one = self as? NNError { return [(one.kind.rawValue, one.description)] }
        return [("internal", "\(self)")]
    }

    /// The individual problems inside this error, for printing one per line.
    public var nnProblems: [String] {
        if let many = self as? NNErrors { return many.errors.map(\.description) }
        if let one = self as? NNError { return [one.description] }
        return ["\(self)"]
    }
}
