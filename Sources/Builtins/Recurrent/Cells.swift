import CKernels
import LayerRegistry

/// `SimpleRNN`: h' = activation(x·kernel + bias + h·recurrent_kernel).
/// Weights: `kernel` (features, units), `recurrent_kernel` (units, units), `bias` (units).
public struct SimpleRNNCell: RecurrentCell {
    public let units: Int
    public let kernel: Weight
    public let recurrentKernel: Weight
    public let inputBias: Weight?
    public let activation: Activation
    /// recurrent_kernel packed at load for the AVX2 kernel (nil where it does not run).
    let packedRecurrent: PackedKernel?
    public var gateWidth: Int { units }
    public var stateCount: Int { 1 }
    public var scratchPerRow: Int { 0 }

    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        let sequence = try SequenceOptions.read(context)
        let cell = try make(context, options: CellOptions.read(context, defaultRecurrent: nil))
        return try RecurrentCall.make(RecurrentLayer(cell: cell, options: sequence, context: context), returnState: sequence.returnState, context: context)
    }

    /// The cell whose config and weights `context` holds (the SimpleRNN layer's, or a SimpleRNNCell's).
    static func make(_ context: LayerContext, options: CellOptions) throws -> SimpleRNNCell {
        let features = try context.inputDimension(-1), units = options.units
        // Keras's creation order (kernel, recurrent_kernel, bias), which a .keras file numbers by.
        let kernel = try context.weight("kernel", shape: [features, units])
        let recurrentKernel = try context.weight("recurrent_kernel", shape: [units, units])
        return SimpleRNNCell(units: units, kernel: kernel,
                             recurrentKernel: recurrentKernel,
                             inputBias: options.useBias ? try context.weight("bias", shape: [units]) : nil,
                             activation: options.activation,
                             packedRecurrent: PackedKernel(recurrentKernel, patch: units, filters: units, groups: 1))
    }

    public func step(projected: UnsafeMutablePointer<Float>, states: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        Gemm.gemm(states, lda: units, recurrentKernel.values.baseAddress!, ldb: units, projected, ldc: units, m: rows, n: units, k: units,
                  accumulate: true, packed: packedRecurrent)
        activation.apply(UnsafeMutableBufferPointer(start: projected, count: rows * units), axisLength: units)
        states.update(from: projected, count: rows * units)
    }
}

/// `LSTM`, gates in Keras's column order i, f, c, o:
/// z = x·kernel + bias + h·recurrent_kernel; c' = σ(z_f)·c + σ(z_i)·act(z_c); h' = σ(z_o)·act(c').
/// Weights: `kernel` (features, 4·units), `recurrent_kernel` (units, 4·units), `bias` (4·units).
public struct LSTMCell: RecurrentCell {
    public let units: Int
    public let kernel: Weight
    public let recurrentKernel: Weight
    public let inputBias: Weight?
    public let activation: Activation
    public let recurrentActivation: Activation
    /// recurrent_kernel packed at load for the AVX2 kernel (nil where it does not run).
    let packedRecurrent: PackedKernel?
    public var gateWidth: Int { 4 * units }
    public var stateCount: Int { 2 }
    public var scratchPerRow: Int { 0 }

    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        let sequence = try SequenceOptions.read(context)
        let cell = try make(context, options: CellOptions.read(context, defaultRecurrent: "sigmoid"))
        return try RecurrentCall.make(RecurrentLayer(cell: cell, options: sequence, context: context), returnState: sequence.returnState, context: context)
    }

    /// The cell whose config and weights `context` holds (the LSTM layer's, or an LSTMCell's).
    static func make(_ context: LayerContext, options: CellOptions) throws -> LSTMCell {
        let features = try context.inputDimension(-1), units = options.units
        // Keras's creation order (kernel, recurrent_kernel, bias), which a .keras file numbers by.
        let kernel = try context.weight("kernel", shape: [features, 4 * units])
        let recurrentKernel = try context.weight("recurrent_kernel", shape: [units, 4 * units])
        return LSTMCell(units: units, kernel: kernel,
                        recurrentKernel: recurrentKernel,
                        inputBias: options.useBias ? try context.weight("bias", shape: [4 * units]) : nil,
                        activation: options.activation, recurrentActivation: options.recurrentActivation,
                        packedRecurrent: PackedKernel(recurrentKernel, patch: units, filters: 4 * units, groups: 1))
    }

    public func step(projected: UnsafeMutablePointer<Float>, states: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        let h = states, c = states + rows * units
        Gemm.gemm(h, lda: units, recurrentKernel.values.baseAddress!, ldb: 4 * units, projected, ldc: 4 * units, m: rows, n: 4 * units,
                  k: units, accumulate: true, packed: packedRecurrent)
        LSTMCell.gates(projected, h: h, c: c, rows: rows, units: units, activation: activation, recurrentActivation: recurrentActivation)
    }

    /// The gate arithmetic of one step, after the recurrent projection is added: z (rows × 4·units,
    /// gates i, f, c, o) is used as scratch; c (rows × units) and h (rows × units) are updated.
    /// ConvLSTM runs it with one row per pixel.
    static func gates(_ projected: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>, rows: Int, units: Int,
                      activation: Activation, recurrentActivation: Activation) {
        if Gemm.useAVX2Kernels, activation == .tanh, recurrentActivation == .sigmoid {
            // Keras's default activations: one fused 8-lane pass per row.
            for row in 0..<rows { nnb_lstm_gates(projected + row * 4 * units, c + row * units, h + row * units, units) }
            return
        }
        for row in 0..<rows {
            let z = projected + row * 4 * units
            let gates = UnsafeMutableBufferPointer(start: z, count: 4 * units)
            // i and f, then o: recurrent activation; c: activation.
            recurrentActivation.apply(UnsafeMutableBufferPointer(rebasing: gates[0..<(2 * units)]), axisLength: units)
            activation.apply(UnsafeMutableBufferPointer(rebasing: gates[(2 * units)..<(3 * units)]), axisLength: units)
            recurrentActivation.apply(UnsafeMutableBufferPointer(rebasing: gates[(3 * units)..<(4 * units)]), axisLength: units)
            let cRow = c + row * units
            for u in 0..<units { cRow[u] = z[units + u] * cRow[u] + z[u] * z[2 * units + u] }
            // h' = o · act(c'), computed in the c-gate slot to avoid another buffer.
            let cell = UnsafeMutableBufferPointer(start: z + 2 * units, count: units)
            cell.baseAddress!.update(from: cRow, count: units)
            activation.apply(cell, axisLength: units)
            let hRow = h + row * units
            for u in 0..<units { hRow[u] = z[3 * units + u] * cell[u] }
        }
    }
}

/// `GRU`, gates in Keras's column order z, r, h.
///
/// reset_after=true (default): bias (2, 3·units) = input bias, recurrent bias;
///   r multiplies (h·recurrent_kernel_h + recurrent_bias_h).
/// reset_after=false: bias (3·units,); ĥ = act(x·W_h + b_h + (r·h)·U_h).
/// h' = z·h + (1 − z)·ĥ. Weights: `kernel` (features, 3·units), `recurrent_kernel` (units, 3·units), `bias`.
public struct GRUCell: RecurrentCell {
    public let units: Int
    public let kernel: Weight
    public let recurrentKernel: Weight
    public let inputBias: Weight?
    /// reset_after only: the recurrent half of the bias, offset into the same tensor.
    public let recurrentBiasOffset: Int?
    public let resetAfter: Bool
    public let activation: Activation
    public let recurrentActivation: Activation
    /// recurrent_kernel packed at load for the AVX2 kernel: whole for reset_after=true, one group
    /// per gate (z, r, h) for reset_after=false, which multiplies by the h columns alone.
    let packedRecurrent: PackedKernel?
    public var gateWidth: Int { 3 * units }
    public var stateCount: Int { 1 }
    public var scratchPerRow: Int { 3 * units }

    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        let sequence = try SequenceOptions.read(context)
        let cell = try make(context, options: CellOptions.read(context, defaultRecurrent: "sigmoid"))
        return try RecurrentCall.make(RecurrentLayer(cell: cell, options: sequence, context: context), returnState: sequence.returnState, context: context)
    }

    /// The cell whose config and weights `context` holds (the GRU layer's, or a GRUCell's).
    /// Config: `reset_after` (true).
    static func make(_ context: LayerContext, options: CellOptions) throws -> GRUCell {
        let features = try context.inputDimension(-1), units = options.units
        let resetAfter = try context.bool("reset_after", default: true)
        // Keras's creation order (kernel, recurrent_kernel, bias), which a .keras file numbers by.
        let kernel = try context.weight("kernel", shape: [features, 3 * units])
        let recurrentKernel = try context.weight("recurrent_kernel", shape: [units, 3 * units])
        let bias = options.useBias ? try context.weight("bias", shape: resetAfter ? [2, 3 * units] : [3 * units]) : nil
        return GRUCell(units: units, kernel: kernel,
                       recurrentKernel: recurrentKernel,
                       inputBias: bias, recurrentBiasOffset: resetAfter && bias != nil ? 3 * units : nil,
                       resetAfter: resetAfter, activation: options.activation, recurrentActivation: options.recurrentActivation,
                       packedRecurrent: PackedKernel(recurrentKernel, patch: units, filters: 3 * units, groups: resetAfter ? 1 : 3))
    }

    public func step(projected: UnsafeMutablePointer<Float>, states: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        let u3 = 3 * units
        let h = states
        let recurrent = recurrentKernel.values.baseAddress!
        if resetAfter {
            // scratch = h·U (+ recurrent bias), all three gates.
            let recurrentBias = recurrentBiasOffset.flatMap { offset in inputBias.map { $0.values.baseAddress! + offset } }
            Gemm.gemm(h, lda: units, recurrent, ldb: u3, scratch, ldc: u3, m: rows, n: u3, k: units, accumulate: false,
                      bias: recurrentBias, packed: packedRecurrent)
            if Gemm.useAVX2Kernels, activation == .tanh, recurrentActivation == .sigmoid {
                // Keras's default activations: one fused vector pass per row (z, r, ĥ and h').
                for row in 0..<rows { nnb_gru_gates(projected + row * u3, scratch + row * u3, h + row * units, units) }
                return
            }
            for row in 0..<rows {
                let x = projected + row * u3, r = scratch + row * u3
                for j in 0..<(2 * units) { x[j] += r[j] }
                recurrentActivation.apply(UnsafeMutableBufferPointer(start: x, count: 2 * units), axisLength: units)
                for j in 0..<units { x[2 * units + j] += x[units + j] * r[2 * units + j] }
            }
        } else {
            // z and r from h·U_zr; then ĥ from (r·h)·U_h.
            for gate in 0..<2 {
                Gemm.gemm(h, lda: units, recurrent + gate * units, ldb: u3, scratch + gate * units, ldc: u3, m: rows, n: units, k: units,
                          accumulate: false, packed: packedRecurrent, group: gate)
            }
            for row in 0..<rows {
                let x = projected + row * u3, r = scratch + row * u3
                for j in 0..<(2 * units) { x[j] += r[j] }
                recurrentActivation.apply(UnsafeMutableBufferPointer(start: x, count: 2 * units), axisLength: units)
                for j in 0..<units { r[2 * units + j] = x[units + j] * h[row * units + j] }
            }
            Gemm.gemm(scratch + 2 * units, lda: u3, recurrent + 2 * units, ldb: u3, projected + 2 * units, ldc: u3,
                      m: rows, n: units, k: units, accumulate: true, packed: packedRecurrent, group: 2)
        }
        for row in 0..<rows {
            let x = projected + row * u3
            activation.apply(UnsafeMutableBufferPointer(start: x + 2 * units, count: units), axisLength: units)
            let hRow = h + row * units
            for j in 0..<units { hRow[j] = x[j] * hRow[j] + (1 - x[j]) * x[2 * units + j] }
        }
    }
}

/// How the fused-gate cells (GRU, LSTM) cut a step by units: parts of whole 16-column panels
/// (`SplitStepCell`).
enum UnitParts {
    /// Units a part takes at least. gru_text (128 units, 64 steps, batch 1) in two parts of 64
    /// went from 0.117 to 0.083 ms a call on the AMD EPYC (Zen 5): a step's product reads the
    /// 192 KB recurrent kernel from L2, and each part reads its share from its own core's. Parts
    /// of fewer units were not tried.
    static let minimumUnits = 64

    /// The parts for a cell of `units` units and `gates` gates on `threads` threads at `rows`
    /// rows: 1 unless the fused gate kernels run (`fused`), the units are a multiple of 16, and
    /// the step is too small for its product to split itself (`Gemm.threadedWork`).
    static func count(units: Int, gates: Int, rows: Int, threads: Int, fused: Bool) -> Int {
        guard threads > 1, fused, units % 16 == 0, rows * gates * units * units < Gemm.threadedWork else { return 1 }
        return max(1, min(threads, units / minimumUnits))
    }

    /// The units of part `part` of `parts`.
    static func range(_ part: Int, of parts: Int, units: Int) -> Range<Int> {
        let blocks = units / 16
        return (part * blocks / parts * 16)..<((part + 1) * blocks / parts * 16)
    }

    /// The columns of `units` (each of `gates` gates, `cellUnits` apart) of states · `recurrent`
    /// for `rows` rows, into (or, `accumulate`, added to) `into` of row stride gates · cellUnits.
    static func product(_ recurrent: PackedKernel, states: UnsafePointer<Float>, into: UnsafeMutablePointer<Float>, rows: Int,
                        gates: Int, cellUnits: Int, units: Range<Int>, accumulate: Bool, bias: UnsafePointer<Float>? = nil) {
        for gate in 0..<gates {
            let first = gate * cellUnits
            recurrent.multiply(states, lda: cellUnits, into: into, ldc: gates * cellUnits, m: rows,
                               columns: (first + units.lowerBound)..<(first + units.upperBound), accumulate: accumulate, bias: bias)
        }
    }
}

extension SimpleRNNCell: SplitStepCell {
    /// An element-wise activation (tanh, Keras's default; ReLU; linear) on the AVX2 or AVX-512
    /// kernels (`UnitParts`).
    func stepParts(rows: Int, threads: Int) -> Int {
        UnitParts.count(units: units, gates: 1, rows: rows, threads: threads,
                        fused: packedRecurrent != nil && [.tanh, .relu, .linear].contains(activation))
    }

    /// Its units' columns of h·U added to the projections, the activation on them, h' into `next`.
    func stepPart(_ part: Int, of parts: Int, projected: UnsafeMutablePointer<Float>, states: UnsafePointer<Float>,
                  next: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        guard let packedRecurrent else { return }
        let range = UnitParts.range(part, of: parts, units: units)
        guard !range.isEmpty else { return }
        UnitParts.product(packedRecurrent, states: states, into: projected, rows: rows, gates: 1, cellUnits: units, units: range, accumulate: true)
        for row in 0..<rows {
            let values = projected + row * units + range.lowerBound
            activation.apply(UnsafeMutableBufferPointer(start: values, count: range.count), axisLength: range.count)
            (next + row * units + range.lowerBound).update(from: values, count: range.count)
        }
    }
}

extension LSTMCell: SplitStepCell {
    /// Keras's default activations on the AVX2 or AVX-512 kernels (`UnitParts`).
    func stepParts(rows: Int, threads: Int) -> Int {
        UnitParts.count(units: units, gates: 4, rows: rows, threads: threads,
                        fused: packedRecurrent != nil && activation == .tanh && recurrentActivation == .sigmoid)
    }

    /// Its units' columns of h·U added to the projections for the four gates, then their gates
    /// (`nnb_lstm_gates_range`), h' and c' into `next`.
    func stepPart(_ part: Int, of parts: Int, projected: UnsafeMutablePointer<Float>, states: UnsafePointer<Float>,
                  next: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        guard let packedRecurrent else { return }
        let units4 = 4 * units, range = UnitParts.range(part, of: parts, units: units)
        guard !range.isEmpty else { return }
        UnitParts.product(packedRecurrent, states: states, into: projected, rows: rows, gates: 4, cellUnits: units, units: range, accumulate: true)
        let c = states + rows * units, nextC = next + rows * units
        for row in 0..<rows {
            let offset = row * units + range.lowerBound
            nnb_lstm_gates_range(projected + row * units4 + range.lowerBound, c + offset, nextC + offset, next + offset,
                                 units, range.count)
        }
    }
}

extension GRUCell: SplitStepCell {
    /// reset_after=True with Keras's default activations on the AVX2 or AVX-512 kernels
    /// (`UnitParts`).
    func stepParts(rows: Int, threads: Int) -> Int {
        UnitParts.count(units: units, gates: 3, rows: rows, threads: threads,
                        fused: resetAfter && packedRecurrent != nil && activation == .tanh && recurrentActivation == .sigmoid)
    }

    /// Its units' columns of h·U (+ recurrent bias) for the three gates, then their gates
    /// (`nnb_gru_gates_range`), h' into `next`.
    func stepPart(_ part: Int, of parts: Int, projected: UnsafeMutablePointer<Float>, states: UnsafePointer<Float>,
                  next: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        guard let packedRecurrent else { return }
        let u3 = 3 * units, range = UnitParts.range(part, of: parts, units: units)
        guard !range.isEmpty else { return }
        let recurrentBias = recurrentBiasOffset.flatMap { offset in inputBias.map { $0.values.baseAddress! + offset } }
        UnitParts.product(packedRecurrent, states: states, into: scratch, rows: rows, gates: 3, cellUnits: units, units: range,
                          accumulate: false, bias: recurrentBias)
        let first = range.lowerBound
        for row in 0..<rows {
            nnb_gru_gates_range(projected + row * u3 + first, scratch + row * u3 + first, states + row * units + first,
                                next + row * units + first, units, range.count)
        }
    }
}
