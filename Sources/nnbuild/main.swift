// `nnbuild`: the command line (NNBuildCommands), with the Swift runtime linked in statically in
// release builds (see Package.swift). A command that loads a layer plugin hands the process to
// `nnbuild-plugins`, built beside it (`PluginRuntime`).
import NNBuildCommands

CommandLineTool.main()
