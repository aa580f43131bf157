// `nnbuild-plugins`: the same command line as `nnbuild`, on the shared Swift runtime, so that it can
// load layer plugins (shared libraries that link that runtime). `nnbuild --plugin …` runs it.
import NNBuildCommands

CommandLineTool.main()
