// The command line's column layout and argument trimming, shared by its commands.

extension StringProtocol {
    /// Spaces, then the text, up to `width` characters (never cut).
    package func leftPad(_ width: Int) -> String { String(repeating: " ", count: Swift.max(width - count, 0)) + self }

    /// The text, then spaces, up to `width` characters (never cut).
    package func padded(to width: Int) -> String { self + String(repeating: " ", count: Swift.max(width - count, 0)) }

    /// The text without the spaces and tabs around it (what Foundation's
    /// `trimmingCharacters(in: .whitespaces)` removed: tab and Unicode's space separators).
    package func trimmingSpaces() -> String {
        func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator }
        guard let first = unicodeScalars.firstIndex(where: { !isSpace($0) }),
              let last = unicodeScalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: unicodeScalars[first...last])
        return String(text)
    }
}
