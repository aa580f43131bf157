import Foundation
import XCTest
@testable import Builtins
import LayerRegistry

/// Small models of one Keras 3 operation, written as Keras 3.15's `to_json()` writes them.
enum OperationText {
    static func tensor(_ name: String, _ shape: [Int?]) -> String {
        let dims = ([nil] + shape).map { $0.map(String.init) ?? "null" }.joined(separator: ", ")
        return #"{"class_name": "__keras_tensor__", "config": {"shape": [\#(dims)], "dtype": "float32", "keras_history": ["\#(name)", 0, 0]}}"#
    }

    /// A model of inputs `inputs` and one operation `className` whose `args` name the inputs as
    /// `$x`, `$y` (replaced by their tensors).
    static func json(inputs: [(String, [Int?])], className: String, module: String = "keras.src.ops.numpy",
                     config: String = "", args: String) -> String {
        var layers = inputs.map { name, shape in
            let dims = ([nil] + shape).map { $0.map(String.init) ?? "null" }.joined(separator: ", ")
            return #"{"module": "keras.layers", "class_name": "InputLayer", "name": "\#(name)", "config": {"batch_shape": [\#(dims)], "dtype": "float32", "name": "\#(name)"}, "inbound_nodes": []}"#
        }
        var arguments = args
        for (name, shape) in inputs { arguments = arguments.replacingOccurrences(of: "$\(name)", with: tensor(name, shape)) }
        let extra = config.isEmpty ? "" : ", \(config)"
        layers.append(#"{"module": "\#(module)", "class_name": "\#(className)", "registered_name": "\#(className)", "name": "op", "config": {"name": "op"\#(extra)}, "inbound_nodes": [{"args": [\#(arguments)], "kwargs": {}}]}"#)
        let ins = inputs.map { #"["\#($0.0)", 0, 0]"# }.joined(separator: ", ")
        return #"{"module": "keras", "class_name": "Functional", "config": {"name": "m", "layers": [\#(layers.joined(separator: ", "))], "input_layers": [\#(ins)], "output_layers": [["op", 0, 0]]}}"#
    }

    static func model(inputs: [(String, [Int?])], className: String, module: String = "keras.src.ops.numpy", config: String = "",
                      args: String) throws -> Model {
        let description = try ModelDescription.parse(json(inputs: inputs, className: className, module: module, config: config, args: args),
                                                     source: "m.json")
        return try Model.build(description, registry: .withBuiltins(), weights: nil)
    }

    static func run(inputs: [(String, [Int?])], className: String, module: String = "keras.src.ops.numpy", config: String = "",
                    args: String, _ tensors: [Tensor]) throws -> Tensor {
        try model(inputs: inputs, className: className, module: module, config: config, args: args).predict(tensors)[0]
    }

    /// The build error's text, nil when the model builds.
    static func refusal(inputs: [(String, [Int?])], className: String, module: String = "keras.src.ops.numpy", config: String = "",
                        args: String) -> String? {
        do {
            _ = try model(inputs: inputs, className: className, module: module, config: config, args: args)
            return nil
        } catch {
            return error.nnProblems.joined(separator: "\n")
        }
    }
}

final class OperationsTests: XCTestCase {
    static let slice = #"{"class_name": "__slice__", "config": {"start": null, "stop": null, "step": null}}"#
    static func slice(_ start: Int?, _ stop: Int?, _ step: Int?) -> String {
        func text(_ value: Int?) -> String { value.map(String.init) ?? "null" }
        return #"{"class_name": "__slice__", "config": {"start": \#(text(start)), "stop": \#(text(stop)), "step": \#(text(step))}}"#
    }

    func testArithmeticBroadcastsTensorsAndConstantsAsNumPyDoes() throws {
        let x = Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 6])
        // A constant of the sample's trailing shape, and a __tensor__ constant.
        XCTAssertEqual(try OperationText.run(inputs: [("x", [2, 3])], className: "Add", args: "$x, [10, 20, 30]", [x]).data,
                       [11, 22, 33, 14, 25, 36])
        XCTAssertEqual(try OperationText.run(inputs: [("x", [2, 3])], className: "TrueDivide",
                                             args: #"$x, {"class_name": "__tensor__", "config": {"value": [[1.0], [2.0]], "dtype": "float32"}}"#, [x]).data,
                       [1, 2, 3, 2, 2.5, 3])
        // A constant first: 1 - x; and power by a scalar.
        XCTAssertEqual(try OperationText.run(inputs: [("x", [2, 3])], className: "Subtract", args: "1.0, $x", [x]).data, [0, -1, -2, -3, -4, -5])
        XCTAssertEqual(try OperationText.run(inputs: [("x", [2, 3])], className: "Power", args: "$x, 2", [x]).data, [1, 4, 9, 16, 25, 36])
        // Two tensors whose sample axes stretch both ways.
        let out = try OperationText.run(inputs: [("x", [2, 1]), ("y", [1, 3])], className: "Multiply", args: "$x, $y",
                                        [Tensor(shape: [1, 2, 1], data: [1, 2]), Tensor(shape: [1, 1, 3], data: [1, 10, 100])])
        XCTAssertEqual(out.shape, [1, 2, 3])
        XCTAssertEqual(out.data, [1, 10, 100, 2, 20, 200])
        // Comparisons and logic give 1 and 0.
        XCTAssertEqual(try OperationText.run(inputs: [("x", [2, 3])], className: "NotEqual", args: "$x, 2", [x]).data, [1, 0, 1, 1, 1, 1])
        XCTAssertEqual(try OperationText.run(inputs: [("x", [2, 3])], className: "LogicalOr", args: "$x, false",
                                             [Tensor(shape: [1, 2, 3], data: [0, 1, 0, 2, 0, 0])]).data, [0, 1, 0, 1, 0, 0])
    }

    /// Every binary operation and where(), broadcast (2, 1) against (1, 3), against NumPy's formula
    /// written out here, values chosen to hit zeros, equal pairs, negatives and fractions.
    func testEveryBinaryOperationAndWhereMatchTheirFormula() throws {
        let x: [Float] = [-1.5, 2], y: [Float] = [0, 2, -0.75]
        let formulas: [(String, (Float, Float) -> Float)] = [
            ("Add", { $0 + $1 }), ("Subtract", { $0 - $1 }), ("Multiply", { $0 * $1 }), ("Divide", { $0 / $1 }),
            ("TrueDivide", { $0 / $1 }), ("Power", { Foundation.pow($0, $1) }), ("FloorDivide", { ($0 / $1).rounded(.down) }),
            ("Mod", { $0 - ($0 / $1).rounded(.down) * $1 }), ("Maximum", { max($0, $1) }), ("Minimum", { min($0, $1) }),
            ("Equal", { $0 == $1 ? 1 : 0 }), ("NotEqual", { $0 != $1 ? 1 : 0 }), ("Greater", { $0 > $1 ? 1 : 0 }),
            ("GreaterEqual", { $0 >= $1 ? 1 : 0 }), ("Less", { $0 < $1 ? 1 : 0 }), ("LessEqual", { $0 <= $1 ? 1 : 0 }),
            ("LogicalAnd", { $0 != 0 && $1 != 0 ? 1 : 0 }), ("LogicalOr", { $0 != 0 || $1 != 0 ? 1 : 0 }),
            ("LogicalXor", { ($0 != 0) != ($1 != 0) ? 1 : 0 }),
        ]
        // (2, 1) against (1, 3), then the rows the walk runs in loops of their own: both operands
        // along the last axis, and only the first (against (2, 1)), or only the second.
        let full: [Float] = [-1.5, 2, 0, 0, -0.75, 3], other: [Float] = [0, 2, -0.75, 1, 0, 3]
        let cases: [(shapes: [[Int?]], data: [[Float]], want: (Int, Int) -> (Float, Float))] = [
            ([[2, 1], [1, 3]], [x, y], { row, column in (x[row], y[column]) }),
            ([[2, 3], [2, 3]], [full, other], { row, column in (full[row * 3 + column], other[row * 3 + column]) }),
            ([[2, 3], [2, 1]], [full, x], { row, column in (full[row * 3 + column], x[row]) }),
            ([[2, 1], [2, 3]], [x, other], { row, column in (x[row], other[row * 3 + column]) }),
        ]
        for (shapes, data, operands) in cases {
            let inputs = zip(shapes, data).map { shape, values in Tensor(shape: [1] + shape.map { $0 ?? 1 }, data: values) }
            for (name, formula) in formulas {
                let out = try OperationText.run(inputs: [("x", shapes[0]), ("y", shapes[1])], className: name, args: "$x, $y", inputs)
                XCTAssertEqual(out.shape, [1, 2, 3], name)
                let want = (0..<6).map { index in
                    let (a, b) = operands(index / 3, index % 3)
                    return formula(a, b)
                }
                XCTAssertEqual(out.data.map(\.bitPattern), want.map(\.bitPattern), "\(name) \(shapes): \(out.data) against \(want)")
            }
        }
        let condition = Tensor(shape: [1, 2, 1], data: [0, 3])
        let picked = try OperationText.run(inputs: [("c", [2, 1]), ("x", [1, 3]), ("y", [2, 3])], className: "Where", args: "$c, $x, $y",
                                           [condition, Tensor(shape: [1, 1, 3], data: y), Tensor(shape: [1, 2, 3], data: [9, 8, 7, 6, 5, 4])])
        XCTAssertEqual(picked.data, [9, 8, 7, 0, 2, -0.75])
    }

    func testBroadcastingThatWouldMoveTheBatchAxisIsRefused() {
        let fewer = OperationText.refusal(inputs: [("x", [4, 3]), ("y", [3])], className: "Add", args: "$x, $y")
        XCTAssertTrue(fewer?.contains("operation 'op' (Add from keras.src.ops.numpy) called on ['x', 'y']: operand 1 of shape (None, 3) has fewer axes than the output's 3: broadcasting would align its batch axis with axis 1") == true, fewer ?? "built")
        let sized = OperationText.refusal(inputs: [("x", [3])], className: "Add", args: "$x, [[1, 2, 3], [4, 5, 6]]")
        XCTAssertTrue(sized?.contains("constant operand 1 of shape [2, 3] is sized along the batch axis") == true, sized ?? "built")
        let mismatch = OperationText.refusal(inputs: [("x", [4, 3])], className: "Multiply", args: "$x, [1, 2]")
        XCTAssertTrue(mismatch?.contains("operands of shapes (None, 4, 3), (2,) do not broadcast (axis 2)") == true, mismatch ?? "built")
    }

    func testSlicePositionsFollowPython() {
        func positions(_ start: Int?, _ stop: Int?, _ step: Int, _ length: Int) -> [Int] {
            IndexItem.positions(start: start, stop: stop, step: step, length: length)
        }
        // Python: list(range(5))[::-2], [-1:0:-2], list(range(3))[10::-1], [-10:2], [:-10:-1], [1:4], [3:1], [-2:]
        XCTAssertEqual(positions(nil, nil, -2, 5), [4, 2, 0])
        XCTAssertEqual(positions(-1, 0, -2, 5), [4, 2])
        XCTAssertEqual(positions(10, nil, -1, 3), [2, 1, 0])
        XCTAssertEqual(positions(-10, 2, 1, 5), [0, 1])
        XCTAssertEqual(positions(nil, -10, -1, 5), [4, 3, 2, 1, 0])
        XCTAssertEqual(positions(1, 4, 1, 5), [1, 2, 3])
        XCTAssertEqual(positions(3, 1, 1, 5), [])
        XCTAssertEqual(positions(-2, nil, 1, 5), [3, 4])
        // Steps and bounds from a file may be as large as an Int64: no overflow.
        XCTAssertEqual(positions(3, nil, Int.max, 5), [3])
        XCTAssertEqual(positions(nil, Int.min, Int.min, 5), [4])
        XCTAssertEqual(positions(Int.min, Int.max, 2, 5), [0, 2, 4])
    }

    func testGetItemTakesEachIndexForm() throws {
        let x = Tensor(shape: [1, 2, 3], data: [0, 1, 2, 3, 4, 5])
        func get(_ key: String) throws -> Tensor {
            try OperationText.run(inputs: [("x", [2, 3])], className: "GetItem", args: "$x, \(key)", [x])
        }
        let full = Self.slice
        XCTAssertEqual(try get("[\(full), -1, \(full)]").data, [3, 4, 5])
        XCTAssertEqual(try get("[\(full), -1, \(full)]").shape, [1, 3])
        XCTAssertEqual(try get("[\(full), \(full), \(Self.slice(nil, nil, -1))]").data, [2, 1, 0, 5, 4, 3])
        XCTAssertEqual(try get("[\(full), \(Self.slice(nil, nil, -1)), \(Self.slice(-1, 0, -2))]").data, [5, 2])
        XCTAssertEqual(try get("[\(full), \(full), \(Self.slice(1, nil, nil))]").data, [1, 2, 4, 5])
        let ellipsis = try get(#"[{"class_name": "__ellipsis__", "config": {}}, null, 0]"#)
        XCTAssertEqual(ellipsis.shape, [1, 2, 1])
        XCTAssertEqual(ellipsis.data, [0, 3])
        XCTAssertEqual(try get("[\(full), 1]").data, [3, 4, 5])
        XCTAssertEqual(try get("[\(full), \(full), null, 2]").shape, [1, 2, 1])
    }

    func testGetItemRefusesTheBatchAxisAndBadIndices() {
        func refusal(_ key: String) -> String {
            OperationText.refusal(inputs: [("x", [2, 3])], className: "GetItem", args: "$x, \(key)") ?? "built"
        }
        XCTAssertTrue(refusal("0").contains("the index selects along the batch axis"), refusal("0"))
        XCTAssertTrue(refusal("[\(Self.slice(1, nil, nil)), 0]").contains("selects along the batch axis"))
        XCTAssertTrue(refusal("[null, \(Self.slice)]").contains("inserts an axis before the batch axis"))
        XCTAssertTrue(refusal("[\(Self.slice), 2]").contains("index 2 is out of range for axis 1 of size 2"), refusal("[\(Self.slice), 2]"))
        XCTAssertTrue(refusal("[\(Self.slice), \(Self.slice(nil, nil, 0))]").contains("slice step must not be zero"))
        XCTAssertTrue(refusal("[\(Self.slice), 0, 0, 0]").contains("an index of 4 axes into a tensor of rank 3"))
        XCTAssertTrue(refusal(#"[\#(Self.slice), "a"]"#).contains("expected an integer, a slice, None or Ellipsis"))
    }

    func testOperationsThatWouldMoveOrRemoveTheBatchAxisAreRefusedAtBuild() {
        let cases: [(String, String, String, String)] = [
            ("Transpose", #""axes": [1, 0, 2]"#, "$x", "it moves the batch axis"),
            ("Transpose", #""axes": null"#, "$x", "None (every axis reversed)"),
            ("Mean", #""axis": null, "keepdims": false"#, "$x", "'axis' is None: it reduces every axis, the batch axis included"),
            ("Sum", #""axis": [0, 1], "keepdims": false"#, "$x", "'axis' is 0, the batch axis"),
            ("ExpandDims", #""axis": 0"#, "$x", "'axis' is 0, the batch axis"),
            ("Squeeze", #""axis": 0"#, "$x", "'axis' is 0, the batch axis"),
            ("Reshape", #""newshape": [2, -1]"#, "$x", "its first entry sizes the batch axis"),
            ("Concatenate", #""axis": 0"#, "[$x, $x]", "'axis' is 0, expected an axis from 1"),
            ("Stack", #""axis": 0"#, "[$x, $x]", "'axis' is 0, the batch axis"),
            ("Einsum", #""subscripts": "bij,bkj->ik""#, "$x, $x", "do not keep the batch axis"),
            ("Einsum", #""subscripts": "bij,bjk->bik""#, "$x, [[[1], [2]], [[3], [4]]]", "do not keep the batch axis"),
        ]
        for (className, config, args, fragment) in cases {
            let text = OperationText.refusal(inputs: [("x", [2, 2])], className: className, config: config, args: args) ?? "built"
            XCTAssertTrue(text.contains("operation 'op' (\(className) from keras.src.ops.numpy)") && text.contains(fragment),
                          "\(className) \(config): expected '\(fragment)' in \(text)")
        }
        let vectors = OperationText.refusal(inputs: [("x", [3]), ("y", [3])], className: "Matmul", args: "$x, $y") ?? "built"
        XCTAssertTrue(vectors.contains("has one axis after the batch axis: matmul would contract or move the batch axis"), vectors)
    }

    func testAnUnknownOperationIsRefusedByNameAndModuleWhileKnownOnesBuild() throws {
        let text = OperationText.refusal(inputs: [("x", [3])], className: "Fft", module: "keras.src.ops.math", args: "$x") ?? "built"
        XCTAssertTrue(text.contains("operation 'op' (Fft from keras.src.ops.math) is not supported: no Keras operation 'Fft' (from keras.src.ops.math) is registered"), text)
        let logSoftmax = try OperationText.run(inputs: [("x", [3])], className: "LogSoftmax", module: "keras.src.ops.nn", config: #""axis": -1"#,
                                               args: "$x", [Tensor(shape: [1, 3], data: [0, 0, 0])])
        assertClose(logSoftmax.data, [Float](repeating: -Foundation.log(3), count: 3))
        // Over an axis whose length is known only at run time (attention scores over any length).
        let softmax = try OperationText.run(inputs: [("x", [nil, 2])], className: "Softmax", module: "keras.src.ops.nn", config: #""axis": 1"#,
                                            args: "$x", [Tensor(shape: [1, 2, 2], data: [0, 1, 0, 1])])
        assertClose(softmax.data, [0.5, 0.5, 0.5, 0.5])
    }

    func testReductionsKeepDimsAndSqueezeAxes() throws {
        let x = Tensor(shape: [1, 2, 3], data: [1, 5, 3, 4, 2, 6])
        let max = try OperationText.run(inputs: [("x", [2, 3])], className: "Max", config: #""axis": -1, "keepdims": true, "initial": null"#, args: "$x", [x])
        XCTAssertEqual(max.shape, [1, 2, 1])
        XCTAssertEqual(max.data, [5, 6])
        let sum = try OperationText.run(inputs: [("x", [2, 3])], className: "Sum", config: #""axis": [1, 2], "keepdims": false"#, args: "$x", [x])
        XCTAssertEqual(sum.shape, [1])
        XCTAssertEqual(sum.data, [21])
        let mean = try OperationText.run(inputs: [("x", [2, 3])], className: "Mean", config: #""axis": 1"#, args: "$x", [x])
        XCTAssertEqual(mean.data, [2.5, 3.5, 4.5])
        let any = try OperationText.run(inputs: [("x", [2, 3])], className: "Any", config: #""axis": -1, "keepdims": false"#, args: "$x",
                                        [Tensor(shape: [1, 2, 3], data: [0, 0, 0, 0, 1, 0])])
        XCTAssertEqual(any.data, [0, 1])
    }

    func testCastRoundsAsTensorFlowDoes() throws {
        let x = Tensor(shape: [1, 5], data: [-1.7, -0.2, 0, 0.5, 2.9])
        func cast(_ dtype: String) throws -> [Float] {
            try OperationText.run(inputs: [("x", [5])], className: "Cast", module: "keras.src.ops.core", config: #""dtype": "\#(dtype)""#, args: "$x", [x]).data
        }
        XCTAssertEqual(try cast("int32"), [-1, 0, 0, 0, 2])
        XCTAssertEqual(try cast("bool"), [1, 1, 0, 1, 1])
        XCTAssertEqual(try cast("float16")[0], Float(Float16(-1.7)))
        XCTAssertNotEqual(try cast("float16")[0], -1.7)
        let text = OperationText.refusal(inputs: [("x", [5])], className: "Cast", module: "keras.src.ops.core", config: #""dtype": "string""#, args: "$x") ?? "built"
        XCTAssertTrue(text.contains("'dtype' is \"string\", expected a float, integer or bool dtype"), text)
    }

    func testEinsumTakesAnyTwoOperandSubscriptsAndEllipses() throws {
        let a = Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [1, 3, 2], data: [1, 0, 0, 1, 1, 1])
        func einsum(_ subscripts: String, _ args: String = "$x, $y") throws -> Tensor {
            try OperationText.run(inputs: [("x", [2, 3]), ("y", [3, 2])], className: "Einsum", config: #""subscripts": "\#(subscripts)""#,
                                  args: args, [a, b])
        }
        XCTAssertEqual(try einsum("bij,bjk->bik").data, [4, 5, 10, 11])
        // The implicit output holds the letters used once (i, k): the batch letter is summed, refused.
        let implicit = OperationText.refusal(inputs: [("x", [2, 3]), ("y", [3, 2])], className: "Einsum", config: #""subscripts": "bij,bjk""#,
                                             args: "$x, $y") ?? "built"
        XCTAssertTrue(implicit.contains("subscripts \"bij,bjk\" do not keep the batch axis"), implicit)
        XCTAssertEqual(try einsum("bij,bjk->bki").data, [4, 10, 5, 11])
        XCTAssertEqual(try einsum("bij,bji->b").data, [1 + 0 + 3 + 0 + 5 + 6])
        XCTAssertEqual(try einsum("bij,bkl->bil").shape, [1, 2, 2])
        let constant = try OperationText.run(inputs: [("x", [2, 3])], className: "Einsum", config: #""subscripts": "bij,jk->bik""#,
                                             args: #"$x, [[1, 0], [0, 1], [1, 1]]"#, [a])
        XCTAssertEqual(constant.data, [4, 5, 10, 11])
        // An ellipsis stands for the axes not named (the batch axis among them), first in an implicit output.
        XCTAssertEqual(try einsum("...ij,...jk->...ik").data, [4, 5, 10, 11])
        XCTAssertEqual(try einsum("...ij,...jk").data, [4, 5, 10, 11])
        let constantEllipsis = try OperationText.run(inputs: [("x", [2, 3])], className: "Einsum", config: #""subscripts": "...j,jk->...k""#,
                                                     args: #"$x, [[1, 0], [0, 1], [1, 1]]"#, [a])
        XCTAssertEqual(constantEllipsis.data, [4, 5, 10, 11])
        let text = OperationText.refusal(inputs: [("x", [2, 3]), ("y", [3, 2])], className: "Einsum", config: #""subscripts": "...ij,...jk->......ik""#,
                                         args: "$x, $y") ?? "built"
        XCTAssertTrue(text.contains("ellipsis"), text)
        let sizes = OperationText.refusal(inputs: [("x", [2, 3]), ("y", [3, 2])], className: "Einsum", config: #""subscripts": "bij,bik->bjk""#,
                                          args: "$x, $y") ?? "built"
        XCTAssertTrue(sizes.contains("subscript 'i' has size 2 in one place and 3 in another"), sizes)
    }

    func testMatmulBroadcastsLeadingAxesAndStackTransposeReshape() throws {
        let a = Tensor(shape: [1, 2, 2, 3], data: [1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0])
        let out = try OperationText.run(inputs: [("x", [2, 2, 3])], className: "Matmul", args: "$x, [[[1], [1], [1]]]", [a])
        XCTAssertEqual(out.shape, [1, 2, 2, 1])
        XCTAssertEqual(out.data, [6, 15, 1, 1])
        let x = Tensor(shape: [1, 2, 3], data: [0, 1, 2, 3, 4, 5])
        let transposed = try OperationText.run(inputs: [("x", [2, 3])], className: "Transpose", config: #""axes": [0, 2, 1]"#, args: "$x", [x])
        XCTAssertEqual(transposed.shape, [1, 3, 2])
        XCTAssertEqual(transposed.data, [0, 3, 1, 4, 2, 5])
        let stacked = try OperationText.run(inputs: [("x", [2, 3])], className: "Stack", config: #""axis": -1"#, args: "[$x, $x]", [x])
        XCTAssertEqual(stacked.shape, [1, 2, 3, 2])
        XCTAssertEqual(stacked.data, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
        let reshaped = try OperationText.run(inputs: [("x", [2, 3])], className: "Reshape", config: #""newshape": [-1, 3, 1, 2]"#, args: "$x", [x])
        XCTAssertEqual(reshaped.shape, [1, 3, 1, 2])
        let wrong = OperationText.refusal(inputs: [("x", [2, 3])], className: "Reshape", config: #""newshape": [-1, 4]"#, args: "$x") ?? "built"
        XCTAssertTrue(wrong.contains("'newshape' [-1, 4] does not hold the 6 values of an input sample (None, 2, 3)"), wrong)
    }

    /// Keras 2's tf.matmul keywords (KerasTwoOperations): an operand's last two axes swapped first;
    /// never the batch axis.
    func testMatmulTransposesAnOperandsLastTwoAxesAsKerasTwoAsks() throws {
        let x = Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 6])
        let gram = try OperationText.run(inputs: [("x", [2, 3])], className: "Matmul", config: #""transpose_b": true"#, args: "$x, $x", [x])
        XCTAssertEqual(gram.shape, [1, 2, 2])
        XCTAssertEqual(gram.data, [14, 32, 32, 77])
        let outer = try OperationText.run(inputs: [("x", [2, 3])], className: "Matmul", config: #""transpose_a": true"#, args: "$x, $x", [x])
        XCTAssertEqual(outer.shape, [1, 3, 3])
        XCTAssertEqual(outer.data, [17, 22, 27, 22, 29, 36, 27, 36, 45])
        let both = try OperationText.run(inputs: [("x", [2, 3])], className: "Matmul", config: #""transpose_a": true, "transpose_b": true"#,
                                         args: "$x, [[1, 0], [0, 1]]", [x])
        XCTAssertEqual(both.shape, [1, 3, 2])
        XCTAssertEqual(both.data, [1, 4, 2, 5, 3, 6])
        let rows = OperationText.refusal(inputs: [("x", [3])], className: "Matmul", config: #""transpose_a": true"#, args: "$x, [[1], [1]]") ?? "built"
        XCTAssertTrue(rows.contains("is transposed, which would move the batch axis"), rows)
    }

    /// ops.normalize's refusals: every axis (None), a matrix norm of another order, the batch axis.
    /// (Its values against Keras: the graph fixture keras3_normalize.)
    func testNormalizeRefusesWhatKerasWouldComputeOverTheBatchOrAsAMatrixNorm() {
        for (config, fragment) in [(#""axis": null"#, "'axis' is None"), (#""axis": [1, 2], "order": 1"#, "is a matrix norm"),
                                   (#""axis": 0"#, "the batch axis"), (#""order": 0"#, "'order' must be an integer of 1 or more")] {
            let text = OperationText.refusal(inputs: [("x", [2, 3])], className: "Normalize", module: "keras.src.ops.nn", config: config, args: "$x") ?? "built"
            XCTAssertTrue(text.contains(fragment), "\(config): expected '\(fragment)' in \(text)")
        }
    }

    func testMatmulOfABatchOfRowsByAConstantKeepsTheBatchAndArgmaxTakesTheFirstTie() throws {
        let rows = try OperationText.run(inputs: [("x", [3])], className: "Matmul", args: "$x, [[1, 0], [0, 1], [1, 1]]",
                                         [Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])])
        XCTAssertEqual(rows.shape, [2, 2])
        XCTAssertEqual(rows.data, [4, 5, 10, 11])
        // The constant first would contract the batch axis.
        let contracted = OperationText.refusal(inputs: [("x", [3])], className: "Matmul", args: "[[1, 0], [0, 1], [1, 1]], $x") ?? "built"
        XCTAssertTrue(contracted.contains("operand 1 of shape (None, 3) has one axis after the batch axis"), contracted)
        let argmax = try OperationText.run(inputs: [("x", [2, 3])], className: "Argmax", config: #""axis": -1, "keepdims": false"#, args: "$x",
                                           [Tensor(shape: [1, 2, 3], data: [1, 3, 3, 7, 2, 7])])
        XCTAssertEqual(argmax.shape, [1, 2])
        XCTAssertEqual(argmax.data, [1, 0])
        let argmin = try OperationText.run(inputs: [("x", [2, 3])], className: "Argmin", config: #""axis": 1, "keepdims": true"#, args: "$x",
                                           [Tensor(shape: [1, 2, 3], data: [1, 3, 0, 7, 2, 0])])
        XCTAssertEqual(argmin.shape, [1, 1, 3])
        XCTAssertEqual(argmin.data, [0, 1, 0])
        let flattened = OperationText.refusal(inputs: [("x", [2, 3])], className: "Argmax", config: #""axis": null"#, args: "$x") ?? "built"
        XCTAssertTrue(flattened.contains("'axis' is None: it flattens every axis, the batch axis included"), flattened)
    }

    func testSplitUnstackTileAndRepeatRefuseWhatTheyCannotDo() {
        let cases: [(String, String, String)] = [
            ("Split", #""indices_or_sections": 4, "axis": -1"#, "axis 2 of size 6 does not split into 4 equal sections"),
            ("Split", #""indices_or_sections": 2, "axis": 0"#, "'axis' is 0, the batch axis"),
            ("Unstack", #""num": 3, "axis": 1"#, "'num' is 3, axis 1 has size 2"),
            ("Tile", #""repeats": [1, 1, 1, 2]"#, "has more entries than the 3 axes"),
            ("Tile", #""repeats": [2, 1, 1]"#, "and 1 on the batch axis; nnbuild keeps the batch axis whole"),
            ("Repeat", #""repeats": 2, "axis": null"#, "'axis' is None: it flattens every axis"),
            ("Tile", #""repeats": [1, 1, 9223372036854775807]"#, "must be non-negative (at most 2147483647)"),
        ]
        for (className, config, fragment) in cases {
            let text = OperationText.refusal(inputs: [("x", [2, 6])], className: className, config: config, args: "$x") ?? "built"
            XCTAssertTrue(text.contains("operation 'op' (\(className) from keras.src.ops.numpy)") && text.contains(fragment),
                          "\(className) \(config): expected '\(fragment)' in \(text)")
        }
    }

    func testOperationsDropTheMaskOfTheirInput() throws {
        // Keras 3 sets no mask on an operation's output (keras/src/ops/operation.py).
        let model = try OperationText.model(inputs: [("x", [4])], className: "Tanh", args: "$x")
        let node = try XCTUnwrap(model.nodes.last)
        XCTAssertEqual(node.layer.outputMasks(inputMasks: [true]), [false])
        let out = try node.layer.call([Tensor(shape: [1, 4, 1], data: [0, 1, 2, 3], mask: [true, true, false, false])])
        XCTAssertNil(out[0].mask)
    }
}
