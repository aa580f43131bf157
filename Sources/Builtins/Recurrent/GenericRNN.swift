import LayerRegistry

/// Keras's generic `RNN` layer: a cell (`SimpleRNNCell`, `LSTMCell`, `GRUCell`, or
/// `StackedRNNCells` of them) run over the sequence. It runs on the same sequence runner and the
/// same cells as the SimpleRNN, LSTM and GRU layers (`RecurrentLayer`); only where the config and
/// the weights sit differs: the cell's keys are in `cell.config`, its weights under the cell's
/// name (`rnn/lstm_cell/kernel`, `rnn/stacked_rnn_cells/gru_cell/kernel`).
///
/// Config: `cell` (a cell object, or a list of them as a stack), and the sequence options every
/// recurrent layer reads (`SequenceOptions`).
enum GenericRNN {
    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        let sequence = try SequenceOptions.read(context)
        let cell: any RecurrentCell
        if case .array? = context.value("cell") {
            // A list of cells, as `RNN([cell, cell])` writes it: a stack.
            cell = try StackedCell.stack(context.nestedSpecs("cell"), key: "cell", context: context)
        } else {
            cell = try CellLayer.build(context.nestedSpec("cell"), key: "cell", inputShape: context.inputShape, context: context)
        }
        return try RecurrentCall.make(RecurrentLayer(cell: cell, options: sequence, context: context), returnState: sequence.returnState, context: context)
    }
}

/// A cell built through the registry from its nested spec (`SimpleRNNCell`, `LSTMCell`, `GRUCell`,
/// `StackedRNNCells`), for the RNN layer that holds it. A cell steps a sequence only inside an RNN
/// layer: as a model's own layer it is refused when called.
struct CellLayer: Layer {
    let cell: any RecurrentCell
    let className: String
    var outputShape: [Int?] { [cell.units] }

    func forward(_ input: Tensor) throws -> Tensor {
        throw NNError(.input, className, "a recurrent cell runs only inside an RNN layer (RNN(cell=...)), not as a model's own layer")
    }

    /// The factory of a single cell type: its config (`CellOptions` and the cell's own keys) and
    /// its weights, for an input of (steps, features).
    static func factory(_ make: @escaping @Sendable (LayerContext, CellOptions) throws -> any RecurrentCell,
                        defaultRecurrent: String?) -> @Sendable (LayerContext) throws -> any NodeLayer {
        { context in
            try context.requireRank(2, meaning: "(batch, steps, features): a cell runs inside an RNN layer")
            return CellLayer(cell: try make(context, CellOptions.read(context, defaultRecurrent: defaultRecurrent)), className: context.spec.className)
        }
    }

    /// The cell of `spec`, nested in `context`'s layer under config key `key`, reading `inputShape`.
    static func build(_ spec: LayerSpec, key: String, inputShape: [Int?], context: LayerContext) throws -> any RecurrentCell {
        let layer = try context.buildNested(spec, inputShape: inputShape)
        guard let cellLayer = layer as? CellLayer else {
            throw context.error("'\(key)' must be a recurrent cell (SimpleRNNCell, LSTMCell, GRUCell or StackedRNNCells), found \(spec.className) '\(spec.name)'", key: key)
        }
        return cellLayer.cell
    }
}

/// `StackedRNNCells`: cells applied one after another at each step, each reading the output of
/// the one before; the output is the last cell's. The states are every cell's states, in cell
/// order, as Keras lists them. The first cell's input projection is done for all steps at once by
/// the runner; the others' are made per step from the previous cell's fresh output.
struct StackedCell: RecurrentCell {
    let cells: [any RecurrentCell]
    /// The kernels of cells 1... packed at load for the AVX2 GEMM (nil where it does not run).
    let packedKernels: [PackedKernel?]

    var units: Int { cells[cells.count - 1].units }
    var gateWidth: Int { cells[0].gateWidth }
    var kernel: Weight { cells[0].kernel }
    var inputBias: Weight? { cells[0].inputBias }
    var stateCount: Int { cells.reduce(0) { $0 + $1.stateCount } }
    var stateWidths: [Int] { cells.flatMap(\.stateWidths) }
    var outputState: Int { stateCount - cells[cells.count - 1].stateCount + cells[cells.count - 1].outputState }
    var stateNames: [String] {
        cells.enumerated().flatMap { index, cell in cell.stateNames.map { "cell \(index) \($0)" } }
    }
    /// Cell 0's scratch, or for a later cell its projection (gate width) then its own scratch.
    var scratchPerRow: Int {
        cells.enumerated().map { index, cell in (index == 0 ? 0 : cell.gateWidth) + cell.scratchPerRow }.max() ?? 0
    }

    /// Config: `cells` (a list of cell objects); Keras 2's `reverse_state_order` (false) is refused when true.
    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        if try context.bool("reverse_state_order", default: false) {
            throw context.error("reverse_state_order=true (old Keras 2) is not supported; expected false, the cells' states in cell order", key: "reverse_state_order")
        }
        try context.requireRank(2, meaning: "(batch, steps, features): a cell runs inside an RNN layer")
        return CellLayer(cell: try stack(context.nestedSpecs("cells"), key: "cells", context: context), className: context.spec.className)
    }

    /// The stack of the cells `specs`, each reading the previous one's output.
    static func stack(_ specs: [LayerSpec], key: String, context: LayerContext) throws -> StackedCell {
        guard !specs.isEmpty else { throw context.error("'\(key)' must hold at least one cell, found an empty list", key: key) }
        var cells: [any RecurrentCell] = []
        var inputShape = context.inputShape
        for (index, spec) in specs.enumerated() {
            let cell = try CellLayer.build(spec, key: "\(key)[\(index)]", inputShape: inputShape, context: context)
            cells.append(cell)
            inputShape = [inputShape.first ?? nil, cell.units]
        }
        let packed = cells.indices.map { index in
            index == 0 ? nil : PackedKernel(cells[index].kernel, patch: cells[index - 1].units, filters: cells[index].gateWidth, groups: 1)
        }
        return StackedCell(cells: cells, packedKernels: packed)
    }

    func step(projected: UnsafeMutablePointer<Float>, states: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        var start = 0, previousOutput = states
        for (index, cell) in cells.enumerated() {
            let cellStates = states + start
            if index == 0 {
                cell.step(projected: projected, states: cellStates, rows: rows, scratch: scratch)
            } else {
                // x·kernel + bias for this cell, x being the previous cell's output of this step.
                let width = cell.gateWidth, features = cells[index - 1].units
                if cell.inputBias == nil { scratch.update(repeating: 0, count: rows * width) }
                Gemm.gemm(previousOutput, lda: features, cell.kernel.values.baseAddress!, ldb: width, scratch, ldc: width,
                          m: rows, n: width, k: features, accumulate: false, bias: cell.inputBias?.values.baseAddress,
                          packed: packedKernels[index])
                cell.step(projected: scratch, states: cellStates, rows: rows, scratch: scratch + rows * width)
            }
            let offsets = cell.stateOffsets(rows: rows)
            previousOutput = cellStates + offsets[cell.outputState]
            start += offsets[cell.stateCount]
        }
    }
}

extension Builtins {
    static func registerGenericRNN(_ registry: LayerRegistry) {
        registry.register("RNN", origin: "builtin", summary: "Runs a recurrent cell (SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells) over the sequence.",
                          savedChildren: SavedChildren { spec in
                              // Keras wraps a list of cells in a StackedRNNCells.
                              guard case let .array(cells)? = spec.config["cell"] else { return try SavedChildren.nested("cell", key: "cell").children(spec) }
                              let stacked = LayerSpec(className: "StackedRNNCells", name: "stacked_rnn_cells", config: .object([("cells", .array(cells))]), path: spec.path + ".config")
                              return [SavedChild("cell", .layer(stacked))]
                          },
                          factory: GenericRNN.factory)
        registry.register("SimpleRNNCell", origin: "builtin", summary: "The cell of SimpleRNN, inside an RNN layer.",
                          factory: CellLayer.factory({ try SimpleRNNCell.make($0, options: $1) }, defaultRecurrent: nil))
        registry.register("LSTMCell", origin: "builtin", summary: "The cell of LSTM, inside an RNN layer.",
                          factory: CellLayer.factory({ try LSTMCell.make($0, options: $1) }, defaultRecurrent: "sigmoid"))
        registry.register("GRUCell", origin: "builtin", summary: "The cell of GRU, inside an RNN layer.",
                          factory: CellLayer.factory({ try GRUCell.make($0, options: $1) }, defaultRecurrent: "sigmoid"))
        registry.register("StackedRNNCells", origin: "builtin", summary: "Recurrent cells applied one after another at each step, inside an RNN layer.",
                          savedChildren: .nestedList("cells", key: "cells"), factory: StackedCell.factory)
    }
}
