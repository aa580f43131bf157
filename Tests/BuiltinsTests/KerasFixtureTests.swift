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
    /// A fixture's model with its weights, and its input batch.
    func load(_ name: String) throws -> (Model, Tensor) {
        let dir = Fixtures.root.appendingPathComponent(name)
        let model = try Model.build(try ModelDescription.load(path: dir.appendingPathComponent("model.json").path), registry: .withBuiltins(),
                                    weights: try WeightStore(path: dir.appendingPathComponent("weights.safetensors").path))
        let path = dir.appendingPathComponent("input.npy").path
        return (model, try model.batch(from: try Npy.read(FileBytes.read(path: path), source: path), source: path))
    }

    func testSplitBatchesMatchTheSingleThreadedRun() throws {
        for name in ["masked_bidi_lstm", "conv2d_strides", "batchnorm", "simple_rnn_stack", "embedding"] {
            let (model, input) = try load(name)
            let single = try model.predict(input, threads: 1)
            for threads in [2, 3, 8] {
                let split = try model.predict(input, threads: threads)
                XCTAssertEqual(split.shape, single.shape, name)
                assertClose(split.data, single.data, accuracy: 1e-6)
            }
        }
    }

    /// One row with two threads: large products use threaded BLAS and a Bidirectional runs its two
    /// halves side by side; each row still equals its single-threaded result.
    func testSingleRowsWithTwoThreadsMatchOneThread() throws {
        for name in ["masked_bidi_lstm", "bidi_gru_sum", "bidi_merge_modes", "bidi_lstm_stack", "conv2d_strides"] {
            let (model, input) = try load(name)
            let whole = try model.predict(input, threads: 1)
            let rowSize = input.sampleSize, outputSize = whole.sampleSize
            for row in 0..<input.batch {
                let one = Tensor(shape: [1] + input.shape.dropFirst(), data: Array(input.data[(row * rowSize)..<((row + 1) * rowSize)]))
                let two = try model.predict(one, threads: 2)
                XCTAssertEqual(two.shape, [1] + whole.shape.dropFirst(), name)
                assertClose(two.data, Array(whole.data[(row * outputSize)..<((row + 1) * outputSize)]), accuracy: 1e-6)
            }
        }
    }
}
