import LayerRegistry

/// The version `nnbuild --version` prints, with the plugin ABI version plugins must match.
package let nnbuildVersion = "0.5.0"

/// What `--version` prints, for both executables.
package let versionText = "nnbuild \(nnbuildVersion) (layer plugin ABI version \(layerRegistryABIVersion))"
