import LayerRegistry

/// The built-in layers. Each family's file registers its own layers through the same
/// `LayerRegistry.register` call a user's code uses; this is the one list of families.
public enum Builtins {
    /// Registers every built-in layer into `registry`.
    public static func register(into registry: LayerRegistry) {
        registerCore(registry)
        registerConvolution(registry)
        registerDepthwiseConvolution(registry)
        registerTransposedConvolution(registry)
        registerConvolution3D(registry)
        registerPooling(registry)
        registerAdaptivePooling(registry)
        registerImagePreprocessing(registry)
        registerImageOperations(registry)
        registerReshaping(registry)
        registerEmbedding(registry)
        registerRecurrent(registry)
        registerGenericRNN(registry)
        registerConvLSTM(registry)
        registerWrappers(registry)
        registerNormalization(registry)
        registerPreprocessing(registry)
        registerActivations(registry)
        registerMerge(registry)
        registerOperations(registry)
        registerLayerScale(registry)
        registerCustomScale(registry)
        registerSpectrogram(registry)
        registerHashing(registry)
        registerHistogramEqualization(registry)
        registerReversibleEmbedding(registry)
        registerRandomAugmentation(registry)
        registerCategoricalPreprocessing(registry)
        registerTextVectorization(registry)
        registerAttention(registry)
    }
}

extension LayerRegistry {
    /// A registry holding every built-in layer, ready for users' additions and overrides.
    public static func withBuiltins() -> LayerRegistry {
        let registry = LayerRegistry()
        Builtins.register(into: registry)
        return registry
    }
}
