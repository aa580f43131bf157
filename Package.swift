// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "nnbuild",
    products: [
        .library(name: "ModelSpec", targets: ["ModelSpec"]),
        .library(name: "LayerRegistry", targets: ["LayerRegistry"]),
        .library(name: "Builtins", targets: ["Builtins"]),
        .executable(name: "nnbuild", targets: ["nnbuild"]),
    ],
    traits: [
        .trait(name: "CommandLine", description: "The nnbuild command-line tool, which needs swift-argument-parser."),
        .default(enabledTraits: ["CommandLine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation` (the DocC catalogs in Sources/*/*.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // System libraries: json-c parses every JSON document, OpenBLAS does every matrix product.
        .systemLibrary(name: "CJSONC", pkgConfig: "json-c", providers: [.apt(["libjson-c-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // Our own small AVX2 + FMA kernels (recurrent-step products, gate activations), chosen at
        // run time so the binary still runs on any x86-64.
        .target(name: "CKernels"),

        // Text and bytes: spec JSON, the safetensors weight blob, .npy files. No math.
        .target(name: "ModelSpec", dependencies: ["CJSONC"]),
        // The contract a layer author links against: tensor, Layer, context, registry, model.
        .target(name: "LayerRegistry", dependencies: ["ModelSpec"]),
        // Every built-in layer, one file per family, and the one list that registers them.
        .target(name: "Builtins", dependencies: ["LayerRegistry", "ModelSpec", "CBLAS", "CKernels"]),
        // The thin command-line front.
        .executableTarget(name: "nnbuild", dependencies: [
            "ModelSpec", "LayerRegistry", "Builtins",
            .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["CommandLine"])),
        ]),

        .testTarget(name: "ModelSpecTests", dependencies: ["ModelSpec"]),
        .testTarget(name: "LayerRegistryTests", dependencies: ["LayerRegistry", "ModelSpec"]),
        .testTarget(name: "BuiltinsTests", dependencies: ["Builtins", "LayerRegistry", "ModelSpec", "CKernels"]),
        // Fixtures/ holds scikit-learn's expected eval reports and the script that made them.
        .testTarget(name: "nnbuildTests", dependencies: ["ModelSpec"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v5]
)
