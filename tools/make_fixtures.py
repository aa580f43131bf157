#!/usr/bin/env python3
"""Regenerates every committed test fixture from real Keras, deterministically.

    pip install tensorflow-cpu==2.20.0 safetensors
    python3 tools/make_fixtures.py [CASE ...]        # all cases, or only those named
    python3 tools/make_fixtures.py --list            # names and descriptions

Each case becomes Tests/Fixtures/<case>/ with

    model.json            model.to_json(), verbatim (hand-written for keras2_style and handwritten_minimal)
    weights.safetensors   every weight, float32, keyed by its Keras variable path
    input.npy             a batch of 2-4 inputs (float32, or int32 token ids)
    expected.npy          Keras's model.predict on it, float32

Determinism: every case starts a fresh Keras session (so layer names restart at `dense`,
`sequential`, whatever else runs) and seeds numpy and Keras with the CRC-32 of its name. After
building, every weight is redrawn from that seed (normal * 0.5; BatchNormalization moving
variances uniform in [0.5, 1.5]) so biases, statistics and gates are all exercised. Running one
case alone reproduces exactly the files the full run makes.

Every written case is then rebuilt from its own model.json in a fresh session, given its weights
by path and run again (tools/verify_fixtures.py); a mismatch stops the script. Where the rebuilt
model's variable paths differ from the file's keys, MANIFEST.json records it under
"weight_name_quirks". Tests/Fixtures/MANIFEST.json also lists each case with a one-line
description, the versions that made them and where each name of the original task list lives.
Swift tests compare with max |ours - keras| / (1 + |keras|) <= 1e-5.
"""
import json
import os
import shutil
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "Tests", "Fixtures")
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers as L  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from keras_export import export_model  # noqa: E402
from verify_fixtures import NOT_RELOADABLE, ReloadError, quirk_summary, verify_case  # noqa: E402

CASES = {}  # name -> (description, build(rng) -> (model, input) or Fixture)


class Fixture:
    """A case whose files are not plain to_json/variable paths: a hand-written spec and key names."""

    def __init__(self, model, x, spec, key):
        self.model, self.x, self.spec, self.key = model, x, spec, key


def case(description, fan_in_scaled=False):
    """Registers a case; `fan_in_scaled` draws kernels with std sqrt(2 / fan_in) instead of 0.5."""
    def register(fn):
        fn.fan_in_scaled = fan_in_scaled
        CASES[fn.__name__] = (description, fn)
        return fn
    return register


def seq(input_shape, *layers, dtype="float32"):
    return keras.Sequential([keras.Input(input_shape, dtype=dtype)] + list(layers))


def floats(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def tokens(rng, batch, steps, vocab, lengths=None):
    """Token ids; with `lengths`, rows are post-padded with zeros to those real lengths."""
    x = rng.integers(1, vocab, size=(batch, steps)).astype(np.int32)
    for row, length in enumerate(lengths or []):
        x[row, length:] = 0
    return x


# Feed-forward (issue 2) -------------------------------------------------------------------------

@case("Dense stack with relu, tanh, sigmoid, softmax")
def dense_relu(rng):
    return seq((7,), L.Dense(9, activation="relu"), L.Dense(8, activation="tanh"), L.Dense(6, activation="sigmoid"),
               L.Dense(4, activation="softmax")), floats(rng, 4, 7)


@case("Dense on a (time, features) input applies to the last axis")
def dense_3d(rng):
    return seq((5, 3), L.Dense(4, activation="elu"), L.Dense(2, use_bias=False)), floats(rng, 3, 5, 3)

@case("Dense without bias on 2-D input, linear then tanh")
def dense_nobias(rng):
    return seq((6,), L.Dense(5, use_bias=False), L.Dense(3, use_bias=False, activation="tanh")), floats(rng, 4, 6)


ACTIVATIONS = ["linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "softmax", "log_softmax", "softplus",
               "softsign", "elu", "selu", "gelu", "swish", "silu", "exponential", "leaky_relu", "mish", "hard_silu"]


@case("every activation name through Dense(activation=...) and Activation layers")
def activations(rng):
    branch = [L.Dense(12, activation=ACTIVATIONS[0])]
    for name in ACTIVATIONS[1:]:
        branch.append(L.Activation(name) if name != "exponential" else L.Activation("tanh"))
        branch.append(L.Dense(12, activation=name if name != "exponential" else "linear"))
    branch.append(L.Dense(6, activation="exponential"))
    return seq((5,), *branch), floats(rng, 4, 5)


def conv(rng, size, channels, *layers, batch=2):
    return seq((size, size, channels), *layers), floats(rng, batch, size, size, channels)


@case("Conv2D 3x3 valid, relu")
def conv2d_valid(rng):
    return conv(rng, 8, 3, L.Conv2D(5, 3, activation="relu"))


@case("Conv2D 3x3 same")
def conv2d_same_odd(rng):
    return conv(rng, 7, 2, L.Conv2D(4, 3, padding="same"))


@case("Conv2D same with even kernels 4x4 and 2x2")
def conv2d_same_even(rng):
    return conv(rng, 7, 2, L.Conv2D(3, 4, padding="same"), L.Conv2D(3, 2, padding="same"))


@case("Conv2D strides 2, same and valid, odd input")
def conv2d_strides(rng):
    return conv(rng, 9, 3, L.Conv2D(4, 3, strides=2, padding="same"), L.Conv2D(3, 2, strides=2, padding="valid"))


@case("Conv2D dilation 2, same and valid")
def conv2d_dilation(rng):
    return conv(rng, 10, 2, L.Conv2D(3, 3, dilation_rate=2, padding="same"), L.Conv2D(3, 3, dilation_rate=2, padding="valid"))


@case("Conv2D without bias, tanh; rectangular kernel and strides")
def conv2d_rect(rng):
    return conv(rng, 9, 2, L.Conv2D(3, (3, 2), strides=(2, 1), use_bias=False, activation="tanh"), L.Conv2D(2, (1, 3), padding="same"))


@case("Conv2D groups=2")
def conv2d_groups(rng):
    return conv(rng, 6, 4, L.Conv2D(6, 3, groups=2, padding="same"))

@case("Conv2D without bias: 3x3 valid relu, then 2x2 same sigmoid")
def conv2d_nobias_act(rng):
    return conv(rng, 7, 3, L.Conv2D(4, 3, use_bias=False, activation="relu"), L.Conv2D(3, 2, padding="same", use_bias=False, activation="sigmoid"))


@case("Conv2D 3x3 at stride 1 with 16 or more channels (nnbuild's Winograd path): valid then same on odd sizes, "
      "channel counts off multiples of 8, a separate ReLU layer, no bias with ELU", fan_in_scaled=True)
def conv2d_winograd(rng):
    return seq((11, 10, 18), L.Conv2D(21, 3, activation="relu"), L.Conv2D(19, 3, padding="same"), L.ReLU(),
               L.Conv2D(17, 3, padding="same", use_bias=False, activation="elu")), floats(rng, 3, 11, 10, 18)


@case("MaxPooling2D: default strides, explicit strides, same padding, non-square")
def maxpool2d(rng):
    return conv(rng, 7, 2, L.MaxPooling2D(2, padding="same"), L.MaxPooling2D((2, 1), strides=(1, 2)), L.MaxPooling2D(3, strides=2, padding="same"))


@case("AveragePooling2D: default strides, explicit strides, same padding ignores padded cells")
def avgpool2d(rng):
    return conv(rng, 7, 2, L.AveragePooling2D(2, padding="same"), L.AveragePooling2D(3, strides=1, padding="same"), L.AveragePooling2D((2, 3), strides=(2, 1)))


@case("Conv2D, GlobalMaxPooling2D(keepdims=True), Flatten, Dense")
def global_pool2d(rng):
    return conv(rng, 5, 3, L.Conv2D(4, 3), L.GlobalMaxPooling2D(keepdims=True), L.Flatten(), L.Dense(3))


@case("GlobalAveragePooling2D")
def global_avg_pool2d(rng):
    return conv(rng, 5, 3, L.GlobalAveragePooling2D())

@case("GlobalMaxPooling2D with keepdims=True, then without")
def global_max_pool2d(rng):
    return conv(rng, 5, 3, L.GlobalMaxPooling2D(keepdims=True), L.GlobalMaxPooling2D())


@case("Flatten and Reshape with -1")
def flatten_reshape(rng):
    return seq((4, 3, 2), L.Flatten(), L.Reshape((-1, 4)), L.Dense(2), L.Reshape((2, 3, 2))), floats(rng, 2, 4, 3, 2)


@case("ZeroPadding2D in int and tuple forms")
def zero_padding2d(rng):
    return conv(rng, 4, 2, L.ZeroPadding2D(1), L.ZeroPadding2D(((1, 2), (3, 0))), L.Conv2D(2, 2))


@case("Dropout, SpatialDropout2D, GaussianNoise, GaussianDropout are identity at inference")
def dropout_family(rng):
    return conv(rng, 6, 2, L.Conv2D(3, 3), L.SpatialDropout2D(0.3), L.GaussianNoise(0.5), L.GaussianDropout(0.2), L.Flatten(), L.Dropout(0.5), L.Dense(2))


@case("ReLU layer with max_value, negative_slope, threshold")
def relu_layer(rng):
    return seq((10,), L.ReLU(), L.Dense(10), L.ReLU(max_value=1.0), L.Dense(10), L.ReLU(negative_slope=0.1, threshold=0.3),
               L.Dense(10), L.ReLU(max_value=2.0, negative_slope=0.2, threshold=0.5)), floats(rng, 3, 10, scale=2)


@case("LeakyReLU, ELU, Softmax layers (Softmax on 3-D input)")
def activation_layers(rng):
    return seq((4, 6), L.LeakyReLU(negative_slope=0.2), L.Dense(6), L.LeakyReLU(), L.ELU(alpha=0.7), L.Dense(5), L.Softmax()), floats(rng, 3, 4, 6, scale=2)

@case("Softmax layer on 3-D input over axis 1 and axis -1, then on 2-D input")
def softmax_layer(rng):
    return seq((4, 5), L.Softmax(axis=1), L.Dense(5), L.Softmax(), L.Flatten(), L.Dense(6), L.Softmax()), floats(rng, 3, 4, 5, scale=2)


@case("BatchNormalization on conv and dense outputs; center/scale off; epsilon")
def batchnorm(rng):
    return conv(rng, 5, 3, L.Conv2D(4, 3), L.BatchNormalization(), L.Flatten(), L.Dense(6), L.BatchNormalization(center=False, epsilon=0.01),
                L.Dense(5), L.BatchNormalization(scale=False))


@case("LayerNormalization default, center/scale off, on 3-D input")
def layernorm(rng):
    return seq((4, 6), L.LayerNormalization(), L.Dense(5), L.LayerNormalization(center=False, scale=False, epsilon=0.1)), floats(rng, 3, 4, 6, scale=3)


@case("RMSNormalization")
def rmsnorm(rng):
    return seq((4, 6), L.RMSNormalization(), L.Dense(5), L.RMSNormalization(epsilon=0.1)), floats(rng, 3, 4, 6, scale=3)


@case("LayerNormalization rms_scaling=True on inputs with a non-zero mean: Keras divides by the variance around the "
      "mean and does not centre x (not the RMS)")
def layernorm_rms_scaling(rng):
    return seq((4, 6), L.LayerNormalization(rms_scaling=True), L.Dense(5), L.LayerNormalization(rms_scaling=True, epsilon=0.1)), \
        floats(rng, 3, 4, 6, scale=3) + 1.5


@case("activations given as layer objects (serialized as keras.layers dicts): LeakyReLU, ELU, ReLU(max_value=6), Softmax")
def activation_layer_objects(rng):
    return seq((6,), L.Dense(7, activation=L.LeakyReLU(negative_slope=0.1)), L.Dense(6, activation=L.ELU(alpha=0.5)),
               L.Dense(5, activation=L.ReLU(max_value=6.0)), L.Dense(4, activation=L.Softmax())), floats(rng, 4, 6, scale=2)

@case("CIFAR-10 CNN layout on 32x32x3 (Conv same relu + MaxPool 2, three times, the last pool strides 1; Flatten, "
      "Dropout, Dense relu, Dropout, Dense softmax) at widths 8/16/32 and Dense 32: the classic 32/64/128 and Dense 256 "
      "hold 1.7 M weights (6.9 MB); weights scaled by fan-in so the softmax does not saturate", fan_in_scaled=True)
def cifar_cnn(rng):
    return seq((32, 32, 3), L.Conv2D(8, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
               L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
               L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(2, strides=1),
               L.Flatten(), L.Dropout(0.5), L.Dense(32, activation="relu"), L.Dropout(0.5),
               L.Dense(10, activation="softmax")), floats(rng, 2, 32, 32, 3)


def keras2_dense(layer, activation, input_shape=None):
    """A Dense layer as Keras 2 (tf.keras <= 2.12 style) serialized it: plain string dtype, no "module"."""
    config = {"name": layer.name, "trainable": True}
    if input_shape is not None:
        config["batch_input_shape"] = [None] + list(input_shape)
    config.update({"dtype": "float32", "units": layer.units, "activation": activation, "use_bias": layer.use_bias,
                   "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                   "bias_initializer": {"class_name": "Zeros", "config": {}},
                   "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
                   "kernel_constraint": None, "bias_constraint": None})
    return {"class_name": "Dense", "config": config}


@case("hand-written Keras-2-style JSON (no InputLayer, batch_input_shape on the first Dense, string dtype, "
      "activation 'swish', keras_version 2.15.0) and Keras 2 weight names 'dense/kernel:0'")
def keras2_style(rng):
    model = seq((6,), L.Dense(8, activation="relu"), L.Dropout(0.25), L.Dense(5, activation="swish"), L.Dense(3, activation="softmax"))
    first, dropout, second, third = model.layers
    spec = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        keras2_dense(first, "relu", input_shape=(6,)),
        {"class_name": "Dropout", "config": {"name": dropout.name, "trainable": True, "dtype": "float32", "rate": 0.25,
                                             "noise_shape": None, "seed": None}},
        keras2_dense(second, "swish"),
        keras2_dense(third, "softmax")]},
        "keras_version": "2.15.0", "backend": "tensorflow"}
    return Fixture(model, floats(rng, 4, 6), json.dumps(spec), key=lambda path: path.split("/", 1)[1] + ":0")


@case("the minimal hand-written spec: no names (Keras defaults dense, dense_1), no dtype, weights 'dense/kernel'")
def handwritten_minimal(rng):
    spec = ('{"class_name":"Sequential","config":{"layers":[{"class_name":"InputLayer","config":{"batch_shape":[null,6]}},'
            '{"class_name":"Dense","config":{"units":4,"activation":"relu"}},{"class_name":"Dense","config":{"units":2}}]}}')
    model = seq((6,), L.Dense(4, activation="relu"), L.Dense(2))
    return Fixture(model, floats(rng, 4, 6), spec, key=lambda path: path.split("/", 1)[1])


# Sequences (issue 3) ----------------------------------------------------------------------------

VOCAB = 50
PADDED = [9, 5, 1, 0]   # post-padded real lengths, the last row all padding


@case("Embedding (mask_zero=False), then Dense per step")
def embedding(rng):
    return seq((9,), L.Embedding(VOCAB, 6), L.Dense(3), dtype="int32"), tokens(rng, 3, 9, VOCAB)

@case("Embedding with mask_zero=True, then Dense per step (padded steps still give Dense(embeddings[0]))")
def embedding_mask_zero(rng):
    return seq((9,), L.Embedding(VOCAB, 6, mask_zero=True), L.Dense(3), dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)


@case("SimpleRNN stack with growing sizes 16 -> 32 -> 48")
def simple_rnn_stack(rng):
    return seq((9,), L.Embedding(VOCAB, 8), L.SimpleRNN(16, return_sequences=True), L.SimpleRNN(32, return_sequences=True),
               L.SimpleRNN(48), L.Dense(3, activation="softmax"), dtype="int32"), tokens(rng, 3, 9, VOCAB)


@case("SimpleRNN stack at the sizes text models use, 64 -> 128 -> 256 (weights scaled by fan-in so tanh does not "
      "saturate and hide errors)", fan_in_scaled=True)
def simple_rnn_stack_64_128_256(rng):
    return seq((9,), L.Embedding(VOCAB, 8), L.SimpleRNN(64, return_sequences=True), L.SimpleRNN(128, return_sequences=True),
               L.SimpleRNN(256), L.Dense(3, activation="softmax"), dtype="int32"), tokens(rng, 3, 9, VOCAB)


@case("SimpleRNN relu, no bias, go_backwards, return_sequences")
def simple_rnn_options(rng):
    return seq((7, 4), L.SimpleRNN(5, activation="relu", use_bias=False, go_backwards=True, return_sequences=True),
               L.SimpleRNN(3, go_backwards=True)), floats(rng, 3, 7, 4)


@case("Bidirectional SimpleRNN")
def bidi_simple_rnn(rng):
    return seq((7, 4), L.Bidirectional(L.SimpleRNN(5, return_sequences=True)), L.Bidirectional(L.SimpleRNN(3))), floats(rng, 3, 7, 4)


@case("stacked LSTM with return_sequences")
def lstm_seq_stack(rng):
    return seq((9,), L.Embedding(VOCAB, 8), L.LSTM(10, return_sequences=True), L.LSTM(6, return_sequences=True), L.LSTM(5),
               L.Dense(3, activation="softmax"), dtype="int32"), tokens(rng, 3, 9, VOCAB)


@case("LSTM go_backwards, no bias, hard_sigmoid recurrent activation, relu activation")
def lstm_options(rng):
    return seq((6, 3), L.LSTM(4, go_backwards=True, return_sequences=True, recurrent_activation="hard_sigmoid"),
               L.LSTM(5, use_bias=False, activation="relu")), floats(rng, 3, 6, 3)


@case("stacked Bidirectional LSTM")
def bidi_lstm_stack(rng):
    return seq((9,), L.Embedding(VOCAB, 8), L.Bidirectional(L.LSTM(6, return_sequences=True)), L.Bidirectional(L.LSTM(4)),
               L.Dense(3, activation="softmax"), dtype="int32"), tokens(rng, 3, 9, VOCAB)


@case("GRU reset_after=True (the default; bias (2, 3*units))")
def gru_reset_after_true(rng):
    return seq((8, 3), L.GRU(6, return_sequences=True), L.GRU(4)), floats(rng, 3, 8, 3)


@case("GRU reset_after=False (bias (3*units,))")
def gru_reset_after_false(rng):
    return seq((8, 3), L.GRU(6, reset_after=False, return_sequences=True), L.GRU(4, reset_after=False)), floats(rng, 3, 8, 3)


@case("GRU go_backwards, return_sequences, no bias")
def gru_options(rng):
    return seq((6, 3), L.GRU(5, go_backwards=True, return_sequences=True), L.GRU(3, use_bias=False, activation="relu")), floats(rng, 3, 6, 3)


@case("Bidirectional GRU merge_mode sum on float time series")
def bidi_gru_sum(rng):
    return seq((10, 2), L.Bidirectional(L.GRU(5, return_sequences=True), merge_mode="sum"), L.Bidirectional(L.GRU(4), merge_mode="sum"),
               L.Dense(1)), floats(rng, 3, 10, 2)


@case("Bidirectional merge modes concat, mul, ave with and without return_sequences")
def bidi_merge_modes(rng):
    return seq((6, 3), L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="mul"),
               L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="ave"),
               L.Bidirectional(L.SimpleRNN(3), merge_mode="concat"), L.Dense(2)), floats(rng, 3, 6, 3)

@case("Bidirectional merge modes mul, ave, sum without return_sequences (RepeatVector in between)")
def bidi_merge_modes_last(rng):
    return seq((6, 3), L.Bidirectional(L.LSTM(4), merge_mode="mul"), L.RepeatVector(3),
               L.Bidirectional(L.GRU(4), merge_mode="ave"), L.RepeatVector(2),
               L.Bidirectional(L.SimpleRNN(3), merge_mode="sum"), L.Dense(2)), floats(rng, 3, 6, 3)


@case("masked LSTM: post-padded batch, different lengths, one all-padding row")
def masked_lstm(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.LSTM(6), L.Dense(3, activation="softmax"), dtype="int32"), \
        tokens(rng, 4, 9, VOCAB, PADDED)


@case("masked stacked Bidirectional LSTM with return_sequences")
def masked_bidi_lstm(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.Bidirectional(L.LSTM(5, return_sequences=True)), L.Bidirectional(L.LSTM(4)),
               L.Dense(3, activation="softmax"), dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)


@case("masked GRU and SimpleRNN returning sequences, then a go_backwards GRU")
def masked_gru(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.GRU(5, return_sequences=True), L.SimpleRNN(4, return_sequences=True),
               L.GRU(3, go_backwards=True), dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)


@case("masked SimpleRNN sequences then GlobalAveragePooling1D over unmasked steps")
def masked_simple_rnn_pool(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.SimpleRNN(5, return_sequences=True), L.GlobalAveragePooling1D(),
               L.Dense(2), dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)


@case("LoRA on Embedding (lora_embeddings_a/b) and Dense (lora_kernel_a/b, lora_alpha): merged into the weights at load")
def dense_embedding_lora(rng):
    return seq((6,), L.Embedding(VOCAB, 5, lora_rank=2), L.Flatten(), L.Dense(4, lora_rank=3, lora_alpha=1.5), dtype="int32"), \
        tokens(rng, 3, 6, VOCAB)


@case("RMSNormalization does not support masking: Keras drops the mask there, so the SimpleRNN after it runs over the padding")
def rmsnorm_drops_mask(rng):
    return seq((9,), L.Embedding(VOCAB, 6, mask_zero=True), L.RMSNormalization(), L.SimpleRNN(4), dtype="int32"), \
        tokens(rng, 4, 9, VOCAB, PADDED)


@case("zero_output_for_mask=True without return_sequences: a row ending in padding gives zeros (the last step's output slot)")
def masked_rnn_zero_output_last(rng):
    return seq((7,), L.Embedding(VOCAB, 5, mask_zero=True), L.SimpleRNN(4, zero_output_for_mask=True), dtype="int32"), \
        tokens(rng, 4, 7, VOCAB, [7, 4, 1, 0])


@case("zero_output_for_mask=True, go_backwards, without return_sequences: the last step processed is the first one")
def masked_gru_backwards_zero_output_last(rng):
    return seq((7,), L.Embedding(VOCAB, 5, mask_zero=True), L.GRU(3, zero_output_for_mask=True, go_backwards=True), dtype="int32"), \
        tokens(rng, 4, 7, VOCAB, [7, 4, 1, 0])


@case("mask passes through Dense and Dropout on 3-D input into an LSTM")
def masked_dense_seq(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.Dense(6, activation="tanh"), L.Dropout(0.3), L.LSTM(4),
               dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)

@case("masked LSTM returning sequences as the output: padded steps repeat the last real output (zero_output_for_mask=False)")
def masked_lstm_seq_out(rng):
    return seq((7,), L.Embedding(VOCAB, 5, mask_zero=True), L.LSTM(4, return_sequences=True), dtype="int32"), \
        tokens(rng, 4, 7, VOCAB, [7, 4, 1, 0])


@case("masked GRU returning sequences as the output: padded steps repeat the last real output")
def masked_gru_seq_out(rng):
    return seq((7,), L.Embedding(VOCAB, 5, mask_zero=True), L.GRU(4, return_sequences=True), dtype="int32"), \
        tokens(rng, 4, 7, VOCAB, [7, 4, 1, 0])


@case("masked SimpleRNN go_backwards returning sequences: outputs in processing (reversed) order, leading padded steps zero")
def masked_simple_rnn_seq_out(rng):
    return seq((7,), L.Embedding(VOCAB, 5, mask_zero=True), L.SimpleRNN(4, return_sequences=True, go_backwards=True), dtype="int32"), \
        tokens(rng, 4, 7, VOCAB, [7, 4, 1, 0])


@case("masked LSTM with zero_output_for_mask=True: padded steps output zeros")
def masked_lstm_zero_output(rng):
    return seq((7,), L.Embedding(VOCAB, 5, mask_zero=True), L.LSTM(4, return_sequences=True, zero_output_for_mask=True), dtype="int32"), \
        tokens(rng, 4, 7, VOCAB, [7, 4, 1, 0])


@case("masked Bidirectional LSTM returning sequences as the output: both halves give zeros at padded steps")
def masked_bidi_seq_out(rng):
    return seq((7,), L.Embedding(VOCAB, 5, mask_zero=True), L.Bidirectional(L.LSTM(3, return_sequences=True)), dtype="int32"), \
        tokens(rng, 4, 7, VOCAB, [7, 4, 1, 0])


@case("masked LSTM sequences into Flatten (which drops the mask) and Dense: the repeated outputs at padded steps count")
def masked_flatten(rng):
    return seq((6,), L.Embedding(VOCAB, 5, mask_zero=True), L.LSTM(3, return_sequences=True), L.Flatten(), L.Dense(2), dtype="int32"), \
        tokens(rng, 4, 6, VOCAB, [6, 3, 1, 0])


@case("Masking layer on float input with all-zero steps")
def masking_layer(rng):
    x = floats(rng, 3, 7, 3)
    x[0, 4:] = 0
    x[1, 2] = 0
    x[2, :] = 0
    return seq((7, 3), L.Masking(0.0), L.LSTM(4, return_sequences=True), L.GRU(3)), x


@case("Conv1D valid, same and causal, with strides and dilation")
def conv1d(rng):
    return seq((12, 3), L.Conv1D(4, 3), L.Conv1D(4, 3, padding="same", strides=2), L.Conv1D(3, 2, padding="causal", dilation_rate=2),
               L.Conv1D(2, 3, padding="causal")), floats(rng, 3, 12, 3)


@case("MaxPooling1D 2, AveragePooling1D 2 same, AveragePooling1D 3 strides 1 valid")
def pool1d(rng):
    return seq((11, 3), L.MaxPooling1D(2), L.AveragePooling1D(2, padding="same"), L.AveragePooling1D(3, strides=1, padding="valid")), floats(rng, 3, 11, 3)


@case("Conv1D then GlobalMaxPooling1D (no mask)")
def global_pool1d(rng):
    return seq((8, 3), L.Conv1D(4, 2), L.GlobalMaxPooling1D()), floats(rng, 3, 8, 3)


@case("TimeDistributed Dense")
def time_distributed_dense(rng):
    return seq((5, 4), L.TimeDistributed(L.Dense(3, activation="relu")), L.LSTM(2)), floats(rng, 3, 5, 4)


@case("RepeatVector into an LSTM decoder")
def repeat_vector(rng):
    return seq((4,), L.Dense(5), L.RepeatVector(3), L.LSTM(4, return_sequences=True), L.TimeDistributed(L.Dense(2))), floats(rng, 3, 4)


@case("Conv1D text classifier: Embedding, Conv1D relu, MaxPooling1D, GlobalAveragePooling1D (no mask), Dense")
def conv1d_text(rng):
    return seq((12,), L.Embedding(VOCAB, 8), L.Conv1D(6, 3, activation="relu"), L.MaxPooling1D(2), L.GlobalAveragePooling1D(), L.Dense(3),
               dtype="int32"), tokens(rng, 3, 12, VOCAB)


# Spatial layers in more configurations: one layer (or a short pipeline) per case ---------------

def spatial(name, input_shape, make_layers, batch=3, length=None):
    """A case of `make_layers()` on a float batch of `batch`; `length` fills an unknown (None) input dimension."""
    def build(rng):
        shape = (batch,) + tuple(length if d is None else d for d in input_shape)
        return keras.Sequential([keras.Input(input_shape)] + make_layers()), floats(rng, *shape)
    build.__name__ = name
    CASES[name] = (None, build)  # described from the built layers


spatial("conv2d_valid_relu", (7, 9, 3), lambda: [L.Conv2D(4, 3, activation="relu")])
spatial("conv2d_same_even_strides", (8, 7, 2), lambda: [L.Conv2D(5, (4, 2), strides=(2, 3), padding="same")])
spatial("conv2d_same_odd_stride", (9, 9, 3), lambda: [L.Conv2D(4, 3, strides=2, padding="same", activation="tanh")])
spatial("conv2d_same_kernel_larger", (3, 2, 2), lambda: [L.Conv2D(3, (5, 4), padding="same")])
spatial("conv2d_dilation_same", (11, 10, 3), lambda: [L.Conv2D(4, 3, dilation_rate=(2, 3), padding="same")])
spatial("conv2d_dilation_valid", (11, 10, 3), lambda: [L.Conv2D(4, (2, 3), dilation_rate=(3, 2))])
spatial("conv2d_groups_same", (6, 7, 4), lambda: [L.Conv2D(6, 3, groups=2, padding="same")])
spatial("conv2d_groups_depthwise", (6, 5, 4), lambda: [L.Conv2D(8, (3, 2), strides=(2, 1), groups=4)])
spatial("conv2d_nobias_strides", (8, 9, 3), lambda: [L.Conv2D(4, (3, 2), strides=(2, 1), use_bias=False, activation="sigmoid")])
spatial("conv2d_pointwise_groups", (5, 4, 6), lambda: [L.Conv2D(4, 1, groups=2)])
spatial("conv2d_pointwise_stride", (5, 4, 6), lambda: [L.Conv2D(4, 1, strides=2, padding="same")])
spatial("conv2d_softmax", (5, 5, 2), lambda: [L.Conv2D(3, 2, activation="softmax")])
spatial("conv1d_valid", (10, 3), lambda: [L.Conv1D(4, 3, activation="relu")])
spatial("conv1d_same_even", (9, 3), lambda: [L.Conv1D(4, 4, strides=2, padding="same")])
spatial("conv1d_causal_dilation", (10, 2), lambda: [L.Conv1D(3, 3, padding="causal", dilation_rate=2)])
spatial("conv1d_causal_strides", (11, 2), lambda: [L.Conv1D(3, 4, padding="causal", strides=3)])
spatial("conv1d_groups", (8, 6), lambda: [L.Conv1D(9, 2, groups=3, padding="same", dilation_rate=2)])
spatial("conv1d_unknown_length", (None, 3), lambda: [L.Conv1D(4, 3, padding="same"), L.Conv1D(2, 2, strides=2)], length=9)
spatial("maxpool2d_default", (8, 6, 3), lambda: [L.MaxPooling2D()])
spatial("maxpool2d_same_strides", (7, 8, 2), lambda: [L.MaxPooling2D(3, strides=2, padding="same")])
spatial("maxpool2d_same_even", (5, 6, 2), lambda: [L.MaxPooling2D((2, 3), strides=1, padding="same")])
spatial("maxpool2d_valid_odd", (7, 7, 2), lambda: [L.MaxPooling2D(3, strides=(2, 1))])
spatial("avgpool2d_same_strides", (7, 8, 2), lambda: [L.AveragePooling2D(3, strides=2, padding="same")])
spatial("avgpool2d_same_even", (5, 6, 2), lambda: [L.AveragePooling2D((2, 4), strides=(1, 3), padding="same")])
spatial("avgpool2d_valid", (6, 7, 3), lambda: [L.AveragePooling2D((2, 3), strides=(1, 2))])
spatial("maxpool1d_default", (9, 3), lambda: [L.MaxPooling1D()])
spatial("maxpool1d_same", (9, 3), lambda: [L.MaxPooling1D(3, strides=2, padding="same")])
spatial("avgpool1d_same", (10, 3), lambda: [L.AveragePooling1D(4, strides=3, padding="same")])
spatial("avgpool1d_unknown_length", (None, 3), lambda: [L.AveragePooling1D(2, strides=1)], length=7)
spatial("global_avgpool2d", (5, 6, 3), lambda: [L.GlobalAveragePooling2D()])
spatial("global_maxpool2d_keepdims", (5, 6, 3), lambda: [L.GlobalMaxPooling2D(keepdims=True)])
spatial("global_avgpool1d_keepdims", (7, 4), lambda: [L.GlobalAveragePooling1D(keepdims=True)])
spatial("global_maxpool1d", (None, 4), lambda: [L.GlobalMaxPooling1D()], length=6)
spatial("zero_padding2d_int", (3, 4, 2), lambda: [L.ZeroPadding2D(2)])
spatial("zero_padding2d_pair", (3, 4, 2), lambda: [L.ZeroPadding2D((1, 3))])
spatial("zero_padding2d_nested", (3, 4, 2), lambda: [L.ZeroPadding2D(((0, 2), (3, 1)))])
spatial("zero_padding1d", (5, 2), lambda: [L.ZeroPadding1D((2, 1))])
spatial("cropping1d", (7, 2), lambda: [L.Cropping1D((2, 1))])
spatial("cropping2d", (7, 8, 2), lambda: [L.Cropping2D(((1, 2), (0, 3)))])
spatial("cropping2d_int", (7, 8, 2), lambda: [L.Cropping2D(2)])
spatial("upsampling1d", (4, 3), lambda: [L.UpSampling1D(3)])
spatial("upsampling2d_nearest", (3, 4, 2), lambda: [L.UpSampling2D((2, 3))])
spatial("upsampling2d_bilinear", (3, 4, 2), lambda: [L.UpSampling2D((2, 3), interpolation="bilinear")])
spatial("upsampling2d_bilinear_square", (4, 5, 2), lambda: [L.UpSampling2D(4, interpolation="bilinear")])
spatial("upsampling2d_bicubic", (4, 5, 2), lambda: [L.UpSampling2D((3, 2), interpolation="bicubic")])
spatial("upsampling2d_area", (4, 5, 2), lambda: [L.UpSampling2D((3, 2), interpolation="area")])
spatial("upsampling2d_lanczos3", (4, 5, 2), lambda: [L.UpSampling2D((3, 2), interpolation="lanczos3")])
spatial("upsampling2d_lanczos5", (4, 5, 2), lambda: [L.UpSampling2D((2, 3), interpolation="lanczos5")])
spatial("cnn_pipeline", (12, 11, 3), lambda: [
    L.ZeroPadding2D(1), L.Conv2D(8, 3, strides=2, activation="relu"), L.AveragePooling2D(2, padding="same"),
    L.UpSampling2D(2), L.Cropping2D(((1, 0), (0, 1))), L.Conv2D(6, 2, groups=2, dilation_rate=2, padding="same"),
    L.GlobalMaxPooling2D(), L.Dense(3)])
spatial("text_cnn", (20, 8), lambda: [
    L.Conv1D(16, 5, padding="causal", activation="relu"), L.MaxPooling1D(2), L.ZeroPadding1D(1),
    L.Conv1D(8, 3, dilation_rate=2, activation="relu"), L.UpSampling1D(2), L.Cropping1D(1),
    L.AveragePooling1D(3, padding="same"), L.GlobalAveragePooling1D(), L.Dense(2)])
spatial("conv1d_dilation_sparse", (2, 3), lambda: [L.Conv1D(2, 2, dilation_rate=3, padding="same")])
spatial("conv2d_dilation_sparse", (3, 2, 2), lambda: [L.Conv2D(3, 3, dilation_rate=(2, 4), padding="same")])
spatial("conv2d_lora", (6, 5, 3), lambda: [L.Conv2D(4, 3, lora_rank=2)])
spatial("conv1d_lora_alpha", (6, 3), lambda: [L.Conv1D(4, 2, lora_rank=3, lora_alpha=1.5, padding="causal")])


# Preprocessing layers (issue 13, item 9) ---------------------------------------------------------

def adapted(model, x):
    """Adapts every Normalization without given statistics to what reaches it from `x`."""
    for layer in model.layers:
        if isinstance(layer, L.Normalization) and layer.input_mean is None:
            layer.adapt(x)
        x = np.asarray(layer(x))
    return model


def skewed(rng, *shape):
    """Values whose mean and spread differ along every axis, so each kept axis matters."""
    grid = np.ones(shape, dtype=np.float32)
    for axis, size in enumerate(shape[1:], start=1):
        view = [1] * len(shape)
        view[axis] = size
        grid = grid * np.linspace(0.5, 2.0 + axis, size, dtype=np.float32).reshape(view)
    return (rng.standard_normal(shape) * grid * 3 + grid * 5).astype(np.float32)


@case("Rescaling with a scalar scale and offset (1/255, -0.5) on pixel values, then Dense")
def rescaling_scalar(rng):
    return seq((4, 4, 3), L.Rescaling(1 / 255.0, offset=-0.5), L.Dense(2)), (rng.integers(0, 256, size=(3, 4, 4, 3))).astype(np.float32)


@case("Rescaling per channel (list scale and NumPy offset), then a (4, 1) scale broadcast over width, then a scalar scale with no offset")
def rescaling_per_channel(rng):
    return seq((5, 4, 3), L.Rescaling([0.5, 2.0, -1.0], offset=np.array([0.1, -0.2, 0.3], dtype="float32")),
               L.Rescaling(np.array([[1.5], [0.5], [-2.0], [1.0]], dtype="float32"), offset=[[0.25], [0.0], [-0.5], [1.0]]),
               L.Rescaling(0.75), L.Dense(2)), floats(rng, 2, 5, 4, 3, scale=3.0)


@case("Normalization adapted on the last axis (the default), then Dense")
def normalization_adapt(rng):
    x = skewed(rng, 64, 6)
    return adapted(seq((6,), L.Normalization(), L.Dense(3)), x), x[:4]


@case("Normalization adapted with axis (1, 3), axis None (one mean over everything) and axis -2 on (4, 5, 3) inputs")
def normalization_axes(rng):
    x = skewed(rng, 32, 4, 5, 3)
    return adapted(seq((4, 5, 3), L.Normalization(axis=(1, 3)), L.Normalization(axis=None), L.Normalization(axis=-2)), x * 2 + 1), x[:3]


@case("Normalization with mean and variance in the config: per feature, scalar over everything, rank 1 on two kept axes, invert=True")
def normalization_given(rng):
    return seq((5, 3), L.Normalization(mean=[1.0, -2.0, 0.5], variance=[4.0, 0.25, 9.0]),
               L.Normalization(axis=None, mean=0.5, variance=2.0),
               L.Normalization(axis=(1, 2), mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 0.5]),
               L.Normalization(mean=[0.5, 1.0, -1.0], variance=[2.0, 0.0, 1.0], invert=True)), floats(rng, 3, 5, 3, scale=4.0)


@case("Normalization adapted, invert=True (a model's output mapped back to data units), after a Dense")
def normalization_invert(rng):
    x = skewed(rng, 48, 4)
    model = seq((3,), L.Dense(4), L.Normalization(invert=True))
    model.layers[-1].adapt(x)
    return model, floats(rng, 3, 3)


# Cases made from another case's files -----------------------------------------------------------

def tf_interpolation_case(method, size):
    """Keras 2's UpSampling2D also took TF's "gaussian" and "mitchellcubic"; Keras 3 refuses them,
    so the spec is upsampling2d_bicubic's with the interpolation changed and the expected output
    comes from tf.image.resize, which Keras 2 called."""
    def derive():
        import tensorflow as tf

        name = "upsampling2d_" + method
        src, dst = os.path.join(OUT, "upsampling2d_bicubic"), os.path.join(OUT, name)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        with open(os.path.join(dst, "model.json")) as f:
            spec = json.load(f)
        config = spec["config"]["layers"][1]["config"]
        config["interpolation"], config["size"] = method, list(size)
        with open(os.path.join(dst, "model.json"), "w") as f:
            json.dump(spec, f)
        x = np.load(os.path.join(dst, "input.npy"))
        y = tf.image.resize(x, (x.shape[1] * size[0], x.shape[2] * size[1]), method=method).numpy()
        np.save(os.path.join(dst, "expected.npy"), y.astype("float32"))
    return derive


# --- issue 15: recurrent ---
@case("generic RNN: SimpleRNNCell (relu) returning sequences go_backwards, then GRUCell reset_after=False, Dense")
def generic_rnn_simple_gru_cells(rng):
    return seq((6, 3), L.RNN(L.SimpleRNNCell(4, activation="relu"), return_sequences=True, go_backwards=True),
               L.RNN(L.GRUCell(3, reset_after=False, use_bias=False)), L.Dense(2)), floats(rng, 3, 6, 3)


@case("generic RNN: LSTMCell (hard_sigmoid, unroll=True) returning sequences, then GRUCell go_backwards")
def generic_rnn_lstm_cell(rng):
    return seq((5, 3), L.RNN(L.LSTMCell(4, recurrent_activation="hard_sigmoid"), return_sequences=True, unroll=True),
               L.RNN(L.GRUCell(3), go_backwards=True)), floats(rng, 3, 5, 3)


@case("generic RNN of a list of cells (a StackedRNNCells of LSTMCell, GRUCell, SimpleRNNCell of different widths), "
      "then an explicit StackedRNNCells going backwards")
def generic_rnn_stacked_cells(rng):
    return seq((5, 3), L.RNN([L.LSTMCell(4), L.GRUCell(2), L.SimpleRNNCell(3)], return_sequences=True),
               L.RNN(L.StackedRNNCells([L.SimpleRNNCell(2), L.LSTMCell(3, use_bias=False)]), go_backwards=True)), floats(rng, 3, 5, 3)


@case("masked generic RNN: padded sentences into a stacked LSTMCell/GRUCell RNN returning sequences, then a "
      "SimpleRNNCell RNN going backwards with zero_output_for_mask")
def generic_rnn_masked(rng):
    return seq((9,), L.Embedding(VOCAB, 5, mask_zero=True),
               L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)]), return_sequences=True),
               L.RNN(L.SimpleRNNCell(3), go_backwards=True, zero_output_for_mask=True), dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)


@case("masked generic RNN returning sequences as the output, zero_output_for_mask=True: padded steps give zeros")
def generic_rnn_masked_seq_out(rng):
    return seq((7,), L.Embedding(VOCAB, 5, mask_zero=True), L.RNN(L.GRUCell(3), return_sequences=True, zero_output_for_mask=True),
               dtype="int32"), tokens(rng, 4, 7, VOCAB, [7, 4, 1, 0])


@case("Bidirectional around generic RNNs on padded sentences: GRUCell returning sequences (concat), then stacked "
      "cells (sum); each with an explicit backward_layer whose cells have their own names")
def generic_rnn_bidirectional(rng):
    def gru(name, backwards=False):
        return L.RNN(L.GRUCell(3, name=name + "_cell"), return_sequences=True, go_backwards=backwards, name=name)

    def stacked(name, backwards=False):
        return L.RNN([L.LSTMCell(2, name=name + "_lstm_cell"), L.SimpleRNNCell(3, name=name + "_simple_cell")],
                     go_backwards=backwards, name=name)
    return seq((9,), L.Embedding(VOCAB, 5, mask_zero=True), L.Bidirectional(gru("fw_gru"), backward_layer=gru("bw_gru", True)),
               L.Bidirectional(stacked("fw_stack"), backward_layer=stacked("bw_stack", True), merge_mode="sum"), dtype="int32"), \
        tokens(rng, 4, 9, VOCAB, PADDED)


@case("ConvLSTM2D: padding same returning sequences, then strides (2, 1) with a (2, 3) kernel going backwards")
def conv_lstm2d_same_strides(rng):
    return seq((4, 5, 5, 2), L.ConvLSTM2D(3, 3, padding="same", return_sequences=True),
               L.ConvLSTM2D(2, (2, 3), strides=(2, 1), go_backwards=True)), floats(rng, 2, 4, 5, 5, 2)


@case("ConvLSTM2D: dilation_rate 2 with padding valid, relu activation, hard_sigmoid recurrent activation, no bias")
def conv_lstm2d_dilation(rng):
    return seq((3, 6, 5, 2), L.ConvLSTM2D(2, 3, dilation_rate=(2, 1), activation="relu", recurrent_activation="hard_sigmoid",
                                          use_bias=False, return_sequences=True)), floats(rng, 2, 3, 6, 5, 2)


@case("ConvLSTM1D: padding same returning sequences, then stride 2 going backwards, then dilation 2 valid")
def conv_lstm1d(rng):
    return seq((4, 9, 2), L.ConvLSTM1D(3, 3, padding="same", return_sequences=True),
               L.ConvLSTM1D(2, 2, strides=2, go_backwards=True, return_sequences=True),
               L.ConvLSTM1D(2, 2, dilation_rate=2)), floats(rng, 2, 4, 9, 2)


@case("ConvLSTM3D: padding same with strides (2, 1, 1) returning sequences, then a (2, 2, 1) kernel dilated along depth with padding same going backwards and returning sequences, then a valid (1, 2, 2) kernel")
def conv_lstm3d(rng):
    return seq((3, 4, 3, 3, 2), L.ConvLSTM3D(2, 3, strides=(2, 1, 1), padding="same", return_sequences=True),
               L.ConvLSTM3D(2, (2, 2, 1), dilation_rate=(2, 1, 1), padding="same", go_backwards=True, return_sequences=True),
               L.ConvLSTM3D(1, (1, 2, 2))), floats(rng, 2, 3, 4, 3, 3, 2)


@case("Bidirectional(ConvLSTM2D) returning sequences (concat: the backward images reversed back in time), then "
      "a Bidirectional ConvLSTM2D without sequences (ave)")
def conv_lstm_bidirectional(rng):
    return seq((3, 4, 4, 2), L.Bidirectional(L.ConvLSTM2D(2, 3, padding="same", return_sequences=True)),
               L.Bidirectional(L.ConvLSTM2D(2, 2), merge_mode="ave")), floats(rng, 2, 3, 4, 4, 2)


DERIVED = {  # name -> (description, base case, derive())
    "upsampling2d_gaussian": ("UpSampling2D interpolation gaussian (expected from tf.image.resize)", "upsampling2d_bicubic",
                              tf_interpolation_case("gaussian", (3, 2))),
    "upsampling2d_mitchellcubic": ("UpSampling2D interpolation mitchellcubic (expected from tf.image.resize)", "upsampling2d_bicubic",
                                   tf_interpolation_case("mitchellcubic", (2, 3))),
}

# Names of the original task list that are not fixture names, and the fixtures that cover them.
TASK_NAMES = {
    "leaky_relu_layer": ["activation_layers"], "elu_layer": ["activation_layers"],
    "global_avg_pool1d": ["global_avgpool1d_keepdims", "conv1d_text", "text_cnn", "masked_simple_rnn_pool"],
    "global_max_pool1d": ["global_maxpool1d", "global_pool1d"],
    "maxpool1d": ["pool1d", "maxpool1d_default", "maxpool1d_same"],
    "avgpool1d": ["pool1d", "avgpool1d_same", "avgpool1d_unknown_length"],
    "conv1d_same": ["conv1d", "conv1d_same_even"], "conv1d_causal": ["conv1d", "conv1d_causal_dilation", "conv1d_causal_strides"],
    "masked_simple_rnn_seq": ["masked_simple_rnn_pool", "masked_simple_rnn_seq_out"],
    "gelu approximate=True": [],
}

NOTES = [
    "gelu: 'gelu' in a spec is the exact erf form; keras.activations.gelu(x, approximate=True) cannot be serialized "
    "(functools.partial is refused, a lambda becomes bytecode), so no fixture has it",
    "swish and hard_swish serialize as 'silu' and 'hard_silu' in Keras 3; 'swish' appears only in keras2_style",
    "masked_simple_rnn_pool: Keras gives NaN for the all-padding row (GlobalAveragePooling1D divides 0 by 0 unmasked steps)",
    "keras2_style and handwritten_minimal are refused by keras.models.model_from_json (no 'module' keys); Keras's "
    "legacy loader for .h5 files reads them (handwritten_minimal needs a model name added) and reproduces expected.npy",
    "a model rebuilt by model_from_json, or loaded from a .keras file, has variable paths without the model-name "
    "prefix ('dense/kernel' for the live model's 'sequential/dense/kernel'); sub-layers of Bidirectional and "
    "TimeDistributed lose their wrapper segment too ('forward_lstm/lstm_cell/kernel', 'dense/kernel'); a model "
    "loaded from .h5 keeps 'sequential/' for plain layers but not for wrapped ones",
]


def randomize(model, rng, fan_in_scaled=False):
    """Redraws every weight: normal * 0.5 (or He-scaled kernels), moving variances uniform [0.5, 1.5].
    Normalization's statistics keep what adapt() computed."""
    adapted_statistics = {id(v) for layer in model.layers if isinstance(layer, L.Normalization) for v in layer.variables}
    for v in model.variables:
        if not np.issubdtype(np.dtype(v.dtype), np.floating) or id(v) in adapted_statistics:
            continue
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype("float32"))
        elif fan_in_scaled and len(v.shape) >= 2:
            fan_in = int(np.prod(v.shape[:-1]))
            v.assign((rng.standard_normal(v.shape) * np.sqrt(2.0 / fan_in)).astype("float32"))
        else:
            v.assign((rng.standard_normal(v.shape) * 0.5).astype("float32"))


DESCRIBED_KEYS = ("filters", "units", "kernel_size", "strides", "padding", "dilation_rate", "groups", "pool_size", "size",
                  "interpolation", "cropping", "keepdims", "use_bias", "activation", "lora_rank", "lora_alpha")


def describe(model):
    """'Conv2D(filters=4, kernel_size=(3, 3), ...) on (7, 9, 3)': the layers with their non-default settings."""
    import inspect

    def plain(value):
        return tuple(plain(v) for v in value) if isinstance(value, (list, tuple)) else value

    parts = []
    for layer in model.layers:
        config = layer.get_config()
        defaults = {k: p.default for k, p in inspect.signature(type(layer).__init__).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        settings = []
        for key in DESCRIBED_KEYS:
            if key not in config or (key == "lora_alpha" and not config.get("lora_rank")):
                continue
            value, default = plain(config[key]), plain(defaults.get(key, "<required>"))
            if value == default or (isinstance(value, tuple) and all(v == default for v in value)):
                continue
            if (key, value) == ("activation", "linear") or (key == "strides" and value == plain(config.get("pool_size"))):
                continue  # the defaults None, spelled out by get_config
            settings.append("%s=%s" % (key, value))
        parts.append("%s(%s)" % (type(layer).__name__, ", ".join(settings)))
    return "%s on %s" % (", ".join(parts), tuple(model.input_shape[1:]))


def generate(name):
    """Builds, randomizes, writes and reloads one case; returns (description, weight-name quirks)."""
    from keras_export import weights_of

    description, build = CASES[name]
    keras.backend.clear_session()  # names restart at sequential/dense: files depend on this case only
    seed = zlib.crc32(name.encode())
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed % (1 << 31))
    built = build(rng)
    fixture = built if isinstance(built, Fixture) else Fixture(built[0], built[1], None, None)
    randomize(fixture.model, rng, getattr(build, "fan_in_scaled", False))
    outdir = os.path.join(OUT, name)
    shutil.rmtree(outdir, ignore_errors=True)
    if fixture.spec is None:
        export_model(fixture.model, outdir, sample_input=fixture.x)
    else:
        os.makedirs(outdir)
        with open(os.path.join(outdir, "model.json"), "w") as f:
            f.write(fixture.spec)
        save_file({fixture.key(path): value for path, value in weights_of(fixture.model).items()},
                  os.path.join(outdir, "weights.safetensors"))
        np.save(os.path.join(outdir, "input.npy"), fixture.x)
        np.save(os.path.join(outdir, "expected.npy"), np.asarray(fixture.model.predict(fixture.x, verbose=0), dtype=np.float32))
    description = description or describe(fixture.model)
    _, renamed, _ = verify_case(outdir)
    # Dropping the leading model name is what every rebuilt model does; record only other differences.
    unusual = [(path, key) for path, key in renamed if key.split("/")[1:] != path.split("/")]
    return description, quirk_summary(unusual)


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main(argv):
    if argv[:1] == ["--list"]:
        for name, (description, _) in list(CASES.items()) + [(n, (d[0], None)) for n, d in DERIVED.items()]:
            print("%-28s %s" % (name, description or "(described from its layers when built)"))
        return 0
    unknown = [name for name in argv if name not in CASES and name not in DERIVED]
    if unknown:
        print("error: unknown case(s) %s; --list shows them" % ", ".join(unknown), file=sys.stderr)
        return 2
    chosen = argv or list(CASES) + list(DERIVED)
    os.makedirs(OUT, exist_ok=True)
    manifest_path = os.path.join(OUT, "MANIFEST.json")
    manifest = {"cases": {}, "weight_name_quirks": {}}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest.update(json.load(f))
    import tensorflow as tf

    manifest["made_by"] = {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__,
                           "script": "tools/make_fixtures.py", "tolerance": "max |ours - keras| / (1 + |keras|) <= 1e-5"}
    quirks = manifest.setdefault("weight_name_quirks", {})
    total = len(chosen)
    for index, name in enumerate(chosen):
        if name in DERIVED:
            description, base, derive = DERIVED[name]
            derive()
            note = "not reloaded: " + NOT_RELOADABLE[name]
        else:
            try:
                description, unusual = generate(name)
            except ReloadError as error:
                print("[%d/%d] %s: FAILED to reload: %s" % (index + 1, total, name, error), file=sys.stderr)
                return 1
            quirks.pop(name, None)
            if unusual:
                quirks[name] = unusual
            note = "reloads" + (" (keys by suffix: %s)" % "; ".join(unusual) if unusual else "")
        manifest["cases"][name] = description
        print("[%d/%d] %s: %s [%.1f KB, %s]" % (index + 1, total, name, description, folder_size(os.path.join(OUT, name)) / 1024, note),
              flush=True)
    on_disk = {d for d in os.listdir(OUT) if os.path.isfile(os.path.join(OUT, d, "model.json"))}
    manifest["cases"] = {k: v for k, v in sorted(manifest["cases"].items()) if k in on_disk}
    manifest["weight_name_quirks"] = {k: v for k, v in sorted(quirks.items()) if k in on_disk}
    manifest["reload_check"] = ("every case except %s is rebuilt from its model.json in a fresh Keras session, given its "
                                "weights by path and reproduces expected.npy (tools/verify_fixtures.py)" % ", ".join(sorted(NOT_RELOADABLE)))
    manifest["task_names"] = TASK_NAMES
    manifest["notes"] = NOTES
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("%d cases, %.0f KB in %s" % (len(on_disk), folder_size(OUT) / 1024, os.path.relpath(OUT, ROOT)))
    return 0


# --- issue 15: convolutions ---
# Depthwise, separable, transposed and 3-D convolutions, one case per config branch, and fully
# convolutional models whose spatial sizes are known only at run time.

spatial("depthwise2d_multiplier", (7, 8, 3), lambda: [L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu")])
spatial("depthwise2d_same_strides", (7, 8, 3), lambda: [L.DepthwiseConv2D((3, 2), strides=(2, 3), padding="same")])
spatial("depthwise2d_dilation", (7, 8, 3), lambda: [L.DepthwiseConv2D(3, dilation_rate=(2, 1), padding="same", use_bias=False)])
spatial("depthwise2d_strided_dilation", (9, 8, 2), lambda: [L.DepthwiseConv2D(3, strides=2, dilation_rate=2, depth_multiplier=2)])
spatial("depthwise1d", (9, 4), lambda: [L.DepthwiseConv1D(3, depth_multiplier=3, strides=2, padding="same")])
spatial("depthwise1d_dilation", (9, 4), lambda: [L.DepthwiseConv1D(2, dilation_rate=3, activation="tanh")])
spatial("separable2d", (8, 7, 3), lambda: [L.SeparableConv2D(5, 3, depth_multiplier=2, padding="same", strides=2, activation="relu")])
spatial("separable2d_dilation", (8, 7, 3), lambda: [L.SeparableConv2D(4, (2, 3), dilation_rate=2, use_bias=False)])
spatial("separable2d_strided_dilation", (9, 9, 2), lambda: [L.SeparableConv2D(3, 3, strides=2, dilation_rate=2, depth_multiplier=2)])
spatial("separable1d", (10, 3), lambda: [L.SeparableConv1D(4, 3, padding="same", depth_multiplier=2)])
spatial("separable1d_strides", (10, 3), lambda: [L.SeparableConv1D(4, 4, strides=3)])
spatial("conv2d_transpose", (4, 5, 3), lambda: [L.Conv2DTranspose(4, 3, strides=2)])
spatial("conv2d_transpose_same", (4, 5, 3), lambda: [L.Conv2DTranspose(4, (3, 2), strides=(2, 3), padding="same", activation="relu")])
spatial("conv2d_transpose_output_padding_same", (4, 5, 2), lambda: [L.Conv2DTranspose(3, (3, 4), strides=3, output_padding=(1, 2), padding="same")])
spatial("conv2d_transpose_output_padding_valid", (4, 5, 2), lambda: [L.Conv2DTranspose(3, (2, 3), strides=(3, 2), output_padding=(2, 1))])
spatial("conv2d_transpose_small_kernel", (4, 5, 2), lambda: [L.Conv2DTranspose(3, 2, strides=3, use_bias=False)])
spatial("conv2d_transpose_dilation", (4, 5, 2), lambda: [L.Conv2DTranspose(3, 3, dilation_rate=2, padding="same")])
spatial("conv1d_transpose", (6, 3), lambda: [L.Conv1DTranspose(2, 4, strides=3, output_padding=1)])
spatial("conv1d_transpose_same", (6, 3), lambda: [L.Conv1DTranspose(2, 3, strides=2, padding="same")])
spatial("conv3d_transpose", (3, 4, 3, 2), lambda: [L.Conv3DTranspose(3, (2, 3, 2), strides=(2, 1, 2), padding="same")], batch=2)
spatial("conv3d_transpose_valid", (3, 2, 3, 2), lambda: [L.Conv3DTranspose(2, 3, strides=(1, 2, 2), output_padding=(0, 1, 0))], batch=2)
spatial("conv3d", (5, 6, 4, 3), lambda: [L.Conv3D(4, 3, strides=(1, 2, 1), padding="same", activation="relu")], batch=2)
spatial("conv3d_dilation_groups", (5, 6, 4, 3), lambda: [L.Conv3D(6, 2, dilation_rate=(1, 2, 1), groups=3)], batch=2)
spatial("fully_convolutional_2d", (None, None, 3), lambda: [
    L.Conv2D(4, 3, strides=2, padding="same", activation="relu"), L.DepthwiseConv2D(3, padding="same"),
    L.SeparableConv2D(5, 3), L.Conv2DTranspose(3, 3, strides=2), L.Conv2D(2, 1)], length=9)
spatial("fully_convolutional_1d", (None, 3), lambda: [
    L.DepthwiseConv1D(3, depth_multiplier=2), L.SeparableConv1D(4, 2, padding="same"), L.Conv1DTranspose(3, 3, strides=2)], length=11)
spatial("fully_convolutional_3d", (None, None, None, 2), lambda: [
    L.Conv3D(3, 2, padding="same"), L.Conv3DTranspose(2, 2, strides=2)], batch=2, length=3)

# --- issue 15: normalization, activations, preprocessing, LayerScale ---

@case("Keras 3's newer activations in Dense layers: celu, hard_shrink, soft_shrink, hard_tanh, log_sigmoid, sparse_plus, "
      "sparse_sigmoid, tanh_shrink, squareplus, then Activation('sparsemax') and Dense(sparsemax)")
def activations_keras3(rng):
    names = ["celu", "hard_shrink", "soft_shrink", "hard_tanh", "log_sigmoid", "sparse_plus", "sparse_sigmoid", "tanh_shrink", "squareplus"]
    return seq((6,), *[L.Dense(8, activation=n) for n in names], L.Activation("sparsemax"), L.Dense(5, activation="sparsemax")), floats(rng, 4, 6, scale=2.0)


@case("LayerNormalization over axis 1, over axes (1, 3), RMSNormalization over (2, 3), UnitNormalization over (1, 3) and "
      "Softmax over (1, 3): axes that are not the last ones")
def normalization_any_axes(rng):
    return seq((4, 5, 3), L.LayerNormalization(axis=1), L.LayerNormalization(axis=(1, 3), center=False), L.RMSNormalization(axis=(2, 3)),
               L.UnitNormalization(axis=(1, 3)), L.Dense(3), L.Softmax(axis=(1, 3))), skewed(rng, 3, 4, 5, 3)


@case("GroupNormalization: 2 groups on the last axis, groups=-1 (one per channel) without center, 2 groups over axis 1 without scale")
def group_normalization(rng):
    return seq((4, 3, 6), L.GroupNormalization(groups=2), L.GroupNormalization(groups=-1, center=False, epsilon=0.01),
               L.GroupNormalization(groups=2, axis=1, scale=False)), skewed(rng, 3, 4, 3, 6)


@case("PReLU shared along a time axis of unknown length (shared_axes=[1]), between Dense layers")
def prelu_shared_runtime(rng):
    return seq((None, 4), L.Dense(4), L.PReLU(shared_axes=[1]), L.Dense(3)), floats(rng, 2, 5, 4)


@case("LayerScale as ConvNeXt uses it (keras.src.applications.convnext), after a Dense, on a (3, 4) input")
def layer_scale(rng):
    from keras.src.applications.convnext import LayerScale
    return seq((3, 4), L.Dense(4), LayerScale(1e-6, 4), L.Dense(2)), floats(rng, 2, 3, 4)


@case("Random augmentation layers, identity at inference: flip, rotation, zoom, translation, contrast, brightness, crop to the "
      "input's own size, and the colour and mix layers (RandomShear does not reload in Keras, so it is left out), between two Dense layers on (6, 6, 3) images")
def random_augmentation(rng):
    return seq((6, 6, 3), L.RandomFlip("horizontal"), L.RandomRotation(0.1, fill_mode="constant"), L.RandomZoom((-0.2, 0.1), 0.1),
               L.RandomTranslation(0.1, (-0.2, 0.2)), L.RandomContrast(0.3), L.RandomBrightness(0.2, value_range=(0, 1)),
               L.RandomCrop(6, 6), L.RandomGrayscale(0.3), L.RandomHue(0.1), L.RandomSaturation(0.2), L.RandomSharpness(0.2),
               L.RandomInvert(), L.RandomPosterization(4), L.RandomColorDegeneration(0.2),
               L.RandomColorJitter(brightness_factor=0.1), L.RandomGaussianBlur(), L.RandomErasing(), L.RandomPerspective(),
               L.RandomElasticTransform(), L.AugMix(), L.CutMix(), L.MixUp(), L.RandAugment(), L.Dense(2)), floats(rng, 2, 6, 6, 3)



@case("Discretization into 5 buckets (values on the boundaries too), then CategoryEncoding counting them")
def discretization_int_count(rng):
    x = np.concatenate([floats(rng, 3, 4, scale=2.0), np.array([[-1.0, 0.0], [0.5, 2.0], [2.5, -3.0]], dtype=np.float32)], axis=1)
    return seq((6,), L.Discretization(bin_boundaries=[-1.0, 0.0, 0.5, 2.0]), L.CategoryEncoding(5, output_mode="count")), x


@case("Discretization with output_mode one_hot on (3,) samples")
def discretization_one_hot(rng):
    return seq((3,), L.Discretization(bin_boundaries=[-0.5, 0.0, 1.0], output_mode="one_hot")), floats(rng, 4, 3, scale=2.0)


@case("Discretization with output_mode multi_hot on (6,) samples")
def discretization_multi_hot(rng):
    return seq((6,), L.Discretization(bin_boundaries=[-0.5, 0.0, 1.0], output_mode="multi_hot")), floats(rng, 3, 6, scale=2.0)


@case("CategoryEncoding one_hot on (1,) samples (the axis of 1 is replaced) and multi_hot on (4,) samples")
def category_encoding_modes(rng):
    return seq((4,), L.CategoryEncoding(6, output_mode="multi_hot"), L.Reshape((6, 1)), L.CategoryEncoding(2, output_mode="one_hot")), \
        rng.integers(0, 6, size=(3, 4)).astype(np.float32)


@case("IntegerLookup, vocabulary in the config, mask_token 0, two OOV indices (floormod of negative and positive terms), int output")
def integer_lookup_int(rng):
    return seq((6,), L.IntegerLookup(vocabulary=[12, 5, 7, 30], mask_token=0, num_oov_indices=2), dtype="int64"), \
        np.array([[12, 5, 0, 99, 7, -3], [30, 30, 1, 0, 5, 8]], dtype=np.int64)


@case("IntegerLookup with output_mode count over a vocabulary that starts with the OOV token (which Keras drops)")
def integer_lookup_modes(rng):
    return seq((5,), L.IntegerLookup(vocabulary=[-1, 4, 9, 2], output_mode="count"), dtype="int64"), \
        np.array([[4, 4, 9, 100, 2], [2, 2, 2, 3, 4]], dtype=np.int64)


@case("IntegerLookup(invert=True) with a mask token: indices back to terms, 0 to the mask, unknown indices to oov_token")
def integer_lookup_invert(rng):
    return seq((5,), L.IntegerLookup(vocabulary=[12, 5, 7], mask_token=0, invert=True, oov_token=-7), dtype="int64"), \
        np.array([[0, 1, 2, 3, 4], [4, 9, 2, 0, 3]], dtype=np.int64)
# --- issue 15: pooling and shape layers ---

spatial("maxpool3d_default", (4, 5, 6, 2), lambda: [L.MaxPooling3D()])
spatial("maxpool3d_same_strides", (5, 6, 4, 3), lambda: [L.MaxPooling3D((2, 3, 2), strides=(1, 2, 3), padding="same")])
spatial("avgpool3d_same", (5, 4, 6, 2), lambda: [L.AveragePooling3D(3, strides=2, padding="same")])
spatial("avgpool3d_valid", (4, 5, 6, 2), lambda: [L.AveragePooling3D((2, 1, 3), strides=(1, 2, 2))])
spatial("global_maxpool3d_keepdims", (3, 4, 5, 3), lambda: [L.GlobalMaxPooling3D(keepdims=True)])
spatial("global_avgpool3d", (3, 4, 5, 3), lambda: [L.GlobalAveragePooling3D()])
spatial("pool2d_unknown_size", (None, None, 3), lambda: [
    L.MaxPooling2D(3, strides=2, padding="same"), L.AveragePooling2D((2, 1)), L.GlobalAveragePooling2D()], length=9)
spatial("pool2d_unknown_size_keepdims", (None, None, 2), lambda: [
    L.AveragePooling2D(2, padding="same"), L.GlobalMaxPooling2D(keepdims=True)], length=5)
spatial("pool3d_unknown_size", (None, None, None, 2), lambda: [
    L.AveragePooling3D(2, strides=1, padding="same"), L.MaxPooling3D((1, 2, 3)), L.GlobalAveragePooling3D(keepdims=True)], length=6)
spatial("adaptive_avgpool1d", (7, 3), lambda: [L.AdaptiveAveragePooling1D(3)])
spatial("adaptive_maxpool1d_more_bins", (3, 2), lambda: [L.AdaptiveMaxPooling1D(5)])
spatial("adaptive_avgpool2d", (7, 5, 2), lambda: [L.AdaptiveAveragePooling2D((3, 2))])
spatial("adaptive_maxpool2d", (6, 8, 3), lambda: [L.AdaptiveMaxPooling2D(3)])
spatial("adaptive_avgpool3d", (5, 4, 7, 2), lambda: [L.AdaptiveAveragePooling3D((2, 3, 4))])
spatial("adaptive_maxpool3d", (4, 5, 3, 2), lambda: [L.AdaptiveMaxPooling3D((3, 2, 2))])
for method in ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5"):
    spatial("resizing_%s_down" % method, (9, 11, 2), lambda method=method: [L.Resizing(4, 5, interpolation=method)])
    spatial("resizing_%s_up" % method, (4, 3, 2), lambda method=method: [L.Resizing(7, 8, interpolation=method)])
spatial("resizing_antialias_bilinear", (13, 11, 2), lambda: [L.Resizing(4, 5, antialias=True)])
spatial("resizing_antialias_bicubic", (13, 11, 2), lambda: [L.Resizing(5, 3, interpolation="bicubic", antialias=True)])
spatial("resizing_antialias_lanczos3", (13, 11, 2), lambda: [L.Resizing(6, 4, interpolation="lanczos3", antialias=True)])
spatial("resizing_antialias_area_nearest", (13, 11, 2), lambda: [
    L.Resizing(9, 8, interpolation="area", antialias=True), L.Resizing(4, 3, interpolation="nearest", antialias=True)])
spatial("resizing_antialias_up", (3, 4, 2), lambda: [L.Resizing(7, 6, antialias=True, pad_to_aspect_ratio=True)])
spatial("resizing_crop_to_aspect_ratio", (8, 11, 2), lambda: [L.Resizing(5, 4, crop_to_aspect_ratio=True)])
spatial("resizing_crop_to_aspect_ratio_wide", (9, 5, 2), lambda: [L.Resizing(3, 7, interpolation="bicubic", crop_to_aspect_ratio=True)])
spatial("resizing_pad_to_aspect_ratio", (7, 4, 2), lambda: [L.Resizing(6, 6, pad_to_aspect_ratio=True, fill_value=0.5)])
spatial("resizing_pad_to_aspect_ratio_tall", (4, 9, 2), lambda: [L.Resizing(8, 5, interpolation="nearest", pad_to_aspect_ratio=True)])
spatial("resizing_unknown_size", (None, None, 3), lambda: [L.Resizing(4, 6, interpolation="area")], length=9)
spatial("center_crop", (7, 8, 2), lambda: [L.CenterCrop(4, 5)])
spatial("center_crop_unknown_size", (None, None, 2), lambda: [L.CenterCrop(3, 5)], length=8)
spatial("center_crop_smaller_input", (4, 9, 2), lambda: [L.CenterCrop(6, 5)])
spatial("upsampling2d_unknown_size", (None, None, 2), lambda: [L.UpSampling2D((2, 3), interpolation="bilinear"), L.UpSampling2D(2)], length=3)
spatial("padding_cropping2d_unknown_size", (None, None, 2), lambda: [L.ZeroPadding2D(((1, 2), (0, 1))), L.Cropping2D(((1, 0), (2, 1)))], length=5)
spatial("permute_2d", (4, 3), lambda: [L.Permute((2, 1)), L.Dense(2)])
spatial("permute_3d", (2, 3, 4), lambda: [L.Permute((3, 1, 2))])
spatial("permute_4d", (2, 3, 4, 2), lambda: [L.Permute((2, 4, 1, 3))])
spatial("identity", (4, 3), lambda: [L.Identity(), L.Dense(2)])
spatial("zero_padding3d_int", (2, 3, 2, 2), lambda: [L.ZeroPadding3D(1)])
spatial("zero_padding3d_nested", (2, 3, 2, 2), lambda: [L.ZeroPadding3D(((0, 2), (1, 0), (2, 1)))])
spatial("cropping3d", (5, 6, 5, 2), lambda: [L.Cropping3D(((1, 2), (0, 3), (2, 0)))])
spatial("cropping3d_default", (4, 4, 3, 2), lambda: [L.Cropping3D()])
spatial("upsampling3d", (2, 3, 2, 2), lambda: [L.UpSampling3D((2, 1, 3))])
spatial("upsampling3d_default", (2, 2, 3, 2), lambda: [L.UpSampling3D()])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
