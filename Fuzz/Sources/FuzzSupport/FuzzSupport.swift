import ModelSpec

/// The fuzz input as an array (libFuzzer may pass a null pointer with size 0).
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Runs `body`; returns nil when it throws `NNError` or `NNErrors`, the only errors a bad file may
/// produce (the README's promise: one `error[class]: where: what` line per problem). Any other
/// error is a defect of its own, so the harness stops there and libFuzzer saves the input.
public func expectingNNError<T>(_ step: String, _ body: () throws -> T) -> T? {
    do {
        return try body()
    } catch is NNError {
        return nil
    } catch is NNErrors {
        return nil
    } catch {
        fuzzFailure("\(step) threw \(type(of: error)), not NNError: \(error)")
    }
}

/// Stops the harness on a broken invariant; libFuzzer reports it as a crash and saves the input.
public func fuzzFailure(_ message: String) -> Never {
    fatalError("fuzz invariant: \(message)")
}

/// Whether two float arrays hold the same bits (NaN payloads included).
public func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}
