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

    /// A batch is cut so that no slice's largest value passes 4 MB (`sliceValueElements`), on one
    /// thread too; otherwise by threads, slices of at least 32 rows (`minimumSliceRows`).
    func testSlicesKeepTheirLargestValueInCache() {
        let limit = Model.sliceValueElements
        XCTAssertEqual(Model.sliceCount(rows: 16, threads: 2, rowElements: 112 * 112 * 96), 16, "MobileNetV2: one row a slice")
        XCTAssertEqual(Model.sliceCount(rows: 16, threads: 1, rowElements: limit / 4), 4, "one thread: 4 rows a slice")
        XCTAssertEqual(Model.sliceCount(rows: 64, threads: 2, rowElements: 32 * 32 * 32), 2, "cnn_cifar: slices by threads")
        XCTAssertEqual(Model.sliceCount(rows: 64, threads: 1, rowElements: 1000), 1)
        XCTAssertEqual(Model.sliceCount(rows: 3, threads: 1, rowElements: 10 * limit), 3, "never more slices than rows")
    }

    /// A model whose rows each outgrow the slice budget runs one row a slice, on one thread as on
    /// two, and gives the same bits as its rows run one at a time.
    func testRowsCutForTheCacheGiveTheSameBits() throws {
        let model = try HandBuilt.model(input: [160, 160, 4], layers: [
            #"{"class_name": "Conv2D", "config": {"name": "c", "filters": 48, "kernel_size": 3, "padding": "same", "activation": "relu"}}"#,
            #"{"class_name": "GlobalAveragePooling2D", "config": {"name": "g"}}"#,
        ], weights: ["c/kernel": ([3, 3, 4, 48], (0..<(9 * 4 * 48)).map { Float($0 % 13) / 13 - 0.5 }), "c/bias": ([48], Array(repeating: 0.1, count: 48))])
        XCTAssertGreaterThan(model.largestValueElements([[1, 160, 160, 4]]), Model.sliceValueElements, "each row outgrows a slice")
        let rowSize = 160 * 160 * 4
        let input = Tensor(shape: [3, 160, 160, 4], data: (0..<(3 * rowSize)).map { Float(($0 * 7) % 17) / 17 })
        for threads in [1, 2] {
            let whole = try model.predict(input, threads: threads)
            for row in 0..<3 {
                let one = try model.predict(Tensor(shape: [1, 160, 160, 4], data: Array(input.data[(row * rowSize)..<((row + 1) * rowSize)])), threads: 1)
                XCTAssertEqual(Array(whole.data[(row * 48)..<((row + 1) * 48)]).map(\.bitPattern), one.data.map(\.bitPattern), "row \(row), \(threads) threads")
            }
        }
    }
}
