import XCTest

/// Every committed Keras fixture, through one and the same code path: the spec alone decides what
/// runs (CNN, SimpleRNN, LSTM, GRU, Bidirectional alike).
final class KerasFixtureTests: XCTestCase {
    func testEveryFixtureMatchesKeras() throws {
        let names = Fixtures.names
        XCTAssertGreaterThan(names.count, 0, "no fixtures under \(Fixtures.root.path); run tools/make_fixtures.py")
        for name in names {
            assertMatchesKeras(name)
        }
    }
}
