/// A legacy Keras HDF5 model (`model.save("m.h5")`, Keras 2, tf-keras, or Keras 3's legacy
/// writer): the `model_config` attribute is the architecture; `model_weights/<layer>` lists its
/// variables in its `weight_names` attribute, each a dataset at that path below the layer's group.
enum LegacyH5 {
    static func modelConfig(_ file: HDF5File, path: String) throws -> String {
        let root = try file.root
        guard let value = try root.attribute("model_config") else {
            if try root.memberNames().contains("layers") || root.attribute("layer_names") != nil {
                throw NNError(.spec, path, "this is a Keras weights-only HDF5 file, which holds no architecture; pass the model's JSON spec first, then this file as its weights")
            }
            throw NNError(.spec, path, "this HDF5 file has no 'model_config' attribute; expected a Keras model saved with model.save(\"m.h5\")")
        }
        switch value {
        case let .string(text): return text
        case let .bytes(bytes): return String(decoding: bytes, as: UTF8.self)
        default: throw NNError(.spec, path, "the 'model_config' attribute must be a JSON string")
        }
    }

    static func load(_ file: HDF5File, path: String) throws -> (ModelDescription, WeightStore) {
        let config = try modelConfig(file, path: path)
        let source = "\(path): model_config"
        try FileKind.check(Array(config.utf8.prefix(8)), path: source, expected: .modelSpec)
        var json = try JSONParser.parse(Array(config.utf8), source: source)
        // to_json() carries the writer's keras_version and backend; model.save("m.h5") keeps them
        // as attributes beside model_config instead. Put a Keras 2 writer's back, so a tf-keras
        // file is read as Keras 2 (which counts a nested model's calls from 1); Keras 3's legacy
        // writer keeps its own config form.
        if case let .string(version)? = try file.root.attribute("keras_version"), version.hasPrefix("2."),
           case var .object(members) = json {
            for key in ["keras_version", "backend"] where !members.contains(where: { $0.0 == key }) {
                if case let .string(value)? = try file.root.attribute(key) { members.append((key, .string(value))) }
            }
            json = .object(members)
        }
        let description = try SpecReader(source: source).read(json)
        let root = try file.root
        guard try root.memberNames().contains("model_weights") else {
            throw NNError(.weights, path, "the file has no 'model_weights' group; expected the weights beside 'model_config'")
        }
        return (description, try weights(try root.group("model_weights"), source: path))
    }

    /// Every variable of every layer, named by its `weight_names` entry (a Keras variable path).
    static func weights(_ group: HDF5Group, source: String) throws -> WeightStore {
        var tensors: [(name: String, shape: [Int], values: FloatStorage)] = []
        let layerNames = try strings(group.attribute("layer_names"), "\(group.path) attribute 'layer_names'", source)
        for layer in layerNames {
            let layerGroup = try group.group(layer)
            for name in try strings(layerGroup.attribute("weight_names"), "\(layerGroup.path) attribute 'weight_names'", source) {
                let dataset = try layerGroup.dataset(name)
                tensors.append((name, dataset.shape, try dataset.floats()))
            }
        }
        return try WeightStore(source: source, tensors: tensors, positional: false)
    }

    static func strings(_ value: HDF5Value?, _ what: String, _ source: String) throws -> [String] {
        switch value {
        case let .strings(items)?: return items
        case let .string(item)?: return [item]
        case .numbers(_, let values)? where values.isEmpty: return []
        case nil: throw NNError(.weights, source, "\(what) is missing; expected a list of names")
        default: throw NNError(.weights, source, "\(what) must be a list of strings")
        }
    }
}
