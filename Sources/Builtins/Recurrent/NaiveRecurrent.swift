/// The naive twin of `RecurrentLayer` and its cells: one row, one step, one unit at a time, in
/// double precision, straight from the Keras formulas. Tests compare the fast path against it.
public enum NaiveRecurrent {
    public enum Kind: Sendable { case simple, lstm, gru(resetAfter: Bool) }

    /// x (batch, steps, features) → (batch, steps, units) or (batch, units).
    public static func run(_ kind: Kind, x: [Float], batch: Int, steps: Int, features: Int, units: Int,
                           kernel: [Float], recurrentKernel: [Float], bias: [Float]?, activation: Activation = .tanh,
                           recurrentActivation: Activation = .sigmoid, mask: [Bool]? = nil, goBackwards: Bool = false,
                           returnSequences: Bool = false, zeroOutputForMask: Bool = false) -> [Float] {
        runWithStates(kind, x: x, batch: batch, steps: steps, features: features, units: units, kernel: kernel,
                      recurrentKernel: recurrentKernel, bias: bias, activation: activation, recurrentActivation: recurrentActivation,
                      mask: mask, goBackwards: goBackwards, returnSequences: returnSequences, zeroOutputForMask: zeroOutputForMask).output
    }

    /// The same run from initial states h0 (and c0 for LSTM), each (batch, units), zeros when nil;
    /// also returns the final h and c (c is zeros except for LSTM).
    public static func runWithStates(_ kind: Kind, x: [Float], batch: Int, steps: Int, features: Int, units: Int,
                                     kernel: [Float], recurrentKernel: [Float], bias: [Float]?, activation: Activation = .tanh,
                                     recurrentActivation: Activation = .sigmoid, mask: [Bool]? = nil, goBackwards: Bool = false,
                                     returnSequences: Bool = false, zeroOutputForMask: Bool = false,
                                     initialH: [Float]? = nil, initialC: [Float]? = nil) -> (output: [Float], h: [Float], c: [Float]) {
        let gates: Int
        switch kind {
        case .simple: gates = 1
        case .lstm: gates = 4
        case .gru: gates = 3
        }
        let width = gates * units
        func act(_ f: Activation, _ v: Double) -> Double {
            var value = [Float(v)]
            f.apply(&value, axisLength: 1)
            return Double(value[0])
        }
        var output = [Float](repeating: 0, count: returnSequences ? batch * steps * units : batch * units)
        var finalH = [Float](repeating: 0, count: batch * units), finalC = finalH
        for b in 0..<batch {
            var h = (0..<units).map { Double(initialH?[b * units + $0] ?? 0) }
            var c = (0..<units).map { Double(initialC?[b * units + $0] ?? 0) }
            // The output of a masked step before any real one is zeros, whatever the initial state.
            var last = [Double](repeating: 0, count: units)
            for position in 0..<steps {
                let t = goBackwards ? steps - 1 - position : position
                let valid = mask?[b * steps + t] ?? true
                if valid {
                    // Input and recurrent projections, per gate column.
                    var xw = [Double](repeating: 0, count: width), hu = xw
                    for j in 0..<width {
                        for f in 0..<features { xw[j] += Double(x[(b * steps + t) * features + f]) * Double(kernel[f * width + j]) }
                        for k in 0..<units { hu[j] += h[k] * Double(recurrentKernel[k * width + j]) }
                    }
                    switch kind {
                    case .simple:
                        h = (0..<units).map { act(activation, xw[$0] + hu[$0] + Double(bias?[$0] ?? 0)) }
                    case .lstm:
                        var outputGate = [Double](repeating: 0, count: units)
                        for u in 0..<units {
                            func z(_ gate: Int) -> Double { xw[gate * units + u] + hu[gate * units + u] + Double(bias?[gate * units + u] ?? 0) }
                            let i = act(recurrentActivation, z(0)), f = act(recurrentActivation, z(1))
                            let g = act(activation, z(2))
                            outputGate[u] = act(recurrentActivation, z(3))
                            c[u] = f * c[u] + i * g
                        }
                        h = (0..<units).map { u in outputGate[u] * act(activation, c[u]) }
                    case let .gru(resetAfter):
                        let inputBias = { (j: Int) in Double(bias?[j] ?? 0) }
                        let recurrentBias = { (j: Int) in resetAfter ? Double(bias?[width + j] ?? 0) : 0 }
                        var next = h
                        for u in 0..<units {
                            let z = act(recurrentActivation, xw[u] + inputBias(u) + hu[u] + recurrentBias(u))
                            let r = act(recurrentActivation, xw[units + u] + inputBias(units + u) + hu[units + u] + recurrentBias(units + u))
                            let candidate: Double
                            if resetAfter {
                                candidate = act(activation, xw[2 * units + u] + inputBias(2 * units + u) + r * (hu[2 * units + u] + recurrentBias(2 * units + u)))
                            } else {
                                var reset = 0.0
                                for k in 0..<units {
                                    let rk = act(recurrentActivation, xw[units + k] + inputBias(units + k) + hu[units + k])
                                    reset += rk * h[k] * Double(recurrentKernel[k * width + 2 * units + u])
                                }
                                candidate = act(activation, xw[2 * units + u] + inputBias(2 * units + u) + reset)
                            }
                            next[u] = z * h[u] + (1 - z) * candidate
                        }
                        h = next
                    }
                    last = h
                }
                if returnSequences {
                    for u in 0..<units {
                        output[(b * steps + position) * units + u] = Float(valid ? h[u] : (zeroOutputForMask ? 0 : last[u]))
                    }
                }
            }
            if !returnSequences {
                // The last processed step's output: zeros when it was masked and zero_output_for_mask.
                let finalValid = mask?[b * steps + (goBackwards ? 0 : steps - 1)] ?? true
                for u in 0..<units { output[b * units + u] = zeroOutputForMask && !finalValid ? 0 : Float(last[u]) }
            }
            for u in 0..<units {
                finalH[b * units + u] = Float(h[u])
                finalC[b * units + u] = Float(c[u])
            }
        }
        return (output, finalH, finalC)
    }
}
