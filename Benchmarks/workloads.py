"""The benchmark's workloads: each a Keras model built with fixed seeds, its default batch sizes
and its inputs (issues 6, 15 and 18).

- cnn_cifar, bilstm_text, rnn_stack3, gru_text: issue 6's four, at batches 1 and 64.
- mobilenet_v2, resnet50: keras.applications at 224x224, random weights (nothing is downloaded),
  softmax out as shipped, BatchNormalization statistics from a calibration batch
  (tools/applications_test.calibrate), at batches 1 and 16.
- transformer_text: a Transformer text encoder, at batches 1 and 64: token Embedding
  (vocabulary 5000, width 128, mask_zero=True) plus a learned position Embedding (mask_zero=True),
  2 encoder blocks of MultiHeadAttention(4 heads, key_dim 32), residual Add, LayerNormalization,
  a 128-wide feed-forward (Dense relu, Dense), residual Add, LayerNormalization; then
  GlobalAveragePooling1D over the unmasked steps and a Dense softmax head. Sequences of 128
  tokens, zero-padded after a random length of 16 to 128: the padding mask flows from the token
  Embedding into the pooling, and each attention gets it as an explicit attention_mask (token i
  attends to j when both are real), built in the graph from the tokens. The positions (1..length on the
  tokens, 0 on the padding) are computed in the graph from the tokens (a cumulative sum of
  tokens != 0), so the model has one input, as every runtime here is fed.
"""
import hashlib
import inspect

import numpy as np

APPLICATIONS = {"mobilenet_v2": "MobileNetV2", "resnet50": "ResNet50"}
WORKLOADS = ["cnn_cifar", "bilstm_text", "rnn_stack3", "gru_text", "mobilenet_v2", "resnet50", "transformer_text"]
# Not run by default: the Transformer with the padding mask left to Keras's implicit propagation,
# where Keras itself unmasks the second block (see _transformer); it shows whether nnbuild follows.
EXTRA_WORKLOADS = ["transformer_text_implicit_mask"]
DEFAULT_BATCHES = {"mobilenet_v2": [1, 16], "resnet50": [1, 16]}  # every other workload: 1 and 64
SEED = 1234

TRANSFORMER = {"vocabulary": 5000, "width": 128, "sequence": 128, "blocks": 2, "heads": 4, "key_dim": 32,
               "feed_forward": 128, "classes": 2, "shortest": 16}


def batches_of(name):
    return DEFAULT_BATCHES.get(name, [1, 64])


def build(name, seed=SEED):
    """The Keras model of workload `name`, built with `seed`."""
    import keras
    from keras import layers

    if name not in WORKLOADS + EXTRA_WORKLOADS:
        raise ValueError("unknown workload '%s': expected one of %s" % (name, ", ".join(WORKLOADS + EXTRA_WORKLOADS)))
    if name in APPLICATIONS:
        return _application(name, seed)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if name == "cnn_cifar":
        return keras.Sequential([
            keras.Input((32, 32, 3)),
            layers.Conv2D(32, 3, padding="same"), layers.ReLU(), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same"), layers.ReLU(), layers.MaxPooling2D(2),
            layers.Conv2D(128, 3, padding="same"), layers.ReLU(), layers.MaxPooling2D(2, strides=1),
            layers.Flatten(), layers.Dropout(0.5), layers.Dense(256, activation="relu"),
            layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
        ])
    if name == "bilstm_text":
        return keras.Sequential([
            keras.Input((64,), dtype="int32"), layers.Embedding(3000, 100),
            layers.Bidirectional(layers.LSTM(64)), layers.Dropout(0.2), layers.Dense(3, activation="softmax"),
        ])
    if name == "rnn_stack3":
        return keras.Sequential([
            keras.Input((64,), dtype="int32"), layers.Embedding(3000, 100),
            layers.SimpleRNN(64, return_sequences=True), layers.SimpleRNN(128, return_sequences=True),
            layers.SimpleRNN(256), layers.Dropout(0.2), layers.Dense(3, activation="softmax"),
        ])
    if name == "gru_text":
        return keras.Sequential([
            keras.Input((64,), dtype="int32"), layers.Embedding(3000, 100),
            layers.GRU(128), layers.Dropout(0.2), layers.Dense(3, activation="softmax"),
        ])
    return _transformer(name, implicit_mask=name == "transformer_text_implicit_mask")


def _application(name, seed):
    import applications_test  # tools/, on sys.path via run_benchmarks

    model = applications_test.build(APPLICATIONS[name], 224, seed=seed, classifier_activation="softmax")
    applications_test.calibrate(model, seed=seed + 1)
    return model


def _transformer(name, implicit_mask=False):
    import keras
    from keras import layers, ops

    t = TRANSFORMER
    tokens = keras.Input((t["sequence"],), dtype="int32", name="tokens")
    embedded = layers.Embedding(t["vocabulary"], t["width"], mask_zero=True, name="token_embedding")(tokens)
    # Positions 1..len on the tokens, 0 on the padding (keras.io's text Transformer), so that the
    # position Embedding is masked too: Keras's Add keeps a mask only when every input has one.
    both = ops.not_equal(tokens, 0)
    real = ops.cast(both, "int32")
    positions = ops.cumsum(real, axis=1) * real
    placed = layers.Embedding(t["sequence"] + 1, t["width"], mask_zero=True, name="position_embedding")(positions)
    x = layers.Add(name="embed")([embedded, placed])
    if getattr(x, "_keras_mask", None) is None:
        raise RuntimeError("transformer_text: the padding mask does not reach the encoder")
    # Keras's MultiHeadAttention clears the mask of the tensor it is given (set_keras_mask(query,
    # None)), and that tensor is also the residual's input: at run time the residual Add, and so
    # the second block's attention, are unmasked, while the symbolic graph (what nnbuild reads)
    # keeps the mask. An explicit attention mask masks every block, in Keras and everywhere else.
    attention_mask = None if implicit_mask else ops.logical_and(ops.expand_dims(both, 2), ops.expand_dims(both, 1))
    for block in range(t["blocks"]):
        attention = layers.MultiHeadAttention(num_heads=t["heads"], key_dim=t["key_dim"], name="attention_%d" % block)(
            x, x, attention_mask=attention_mask)
        attention = layers.Dropout(0.1, name="attention_dropout_%d" % block)(attention)
        x = layers.LayerNormalization(epsilon=1e-6, name="norm_a_%d" % block)(layers.Add(name="residual_a_%d" % block)([x, attention]))
        forward = layers.Dense(t["feed_forward"], activation="relu", name="feed_forward_%d" % block)(x)
        forward = layers.Dense(t["width"], name="project_%d" % block)(forward)
        forward = layers.Dropout(0.1, name="forward_dropout_%d" % block)(forward)
        x = layers.LayerNormalization(epsilon=1e-6, name="norm_b_%d" % block)(layers.Add(name="residual_b_%d" % block)([x, forward]))
    pooled = layers.GlobalAveragePooling1D(name="pool")(x)
    out = layers.Dense(t["classes"], activation="softmax", name="head")(layers.Dropout(0.1, name="head_dropout")(pooled))
    return keras.Model(tokens, out, name=name)


def make_input(name, model, batch, seed):
    """The batch every runtime is fed: float32 standard normal images, or int32 token ids (the
    transformer's zero-padded after a random length, the other text models' unpadded)."""
    rng = np.random.default_rng(seed)
    shape = (batch,) + tuple(model.input_shape[1:])
    if name.startswith("transformer_text"):
        t = TRANSFORMER
        ids = rng.integers(1, t["vocabulary"], size=shape)
        lengths = rng.integers(t["shortest"], t["sequence"] + 1, size=batch)
        ids[np.arange(t["sequence"])[None, :] >= lengths[:, None]] = 0
        return ids.astype(np.int32)
    if "int" in str(model.inputs[0].dtype):
        return rng.integers(1, 3000, size=shape).astype(np.int32)
    return rng.standard_normal(shape).astype(np.float32)


def fingerprint(name, seed=SEED):
    """A short key for the cache: the workload, its seed, and the source that builds it (a changed
    definition gets new conversions rather than stale ones)."""
    import keras

    source = inspect.getsource(build) + inspect.getsource(_transformer) + inspect.getsource(_application) + repr(TRANSFORMER)
    digest = hashlib.sha256((source + keras.__version__).encode()).hexdigest()[:10]
    return "%s-seed%d-%s" % (name, seed, digest)
