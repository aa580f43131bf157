// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for the two readers of untrusted files. Build and run with ./run.sh.
let fuzzer: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "Fuzz",
    dependencies: [.package(name: "nnbuild", path: "..")],
    targets: [
        .executableTarget(name: "FuzzSpec", dependencies: [
            .product(name: "ModelSpec", package: "nnbuild"),
            .product(name: "LayerRegistry", package: "nnbuild"),
            .product(name: "Builtins", package: "nnbuild"),
        ], swiftSettings: fuzzer),
        .executableTarget(name: "FuzzWeights", dependencies: [
            .product(name: "ModelSpec", package: "nnbuild"),
            .product(name: "LayerRegistry", package: "nnbuild"),
            .product(name: "Builtins", package: "nnbuild"),
        ], swiftSettings: fuzzer),
        // The HDF5 reader (.keras weights, legacy .h5), seeded with Tests/HDF5Fixtures.
        .executableTarget(name: "FuzzHDF5", dependencies: [
            .product(name: "ModelSpec", package: "nnbuild"),
        ], swiftSettings: fuzzer),
    ],
    swiftLanguageModes: [.v5]
)
