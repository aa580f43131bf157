import XCTest
import Builtins
import LayerRegistry

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

/// Splitting a batch across threads gives the single-threaded result within float rounding.
final class ParallelTests: XCTestCase {
    func testSplitBatchesMatchTheSingleThreadedRun() throws {
        for name in ["masked_bidi_lstm", "conv2d_strides", "batchnorm", "simple_rnn_stack", "embedding"] {
            let dir = Fixtures.root.appendingPathComponent(name)
            let model = try Model.build(try ModelDescription.load(path: dir.appendingPathComponent("model.json").path), registry: .withBuiltins(),
                                        weights: try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path))
            let path = dir.appendingPathComponent("input.npy").path
            let input = try model.batch(from: try Npy.read(FileBytes.read(path: path), source: path), source: path)
            let single = try model.predict(input, threads: 1)
            for threads in [2, 3, 8] {
                let split = try model.predict(input, threads: threads)
                XCTAssertEqual(split.shape, single.shape, name)
                assertClose(split.data, single.data, accuracy: 1e-6)
            }
        }
    }
}
