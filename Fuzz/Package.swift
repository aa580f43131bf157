// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for the readers of untrusted files. Build and run with ./run.sh.
let fuzzer: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]
let nnbuild: [Target.Dependency] = [
    "FuzzSupport",
    .product(name: "ModelSpec", package: "nnbuild"),
    .product(name: "LayerRegistry", package: "nnbuild"),
    .product(name: "Builtins", package: "nnbuild"),
]

let package = Package(
    name: "Fuzz",
    dependencies: [.package(name: "nnbuild", path: "..")],
    targets: [
        // What every harness checks besides "no crash": only NNError (or NNErrors) may be thrown.
        .target(name: "FuzzSupport", dependencies: [.product(name: "ModelSpec", package: "nnbuild")]),
        .executableTarget(name: "FuzzSpec", dependencies: nnbuild, swiftSettings: fuzzer),
        .executableTarget(name: "FuzzWeights", dependencies: nnbuild, swiftSettings: fuzzer),
        .executableTarget(name: "FuzzInput", dependencies: ["FuzzSupport", .product(name: "ModelSpec", package: "nnbuild")],
                          swiftSettings: fuzzer),
        .executableTarget(name: "FuzzZip", dependencies: ["FuzzSupport", .product(name: "ModelSpec", package: "nnbuild")],
                          swiftSettings: fuzzer),
        .executableTarget(name: "FuzzHDF5", dependencies: ["FuzzSupport", .product(name: "ModelSpec", package: "nnbuild")],
                          swiftSettings: fuzzer),
    ],
    swiftLanguageModes: [.v5]
)
