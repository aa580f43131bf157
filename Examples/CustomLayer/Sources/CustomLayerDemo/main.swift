import Builtins
import Foundation
import LayerRegistry
import ScaledTanh

// Usage: custom-layer-demo SPEC WEIGHTS INPUT.npy
// Registers ScaledTanh next to the built-ins, runs the model and prints its output as JSON.
let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: custom-layer-demo SPEC WEIGHTS INPUT.npy\n".utf8))
    exit(64)
}
do {
    let registry = LayerRegistry.withBuiltins()
    registerScaledTanh(into: registry)
    let model = try Model.build(try ModelDescription.load(path: arguments[1]), registry: registry,
                                weights: try WeightStore(path: arguments[2]))
    let input = try Npy.read(try FileBytes.read(path: arguments[3]), source: arguments[3])
    let output = try model.predict(try model.batch(from: input, source: arguments[3]))
    print(JSONArray.text(NumericArray(shape: output.shape, values: output.data)))
} catch {
    for problem in error.nnProblems { FileHandle.standardError.write(Data("error: \(problem)\n".utf8)) }
    exit(1)
}
