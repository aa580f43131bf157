/// The version `nnbuild --version` prints, with the plugin ABI version plugins must match.
package let nnbuildVersion = "0.5.0"
