#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LayerRegistry

/// One recurrent cell's weights and its step arithmetic. The sequence runner does everything that
/// is common to every cell: the input projection of all steps at once, masks, direction, outputs.
public protocol RecurrentCell: Sendable {
    /// Width of the output (the state `outputState`).
    var units: Int { get }
    /// Width of the input projection: units × gates.
    var gateWidth: Int { get }
    /// Number of state vectors (1, or 2 for LSTM's h and c).
    var stateCount: Int { get }
    /// Width of each state (stateCount of them); `units` each unless the cell says otherwise.
    var stateWidths: [Int] { get }
    /// Which state is the step's output: 0 unless the cell says otherwise.
    var outputState: Int { get }
    /// A name for each state, for messages (`h`, `c`).
    var stateNames: [String] { get }
    /// The per-sample shape of each state: (width) unless the cell says otherwise.
    var stateShapes: [[Int]] { get }
    /// (features, gateWidth)
    var kernel: Weight { get }
    /// Added to the input projection of every step, if any.
    var inputBias: Weight? { get }
    /// Floats of scratch space per batch row that `step` may use.
    var scratchPerRow: Int { get }
    /// One step for `rows` rows: `projected` holds x·kernel + inputBias (rows × gateWidth), `states`
    /// the current states, one block of rows × width after another in `stateWidths` order, updated
    /// in place; `scratch` rows × scratchPerRow.
    func step(projected: UnsafeMutablePointer<Float>, states: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>)
}

/// A cell whose step can be cut by units across threads (`runSteps`): part `part` of `parts`
/// reads `states` and writes its units of every state into `next` (laid out as `states`), so no
/// part writes what another reads; `projected` and `scratch` as `step`, each part touching only
/// its units' columns. The parts together give the same bits as `step`.
protocol SplitStepCell: RecurrentCell {
    /// How many parts a step of `rows` rows is cut into on `threads` threads: 1 where it is not.
    func stepParts(rows: Int, threads: Int) -> Int
    func stepPart(_ part: Int, of parts: Int, projected: UnsafeMutablePointer<Float>, states: UnsafePointer<Float>,
                  next: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>)
}

/// A cell whose steps are images, not vectors (ConvLSTM): it makes its own input projections (a
/// convolution, not x·kernel), and its step input and output have shapes. The runner sees each
/// step's input, projection, states and output as flat rows all the same.
protocol SpatialRecurrentCell: RecurrentCell {
    /// Per-step input shape (columns, channels) or (rows, columns, channels).
    var inputStepShape: [Int] { get }
    /// Per-step output shape (columns', filters) or (rows', columns', filters).
    var outputStepShape: [Int] { get }
    /// The projections of `images` step inputs, each a row of `gateWidth` floats.
    func projectInputs(_ input: UnsafePointer<Float>, images: Int, into projected: UnsafeMutablePointer<Float>)
    /// Floats the convolutions allocate while projecting `images` step inputs or stepping `rows` rows.
    func convolutionScratch(images: Int, rows: Int) -> Int
}

extension RecurrentCell {
    public var stateWidths: [Int] { Array(repeating: units, count: stateCount) }
    public var outputState: Int { 0 }
    public var stateShapes: [[Int]] { stateWidths.map { [$0] } }
    public var stateNames: [String] { stateCount == 2 ? ["h", "c"] : (0..<stateCount).map { $0 == 0 ? "h" : "state \($0)" } }

    /// Where each state's block starts for `rows` rows (stateCount + 1 offsets: the last is the total).
    func stateOffsets(rows: Int) -> [Int] {
        stateWidths.reduce(into: [0]) { offsets, width in offsets.append(offsets[offsets.count - 1] + rows * width) }
    }
}

/// What a recurrent layer does with its cell over the sequence, read by one function for every
/// recurrent layer (LSTM, GRU, SimpleRNN and the generic RNN).
struct SequenceOptions {
    var returnSequences: Bool
    var goBackwards: Bool
    var zeroOutputForMask: Bool
    var returnState: Bool

    /// Config: `return_sequences` (false), `return_state` (false), `go_backwards` (false),
    /// `zero_output_for_mask` (false); `unroll` is a layout hint (same result); `stateful` and
    /// `time_major` are refused.
    /// `rank` is the per-sample input rank: steps and features, or steps and an image (ConvLSTM).
    static func read(_ context: LayerContext, rank: Int = 2, meaning: String = "(batch, steps, features)") throws -> SequenceOptions {
        if try context.bool("stateful", default: false) {
            throw context.error("stateful=true is not supported yet; nnbuild runs each batch from zero state", key: "stateful")
        }
        if try context.bool("time_major", default: false) {
            throw context.error("time_major=true is not supported; give inputs as (batch, steps, features)", key: "time_major")
        }
        _ = try context.bool("unroll", default: false)
        let options = SequenceOptions(
            returnSequences: try context.bool("return_sequences", default: false),
            goBackwards: try context.bool("go_backwards", default: false),
            zeroOutputForMask: try context.bool("zero_output_for_mask", default: false),
            returnState: try context.bool("return_state", default: false))
        // Checked after the keys are read, so that `nnbuild layers` lists them whatever its probe input.
        try context.requireRank(rank, meaning: meaning)
        return options
    }
}

/// The configuration of one cell: a layer's own (LSTM, GRU, SimpleRNN read it beside their
/// sequence options) or a cell's inside a generic RNN (LSTMCell, GRUCell, SimpleRNNCell).
struct CellOptions {
    var units: Int
    var activation: Activation
    var recurrentActivation: Activation
    var useBias: Bool

    /// Config: `units`, `activation` ("tanh"), `recurrent_activation` (`defaultRecurrent`),
    /// `use_bias` (true); `dropout`, `recurrent_dropout` and `unit_forget_bias` act only in training.
    /// `unitsKey` nil: the cell's width comes from elsewhere (ConvLSTM's `filters`); units is then 0.
    static func read(_ context: LayerContext, defaultRecurrent: String?, unitsKey: String? = "units") throws -> CellOptions {
        for key in ["dropout", "recurrent_dropout"] where context.has(key) {
            let rate = try context.double(key)
            guard rate >= 0, rate <= 1 else { throw context.error("'\(key)' must be in [0, 1], found \(rate)", key: key) }
        }
        _ = try context.bool("unit_forget_bias", default: true)
        return CellOptions(
            units: try unitsKey.map { try context.positiveInt($0, maximum: 1 << 16) } ?? 0,
            activation: try Activation.from(context, key: "activation", default: "tanh"),
            recurrentActivation: defaultRecurrent == nil ? .linear : try Activation.from(context, key: "recurrent_activation", default: defaultRecurrent ?? "sigmoid"),
            useBias: try context.bool("use_bias", default: true))
    }
}

/// A Keras recurrent layer: a cell run over the sequence.
///
/// All steps' input projections are one GEMM over (batch · steps) rows; each step then does one
/// small GEMM for the recurrent projection and the cell's fused gate arithmetic, with every buffer
/// allocated before the time loop. A masked step leaves the state unchanged; its output is zeros
/// when `zero_output_for_mask`, else the previous output, as in Keras; without `return_sequences`
/// the result is the last step's output, so a row ending in padding gives zeros in the first case.
/// With `go_backwards` the steps run last to first and the sequence output stays in that order.
public struct RecurrentLayer: RecurrentSequenceLayer {
    public let cell: any RecurrentCell
    public let returnSequences: Bool
    public let goBackwards: Bool
    public let zeroOutputForMask: Bool
    public let features: Int
    /// Per-step input and output shapes: (features) and (units), or a spatial cell's images.
    let inputStepShape: [Int]
    let outputStepShape: [Int]
    public let outputShape: [Int?]
    /// The input kernel packed at load for the AVX2 GEMM of every step's input projection (nil
    /// where that path does not run), as the convolutions do.
    let packedKernel: PackedKernel?
    /// Set when the layer reads token ids, fused with the Embedding before it (`TokenSequence`).
    let tokens: TokenProjection?
    /// Whether steps cut by units (`SplitStepCell`) run faster as a team of threads or alone,
    /// as timed on this layer's calls (`runSteps`).
    let stepTuning = StepTuning()
    public var maskBehavior: MaskBehavior { returnSequences ? .propagates : .drops }

    init(cell: any RecurrentCell, options: SequenceOptions, context: LayerContext) throws {
        self.cell = cell
        returnSequences = options.returnSequences
        goBackwards = options.goBackwards
        zeroOutputForMask = options.zeroOutputForMask
        if let spatial = cell as? any SpatialRecurrentCell {
            inputStepShape = spatial.inputStepShape
            outputStepShape = spatial.outputStepShape
            features = ShapeMath.saturatingProduct(inputStepShape)
            packedKernel = nil
        } else {
            features = try context.inputDimension(-1)
            inputStepShape = [features]
            outputStepShape = [cell.units]
            packedKernel = PackedKernel(cell.kernel, patch: features, filters: cell.gateWidth, groups: 1)
        }
        outputShape = options.returnSequences ? [context.inputShape[0]] + outputStepShape.map(Optional.some) : outputStepShape.map(Optional.some)
        tokens = nil
    }

    private init(_ layer: RecurrentLayer, tokens: TokenProjection) {
        cell = layer.cell
        returnSequences = layer.returnSequences
        goBackwards = layer.goBackwards
        zeroOutputForMask = layer.zeroOutputForMask
        features = layer.features
        inputStepShape = layer.inputStepShape
        outputStepShape = layer.outputStepShape
        outputShape = layer.outputShape
        packedKernel = layer.packedKernel
        self.tokens = tokens
    }

    /// This layer reading token ids of `embedding` instead of its vectors, or nil when the
    /// embedding does not feed it (another width) or the projection table would pass 32 MB.
    func readingTokens(of embedding: Embedding) -> RecurrentLayer? {
        guard tokens == nil, !(cell is any SpatialRecurrentCell), embedding.outputDim == features, embedding.inputDim * cell.gateWidth <= 1 << 23 else { return nil }
        return RecurrentLayer(self, tokens: TokenProjection(embedding.embeddings, vocabulary: embedding.inputDim))
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try run(input, initialStates: []).output
    }

    /// The sequence output and the final states (stateCount tensors of (batch, units), in the
    /// cell's order), starting from `initialStates` (the same, or empty for zeros). A masked step
    /// carries every state unchanged, so a row's final states are those of its last real step.
    /// `chunkSteps` overrides how many steps' input projections are made at once
    /// (`projectionChunkSteps`), for tests that the chunking never changes a result.
    func run(_ input: Tensor, initialStates: [Tensor], chunkSteps: Int? = nil) throws -> (output: Tensor, states: [Tensor]) {
        guard tokens != nil ? input.rank == 2 : input.rank == 2 + inputStepShape.count && Array(input.shape.dropFirst(2)) == inputStepShape else {
            throw NNError(.input, "recurrent layer", "expects \(describeShape([nil, nil] + inputStepShape)) (batch, steps, ...), found \(input.shape)")
        }
        let batch = input.batch, steps = input.shape[1]
        let units = cell.units, width = cell.gateWidth, widths = cell.stateWidths
        let stateOffsets = cell.stateOffsets(rows: batch), stateSize = stateOffsets[widths.count]
        let outputOffset = stateOffsets[cell.outputState]
        guard initialStates.isEmpty || initialStates.count == cell.stateCount else {
            throw NNError(.input, "initial_state", "the layer has \(cell.stateCount) states, given \(initialStates.count) initial state tensors")
        }
        let stateShapes = cell.stateShapes
        for (index, state) in initialStates.enumerated() where state.shape != [batch] + stateShapes[index] {
            throw NNError(.input, "initial_state[\(index)]", "expected shape \([batch] + stateShapes[index]) (the sequence's batch of \(batch), \(describeUnits(stateShapes[index]))), found \(state.shape)")
        }
        // The input projections are made a chunk of steps at a time, just before the steps that
        // read them, into one buffer the chunks reuse: at a long sequence and a large batch, a
        // projection of every step at once is a buffer of 100 MB whose pages fault in on every
        // call, and which has left the cache by the time its last steps read it. A row's
        // projection is the same bits whatever rows share the product (Gemm is batch-invariant),
        // so the chunk length never changes a result.
        let chunk = max(1, min(chunkSteps ?? RecurrentLayer.projectionChunkSteps(batch: batch, gateWidth: width), max(steps, 1)))
        let chunkRows = batch * chunk
        // Buffers that are written in full before any read skip zero-filling: the projections when
        // the bias is copied into every row first, the saved states (copied before use), and the
        // sequence output (every step writes every row). A BLAS call with beta 0 is not trusted to
        // overwrite garbage (OpenBLAS's gemv scales by zero, which keeps NaN), so those stay zeroed.
        var projected = cell.inputBias != nil ? uninitializedFloats(chunkRows * width) : [Float](repeating: 0, count: chunkRows * width)
        // States are stored state-major: state s of row b at stateOffsets[s] + b · widths[s], which
        // is exactly the initial state tensors one after the other.
        var states = initialStates.isEmpty ? [Float](repeating: 0, count: stateSize) : initialStates.flatMap(\.data)
        var saved = uninitializedFloats(stateSize)
        var scratch = [Float](repeating: 0, count: max(batch * cell.scratchPerRow, 1))
        var output = returnSequences ? uninitializedFloats(batch * steps * units) : [Float](repeating: 0, count: batch * units)
        var lastOutput = [Float](repeating: 0, count: batch * units)
        var stepValid = [Bool](repeating: true, count: batch)
        let mask = input.mask
        // A chunk's step inputs, time-major, so that one step's projections for the whole batch
        // are adjacent rows: copied from the batch-major input, or (token ids, an Embedding fused
        // in, before the table of E·W + b is made) gathered from the embedding rows. A single
        // row's input is already time-major and is read in place; token ids with the table look
        // their projections up instead.
        let table = tokens?.table(rows: batch * steps, layer: self)
        let readsInPlace = tokens == nil && batch == 1
        var timeMajor = readsInPlace || table != nil ? [] : uninitializedFloats(chunkRows * features)
        let spatial = cell as? any SpatialRecurrentCell
        let split = cell as? any SplitStepCell
        input.data.withUnsafeBufferPointer { source in
          (table ?? []).withUnsafeBufferPointer { made in
          timeMajor.withUnsafeMutableBufferPointer { x in
          projected.withUnsafeMutableBufferPointer { p in
            states.withUnsafeMutableBufferPointer { hBuffer in
              saved.withUnsafeMutableBufferPointer { savedBuffer in
                scratch.withUnsafeMutableBufferPointer { w in
                  output.withUnsafeMutableBufferPointer { outBuffer in
                    lastOutput.withUnsafeMutableBufferPointer { lastBuffer in
                        let h = hBuffer.baseAddress!, keep = savedBuffer.baseAddress!
                        let out = outBuffer.baseAddress!, last = lastBuffer.baseAddress!
                        let output = h + outputOffset
                        // Projects steps first..<end (in time order) into p, step t at (t − first) · batch rows.
                        func project(_ first: Int, _ end: Int) {
                            let rows = batch * (end - first)
                            if let tokens {
                                let rowLength = table == nil ? features : width
                                tokens.embeddings.storage.withBuffer { e in
                                    let from = table == nil ? e.baseAddress! : made.baseAddress!
                                    let to = table == nil ? x.baseAddress! : p.baseAddress!
                                    for b in 0..<batch {
                                        for t in first..<end {
                                            let id = Int(source[b * steps + t])
                                            (to + ((t - first) * batch + b) * rowLength).update(from: from + id * rowLength, count: rowLength)
                                        }
                                    }
                                }
                                if table != nil { return }
                            } else if !readsInPlace {
                                for b in 0..<batch {
                                    for t in first..<end {
                                        (x.baseAddress! + ((t - first) * batch + b) * features)
                                            .update(from: source.baseAddress! + (b * steps + t) * features, count: features)
                                    }
                                }
                            }
                            let stepInputs = readsInPlace ? source.baseAddress! + first * features : UnsafePointer(x.baseAddress!)
                            if let spatial {
                                spatial.projectInputs(stepInputs, images: rows, into: p.baseAddress!)
                            } else {
                                Gemm.gemm(stepInputs, lda: features, cell.kernel.values.baseAddress!, ldb: width, p.baseAddress!, ldc: width,
                                          m: rows, n: width, k: features, accumulate: false, bias: cell.inputBias?.values.baseAddress,
                                          packed: packedKernel)
                            }
                        }
                        // Before the step at `position`: its chunk's projections when it is the
                        // chunk's first, the states saved when a row is masked. Returns where the
                        // step's projections are.
                        func prepare(_ position: Int) -> UnsafeMutablePointer<Float> {
                            let t = goBackwards ? steps - 1 - position : position
                            // The chunk holding step t: chunks are cut in processing order, and
                            // each is projected (in time order) when its first step comes.
                            let positions = (position - position % chunk)..<min(steps, position - position % chunk + chunk)
                            let chunkStart = goBackwards ? steps - positions.upperBound : positions.lowerBound
                            if position == positions.lowerBound { project(chunkStart, chunkStart + positions.count) }
                            var anyMasked = false
                            if let mask {
                                for b in 0..<batch {
                                    stepValid[b] = mask[b * steps + t]
                                    anyMasked = anyMasked || !stepValid[b]
                                }
                            }
                            if anyMasked { keep.update(from: h, count: stateSize) }
                            return p.baseAddress! + (t - chunkStart) * batch * width
                        }
                        let parts = split?.stepParts(rows: batch, threads: Gemm.allowedThreads) ?? 1
                        if let split, parts > 1, steps > 0 {
                            // Each step cut by units across threads: the parts read the states
                            // and write the next ones beside them, which become the states
                            // between steps.
                            var next = uninitializedFloats(stateSize)
                            next.withUnsafeMutableBufferPointer { nextBuffer in
                                let next = nextBuffer.baseAddress!, scratch = w.baseAddress!
                                var stepInput = prepare(0)
                                runSteps(steps, parts: parts, tuning: stepTuning, key: batch, { _, part in
                                    split.stepPart(part, of: parts, projected: stepInput, states: h, next: next, rows: batch, scratch: scratch)
                                }, end: { position in
                                    h.update(from: next, count: stateSize)
                                    finish(position)
                                    if position + 1 < steps { stepInput = prepare(position + 1) }
                                })
                            }
                        } else {
                            for position in 0..<steps {
                                cell.step(projected: prepare(position), states: h, rows: batch, scratch: w.baseAddress!)
                                finish(position)
                            }
                        }
                        if mask == nil { last.update(from: output, count: batch * units) }
                        // After the step at `position`: masked rows' states restored, the output
                        // written.
                        func finish(_ position: Int) {
                            // Without a mask every step is real: the last output is h after the loop.
                            guard mask != nil || returnSequences else { return }
                            for b in 0..<batch {
                                let valid = stepValid[b]
                                if valid {
                                    if mask != nil { (last + b * units).update(from: output + b * units, count: units) }
                                } else {
                                    // A masked step leaves every state of this row as it was.
                                    for state in 0..<cell.stateCount {
                                        let offset = stateOffsets[state] + b * widths[state]
                                        (h + offset).update(from: keep + offset, count: widths[state])
                                    }
                                }
                                if returnSequences {
                                    let target = out + (b * steps + position) * units
                                    if valid {
                                        target.update(from: output + b * units, count: units)
                                    } else if zeroOutputForMask {
                                        target.update(repeating: 0, count: units)
                                    } else {
                                        target.update(from: last + b * units, count: units)
                                    }
                                }
                            }
                        }
                    }
                  }
                }
              }
            }
          }
          }
          }
        }
        if !returnSequences {
            // Keras's result is the output slot of the last step processed, which
            // zero_output_for_mask zeroes when that step was masked (a row ending in padding).
            if zeroOutputForMask, let mask, steps > 0 {
                let finalStep = goBackwards ? 0 : steps - 1
                for b in 0..<batch where !mask[b * steps + finalStep] {
                    for u in 0..<units { lastOutput[b * units + u] = 0 }
                }
            }
            output = lastOutput
        }
        let finalStates = (0..<cell.stateCount).map { state in
            Tensor(shape: [batch] + stateShapes[state], data: Array(states[stateOffsets[state]..<stateOffsets[state + 1]]))
        }
        return (Tensor(shape: (returnSequences ? [batch, steps] : [batch]) + outputStepShape, data: output), finalStates)
    }
}

extension RecurrentLayer {
    /// How many steps' input projections a call makes at once, for `batch` rows of `gateWidth`
    /// floats each: as many as fill `projectionChunkFloats` (so the projections stay in the
    /// cache between the product that makes them and the steps that read them), at most 64 (a
    /// short sequence at batch 1 still projects in one product) and at least 1.
    static func projectionChunkSteps(batch: Int, gateWidth: Int) -> Int {
        max(1, min(64, projectionChunkFloats / max(1, ShapeMath.saturatingProduct([batch, gateWidth]))))
    }

    /// 1 MB of projections: at batch 64 and a gate width of 384 (GRU 128), 10 steps, whose
    /// 640-row product still runs at the kernel's full speed.
    static let projectionChunkFloats = 1 << 18
}

extension RecurrentLayer: PlansMemory {
    /// The output, and the buffers a call makes: one chunk of steps' input projections (see
    /// `projectionChunkSteps`; gate width per row and step), the time-major copy of that chunk's
    /// input, and the states.
    public func workingSet(input: [Int]) -> WorkingSet {
        let batch = input.first ?? 1, steps = input.count > 1 ? input[1] : 1
        let chunk = max(1, min(RecurrentLayer.projectionChunkSteps(batch: batch, gateWidth: cell.gateWidth), steps))
        let rows = ShapeMath.saturatingProduct([batch, chunk])
        let scratch = ShapeMath.saturatingSum(ShapeMath.saturatingProduct([rows, cell.gateWidth]),
                                              ShapeMath.saturatingProduct([rows, features]),
                                              ShapeMath.saturatingProduct([batch, cell.stateWidths.reduce(0, +), 2]),
                                              ShapeMath.saturatingProduct([batch, cell.units]),
                                              ShapeMath.saturatingProduct([batch, cell.scratchPerRow]),
                                              (cell as? any SpatialRecurrentCell)?.convolutionScratch(images: rows, rows: batch) ?? 0)
        let output = (returnSequences ? [batch, steps] : [batch]) + outputStepShape
        return WorkingSet(outputShape: output, scratch: scratch, scratchMeaning: "input projections and states")
    }
}

/// The input projections of every token of an embedding, E·W + b (vocabulary × gate width), made
/// on demand for a recurrent layer fused with the Embedding before it: a step's projection is
/// then a row lookup, not a product. It is made on the second call, or at once for a call
/// projecting at least a quarter as many rows as the table has (a large batch); a single short
/// sequence projects its few rows directly and never pays for the table.
final class TokenProjection: @unchecked Sendable {
    let embeddings: Weight
    let vocabulary: Int
    private let made = MadeOnDemand<[Float]>()

    init(_ embeddings: Weight, vocabulary: Int) {
        self.embeddings = embeddings
        self.vocabulary = vocabulary
    }

    /// The table, made now if this call warrants it; nil while rows are projected directly.
    func table(rows: Int, layer: RecurrentLayer) -> [Float]? {
        made.get(now: rows * 4 >= vocabulary) {
            let width = layer.cell.gateWidth
            var table = [Float](repeating: 0, count: vocabulary * width)
            embeddings.storage.withBuffer { e in
                table.withUnsafeMutableBufferPointer { t in
                    Gemm.gemm(e.baseAddress!, lda: layer.features, layer.cell.kernel.values.baseAddress!, ldb: width, t.baseAddress!, ldc: width,
                              m: vocabulary, n: width, k: layer.features, accumulate: false,
                              bias: layer.cell.inputBias?.values.baseAddress, packed: layer.packedKernel)
                }
            }
            return table
        }
    }
}

extension Builtins {
    static func registerRecurrent(_ registry: LayerRegistry) {
        registry.register("SimpleRNN", origin: "builtin", summary: "h = activation(x·W + h·U + b) over the sequence.",
                          savedChildren: .made("cell", className: "SimpleRNNCell", name: "simple_rnn_cell"), factory: SimpleRNNCell.factory)
        registry.register("LSTM", aliases: ["CuDNNLSTM"], origin: "builtin", summary: "Long short-term memory (gates i, f, c, o).",
                          savedChildren: .made("cell", className: "LSTMCell", name: "lstm_cell"), factory: LSTMCell.factory)
        registry.register("GRU", aliases: ["CuDNNGRU"], origin: "builtin", summary: "Gated recurrent unit (gates z, r, h; reset_after true or false).",
                          savedChildren: .made("cell", className: "GRUCell", name: "gru_cell"), factory: GRUCell.factory)
        registry.register("Bidirectional", origin: "builtin", summary: "Runs any registered recurrent layer forwards and backwards and merges the two.",
                          savedChildren: SavedChildren { spec in
                              // Keras's copies: `forward_<name>`, and `backward_<name>` unless a backward layer is given.
                              let layer = try SavingWalk.nestedSpec(spec, key: "layer")
                              func copy(_ prefix: String) -> LayerSpec {
                                  var copy = layer
                                  copy.name = prefix + (layer.name.hasPrefix(prefix) ? String(layer.name.dropFirst(prefix.count)) : layer.name)
                                  return copy
                              }
                              let given = spec.config["backward_layer"].map { !$0.isNull } ?? false
                              let backward = given ? try SavingWalk.nestedSpec(spec, key: "backward_layer") : copy("backward_")
                              return [SavedChild("forward_layer", .layer(copy("forward_"))), SavedChild("backward_layer", .layer(backward))]
                          },
                          factory: Bidirectional.factory)
    }
}

/// "4 units" for a vector state, "an image (3, 3, 2)" for a ConvLSTM's.
func describeUnits(_ shape: [Int]) -> String {
    shape.count == 1 ? "\(shape[0]) units" : "an image \(describeShape(shape.map(Optional.some)))"
}

/// `count` floats whose values the caller overwrites before reading any of them.
@inline(__always)
func uninitializedFloats(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}
