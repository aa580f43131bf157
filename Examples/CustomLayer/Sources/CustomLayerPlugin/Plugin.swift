import LayerRegistry
import ScaledTanh

// The two entry points `nnbuild --plugin libCustomLayerPlugin.so` looks up.

@_cdecl("nnbuild_plugin_abi_version")
public func nnbuildPluginABIVersion() -> Int32 { layerRegistryABIVersion }

@_cdecl("nnbuild_plugin_register")
public func nnbuildPluginRegister(_ registry: UnsafeMutableRawPointer) {
    registerScaledTanh(into: LayerRegistry.fromPluginArgument(registry))
}
