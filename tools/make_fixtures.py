#!/usr/bin/env python3
"""Regenerates every committed test fixture from real Keras, deterministically.

    pip install tensorflow-cpu==2.20.0 safetensors
    python3 tools/make_fixtures.py [CASE ...]

Each case becomes Tests/Fixtures/<case>/ with model.json (to_json, verbatim), weights.safetensors
(keyed by Keras variable path), input.npy and expected.npy (model.predict). Weights are drawn from
a seeded normal distribution (moving variances from a uniform one) so biases, statistics and
gates are all exercised. Tests/Fixtures/MANIFEST.json lists the cases and the versions that made
them. Tests compare with max |ours - keras| / (1 + |keras|) <= 1e-5.
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

from keras_export import export_model  # noqa: E402

CASES = {}


def case(description):
    def register(fn):
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


@case("MaxPooling2D: default strides, explicit strides, same padding, non-square")
def maxpool2d(rng):
    return conv(rng, 7, 2, L.MaxPooling2D(2, padding="same"), L.MaxPooling2D((2, 1), strides=(1, 2)), L.MaxPooling2D(3, strides=2, padding="same"))


@case("AveragePooling2D: default strides, explicit strides, same padding ignores padded cells")
def avgpool2d(rng):
    return conv(rng, 7, 2, L.AveragePooling2D(2, padding="same"), L.AveragePooling2D(3, strides=1, padding="same"), L.AveragePooling2D((2, 3), strides=(2, 1)))


@case("GlobalAveragePooling2D and GlobalMaxPooling2D (keepdims)")
def global_pool2d(rng):
    return conv(rng, 5, 3, L.Conv2D(4, 3), L.GlobalMaxPooling2D(keepdims=True), L.Flatten(), L.Dense(3))


@case("GlobalAveragePooling2D")
def global_avg_pool2d(rng):
    return conv(rng, 5, 3, L.GlobalAveragePooling2D())


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


# Sequences (issue 3) ----------------------------------------------------------------------------

VOCAB = 50
PADDED = [9, 5, 1, 0]   # post-padded real lengths, the last row all padding


@case("Embedding without and with mask_zero, then Dense per step")
def embedding(rng):
    return seq((9,), L.Embedding(VOCAB, 6), L.Dense(3), dtype="int32"), tokens(rng, 3, 9, VOCAB)


@case("SimpleRNN stack with growing sizes 16 -> 32 -> 48")
def simple_rnn_stack(rng):
    return seq((9,), L.Embedding(VOCAB, 8), L.SimpleRNN(16, return_sequences=True), L.SimpleRNN(32, return_sequences=True),
               L.SimpleRNN(48), L.Dense(3, activation="softmax"), dtype="int32"), tokens(rng, 3, 9, VOCAB)


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


@case("masked LSTM: post-padded batch, different lengths, one all-padding row")
def masked_lstm(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.LSTM(6), L.Dense(3, activation="softmax"), dtype="int32"), \
        tokens(rng, 4, 9, VOCAB, PADDED)


@case("masked stacked Bidirectional LSTM with return_sequences")
def masked_bidi_lstm(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.Bidirectional(L.LSTM(5, return_sequences=True)), L.Bidirectional(L.LSTM(4)),
               L.Dense(3, activation="softmax"), dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)


@case("masked GRU and SimpleRNN returning sequences")
def masked_gru(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.GRU(5, return_sequences=True), L.SimpleRNN(4, return_sequences=True),
               L.GRU(3, go_backwards=True), dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)


@case("masked SimpleRNN sequences then GlobalAveragePooling1D over unmasked steps")
def masked_simple_rnn_pool(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.SimpleRNN(5, return_sequences=True), L.GlobalAveragePooling1D(),
               L.Dense(2), dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)


@case("mask passes through Dense and Dropout on 3-D input into an LSTM")
def masked_dense_seq(rng):
    return seq((9,), L.Embedding(VOCAB, 8, mask_zero=True), L.Dense(6, activation="tanh"), L.Dropout(0.3), L.LSTM(4),
               dtype="int32"), tokens(rng, 4, 9, VOCAB, PADDED)


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


@case("MaxPooling1D, AveragePooling1D (same and valid), GlobalMax/GlobalAveragePooling1D")
def pool1d(rng):
    return seq((11, 3), L.MaxPooling1D(2), L.AveragePooling1D(2, padding="same"), L.AveragePooling1D(3, strides=1, padding="valid")), floats(rng, 3, 11, 3)


@case("GlobalMaxPooling1D and GlobalAveragePooling1D without mask")
def global_pool1d(rng):
    return seq((8, 3), L.Conv1D(4, 2), L.GlobalMaxPooling1D()), floats(rng, 3, 8, 3)


@case("TimeDistributed Dense")
def time_distributed_dense(rng):
    return seq((5, 4), L.TimeDistributed(L.Dense(3, activation="relu")), L.LSTM(2)), floats(rng, 3, 5, 4)


@case("RepeatVector into an LSTM decoder")
def repeat_vector(rng):
    return seq((4,), L.Dense(5), L.RepeatVector(3), L.LSTM(4, return_sequences=True), L.TimeDistributed(L.Dense(2))), floats(rng, 3, 4)


@case("Conv1D text classifier with GlobalMaxPooling1D")
def conv1d_text(rng):
    return seq((12,), L.Embedding(VOCAB, 8), L.Conv1D(6, 3, activation="relu"), L.MaxPooling1D(2), L.GlobalAveragePooling1D(), L.Dense(3),
               dtype="int32"), tokens(rng, 3, 12, VOCAB)


# Spatial layers in more configurations (ported from the conv branch's script) -------------------

def spatial_cases():
    C = []
    case = lambda name, input_shape, layer_list, batch=3, seed=0, length=None, dtype="float32": (name, input_shape, layer_list, batch, seed, length)
    C.append(case("conv2d_valid_relu", (7, 9, 3), [L.Conv2D(4, 3, activation="relu")]))
    C.append(case("conv2d_same_even_strides", (8, 7, 2), [L.Conv2D(5, (4, 2), strides=(2, 3), padding="same")]))
    C.append(case("conv2d_same_odd_stride", (9, 9, 3), [L.Conv2D(4, 3, strides=2, padding="same", activation="tanh")]))
    C.append(case("conv2d_same_kernel_larger", (3, 2, 2), [L.Conv2D(3, (5, 4), padding="same")]))
    C.append(case("conv2d_dilation_same", (11, 10, 3), [L.Conv2D(4, 3, dilation_rate=(2, 3), padding="same")]))
    C.append(case("conv2d_dilation_valid", (11, 10, 3), [L.Conv2D(4, (2, 3), dilation_rate=(3, 2))]))
    C.append(case("conv2d_groups_same", (6, 7, 4), [L.Conv2D(6, 3, groups=2, padding="same")]))
    C.append(case("conv2d_groups_depthwise", (6, 5, 4), [L.Conv2D(8, (3, 2), strides=(2, 1), groups=4)]))
    C.append(case("conv2d_nobias_strides", (8, 9, 3), [L.Conv2D(4, (3, 2), strides=(2, 1), use_bias=False, activation="sigmoid")]))
    C.append(case("conv2d_pointwise_groups", (5, 4, 6), [L.Conv2D(4, 1, groups=2)]))
    C.append(case("conv2d_pointwise_stride", (5, 4, 6), [L.Conv2D(4, 1, strides=2, padding="same")]))
    C.append(case("conv2d_softmax", (5, 5, 2), [L.Conv2D(3, 2, activation="softmax")]))
    C.append(case("conv1d_valid", (10, 3), [L.Conv1D(4, 3, activation="relu")]))
    C.append(case("conv1d_same_even", (9, 3), [L.Conv1D(4, 4, strides=2, padding="same")]))
    C.append(case("conv1d_causal_dilation", (10, 2), [L.Conv1D(3, 3, padding="causal", dilation_rate=2)]))
    C.append(case("conv1d_causal_strides", (11, 2), [L.Conv1D(3, 4, padding="causal", strides=3)]))
    C.append(case("conv1d_groups", (8, 6), [L.Conv1D(9, 2, groups=3, padding="same", dilation_rate=2)]))
    C.append(case("conv1d_unknown_length", (None, 3), [L.Conv1D(4, 3, padding="same"), L.Conv1D(2, 2, strides=2)], length=9))
    C.append(case("maxpool2d_default", (8, 6, 3), [L.MaxPooling2D()]))
    C.append(case("maxpool2d_same_strides", (7, 8, 2), [L.MaxPooling2D(3, strides=2, padding="same")]))
    C.append(case("maxpool2d_same_even", (5, 6, 2), [L.MaxPooling2D((2, 3), strides=1, padding="same")]))
    C.append(case("maxpool2d_valid_odd", (7, 7, 2), [L.MaxPooling2D(3, strides=(2, 1))]))
    C.append(case("avgpool2d_same_strides", (7, 8, 2), [L.AveragePooling2D(3, strides=2, padding="same")]))
    C.append(case("avgpool2d_same_even", (5, 6, 2), [L.AveragePooling2D((2, 4), strides=(1, 3), padding="same")]))
    C.append(case("avgpool2d_valid", (6, 7, 3), [L.AveragePooling2D((2, 3), strides=(1, 2))]))
    C.append(case("maxpool1d_default", (9, 3), [L.MaxPooling1D()]))
    C.append(case("maxpool1d_same", (9, 3), [L.MaxPooling1D(3, strides=2, padding="same")]))
    C.append(case("avgpool1d_same", (10, 3), [L.AveragePooling1D(4, strides=3, padding="same")]))
    C.append(case("avgpool1d_unknown_length", (None, 3), [L.AveragePooling1D(2, strides=1)], length=7))
    C.append(case("global_avgpool2d", (5, 6, 3), [L.GlobalAveragePooling2D()]))
    C.append(case("global_maxpool2d_keepdims", (5, 6, 3), [L.GlobalMaxPooling2D(keepdims=True)]))
    C.append(case("global_avgpool1d_keepdims", (7, 4), [L.GlobalAveragePooling1D(keepdims=True)]))
    C.append(case("global_maxpool1d", (None, 4), [L.GlobalMaxPooling1D()], length=6))
    C.append(case("zero_padding2d_int", (3, 4, 2), [L.ZeroPadding2D(2)]))
    C.append(case("zero_padding2d_pair", (3, 4, 2), [L.ZeroPadding2D((1, 3))]))
    C.append(case("zero_padding2d_nested", (3, 4, 2), [L.ZeroPadding2D(((0, 2), (3, 1)))]))
    C.append(case("zero_padding1d", (5, 2), [L.ZeroPadding1D((2, 1))]))
    C.append(case("cropping1d", (7, 2), [L.Cropping1D((2, 1))]))
    C.append(case("cropping2d", (7, 8, 2), [L.Cropping2D(((1, 2), (0, 3)))]))
    C.append(case("cropping2d_int", (7, 8, 2), [L.Cropping2D(2)]))
    C.append(case("upsampling1d", (4, 3), [L.UpSampling1D(3)]))
    C.append(case("upsampling2d_nearest", (3, 4, 2), [L.UpSampling2D((2, 3))]))
    C.append(case("upsampling2d_bilinear", (3, 4, 2), [L.UpSampling2D((2, 3), interpolation="bilinear")]))
    C.append(case("upsampling2d_bilinear_square", (4, 5, 2), [L.UpSampling2D(4, interpolation="bilinear")]))
    C.append(case("upsampling2d_bicubic", (4, 5, 2), [L.UpSampling2D((3, 2), interpolation="bicubic")]))
    C.append(case("upsampling2d_area", (4, 5, 2), [L.UpSampling2D((3, 2), interpolation="area")]))
    C.append(case("upsampling2d_lanczos3", (4, 5, 2), [L.UpSampling2D((3, 2), interpolation="lanczos3")]))
    C.append(case("upsampling2d_lanczos5", (4, 5, 2), [L.UpSampling2D((2, 3), interpolation="lanczos5")]))
    C.append(case("cnn_pipeline", (12, 11, 3), [
        L.ZeroPadding2D(1), L.Conv2D(8, 3, strides=2, activation="relu"), L.AveragePooling2D(2, padding="same"),
        L.UpSampling2D(2), L.Cropping2D(((1, 0), (0, 1))), L.Conv2D(6, 2, groups=2, dilation_rate=2, padding="same"),
        L.GlobalMaxPooling2D(), L.Dense(3)]))
    C.append(case("text_cnn", (20, 8), [
        L.Conv1D(16, 5, padding="causal", activation="relu"), L.MaxPooling1D(2), L.ZeroPadding1D(1),
        L.Conv1D(8, 3, dilation_rate=2, activation="relu"), L.UpSampling1D(2), L.Cropping1D(1),
        L.AveragePooling1D(3, padding="same"), L.GlobalAveragePooling1D(), L.Dense(2)]))
    C.append(case("conv1d_dilation_sparse", (2, 3), [L.Conv1D(2, 2, dilation_rate=3, padding="same")]))
    C.append(case("conv2d_dilation_sparse", (3, 2, 2), [L.Conv2D(3, 3, dilation_rate=(2, 4), padding="same")]))
    C.append(case("conv2d_lora", (6, 5, 3), [L.Conv2D(4, 3, lora_rank=2)]))
    C.append(case("conv1d_lora_alpha", (6, 3), [L.Conv1D(4, 2, lora_rank=3, lora_alpha=1.5, padding="causal")]))
    return C


def add_spatial_cases():
    for name, input_shape, layer_list, batch, seed, length in spatial_cases():
        def build(rng, input_shape=input_shape, layer_list=layer_list, batch=batch, length=length):
            shape = (batch,) + tuple(length if d is None else d for d in input_shape)
            return keras.Sequential([keras.Input(input_shape)] + layer_list), floats(rng, *shape)
        CASES[name] = ("%s: %s" % (name, ", ".join(type(l).__name__ for l in layer_list)), build)


def add_tf_interpolation_cases():
    """Keras 2's UpSampling2D also took TF's "gaussian" and "mitchellcubic"; Keras 3 refuses them,
    so their expected output comes from tf.image.resize, which Keras 2 called."""
    import tensorflow as tf

    for method, size in [("gaussian", (3, 2)), ("mitchellcubic", (2, 3))]:
        name = "upsampling2d_" + method
        src, dst = os.path.join(OUT, "upsampling2d_bicubic"), os.path.join(OUT, name)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        spec = json.load(open(os.path.join(dst, "model.json")))
        config = spec["config"]["layers"][1]["config"]
        config["interpolation"], config["size"] = method, list(size)
        json.dump(spec, open(os.path.join(dst, "model.json"), "w"))
        x = np.load(os.path.join(dst, "input.npy"))
        y = tf.image.resize(x, (x.shape[1] * size[0], x.shape[2] * size[1]), method=method).numpy()
        np.save(os.path.join(dst, "expected.npy"), y.astype("float32"))
        CASES[name] = ("UpSampling2D interpolation %s (expected from tf.image.resize)" % method, None)


add_spatial_cases()


def randomize(model, rng):
    for v in model.variables:
        if not np.issubdtype(np.dtype(v.dtype), np.floating):
            continue
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype("float32"))
        else:
            v.assign((rng.standard_normal(v.shape) * 0.5).astype("float32"))


def main():
    chosen = sys.argv[1:] or list(CASES)
    os.makedirs(OUT, exist_ok=True)
    manifest_path = os.path.join(OUT, "MANIFEST.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {"cases": {}}
    import tensorflow as tf
    manifest["made_by"] = {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__,
                           "script": "tools/make_fixtures.py", "tolerance": "max |ours - keras| / (1 + |keras|) <= 1e-5"}
    chosen = [name for name in chosen if CASES[name][1] is not None]
    for index, name in enumerate(chosen):
        description, build = CASES[name]
        seed = zlib.crc32(name.encode())  # stable whatever other cases exist
        rng = np.random.default_rng(seed)
        keras.utils.set_random_seed(seed % (1 << 31))
        model, x = build(rng)
        if x is None:
            x = floats(rng, 2, *model.input_shape[1:])
        randomize(model, rng)
        outdir = os.path.join(OUT, name)
        shutil.rmtree(outdir, ignore_errors=True)
        export_model(model, outdir, sample_input=x)
        manifest["cases"][name] = description
        print("[%d/%d] %s: %s" % (index + 1, len(chosen), name, description), flush=True)
    if "upsampling2d_bicubic" in chosen:
        add_tf_interpolation_cases()
        for name in ("upsampling2d_gaussian", "upsampling2d_mitchellcubic"):
            manifest["cases"][name] = CASES[name][0]
    manifest["cases"] = dict(sorted(manifest["cases"].items()))
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
