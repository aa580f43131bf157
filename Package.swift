// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "nnbuild",
    products: [
        .library(name: "ModelSpec", targets: ["ModelSpec"]),
        .library(name: "LayerRegistry", targets: ["LayerRegistry"]),
        .library(name: "Builtins", targets: ["Builtins"]),
        .executable(name: "nnbuild", targets: ["nnbuild"]),
        // `nnbuild --plugin …` runs this executable, built beside nnbuild.
        .executable(name: "nnbuild-plugins", targets: ["nnbuild-plugins"]),
        // `nnbuild serve` runs this executable, built beside nnbuild.
        .executable(name: "nnbuild-serve", targets: ["nnbuild-serve"]),
    ],
    traits: [
        .trait(name: "CommandLine", description: "The nnbuild command-line tool, which needs swift-argument-parser."),
        .trait(name: "Serve", description: "`nnbuild serve`: TF Serving's REST API on Hummingbird 2, with swift-service-lifecycle and swift-prometheus.",
               enabledTraits: ["CommandLine"]),
        .default(enabledTraits: ["CommandLine", "Serve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation` (the DocC catalogs in Sources/*/*.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // `nnbuild serve` (trait Serve): HTTP server, graceful shutdown, Prometheus metrics.
        // Without its default traits: FullFoundation would link Foundation and ICU into every
        // process (about 7 MB resident) for URL-encoded forms we never read, and
        // ConfigurationSupport would build swift-configuration, which nothing here uses.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        // 2.4: metrics made from a MetricNameDescriptor (the name-and-help calls are deprecated there).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        // Already in Hummingbird's graph; named because NNServe imports them.
        .package(url: "https://github.com/apple/swift-nio", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
    ],
    targets: [
        // System libraries: json-c parses every JSON document.
        .systemLibrary(name: "CJSONC", pkgConfig: "json-c", providers: [.apt(["libjson-c-dev"])]),
        // zlib inflates deflated zip members (.npz from np.savez_compressed, and .keras files).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Our own small AVX2 + FMA kernels (recurrent-step products, gate activations), chosen at
        // run time so the binary still runs on any x86-64. OpenBLAS (libopenblas.so.0), for
        // ExecutionSettings.batchVariantBLAS only, is loaded on first use (blas.c), not linked.
        .target(name: "CKernels", linkerSettings: [.linkedLibrary("dl")]),

        // Text and bytes: spec JSON, the safetensors weight blob, .npy and .npz files. No math.
        .target(name: "ModelSpec", dependencies: ["CJSONC", "CZlib"]),
        // The contract a layer author links against: tensor, Layer, context, registry, model.
        .target(name: "LayerRegistry", dependencies: ["ModelSpec"]),
        // Every built-in layer, one file per family, and the one list that registers them.
        .target(name: "Builtins", dependencies: ["LayerRegistry", "ModelSpec", "CKernels"]),
        // `nnbuild serve`: TF Serving's REST API over a Model. Its packages come only with trait Serve.
        .target(name: "NNServe", dependencies: [
            "ModelSpec", "LayerRegistry", "Builtins",
            .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Serve"])),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: .when(traits: ["Serve"])),
            .product(name: "Prometheus", package: "swift-prometheus", condition: .when(traits: ["Serve"])),
            .product(name: "NIOCore", package: "swift-nio", condition: .when(traits: ["Serve"])),
            .product(name: "Logging", package: "swift-log", condition: .when(traits: ["Serve"])),
            .product(name: "HTTPTypes", package: "swift-http-types", condition: .when(traits: ["Serve"])),
        ]),
        // What both executables' commands share: option groups, argument bounds, the allocator's
        // phases, error lines.
        .target(name: "CommandSupport", dependencies: [
            "ModelSpec", "LayerRegistry", "Builtins",
            .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["CommandLine"])),
        ]),
        // The command-line front, one file per subcommand. It links no server package: `nnbuild
        // serve` replaces the process with nnbuild-serve, so every other command starts without them.
        .target(name: "NNBuildCommands", dependencies: [
            "ModelSpec", "LayerRegistry", "Builtins", "CommandSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["CommandLine"])),
        ]),
        // `nnbuild`: the commands, with the Swift runtime and standard libraries linked statically
        // in release builds, so that a command starts without relocating a dozen shared libraries
        // (about 4 ms of a one-sample `nnbuild infer`'s 16-20 here; BENCHMARKS.md). The modules are
        // compiled as for the shared runtime (nnbuild-plugins links them too), so the link names
        // what static FoundationEssentials needs besides itself; lld takes archives in any order.
        .executableTarget(name: "nnbuild", dependencies: ["NNBuildCommands"],
                          linkerSettings: [.unsafeFlags(["-static-stdlib", "-use-ld=lld", "-l_FoundationCollections", "-l_FoundationCShims", "-lswiftSynchronization"], .when(configuration: .release))]),
        // `nnbuild-plugins`: the same commands on the shared Swift runtime, which a layer plugin
        // (a shared library linking that runtime) needs; `nnbuild` hands a command naming one to it.
        .executableTarget(name: "nnbuild-plugins", dependencies: ["NNBuildCommands"]),
        // `nnbuild serve`: the server's command over NNServe, in an executable of its own.
        .executableTarget(name: "nnbuild-serve", dependencies: [
            "ModelSpec", "LayerRegistry", "Builtins", "CommandSupport",
            .target(name: "NNServe", condition: .when(traits: ["Serve"])),
            .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["CommandLine"])),
        ]),

        .testTarget(name: "ModelSpecTests", dependencies: ["ModelSpec"]),
        .testTarget(name: "LayerRegistryTests", dependencies: ["LayerRegistry", "ModelSpec"]),
        .testTarget(name: "BuiltinsTests", dependencies: ["Builtins", "LayerRegistry", "ModelSpec", "CKernels"]),
        // Fixtures/ holds scikit-learn's expected eval reports and the script that made them.
        .testTarget(name: "nnbuildTests", dependencies: ["ModelSpec"], exclude: ["Fixtures"]),
        // Integration tests against a real `nnbuild serve` process on loopback.
        .testTarget(name: "ServeTests", dependencies: ["ModelSpec"]),
    ],
    swiftLanguageModes: [.v5]
)
