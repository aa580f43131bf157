import ArgumentParser
import CommandSupport
import LayerRegistry
import ModelSpec

struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layers",
        abstract: "List the registered layer types, or describe one: its config keys, defaults and weights."
    )

    @Argument(help: "A layer type to describe (its class_name or an alias).")
    var name: String?

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        try reportingErrors {
            let registry = try plugins.registry()
            guard let name else {
                let rows = registry.all
                let width = rows.map(\.name.count).max() ?? 0
                for row in rows {
                    let aliases = row.aliases.isEmpty ? "" : " (aliases: \(row.aliases.joined(separator: ", ")))"
                    print(row.name.padded(to: width) + "  [\(row.origin)] " + row.summary + aliases)
                }
                print("\(rows.count) layer types. `nnbuild layers NAME` shows one's config keys and weights.")
                return
            }
            guard let description = registry.describe(name) else {
                let near = registry.closestNames(to: name)
                throw NNError(.unknownLayer, name, "no layer type '\(name)' is registered" + (near.isEmpty ? "" : "; closest: " + near.joined(separator: ", ")))
            }
            print("\(description.name) [\(description.origin)]" + (description.aliases.isEmpty ? "" : " (aliases: \(description.aliases.joined(separator: ", ")))"))
            if !description.summary.isEmpty { print(description.summary) }
            print("\nconfig keys:")
            if description.keys.isEmpty { print("  (none read)") }
            let width = description.keys.map(\.name.count).max() ?? 0
            for key in description.keys {
                print("  " + key.name.padded(to: width) + "  \(key.kind), " + (key.defaultValue.map { "default \($0)" } ?? "required"))
            }
            print("\nweights (shapes for \(description.probe)):")
            if description.weights.isEmpty { print("  (none)") }
            for weight in description.weights { print("  \(weight.name) \(weight.shape)") }
        }
    }
}
