// swift-tools-version:6.0
import PackageDescription

// A user's package: it depends on nnbuild's library products, adds a layer type, and ships it
// both as Swift code (the demo executable) and as a plugin the stock `nnbuild` binary loads.
let package = Package(
    name: "CustomLayer",
    products: [
        .executable(name: "custom-layer-demo", targets: ["CustomLayerDemo"]),
        .library(name: "CustomLayerPlugin", type: .dynamic, targets: ["CustomLayerPlugin"]),
    ],
    dependencies: [
        .package(name: "nnbuild", path: "../.."),
    ],
    targets: [
        .target(name: "ScaledTanh", dependencies: [.product(name: "LayerRegistry", package: "nnbuild")]),
        .executableTarget(name: "CustomLayerDemo", dependencies: [
            "ScaledTanh",
            .product(name: "LayerRegistry", package: "nnbuild"),
            .product(name: "Builtins", package: "nnbuild"),
        ]),
        .target(name: "CustomLayerPlugin", dependencies: ["ScaledTanh", .product(name: "LayerRegistry", package: "nnbuild")]),
    ],
    swiftLanguageModes: [.v5]
)
