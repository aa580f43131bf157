/// How a sliding window (a convolution kernel or a pooling window) is padded along one axis,
/// as Keras names it.
package enum WindowPadding: String, Sendable, Equatable {
    /// No padding: only windows that fit inside the input.
    case valid
    /// TensorFlow's "same": ceil(input / stride) outputs; the padding is split with the extra cell
    /// after (bottom/right), so an even kernel or a stride pads more at the end.
    case same
    /// Conv1D only: (span - 1) cells before, none after, so output t never sees input after t.
    case causal
}

/// Where a sliding window sits along one spatial axis: output position `o` reads input positions
/// `o·stride - padBefore + i·dilation` for i in 0..<size; positions outside the input are padding.
package struct WindowAxis: Sendable, Equatable {
    package var input: Int
    package var size: Int
    package var stride: Int
    package var dilation: Int
    package var padBefore: Int
    package var output: Int

    package init(input: Int, size: Int, stride: Int, dilation: Int, padBefore: Int, output: Int) {
        self.input = input
        self.size = size
        self.stride = stride
        self.dilation = dilation
        self.padBefore = padBefore
        self.output = output
    }

    /// The extent the window covers: (size - 1)·dilation + 1.
    package var span: Int { (size - 1) * dilation + 1 }

    /// Places a window of `size` over `input` cells as Keras (TensorFlow) does, nil when no output
    /// position fits (a "valid" window wider than its input).
    ///
    /// valid: output = ⌊(input - span) / stride⌋ + 1, no padding.
    /// same: output = ⌈input / stride⌉, total = max((output - 1)·stride + span - input, 0), before = ⌊total / 2⌋.
    /// causal: before = span - 1, output = ⌈input / stride⌉.
    package static func place(input: Int, size: Int, stride: Int, dilation: Int = 1, padding: WindowPadding) -> WindowAxis? {
        guard input > 0, size > 0, stride > 0, dilation > 0 else { return nil }
        let span = (size - 1) * dilation + 1
        switch padding {
        case .valid:
            guard input >= span else { return nil }
            return WindowAxis(input: input, size: size, stride: stride, dilation: dilation, padBefore: 0,
                              output: (input - span) / stride + 1)
        case .same:
            let output = (input + stride - 1) / stride
            let total = max((output - 1) * stride + span - input, 0)
            return WindowAxis(input: input, size: size, stride: stride, dilation: dilation, padBefore: total / 2, output: output)
        case .causal:
            return WindowAxis(input: input, size: size, stride: stride, dilation: dilation, padBefore: span - 1,
                              output: (input + stride - 1) / stride)
        }
    }

    /// The window taps of output position `position` that fall inside the input: `first..<end`
    /// in tap units (multiply by dilation, add `start`, for the input position).
    @inlinable
    package func taps(at position: Int) -> (start: Int, first: Int, end: Int) {
        let start = position * stride - padBefore
        var first = 0
        if start < 0 { first = min((-start + dilation - 1) / dilation, size) }
        var end = size
        let last = start + (size - 1) * dilation
        if last >= input { end = size - (last - input) / dilation - 1 }
        return (start, first, max(end, first))
    }
}
