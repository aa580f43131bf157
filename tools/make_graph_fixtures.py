#!/usr/bin/env python3
"""Regenerates the Functional-model (graph) fixtures from real Keras 3, deterministically.

    pip install tensorflow-cpu==2.20.0 safetensors
    python3 tools/make_graph_fixtures.py [CASE ...]      # all cases, or only those named
    python3 tools/make_graph_fixtures.py --list          # names and descriptions

Each case becomes Tests/GraphFixtures/<case>/ with

    model.json               model.to_json(), verbatim (keras2_functional: hand-converted, see below)
    weights.safetensors      every weight, float32, keyed by its Keras variable path (keras_export.weights_of)
    input_<name>.npy         one batch per named model input, in config.input_layers order
    output_<name>.npy        Keras's model.predict for each named model output, in config.output_layers order

A name is the dict key when the model's inputs/outputs are a dict, else the layer's name, with
":k" for its k-th output tensor when k > 0 (the file name writes ":" as "__").
Tests/GraphFixtures/MANIFEST.json lists, per case, its description, its inputs and outputs (name,
file, shape) in order, and the versions that made them.

Determinism: every case starts a fresh Keras session (`keras.backend.clear_session()`), every
layer is named explicitly, numpy and Keras are seeded with the CRC-32 of the case name, and every
weight is redrawn from that seed by make_fixtures.randomize. Every Keras 3 case is then rebuilt
from its own model.json (keras.models.model_from_json), given its weights by variable path and run
again; a mismatch stops the script.

keras2_functional and keras2_nested_functional are the hand-converted cases: Keras 3 cannot
write Keras 2's form, and tf-keras is not installed here. Each is a Keras 3 case's model.json
(shared_embedding_lstm, functional_in_functional) rewritten the way tf-keras
2.x writes a Functional model (inbound_nodes as [[[name, node_index, tensor_index, {kwargs}], ...]],
input_layers/output_layers as lists of triples, no "module"/"registered_name"/"build_config",
dtype policies as plain strings, InputLayer "batch_input_shape", weight keys ending in ":0"),
references to a nested Functional model's calls counted from 1 as tf-keras counts them, with the
same weights, inputs and outputs as that case.
"""
import json
import os
import shutil
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "Tests", "GraphFixtures")
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers as L  # noqa: E402
from keras import ops  # noqa: E402
import tensorflow as tf  # noqa: E402  (string inputs are fed to predict as TensorFlow tensors)
from safetensors.numpy import save_file  # noqa: E402

from keras_export import weights_of  # noqa: E402
from make_fixtures import randomize  # noqa: E402

TOLERANCE = 1e-5
CASES = {}  # name -> (description, build(rng) -> (model, {input name: array}))


def case(description):
    def register(fn):
        CASES[fn.__name__] = (description, fn)
        return fn
    return register


def floats(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def padded_tokens(rng, batch, steps, vocab):
    """Token ids, row 0 whole, the others post-padded with zeros to shorter real lengths."""
    x = rng.integers(1, vocab, size=(batch, steps)).astype(np.int32)
    for row in range(1, batch):
        x[row, int(rng.integers(1, steps)):] = 0
    return x


@case("residual CNN: two blocks (Conv-BN-ReLU-Conv-BN, 1x1 projection shortcut then identity), Add, BN and ReLU after each Add, GAP, Dense")
def residual_cnn(rng):
    x_in = keras.Input((6, 6, 2), name="image")
    x = L.Conv2D(4, 3, padding="same", name="b1_conv1")(x_in)
    x = L.BatchNormalization(name="b1_bn1")(x)
    x = L.ReLU(name="b1_relu1")(x)
    x = L.Conv2D(4, 3, padding="same", name="b1_conv2")(x)
    shortcut = L.Conv2D(4, 1, name="b1_project")(x_in)
    x = L.Add(name="b1_add")([x, shortcut])
    x = L.BatchNormalization(name="b1_bn_out")(x)
    block1 = L.ReLU(name="b1_relu_out")(x)
    x = L.Conv2D(4, 3, padding="same", name="b2_conv1")(block1)
    x = L.ReLU(name="b2_relu1")(x)
    x = L.Conv2D(4, 3, padding="same", name="b2_conv2")(x)
    x = L.Add(name="b2_add")([block1, x])
    x = L.BatchNormalization(name="b2_bn_out")(x)
    x = L.ReLU(name="b2_relu_out")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(3, name="logits")(x)
    return keras.Model(x_in, out, name="residual_cnn"), {"image": floats(rng, 2, 6, 6, 2)}


@case("two inputs (image and tabular features, as a dict with its own keys) joined by Concatenate")
def two_input_image_tabular(rng):
    image = keras.Input((5, 5, 2), name="image")
    table = keras.Input((4,), name="tabular")
    x = L.Conv2D(3, 3, activation="relu", name="conv")(image)
    x = L.GlobalMaxPooling2D(name="pool")(x)
    t = L.Dense(3, activation="tanh", name="table_dense")(table)
    x = L.Concatenate(name="join")([x, t])
    out = L.Dense(2, activation="softmax", name="head")(x)
    model = keras.Model({"image": image, "tabular": table}, out, name="two_input")
    return model, {"image": floats(rng, 3, 5, 5, 2), "tabular": floats(rng, 3, 4)}


@case("two outputs as a list: a softmax classification head and a linear regression head on one trunk")
def two_output(rng):
    x_in = keras.Input((6,), name="features")
    x = L.Dense(8, activation="relu", name="trunk")(x_in)
    cls = L.Dense(3, activation="softmax", name="class_head")(x)
    reg = L.Dense(1, name="value_head")(x)
    return keras.Model(x_in, [cls, reg], name="two_output"), {"features": floats(rng, 3, 6)}


@case("shared Embedding(mask_zero) and LSTM on two padded sentences (node 0 and node 1 of each), then Dot(axes=1, normalize=True)")
def shared_embedding_lstm(rng):
    left = keras.Input((6,), dtype="int32", name="left")
    right = keras.Input((6,), dtype="int32", name="right")
    embed = L.Embedding(12, 4, mask_zero=True, name="shared_embedding")
    encode = L.LSTM(5, name="shared_lstm")
    a = encode(embed(left))
    b = encode(embed(right))
    out = L.Dot(axes=1, normalize=True, name="cosine")([a, b])
    model = keras.Model([left, right], out, name="siamese")
    return model, {"left": padded_tokens(rng, 3, 6, 12), "right": padded_tokens(rng, 3, 6, 12)}


@case("a Sequential (Dense, ReLU, Dense) nested in a Functional model, between two plain layers")
def sequential_in_functional(rng):
    x_in = keras.Input((5,), name="x")
    x = L.Dense(4, name="before")(x_in)
    inner = keras.Sequential([keras.Input((4,), name="inner_input"), L.Dense(6, name="inner_dense1"),
                              L.ReLU(name="inner_relu"), L.Dense(3, name="inner_dense2")], name="inner_sequential")
    x = inner(x)
    out = L.Dense(2, name="after")(x)
    return keras.Model(x_in, out, name="outer_functional"), {"x": floats(rng, 3, 5)}


@case("a Functional model with a residual Add nested in a Sequential, between two Dense layers")
def functional_in_sequential(rng):
    f_in = keras.Input((4,), name="inner_in")
    h = L.Dense(4, activation="tanh", name="inner_dense")(f_in)
    f_out = L.Add(name="inner_add")([f_in, h])
    inner = keras.Model(f_in, f_out, name="inner_functional")
    model = keras.Sequential([keras.Input((3,), name="seq_input"), L.Dense(4, name="first"), inner,
                              L.Dense(2, name="last")], name="outer_sequential")
    return model, {"seq_input": floats(rng, 3, 3)}


@case("a Functional model (Dense, residual Add) nested in a Functional model and called twice (a shared nested "
      "model), its second call also a model output: Keras numbers a nested Functional's calls from 1 in output_layers")
def functional_in_functional(rng):
    i = keras.Input((3,), name="inner_in")
    inner = keras.Model(i, L.Add(name="inner_add")([i, L.Dense(3, activation="tanh", name="inner_dense")(i)]), name="inner_functional")
    a = keras.Input((3,), name="a")
    b = keras.Input((3,), name="b")
    joined = L.Concatenate(name="join")([inner(a), inner(b)])
    out = L.Dense(2, name="head")(joined)
    return keras.Model([a, b], [out, inner(b)], name="outer"), {"a": floats(rng, 2, 3), "b": floats(rng, 2, 3)}


@case("every merge layer on three (3, 4) inputs: Add, Subtract, Multiply, Average, Maximum, Minimum, "
      "Concatenate on axes -1, 1 and 2, Dot with axes 2, (1, 1) and (2, 1) with normalize")
def merge_layers(rng):
    a = keras.Input((3, 4), name="a")
    b = keras.Input((3, 4), name="b")
    c = keras.Input((3, 4), name="c")
    outs = [
        L.Add(name="add")([a, b, c]),
        L.Subtract(name="subtract")([a, b]),
        L.Multiply(name="multiply")([a, b, c]),
        L.Average(name="average")([a, b, c]),
        L.Maximum(name="maximum")([a, b, c]),
        L.Minimum(name="minimum")([a, b]),
        L.Concatenate(name="concat_last")([a, b]),
        L.Concatenate(axis=1, name="concat_axis1")([a, b, c]),
        L.Concatenate(axis=2, name="concat_axis2")([b, c]),
        L.Dot(axes=2, name="dot_axes2")([a, b]),
        L.Dot(axes=(1, 1), name="dot_axes11")([a, c]),
        L.Dot(axes=(2, 2), normalize=True, name="dot_normalized")([b, c]),
    ]
    model = keras.Model([a, b, c], outs, name="merges")
    return model, {"a": floats(rng, 2, 3, 4), "b": floats(rng, 2, 3, 4), "c": floats(rng, 2, 3, 4)}


@case("Keras 3 ops on tensors: x + y, x * 2.0, ops.mean(x, axis=1), x[:, -1, :], ops.concatenate, "
      "ops.tanh, a layer of the same class name (layers.Add) beside ops' Add")
def keras3_ops(rng):
    x_in = keras.Input((4, 3), name="x")
    y_in = keras.Input((4, 3), name="y")
    h = L.Dense(3, name="proj")(x_in)
    s = h + y_in
    s = s * 2.0
    mean = ops.mean(s, axis=1)
    last = s[:, -1, :]
    joined = ops.concatenate([mean, last], axis=-1)
    joined = ops.tanh(joined)
    layer_add = L.Add(name="layer_add")([mean, last])
    out = L.Dense(2, name="head")(joined)
    return keras.Model([x_in, y_in], [out, layer_add], name="ops_model"), {"x": floats(rng, 2, 4, 3), "y": floats(rng, 2, 4, 3)}


@case("masks through merges: Embedding(mask_zero) into two LSTMs with sequences; Add then masked "
      "GlobalAveragePooling1D, Concatenate then an LSTM that skips padded steps")
def masked_merges(rng):
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(10, 3, mask_zero=True, name="embedding")(tokens)
    p = L.LSTM(4, return_sequences=True, name="lstm_a")(e)
    q = L.LSTM(4, return_sequences=True, name="lstm_b")(e)
    added = L.Add(name="add")([p, q])
    pooled = L.GlobalAveragePooling1D(name="pool")(added)
    joined = L.Concatenate(name="concat")([p, q])
    last = L.LSTM(3, name="lstm_after_concat")(joined)
    return keras.Model(tokens, [pooled, last], name="masked_merges"), {"tokens": padded_tokens(rng, 3, 6, 10)}


@case("more Keras 3 ops: transpose, expand_dims/squeeze, stack, matmul (batched, and a (batch, k) tensor times "
      "a constant) and einsum (tensor and constant operands), argmax/argmin, cast to int and bool, max/sum/min/any with keepdims, GetItem with a negative step, "
      "Ellipsis and None, power/divide with broadcast constants, softmax over axis 1, reshape, where, "
      "comparisons and logic, keras.ops.nn activations")
def keras3_more_ops(rng):
    x = keras.Input((4, 3), name="x")
    y = keras.Input((3, 5), name="y")
    weight = rng.standard_normal((3, 2)).astype(np.float32)
    scale = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    t = ops.transpose(x, axes=(0, 2, 1))
    sq = ops.squeeze(ops.expand_dims(x, axis=2), axis=2)
    stacked = ops.stack([x, ops.tanh(sq)], axis=1)
    mm = ops.matmul(x, y)
    es = ops.einsum("bij,bjk->bik", x, y)
    es_const = ops.einsum("bij,jk->bki", x, ops.convert_to_tensor(weight))
    mm_const = ops.matmul(x, ops.convert_to_tensor(weight))
    as_int = ops.cast(x * 3.0, "int32")
    as_bool = ops.cast(ops.round(x), "bool")
    mx = ops.max(x, axis=-1, keepdims=True)
    sm = ops.sum(x, axis=(1, 2), keepdims=True)
    mn = ops.min(t, axis=1)
    anyp = ops.cast(ops.any(ops.logical_and(x > 0.5, ops.logical_not(x > 1.5)), axis=1), "float32")
    reversed_ = x[:, ::-1, 1:]
    stepped = x[:, -1:0:-2, ::-2]
    picked = x[..., None, 0]
    powered = ops.power(ops.abs(x) + 1.0, ops.convert_to_tensor(np.array([0.5, 2.0, 3.0], dtype=np.float32)))
    divided = x / ops.convert_to_tensor(scale)
    inverse = 1.0 / (ops.abs(x) + 0.5)
    soft = ops.softmax(x, axis=1)
    flat = ops.reshape(x, (-1, 12))
    kept = ops.where(ops.greater_equal(x, 0.0), x, ops.leaky_relu(x, negative_slope=0.1))
    acts = ops.gelu(x) + ops.elu(x) - ops.sigmoid(x) * ops.silu(x) + ops.log(ops.square(x) + 1.0) - ops.sqrt(ops.abs(x))
    mixed = ops.maximum(ops.minimum(x, 0.7), -0.3) + ops.cast(ops.not_equal(ops.cast(x * 2.0, "int32"), 0), "float32")
    rows = ops.matmul(ops.mean(x, axis=1), ops.convert_to_tensor(weight))
    arg_max = ops.argmax(x, axis=-1)
    arg_min = ops.argmin(x, axis=1, keepdims=True)
    outputs = [t, stacked, mm, es, es_const, mm_const, as_int, as_bool, mx, sm, mn, anyp, reversed_, stepped, picked,
               powered, divided, inverse, soft, flat, kept, acts, mixed, rows, arg_max, arg_min]
    return keras.Model([x, y], outputs, name="more_ops"), {"x": floats(rng, 2, 4, 3), "y": floats(rng, 2, 3, 5)}


@case("an operation drops the mask: Embedding(mask_zero) then ops.tanh then an LSTM, which Keras runs over every "
      "step, padding included (Keras 3 sets no mask on an operation's output)")
def ops_drop_masks(rng):
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    e = L.Embedding(10, 3, mask_zero=True, name="embedding")(tokens)
    last = L.LSTM(2, name="lstm")(ops.tanh(e))
    return keras.Model(tokens, last, name="ops_drop_masks"), {"tokens": padded_tokens(rng, 3, 5, 10)}


@case("self-attention written with ops on a sequence of any length (None steps): Dense q, k, v; "
      "matmul(q, transpose(k)) / 2, softmax over the last axis, matmul with v, a residual x + attended, "
      "LayerNormalization, x[:, 0] and ops.mean over steps into a Dense head")
def ops_attention(rng):
    x = keras.Input((None, 4), name="sequence")
    q = L.Dense(4, name="query")(x)
    k = L.Dense(4, name="key")(x)
    v = L.Dense(4, name="value")(x)
    scores = ops.matmul(q, ops.transpose(k, axes=(0, 2, 1))) / 2.0
    attended = ops.matmul(ops.softmax(scores, axis=-1), v)
    h = L.LayerNormalization(name="norm")(x + attended)
    pooled = ops.concatenate([h[:, 0], ops.mean(h, axis=1)], axis=-1)
    out = L.Dense(3, name="head")(pooled)
    return keras.Model(x, out, name="ops_attention"), {"sequence": floats(rng, 2, 5, 4)}


@case("Keras 3 ops of several outputs and repetition: ops.split into sections and at indices, ops.unstack, "
      "ops.tile, ops.repeat; var, std and logsumexp; erf, log2, trunc, floor_divide and mod")
def keras3_split_tile_stats(rng):
    x = keras.Input((4, 6), name="x")
    left, right = ops.split(x, 2, axis=-1)
    parts = ops.split(x, [1, 3], axis=1)
    rows = ops.unstack(x, axis=1)
    tiled = ops.tile(left, (1, 2, 1))
    repeated = ops.repeat(right, 2, axis=1)
    stats = ops.concatenate([ops.var(x, axis=1), ops.std(x, axis=1), ops.logsumexp(x, axis=1)], axis=-1)
    kept = ops.var(x, axis=-1, keepdims=True)
    funcs = ops.erf(x) + ops.log2(ops.abs(x) + 1.0) + ops.trunc(x * 3.0) + (x * 4.0) // 3.0 + (x * 4.0) % 3.0
    outputs = [left, right, parts[0], parts[1], parts[2], rows[0], rows[3], tiled, repeated, stats, kept, funcs]
    return keras.Model(x, outputs, name="split_tile_stats"), {"x": floats(rng, 2, 4, 6)}


@case("LSTM encoder-decoder: encoder LSTM(return_state) gives [out, h, c]; the decoder LSTM takes "
      "initial_state=[h, c]; Dense on the decoder sequence")
def seq2seq_lstm(rng):
    enc_in = keras.Input((5, 3), name="encoder_input")
    dec_in = keras.Input((4, 2), name="decoder_input")
    _, h, c = L.LSTM(4, return_state=True, name="encoder")(enc_in)
    seq = L.LSTM(4, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    out = L.Dense(3, activation="softmax", name="readout")(seq)
    return keras.Model([enc_in, dec_in], out, name="seq2seq"), {"encoder_input": floats(rng, 2, 5, 3),
                                                                 "decoder_input": floats(rng, 2, 4, 2)}


@case("Bidirectional(LSTM(return_state=True)): the output and the four states (forward h, c, backward h, c) "
      "as five outputs, and a Dense on the concatenated h states")
def bidi_return_state(rng):
    x_in = keras.Input((5, 3), name="sequence")
    out, fh, fc, bh, bc = L.Bidirectional(L.LSTM(3, return_state=True, name="lstm"), name="bidi")(x_in)
    h = L.Concatenate(name="states")([fh, bh])
    head = L.Dense(2, name="head")(h)
    return keras.Model(x_in, [out, fh, fc, bh, bc, head], name="bidi_states"), {"sequence": floats(rng, 2, 5, 3)}


@case("GRU and SimpleRNN return_state on padded sentences (Embedding mask_zero): the GRU's masked sequence "
      "output (pooled over real steps) and final h, a backwards SimpleRNN's last output and final h; each "
      "final state is the state at the row's last real step")
def masked_return_state(rng):
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(12, 3, mask_zero=True, name="embedding")(tokens)
    seq, gru_h = L.GRU(4, return_sequences=True, return_state=True, name="gru")(e)
    pooled = L.GlobalAveragePooling1D(name="pool")(seq)
    last, rnn_h = L.SimpleRNN(3, return_state=True, go_backwards=True, name="rnn")(e)
    head = L.Dense(2, name="head")(L.Concatenate(name="states")([gru_h, rnn_h]))
    return keras.Model(tokens, [pooled, gru_h, last, rnn_h, head], name="masked_return_state"), {"tokens": padded_tokens(rng, 3, 6, 12)}


@case("GRU encoder-decoder: a masked GRU encoder's final h starts two decoders, one given initial_state=[h] "
      "as a keyword, one given h positionally (layer(x, h)); Dense on each decoder's sequence")
def seq2seq_gru(rng):
    tokens = keras.Input((5,), dtype="int32", name="source")
    dec_in = keras.Input((4, 2), name="target")
    e = L.Embedding(9, 3, mask_zero=True, name="embedding")(tokens)
    _, h = L.GRU(4, return_state=True, name="encoder")(e)
    keyword = L.GRU(4, return_sequences=True, name="decoder")(dec_in, initial_state=[h])
    positional = L.GRU(4, return_sequences=True, reset_after=False, name="decoder_positional")(dec_in, h)
    return keras.Model([tokens, dec_in], [L.Dense(3, name="readout")(keyword), L.Dense(2, name="readout_positional")(positional)],
                       name="seq2seq_gru"), {"source": padded_tokens(rng, 3, 5, 9), "target": floats(rng, 3, 4, 2)}


@case("Bidirectional(LSTM(return_sequences=True, return_state=True)) on padded sentences: the masked sequence "
      "output (pooled over real steps) and the forward h, c then backward h, c")
def bidi_masked_sequences_states(rng):
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(11, 3, mask_zero=True, name="embedding")(tokens)
    seq, fh, fc, bh, bc = L.Bidirectional(L.LSTM(3, return_sequences=True, return_state=True, name="lstm"), name="bidi")(e)
    pooled = L.GlobalAveragePooling1D(name="pool")(seq)
    return keras.Model(tokens, [seq, pooled, fh, fc, bh, bc], name="bidi_masked_states"), {"tokens": padded_tokens(rng, 3, 6, 11)}


@case("Bidirectional initial_state: a Bidirectional(GRU(return_state)) encoder's [forward h, backward h] start a "
      "Bidirectional(GRU) decoder; a Bidirectional(LSTM) decoder starts from four states (forward h, c, backward h, c)")
def bidi_initial_state(rng):
    enc_in = keras.Input((5, 3), name="encoder_input")
    dec_in = keras.Input((4, 2), name="decoder_input")
    _, fh, bh = L.Bidirectional(L.GRU(4, return_state=True, name="gru"), name="encoder")(enc_in)
    gru_out = L.Bidirectional(L.GRU(4, return_sequences=True, name="gru_dec"), name="decoder")(dec_in, initial_state=[fh, bh])
    _, lh, lc, rh, rc = L.Bidirectional(L.LSTM(3, return_state=True, name="lstm"), name="lstm_encoder")(enc_in)
    lstm_out = L.Bidirectional(L.LSTM(3, name="lstm_dec"), merge_mode="sum", name="lstm_decoder")(dec_in, initial_state=[lh, lc, rh, rc])
    return keras.Model([enc_in, dec_in], [gru_out, lstm_out], name="bidi_initial_state"), {"encoder_input": floats(rng, 2, 5, 3),
                                                                                        "decoder_input": floats(rng, 2, 4, 2)}


@case("Bidirectional merge_mode=None on padded sentences: the forward and backward sequences as two masked outputs "
      "(each pooled over real steps), and merge_mode=None with return_state: both outputs then the four states")
def bidi_merge_none(rng):
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(10, 3, mask_zero=True, name="embedding")(tokens)
    forward, backward = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm"), merge_mode=None, name="bidi")(e)
    pooled_forward = L.GlobalAveragePooling1D(name="pool_forward")(forward)
    pooled_backward = L.GlobalAveragePooling1D(name="pool_backward")(backward)
    f, b, fh, bh = L.Bidirectional(L.GRU(2, return_state=True, name="gru"), merge_mode=None, name="bidi_states")(e)
    return keras.Model(tokens, [forward, backward, pooled_forward, pooled_backward, f, b, fh, bh],
                       name="bidi_merge_none"), {"tokens": padded_tokens(rng, 3, 6, 10)}


# --- issue 15: convolutions ---

@case("Fully convolutional U-Net on images of run-time size (None, None, 3): Conv2D, a strided DepthwiseConv2D, "
      "SeparableConv2D, a Conv2DTranspose back up to the input size, concatenated with the skip branch, then a 1x1 Conv2D")
def unet_unknown_size(rng):
    image = keras.Input((None, None, 3), name="image")
    skip = L.Conv2D(4, 3, padding="same", activation="relu", name="stem")(image)
    down = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="down")(skip)
    mid = L.SeparableConv2D(6, 3, padding="same", activation="relu", name="middle")(down)
    up = L.Conv2DTranspose(4, 2, strides=2, padding="same", name="up")(mid)
    merged = L.Concatenate(name="merge")([up, skip])
    return keras.Model(image, L.Conv2D(2, 1, name="head")(merged), name="unet"), {"image": floats(rng, 2, 8, 10, 3)}
# --- issue 15: attention ---

@case("EinsumDense in every equation form Keras accepts: ab,bc->ac (relu), abc,cd->abd, ...b,bc->...c, "
      "ab...,bc->ac..., abc,cde->abde, a summed input axis (abc,cd->ad), an axis shared by input and kernel "
      "(abc,bcd->abd), bias on a middle axis, no bias")
def einsum_dense(rng):
    x = keras.Input((3, 4), name="x")
    flat = keras.Input((4,), name="flat")
    outputs = [
        L.EinsumDense("ab,bc->ac", output_shape=5, bias_axes="c", activation="relu", name="ed_2d")(flat),
        L.EinsumDense("abc,cd->abd", output_shape=(3, 5), bias_axes="d", name="ed_seq")(x),
        L.EinsumDense("...b,bc->...c", output_shape=5, bias_axes="c", name="ed_left")(x),
        L.EinsumDense("ab...,bc->ac...", output_shape=(5,), bias_axes="c", name="ed_right")(x),
        L.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de", name="ed_heads")(x),
        L.EinsumDense("abc,cd->ad", output_shape=(5,), bias_axes="d", name="ed_summed")(x),
        L.EinsumDense("abc,bcd->abd", output_shape=(3, 2), bias_axes="bd", name="ed_shared")(x),
        L.EinsumDense("abc,cd->abd", output_shape=(3, 2), bias_axes="b", name="ed_bias_b")(x),
        L.EinsumDense("abc,cd->abd", output_shape=(None, 2), activation="tanh", name="ed_no_bias")(x),
    ]
    return keras.Model([x, flat], outputs, name="einsum_dense"), {"x": floats(rng, 2, 3, 4), "flat": floats(rng, 2, 4)}


@case("MultiHeadAttention self-attention mha(x, x) with return_attention_scores (two outputs), and a second "
      "layer with use_causal_mask, value_dim, output_shape and use_bias=False")
def mha_self(rng):
    x = keras.Input((4, 6), name="x")
    out, scores = L.MultiHeadAttention(num_heads=2, key_dim=3, name="mha")(x, x, return_attention_scores=True)
    causal = L.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4, output_shape=(5,), use_bias=False,
                                  name="mha_causal")(x, x, use_causal_mask=True)
    return keras.Model(x, [out, scores, causal], name="mha_self"), {"x": floats(rng, 2, 4, 6)}


@case("MultiHeadAttention cross-attention by keywords (query=, value=, key=) on sequences of different lengths, "
      "with an attention_mask input (a fully masked row included), and positional query, value, key with causal mask")
def mha_cross(rng):
    q = keras.Input((3, 4), name="q")
    v = keras.Input((5, 6), name="v")
    k = keras.Input((5, 2), name="k")
    m = keras.Input((3, 5), dtype="int32", name="m")
    a = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha_kw")(query=q, value=v, key=k, attention_mask=m)
    b = L.MultiHeadAttention(num_heads=1, key_dim=3, name="mha_pos")(q, v, k, use_causal_mask=True)
    mask = (rng.random((2, 3, 5)) > 0.4).astype(np.int32)
    mask[1, 2, :] = 0
    return keras.Model([q, v, k, m], [a, b], name="mha_cross"), {
        "q": floats(rng, 2, 3, 4), "v": floats(rng, 2, 5, 6), "k": floats(rng, 2, 5, 2), "m": mask}


@case("MultiHeadAttention on padded tokens: Embedding(mask_zero) masks as query and value (and key), with and "
      "without use_causal_mask, and a masked query against an unmasked value; pooled over real steps")
def mha_masked(rng):
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    other = keras.Input((4, 5), name="other")
    # Keras's MultiHeadAttention.call clears the mask of the tensors it is given (set_keras_mask(query, None)),
    # so a tensor read by a later attention layer would arrive unmasked: each layer gets its own embedding call.
    embedding = L.Embedding(12, 4, mask_zero=True, name="embedding")
    e = embedding(tokens)
    a = L.MultiHeadAttention(num_heads=2, key_dim=3, name="mha_masked")(e, e)
    e = embedding(tokens)
    b = L.MultiHeadAttention(num_heads=2, key_dim=2, name="mha_masked_causal")(e, e, e, use_causal_mask=True)
    c = L.MultiHeadAttention(num_heads=2, key_dim=2, name="mha_query_masked")(embedding(tokens), other)
    d = L.MultiHeadAttention(num_heads=2, key_dim=2, name="mha_value_masked")(other, embedding(tokens))
    pooled = L.GlobalAveragePooling1D(name="pool")(a)
    return keras.Model([tokens, other], [a, b, c, d, pooled], name="mha_masked"), {
        "tokens": padded_tokens(rng, 3, 6, 12), "other": floats(rng, 3, 4, 5)}


@case("MultiHeadAttention over several attention axes of a rank-4 input (attention_axes=(1, 2), and (2,) "
      "with a negative-axis spelling), with use_gate and output_shape of two axes")
def mha_axes(rng):
    x = keras.Input((3, 2, 4), name="x")
    a = L.MultiHeadAttention(num_heads=2, key_dim=2, attention_axes=(1, 2), name="mha_2d")(x, x)
    b = L.MultiHeadAttention(num_heads=2, key_dim=3, attention_axes=(-3,), name="mha_axis2", use_gate=True)(x, x)
    c = L.MultiHeadAttention(num_heads=1, key_dim=2, output_shape=(2, 3), name="mha_out2")(x, x)
    return keras.Model(x, [a, b, c], name="mha_axes"), {"x": floats(rng, 2, 3, 2, 4)}


@case("Transformer encoder block of keras.io's text classification example with built-in layers: token "
      "Embedding(mask_zero) + position Embedding(mask_zero) over positions 1..len (0 on padding), "
      "MultiHeadAttention, Dropout, residual Add, LayerNormalization(1e-6), feed-forward Dense relu + Dense, "
      "GlobalAveragePooling1D over real steps, Dense heads; padded, masked input")
def transformer_encoder(rng):
    maxlen, vocab, dim, heads, ff = 8, 20, 8, 2, 16
    tokens = keras.Input((maxlen,), dtype="int32", name="tokens")
    positions = keras.Input((maxlen,), dtype="int32", name="positions")
    x = L.Add(name="embed")([L.Embedding(vocab, dim, mask_zero=True, name="token_emb")(tokens),
                             L.Embedding(maxlen + 1, dim, mask_zero=True, name="pos_emb")(positions)])
    attn = L.MultiHeadAttention(num_heads=heads, key_dim=dim, name="attention")(x, x)
    attn = L.Dropout(0.1, name="dropout1")(attn)
    out1 = L.LayerNormalization(epsilon=1e-6, name="layernorm1")(L.Add(name="residual1")([x, attn]))
    ffn = L.Dense(ff, activation="relu", name="ffn_1")(out1)
    ffn = L.Dense(dim, name="ffn_2")(ffn)
    ffn = L.Dropout(0.1, name="dropout2")(ffn)
    out2 = L.LayerNormalization(epsilon=1e-6, name="layernorm2")(L.Add(name="residual2")([out1, ffn]))
    pooled = L.GlobalAveragePooling1D(name="pool")(out2)
    h = L.Dense(20, activation="relu", name="dense")(L.Dropout(0.1, name="dropout3")(pooled))
    out = L.Dense(2, activation="softmax", name="head")(L.Dropout(0.1, name="dropout4")(h))
    t = padded_tokens(rng, 3, maxlen, vocab)
    p = np.where(t != 0, np.arange(1, maxlen + 1)[None, :], 0).astype(np.int32)
    return keras.Model([tokens, positions], [out, out2], name="transformer_encoder"), {"tokens": t, "positions": p}


@case("Attention (dot, use_scale, concat with and without scale, causal, return_attention_scores, a key) and "
      "AdditiveAttention (scale, no scale) on float sequences")
def attention_layers(rng):
    q = keras.Input((3, 4), name="q")
    v = keras.Input((5, 4), name="v")
    k = keras.Input((5, 4), name="k")
    dot, scores = L.Attention(name="dot")([q, v], return_attention_scores=True)
    outputs = [dot, scores,
               L.Attention(use_scale=True, name="dot_scaled")([q, v, k]),
               L.Attention(score_mode="concat", name="concat")([q, v]),
               L.Attention(score_mode="concat", use_scale=True, name="concat_scaled")([q, v, k]),
               L.Attention(name="causal")([q, v], use_causal_mask=True),
               L.AdditiveAttention(name="additive")([q, v, k]),
               L.AdditiveAttention(use_scale=False, name="additive_plain")([q, v])]
    model = keras.Model([q, v, k], outputs, name="attention_layers")
    for layer in model.layers:  # scales away from their initial ones, so a missed weight shows
        for weight in layer.weights:
            weight.assign(rng.uniform(0.5, 1.5, size=weight.shape).astype(np.float32))
    return model, {"q": floats(rng, 2, 3, 4), "v": floats(rng, 2, 5, 4), "k": floats(rng, 2, 5, 4)}


@case("Attention and AdditiveAttention on padded tokens: the value's mask on the scores, the query's mask "
      "zeroing the output, causal with a mask")
def attention_masked(rng):
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    other = keras.Input((4, 3), name="other")
    embedding = L.Embedding(12, 3, mask_zero=True, name="embedding")
    e = embedding(tokens)
    a = L.Attention(name="self")([e, e])
    b = L.Attention(name="self_causal", use_scale=True)([e, e], use_causal_mask=True)
    c = L.AdditiveAttention(name="additive_query_masked")([e, other])
    d = L.Attention(name="value_masked")([other, e])
    # (Keras writes the output mask of Attention into a graph as ops, NotEqual then ConvertToTensor, when a
    # later layer reads it; ConvertToTensor is not an nnbuild operation yet, so nothing here reads it.)
    return keras.Model([tokens, other], [a, b, c, d], name="attention_masked"), {
        "tokens": padded_tokens(rng, 3, 6, 12), "other": floats(rng, 3, 4, 3)}


@case("GroupedQueryAttention: 4 query heads sharing 2 key/value heads with return_attention_scores, a cross "
      "call with a key, use_causal_mask and no bias, a gate, and Embedding(mask_zero) masks on query and value")
def grouped_query_attention(rng):
    x = keras.Input((4, 6), name="x")
    kv = keras.Input((5, 6), name="kv")
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    out, scores = L.GroupQueryAttention(head_dim=3, num_query_heads=4, num_key_value_heads=2, name="gqa")(
        x, x, return_attention_scores=True)
    cross = L.GroupQueryAttention(head_dim=2, num_query_heads=3, num_key_value_heads=1, use_bias=False,
                                    name="gqa_cross")(x, kv, kv, use_causal_mask=True)
    gated = L.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=2, use_gate=True,
                                    name="gqa_gate")(x, kv)
    e = L.Embedding(10, 4, mask_zero=True, name="embedding")(tokens)
    masked = L.GroupQueryAttention(head_dim=2, num_query_heads=4, num_key_value_heads=2, name="gqa_masked")(e, e)
    return keras.Model([x, kv, tokens], [out, scores, cross, gated, masked], name="grouped_query_attention"), {
        "x": floats(rng, 3, 4, 6), "kv": floats(rng, 3, 5, 6), "tokens": padded_tokens(rng, 3, 5, 10)}


@case("attention on sequences whose length is known only at run time (Input((None,))): Embedding(mask_zero), "
      "MultiHeadAttention with use_causal_mask, GroupQueryAttention, Attention, EinsumDense over the steps")
def attention_any_length(rng):
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    embedding = L.Embedding(10, 4, mask_zero=True, name="embedding")
    a = L.MultiHeadAttention(num_heads=2, key_dim=2, name="mha")(embedding(tokens), embedding(tokens), use_causal_mask=True)
    e = embedding(tokens)
    b = L.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1, name="gqa")(e, e)
    e = embedding(tokens)
    c = L.Attention(name="attention")([e, e])
    d = L.EinsumDense("abc,cd->abd", output_shape=(None, 3), bias_axes="d", name="einsum")(a)
    return keras.Model(tokens, [a, b, c, d], name="attention_any_length"), {"tokens": padded_tokens(rng, 3, 5, 10)}


@case("Transformer encoder of two blocks on padded tokens, the padding mask only implicit (Embedding(mask_zero) "
      "token and position embeddings, no attention_mask): MultiHeadAttention(x, x), Dropout, residual Add, "
      "LayerNormalization, Dense relu + Dense, Add, LayerNormalization per block; GlobalAveragePooling1D, Dense softmax. "
      "Keras's MultiHeadAttention clears the mask of the tensor it reads, so at run time the residual Add and the "
      "second block's attention are unmasked while the pooling reads the mask the symbolic graph stored")
def transformer_two_blocks_masked(rng):
    steps, vocab, width, heads, feed_forward = 8, 50, 16, 2, 32
    tokens = keras.Input((steps,), dtype="int32", name="tokens")
    embedded = L.Embedding(vocab, width, mask_zero=True, name="token_embedding")(tokens)
    real = ops.cast(ops.not_equal(tokens, 0), "int32")
    positions = ops.cumsum(real, axis=1) * real
    placed = L.Embedding(steps + 1, width, mask_zero=True, name="position_embedding")(positions)
    x = L.Add(name="embed")([embedded, placed])
    attentions = []
    for block in range(2):
        attention = L.MultiHeadAttention(num_heads=heads, key_dim=width // heads, name="attention_%d" % block)(x, x)
        attentions.append(attention)
        attention = L.Dropout(0.1, name="attention_dropout_%d" % block)(attention)
        x = L.LayerNormalization(epsilon=1e-6, name="norm_a_%d" % block)(L.Add(name="residual_a_%d" % block)([x, attention]))
        forward = L.Dense(feed_forward, activation="relu", name="feed_forward_%d" % block)(x)
        forward = L.Dense(width, name="project_%d" % block)(forward)
        x = L.LayerNormalization(epsilon=1e-6, name="norm_b_%d" % block)(L.Add(name="residual_b_%d" % block)([x, forward]))
    pooled = L.GlobalAveragePooling1D(name="pool")(x)
    out = L.Dense(3, activation="softmax", name="head")(pooled)
    return keras.Model(tokens, [out, x, attentions[1]], name="transformer_two_blocks_masked"), {
        "tokens": padded_tokens(rng, 4, steps, vocab)}


@case("MultiHeadAttention(query, value) with different Embedding(mask_zero) masks on query and value; later readers "
      "of both (a residual Add of the query, a second MultiHeadAttention whose query is the value) see them unmasked, "
      "as Keras clears the masks of the tensors MultiHeadAttention reads; GroupQueryAttention leaves its inputs' "
      "masks alone (its residual Add stays masked, and so the attention reading it)")
def mha_cross_masks(rng):
    query_tokens = keras.Input((6,), dtype="int32", name="query_tokens")
    value_tokens = keras.Input((5,), dtype="int32", name="value_tokens")
    q = L.Embedding(50, 16, mask_zero=True, name="query_embedding")(query_tokens)
    v = L.Embedding(50, 16, mask_zero=True, name="value_embedding")(value_tokens)
    a = L.MultiHeadAttention(num_heads=2, key_dim=8, name="cross")(q, v)
    residual = L.Add(name="query_residual")([q, a])
    b = L.MultiHeadAttention(num_heads=2, key_dim=4, name="after")(v, residual)
    w = L.Embedding(50, 16, mask_zero=True, name="gqa_embedding")(value_tokens)
    g = L.GroupQueryAttention(head_dim=4, num_query_heads=2, num_key_value_heads=1, name="gqa")(w, w)
    kept = L.Add(name="gqa_residual")([w, g])
    c = L.MultiHeadAttention(num_heads=1, key_dim=4, name="reads_gqa_residual")(kept, kept)
    return keras.Model([query_tokens, value_tokens], [a, residual, b, c], name="mha_cross_masks"), {
        "query_tokens": padded_tokens(rng, 3, 6, 50), "value_tokens": padded_tokens(rng, 3, 5, 50)[::-1].copy()}


@case("MultiHeadAttention reading a Dropout of a masked embedding: at inference Keras's Dropout returns the very "
      "tensor it is given, so clearing the Dropout output's mask clears the embedding's too (a residual Add of the "
      "embedding, and the attention reading it, run unmasked), and a Dropout of a tensor an attention read is unmasked")
def mha_dropout_alias(rng):
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(50, 16, mask_zero=True, name="embedding")(tokens)
    h = L.Dropout(0.1, name="dropout")(e)
    a = L.MultiHeadAttention(num_heads=2, key_dim=8, name="reads_dropout")(h, h)
    r = L.Add(name="embedding_residual")([e, a])
    b = L.MultiHeadAttention(num_heads=2, key_dim=4, name="reads_residual")(r, r)
    f = L.Embedding(50, 16, mask_zero=True, name="other_embedding")(tokens)
    c = L.MultiHeadAttention(num_heads=2, key_dim=4, name="reads_embedding")(f, f)
    g = L.Dropout(0.1, name="dropout_after")(f)
    s = L.Add(name="dropout_residual")([g, c])
    d = L.MultiHeadAttention(num_heads=1, key_dim=4, name="reads_dropout_residual")(s, s)
    return keras.Model(tokens, [b, d], name="mha_dropout_alias"), {"tokens": padded_tokens(rng, 3, 6, 50)}


@case("Two MultiHeadAttention calls on one Embedding(mask_zero) tensor at the same depth (both model outputs): "
      "Keras runs the calls of one depth in map_graph's nodes_by_depth order, not document order, and the one it "
      "runs first clears the mask, so only that one is masked")
def mha_same_depth_readers(rng):
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(50, 16, mask_zero=True, name="embedding")(tokens)
    a = L.MultiHeadAttention(num_heads=2, key_dim=8, name="first_in_document")(e, e)
    b = L.MultiHeadAttention(num_heads=2, key_dim=4, name="second_in_document")(e, e)
    return keras.Model(tokens, [a, b], name="mha_same_depth_readers"), {"tokens": padded_tokens(rng, 3, 6, 50)}


# ---------------------------------------------------------------------------------------------
# The hand-converted Keras 2 form.

# --- issue 15: recurrent ---
@case("generic RNN states: a stacked LSTMCell/GRUCell encoder with return_state gives its output, [h, c] of the "
      "LSTMCell and h of the GRUCell; a stacked decoder takes initial_state=[[h, c], h]; a masked RNN(LSTMCell) "
      "with return_state on padded sentences")
def generic_rnn_states(rng):
    enc_in = keras.Input((5, 3), name="encoder_input")
    dec_in = keras.Input((4, 2), name="decoder_input")
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    out, (h, c), g = L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)]), return_state=True, name="encoder")(enc_in)
    decoded = L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)]), return_sequences=True, name="decoder")(
        dec_in, initial_state=[[h, c], g])
    e = L.Embedding(12, 3, mask_zero=True, name="embedding")(tokens)
    last, mh, mc = L.RNN(L.LSTMCell(3), return_state=True, go_backwards=True, name="masked")(e)
    head = L.Dense(2, name="head")(L.Concatenate(name="states")([h, g, mh]))
    return keras.Model([enc_in, dec_in, tokens], [out, h, c, g, decoded, last, mh, mc, head], name="generic_rnn_states"), \
        {"encoder_input": floats(rng, 2, 5, 3), "decoder_input": floats(rng, 2, 4, 2), "tokens": padded_tokens(rng, 2, 6, 12)}


@case("ConvLSTM2D states: return_state gives the output image and the h and c images; a second ConvLSTM2D "
      "takes initial_state=[h, c]")
def conv_lstm_states(rng):
    first_in = keras.Input((3, 4, 4, 2), name="first")
    second_in = keras.Input((2, 4, 4, 3), name="second")
    out, h, c = L.ConvLSTM2D(2, 3, padding="same", return_state=True, name="encoder")(first_in)
    decoded = L.ConvLSTM2D(2, (3, 1), padding="same", return_sequences=True, name="decoder")(second_in, initial_state=[h, c])
    return keras.Model([first_in, second_in], [out, h, c, decoded], name="conv_lstm_states"), \
        {"first": floats(rng, 2, 3, 4, 4, 2), "second": floats(rng, 2, 2, 4, 4, 3)}


def _keras2_value(value):
    """Drops Keras 3's "module"/"registered_name", turns DTypePolicy objects into their name."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy":
            return value["config"]["name"]
        return {k: _keras2_value(v) for k, v in value.items() if k not in ("module", "registered_name")}
    if isinstance(value, list):
        return [_keras2_value(v) for v in value]
    return value


def _keras2_node(node, functional):
    """A Keras 3 node {"args": [...], "kwargs": {...}} as tf-keras writes it: [[name, node, index, {kwargs}], ...].

    tf-keras counts a nested Functional model's calls from 1 (its node 0 is the model's own call)
    in inbound nodes too, where Keras 3 counts from 0; `functional` names those layers."""
    def history(tensor):
        name, node_index, tensor_index = tensor["config"]["keras_history"]
        return [name, node_index + (1 if name in functional else 0), tensor_index]
    args = node["args"]
    tensors = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    # Keras 2 computes masks implicitly: Keras 3's explicit mask tensors (and the NotEqual ops that
    # make them) have no counterpart there.
    kwargs = {k: v for k, v in node["kwargs"].items() if k not in ("mask", "training") and v is not None}
    return [history(t) + [kwargs] for t in tensors if isinstance(t, dict)]


def _keras2_functional_config(config):
    functional = {layer["name"] for layer in config["layers"] if layer["class_name"] == "Functional"}
    layers = []
    for layer in config["layers"]:
        if layer.get("module", "").startswith("keras.src.ops."):
            continue
        converted = {"class_name": layer["class_name"], "config": _keras2_value(layer["config"]), "name": layer["name"],
                     "inbound_nodes": [_keras2_node(node, functional) for node in layer["inbound_nodes"]]}
        if layer["class_name"] == "InputLayer":
            converted["config"]["batch_input_shape"] = converted["config"].pop("batch_shape")
        if layer["class_name"] == "Functional":
            converted["config"] = _keras2_functional_config(layer["config"])
        layers.append(converted)
    as_list = lambda v: [v] if isinstance(v[0], str) else list(v.values()) if isinstance(v, dict) else v  # noqa: E731
    # Keras 3 already counts a nested Functional's calls from 1 in input_layers/output_layers, as tf-keras does.
    return {"name": config["name"], "trainable": True, "layers": layers,
            "input_layers": as_list(config["input_layers"]), "output_layers": as_list(config["output_layers"])}


def keras2_spec(keras3_json):
    spec = json.loads(keras3_json)
    out = {"class_name": "Functional", "config": _keras2_functional_config(spec["config"]),
           "keras_version": "2.15.0", "backend": "tensorflow"}
    return json.dumps(out)


DERIVED = {"keras2_functional": ("shared_embedding_lstm in Keras 2's Functional form, hand-converted (see the module docstring)",
                                 "shared_embedding_lstm"),
           "keras2_nested_functional": ("functional_in_functional in Keras 2's Functional form, hand-converted: tf-keras "
                                        "numbers the nested model's calls from 1 in inbound nodes too", "functional_in_functional")}


# ---------------------------------------------------------------------------------------------

def names_of(layers_spec, tensors):
    """The public names of config.input_layers/output_layers, in order."""
    if isinstance(layers_spec, dict):
        return list(layers_spec.keys())
    triples = [layers_spec] if layers_spec and isinstance(layers_spec[0], str) else layers_spec
    return [name if index == 0 else "%s:%d" % (name, index) for name, _, index in triples]


def flat_outputs(model, predicted):
    if isinstance(predicted, dict):
        return [predicted[key] for key in model.output.keys()] if isinstance(model.output, dict) else list(predicted.values())
    if isinstance(predicted, (list, tuple)):
        return list(predicted)
    return [predicted]


def file_name(prefix, name):
    return "%s_%s.npy" % (prefix, name.replace(":", "__"))


def reload_check(outdir, spec_json, tensors, inputs, expected):
    """Rebuilds the model from model.json, gives every variable its tensor by path, compares predictions."""
    keras.backend.clear_session()
    rebuilt = keras.models.model_from_json(spec_json)
    used = set()
    for variable in rebuilt.weights:
        path = variable.path
        if path.split("/")[-1] == "seed_generator_state":
            continue
        key = path if path in tensors else next((k for k in tensors if k.endswith("/" + path) or path.endswith("/" + k)), None)
        if key is None or key in used:
            raise SystemExit("%s: the rebuilt model's variable '%s' has no tensor in weights.safetensors" % (outdir, path))
        used.add(key)
        variable.assign(tensors[key])
    if used != set(tensors):
        raise SystemExit("%s: tensors never used by the rebuilt model: %s" % (outdir, sorted(set(tensors) - used)))
    again = flat_outputs(rebuilt, rebuilt.predict(inputs, verbose=0))
    for index, (ours, theirs) in enumerate(zip(again, expected)):
        error = float(np.max(np.abs(np.asarray(ours) - theirs) / (1 + np.abs(theirs))))
        if error > 1e-6:
            raise SystemExit("%s: output %d differs after reloading by %g" % (outdir, index, error))


def write_case(name, spec_json, tensors, inputs, input_names, outputs, output_names):
    outdir = os.path.join(OUT, name)
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    with open(os.path.join(outdir, "model.json"), "w") as f:
        f.write(spec_json)
    save_file(tensors, os.path.join(outdir, "weights.safetensors"))
    entry = {"inputs": [], "outputs": []}
    for input_name in input_names:
        np.save(os.path.join(outdir, file_name("input", input_name)), inputs[input_name])
        entry["inputs"].append({"name": input_name, "file": file_name("input", input_name), "shape": list(inputs[input_name].shape)})
    for output_name, value in zip(output_names, outputs):
        np.save(os.path.join(outdir, file_name("output", output_name)), value)
        entry["outputs"].append({"name": output_name, "file": file_name("output", output_name), "shape": list(value.shape)})
    return entry


def generate(name):
    description, build = CASES[name]
    keras.backend.clear_session()
    seed = zlib.crc32(name.encode())
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed % (1 << 31))
    model, inputs = build(rng)
    if not getattr(build, "keeps_weights", False):  # the Keras Applications cases calibrate their own
        randomize(model, rng)
    spec_json = model.to_json()
    spec = json.loads(spec_json)["config"]
    tensors = weights_of(model)
    if getattr(build, "half_weights", False):  # their values are float16 already (see application_case)
        tensors = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in tensors.items()}
    # Keras's predict takes strings as TensorFlow tensors, not numpy str arrays (saved as they are).
    given = {n: tf.constant(v) if v.dtype.kind in "US" else v for n, v in inputs.items()}
    if "input_layers" in spec:
        input_names = names_of(spec["input_layers"], None)
        output_names = names_of(spec["output_layers"], None)
        feed = given if isinstance(model.input, dict) else [given[n] for n in input_names]
        feed = feed[0] if isinstance(feed, list) and len(feed) == 1 else feed
    else:  # a Sequential: one input, named by its InputLayer, and one output named by its last layer
        input_names, output_names = list(inputs), [model.layers[-1].name]
        feed = given[input_names[0]]
    outputs = [np.asarray(v, dtype=np.float32) for v in flat_outputs(model, model.predict(feed, verbose=0))]
    entry = write_case(name, spec_json, tensors, inputs, input_names, outputs, output_names)
    reload_check(name, spec_json, tensors, feed, outputs)
    entry["description"] = description
    made = {name: entry}
    for derived, (derived_description, base) in DERIVED.items():
        if base == name:
            made[derived] = write_case(derived, keras2_spec(spec_json), {k + ":0": v for k, v in tensors.items()},
                                       inputs, input_names, outputs, output_names)
            made[derived]["description"] = derived_description
    return made


# --- issue 15: normalization, activations, preprocessing, LayerScale ---

@case("keras.ops activations added in Keras 3: celu, hard_shrink, soft_shrink, hard_tanh, log_sigmoid, sparse_plus, "
      "sparse_sigmoid, tanh_shrink, squareplus, threshold, glu over the last axis and over axis 1, sparsemax over axis 1")
def keras3_activation_ops(rng):
    x = keras.Input((4, 6), name="x")
    outputs = [ops.celu(x, alpha=0.5), ops.hard_shrink(x, threshold=0.3), ops.soft_shrink(x, threshold=0.7), ops.hard_tanh(x),
               ops.log_sigmoid(x), ops.sparse_plus(x), ops.sparse_sigmoid(x), ops.tanh_shrink(x), ops.squareplus(x, b=2),
               ops.threshold(x, 0.2, -1.0), ops.glu(x), ops.glu(x, axis=1), ops.sparsemax(x * 3.0, axis=1)]
    return keras.Model(x, outputs, name="keras3_activation_ops"), {"x": floats(rng, 2, 4, 6) * 2}


@case("ops.one_hot of integer ids (out-of-range and negative ids give zero rows) on the last axis and on axis 1, "
      "ops.take of a tensor at constant indices (negative ones too), ops.take of a constant table at tensor ids (an embedding), "
      "ops.cumsum over axis 1 and -1")
def keras3_onehot_take_cumsum(rng):
    ids = keras.Input((5,), name="ids")
    x = keras.Input((4, 3), name="x")
    table = rng.standard_normal((7, 2)).astype(np.float32)
    outputs = [ops.one_hot(ids, 6), ops.one_hot(ids, 4, axis=1), ops.take(x, [2, 0, -1], axis=1), ops.take(x, [[1, 1], [0, 2]], axis=-1),
               ops.take(ops.convert_to_tensor(table), ops.cast(ids, "int32"), axis=0), ops.cumsum(x, axis=1), ops.cumsum(x, axis=-1)]
    ids_value = np.array([[0, 5, 3, 6, -1], [2, 2, 1, 0, 4]], dtype=np.float32)
    return keras.Model([ids, x], outputs, name="keras3_onehot_take_cumsum"), {"ids": ids_value, "x": floats(rng, 2, 4, 3)}


# --- issue 15: Keras Applications at reduced width and input size ---
# keras.applications models with random weights, BatchNormalization statistics from a calibration
# batch (applications_test.calibrate), every float weight rounded to float16 and given back to
# Keras before it predicts, and stored as float16 (nnbuild reads F16), so the comparison stays
# exact and the fixtures stay small. Ten classes keep the classifier small. The output is the
# shipped softmax: the logits of these deep random networks carry about 2e-5 of float32 rounding
# in Keras itself (measured against Keras in float64), past the 1e-5 the fixtures hold nnbuild to.

def application_case(application, size, **options):
    def build(rng):
        import applications_test

        model = applications_test.build(application, size, seed=int(rng.integers(1 << 30)), classes=10,
                                         classifier_activation="softmax", **options)
        applications_test.calibrate(model, seed=int(rng.integers(1 << 30)), batch=applications_test.CALIBRATION_SMALL)
        for variable in model.weights:
            if np.issubdtype(np.dtype(variable.dtype), np.floating):
                variable.assign(np.asarray(variable.numpy()).astype(np.float16).astype(np.float32))
        return model, {model.layers[0].name: floats(rng, 2, size, size, 3)}
    build.keeps_weights = True
    build.half_weights = True
    return build


def _register_application(name, description, application, size, **options):
    CASES[name] = (description, application_case(application, size, **options))


_register_application("app_mobilenet", "keras.applications.MobileNet(alpha=0.25) at 64x64, 10 classes: depthwise and "
                      "pointwise convolutions, ReLU6, BatchNormalization, the Conv 1x1 classifier with Reshape",
                      "MobileNet", 64, alpha=0.25)
_register_application("app_mobilenet_v2", "keras.applications.MobileNetV2(alpha=0.35) at 64x64, 10 classes: inverted "
                      "residuals, ZeroPadding2D before strided depthwise convolutions, Add", "MobileNetV2", 64, alpha=0.35)
_register_application("app_mobilenet_v3_small", "keras.applications.MobileNetV3Small(alpha=0.75) at 64x64, 10 classes: "
                      "Rescaling, hard-swish and hard-sigmoid, squeeze-and-excitation with Multiply", "MobileNetV3Small", 64, alpha=0.75)



@case("two LayerScale layers as ConvNeXt builds them (keras.src.applications.convnext): Keras 3 names their unnamed "
      "weights 'variable' and 'variable_1', model-wide")
def app_layer_scale_numbered(rng):
    from keras.src.applications.convnext import LayerScale

    x = keras.Input((3, 4), name="x")
    y = LayerScale(1e-6, 4, name="scale_a")(L.Dense(4, name="dense_a")(x))
    y = LayerScale(1e-6, 4, name="scale_b")(L.Dense(4, name="dense_b")(y))
    return keras.Model(x, y, name="app_layer_scale_numbered"), {"x": floats(rng, 2, 3, 4)}


@case("InceptionResNetV2's residual block (keras.src.applications.inception_resnet_v2): two convolution branches "
      "concatenated, a 1x1 convolution up to the input's channels, CustomScaleLayer(scale)([x, up]), ReLU; twice, with "
      "scales 0.17 and 1.0")
def app_custom_scale(rng):
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    x = keras.Input((6, 6, 8), name="x")
    y = x
    for index, scale in enumerate([0.17, 1.0]):
        a = L.Conv2D(4, 1, activation="relu", name="branch_a_%d" % index)(y)
        b = L.Conv2D(4, 3, padding="same", activation="relu", name="branch_b_%d" % index)(y)
        up = L.Conv2D(8, 1, name="up_%d" % index)(L.Concatenate(name="mixed_%d" % index)([a, b]))
        y = L.Activation("relu", name="out_%d" % index)(CustomScaleLayer(scale, name="scaled_%d" % index)([y, up]))
    return keras.Model(x, y, name="app_custom_scale"), {"x": floats(rng, 2, 6, 6, 8)}


@case("SpectralNormalization around a Conv2D, a Conv2DTranspose and a Dense (a GAN's generator at inference: the "
      "stored kernels, vector_u bound and unused)")
def spectral_normalization(rng):
    x = keras.Input((5, 5, 3), name="x")
    y = L.SpectralNormalization(L.Conv2D(4, 3, padding="same", activation="relu"), name="sn_conv")(x)
    y = L.SpectralNormalization(L.Conv2DTranspose(2, 3, strides=2), power_iterations=2, name="sn_up")(y)
    y = L.SpectralNormalization(L.Dense(3), name="sn_dense")(L.Flatten(name="flat")(y))
    return keras.Model(x, y, name="spectral_normalization"), {"x": floats(rng, 2, 5, 5, 3)}


@case("ReversibleEmbedding as a small language model ties it: ids -> embeddings -> Dense -> the same layer with "
      "reverse=True (logits over the vocabulary); a second one untied (reverse_embeddings) with logit_soft_cap")
def reversible_embedding(rng):
    ids = keras.Input((5,), name="ids")
    other_ids = keras.Input((5,), name="other_ids")
    tied = L.ReversibleEmbedding(11, 4, name="tied")
    logits = tied(L.Dense(4, activation="tanh", name="mix")(tied(ids)), reverse=True)
    untied = L.ReversibleEmbedding(9, 3, tie_weights=False, logit_soft_cap=2.0, name="untied")
    capped = untied(L.Dense(3, name="down")(untied(other_ids)), reverse=True)
    inputs = {"ids": np.array([[0, 3, 10, 7, 1], [5, 5, 2, 9, 4]], dtype=np.float32),
              "other_ids": np.array([[8, 0, 1, 2, 3], [4, 4, 6, 7, 5]], dtype=np.float32)}
    return keras.Model([ids, other_ids], [logits, capped], name="reversible_embedding"), inputs


@case("AutoContrast, which works at inference: on [0, 255] images, and on [-1, 1] ones after a convolution, with a "
      "channel of one value (kept as it is: Keras's NaN guard)")
def auto_contrast(rng):
    x = keras.Input((4, 5, 3), name="images")
    stretched = L.AutoContrast(name="contrast")(x)
    features = L.Conv2D(3, 1, activation="tanh", name="mix")(stretched * (1.0 / 255.0))
    out = L.AutoContrast(value_range=(1, -1), name="signed")(features)
    images = rng.uniform(0, 255, (2, 4, 5, 3)).astype(np.float32)
    images[1, :, :, 2] = 17.0
    return keras.Model(x, [stretched, out], name="auto_contrast"), {"images": images}


@case("ops.normalize: L2 over the last axis (Keras's x * min(rsqrt(sum x^2), 1/epsilon)), over axes 1 and 2, with a "
      "large epsilon that bounds small rows, and orders 1 and 3 over one axis")
def keras3_normalize(rng):
    x = keras.Input((3, 4), name="x")
    outputs = [ops.normalize(x), ops.normalize(x, axis=[1, 2]), ops.normalize(x * 0.01, epsilon=0.5),
               ops.normalize(x, axis=1, order=1), ops.normalize(x, order=3)]
    return keras.Model(x, outputs, name="keras3_normalize"), {"x": floats(rng, 2, 3, 4)}


@case("Attention on a masked sequence hands its mask on through ops.convert_to_tensor (Keras 3.15 writes that "
      "node): Embedding(mask_zero) -> Attention -> GlobalAveragePooling1D averaging the real steps only")
def attention_mask_handoff(rng):
    ids = keras.Input((6,), name="ids")
    e = L.Embedding(12, 4, mask_zero=True, name="embed")(ids)
    pooled = L.GlobalAveragePooling1D(name="pool")(L.Attention(name="attend")([e, e]))
    ids_value = np.array([[3, 5, 1, 0, 0, 0], [7, 2, 9, 11, 4, 6]], dtype=np.float32)
    return keras.Model(ids, L.Dense(2, name="head")(pooled), name="attention_mask_handoff"), {"ids": ids_value}


@case("global pooling with data_format channels_first: keras.io's time-series Transformer averages each step over "
      "its features (GlobalAveragePooling1D); GlobalMaxPooling2D with keepdims and GlobalAveragePooling3D")
def global_pooling_channels_first(rng):
    seq = keras.Input((5, 4), name="seq")
    cube = keras.Input((3, 4, 2, 2), name="cube")
    a = L.GlobalAveragePooling1D(data_format="channels_first", name="steps")(L.Dense(4, name="mix")(seq))
    b = L.GlobalMaxPooling2D(data_format="channels_first", keepdims=True, name="maxed")(L.Reshape((5, 2, 2), name="grid")(seq))
    c = L.GlobalAveragePooling3D(data_format="channels_first", name="volume")(cube)
    return (keras.Model([seq, cube], [a, b, c], name="global_pooling_channels_first"),
            {"seq": floats(rng, 2, 5, 4), "cube": floats(rng, 2, 3, 4, 2, 2)})


@case("data_format channels_first through a CNN: Conv2D -> BatchNormalization(axis=1) -> ReLU -> MaxPooling2D, a residual "
      "Add, SeparableConv2D, DepthwiseConv2D, Conv2DTranspose, ZeroPadding2D, Cropping2D, UpSampling2D (bilinear), "
      "AveragePooling2D, AdaptiveAveragePooling2D, Flatten; Resizing and CenterCrop on a second image, then "
      "GlobalAveragePooling2D; ops.image.resize of that image")
def channels_first_cnn(rng):
    cf = "channels_first"
    image = keras.Input((3, 12, 12), name="image")
    x = L.Conv2D(8, 3, padding="same", data_format=cf, name="conv")(image)
    x = L.BatchNormalization(axis=1, name="norm")(x)
    x = L.ReLU(name="relu")(x)
    x = L.MaxPooling2D(data_format=cf, name="pool")(x)
    y = L.Conv2D(8, 3, padding="same", activation="relu", data_format=cf, name="conv_b")(x)
    y = L.BatchNormalization(axis=1, name="norm_b")(y)
    x = L.Add(name="residual")([x, y])
    x = L.SeparableConv2D(6, 3, depth_multiplier=2, data_format=cf, name="separable")(x)
    x = L.DepthwiseConv2D(3, padding="same", activation="tanh", data_format=cf, name="depthwise")(x)
    x = L.Conv2DTranspose(4, 3, strides=2, data_format=cf, name="transposed")(x)
    x = L.ZeroPadding2D(((1, 0), (2, 1)), data_format=cf, name="pad")(x)
    x = L.Cropping2D(((2, 1), (0, 3)), data_format=cf, name="crop")(x)
    x = L.UpSampling2D((2, 1), interpolation="bilinear", data_format=cf, name="up")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same", data_format=cf, name="average")(x)
    x = L.AdaptiveAveragePooling2D((3, 2), data_format=cf, name="adaptive")(x)
    flat = L.Flatten(data_format=cf, name="flatten")(x)
    photo = keras.Input((2, 9, 7), name="photo")
    p = L.Resizing(6, 8, data_format=cf, name="resizing")(photo)
    p = L.CenterCrop(4, 5, data_format=cf, name="center")(p)
    p = L.GlobalAveragePooling2D(data_format=cf, name="gap")(L.Conv2D(3, 2, data_format=cf, name="conv_p")(p))
    out = L.Dense(5, name="head")(L.Concatenate(name="join")([flat, p]))
    resized = ops.image.resize(photo, (5, 4), interpolation="bicubic", data_format=cf)
    return (keras.Model([image, photo], [out, x, resized], name="channels_first_cnn"),
            {"image": floats(rng, 2, 3, 12, 12), "photo": floats(rng, 2, 2, 9, 7)})


@case("data_format channels_first on sequences and volumes: Conv1D, ZeroPadding1D, MaxPooling1D, SeparableConv1D, "
      "DepthwiseConv1D, Conv1DTranspose, AveragePooling1D; Conv3D, MaxPooling3D, UpSampling3D, ZeroPadding3D, "
      "Cropping3D, Conv3DTranspose, AveragePooling3D; ConvLSTM2D (sequences) into ConvLSTM2D over (time, channels, rows, columns)")
def channels_first_sequences(rng):
    cf = "channels_first"
    seq = keras.Input((4, 11), name="seq")
    s = L.Conv1D(6, 3, padding="causal", data_format=cf, name="conv1")(seq)
    s = L.ZeroPadding1D((1, 2), data_format=cf, name="pad1")(s)
    s = L.MaxPooling1D(2, data_format=cf, name="pool1")(s)
    s = L.SeparableConv1D(5, 2, data_format=cf, name="separable1")(s)
    s = L.DepthwiseConv1D(2, depth_multiplier=2, data_format=cf, name="depthwise1")(s)
    s = L.Conv1DTranspose(3, 3, strides=2, data_format=cf, name="transposed1")(s)
    s = L.AveragePooling1D(2, data_format=cf, name="average1")(s)
    cube = keras.Input((2, 5, 6, 4), name="cube")
    c = L.Conv3D(4, 2, data_format=cf, name="conv3")(cube)  # not "same": see KERAS_NOTES.md (TensorFlow's NCDHW)
    c = L.MaxPooling3D((1, 2, 2), data_format=cf, name="pool3")(c)
    c = L.UpSampling3D((2, 1, 1), data_format=cf, name="up3")(c)
    c = L.ZeroPadding3D(1, data_format=cf, name="pad3")(c)
    c = L.Cropping3D(((0, 1), (1, 0), (1, 1)), data_format=cf, name="crop3")(c)
    c = L.Conv3DTranspose(3, 2, strides=(1, 2, 1), data_format=cf, name="transposed3")(c)
    c = L.AveragePooling3D(2, data_format=cf, name="average3")(c)
    clip = keras.Input((3, 2, 5, 5), name="clip")
    v = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True, data_format=cf, name="convlstm_a")(clip)
    v = L.ConvLSTM2D(2, 2, data_format=cf, name="convlstm_b")(v)
    return (keras.Model([seq, cube, clip], [s, c, v], name="channels_first_sequences"),
            {"seq": floats(rng, 2, 4, 11), "cube": floats(rng, 2, 2, 5, 6, 4), "clip": floats(rng, 2, 3, 2, 5, 5)})


@case("STFTSpectrogram as keras.io's audio classifier uses it (log, expand_dims, into a Conv2D) and in every other mode: "
      "magnitude with same padding and a Hamming window, psd with a periodic unscaled window, stft channels-first, "
      "real, imag and angle; the kernels as Keras initializes them")
def stft_spectrogram(rng):
    audio = keras.Input((400, 2), name="audio")
    log = L.STFTSpectrogram(mode="log", frame_length=64, frame_step=32, fft_length=128, expand_dims=True, trainable=False,
                            name="log")(audio)
    head = L.Dense(3, name="head")(L.GlobalAveragePooling2D(name="gap")(L.Conv2D(4, 3, name="conv")(log)))
    magnitude = L.STFTSpectrogram(mode="magnitude", frame_length=50, frame_step=20, padding="same", window="hamming",
                                  scaling="spectrum", name="magnitude")(audio)
    psd = L.STFTSpectrogram(mode="psd", frame_length=32, periodic=True, scaling=None, name="psd")(audio)
    wave = keras.Input((1, 300), name="wave")
    stft = L.STFTSpectrogram(mode="stft", frame_length=16, frame_step=16, data_format="channels_first", name="stft")(wave)
    stft_image = L.STFTSpectrogram(mode="log", frame_length=24, frame_step=10, padding="same", expand_dims=True,
                                   data_format="channels_first", name="stft_image")(wave)
    real = L.STFTSpectrogram(mode="real", frame_length=20, frame_step=7, fft_length=32, name="real")(audio)
    imag = L.STFTSpectrogram(mode="imag", frame_length=20, frame_step=7, fft_length=32, name="imag")(audio)
    angle = L.STFTSpectrogram(mode="angle", frame_length=20, frame_step=7, fft_length=32, name="angle")(audio)
    t = np.arange(400) / 400.0
    tones = np.stack([np.sin(2 * np.pi * 37 * t) + 0.3 * np.cos(2 * np.pi * 91 * t), np.sin(2 * np.pi * 13 * t + 0.5)], axis=-1)
    audio_value = (tones[None] + 0.1 * rng.standard_normal((2, 400, 2))).astype(np.float32)
    return (keras.Model([audio, wave], [head, log, magnitude, psd, stft, stft_image, real, imag, angle], name="stft_spectrogram"),
            {"audio": audio_value, "wave": floats(rng, 2, 1, 300)})


stft_spectrogram.keeps_weights = True


@case("MelSpectrogram: Keras's defaults scaled down (fft_length 256, stride 64, 40 mel bins at 8 kHz), power instead of "
      "decibels with mag_exp 1, a Hamming window shorter than fft_length, an fft_length of 200 (no power of two), no window, "
      "a list window, ref_power 2; one sample (Keras's top_db counts from the batch's "
      "loudest value, nnbuild's from the sample's); top_db 20 where decibels are taken: Keras's float32 transform puts "
      "bins 40 dB below the loudest 4e-5 from the float64 result, which nnbuild computes (see KERAS_NOTES.md)")
def mel_spectrogram(rng):
    audio = keras.Input((1000,), name="audio")
    outputs = [
        L.MelSpectrogram(fft_length=256, sequence_stride=64, sampling_rate=8000, num_mel_bins=40, top_db=20.0, name="mel")(audio),
        L.MelSpectrogram(fft_length=256, sequence_stride=100, num_mel_bins=16, power_to_db=False, mag_exp=1.0,
                         sampling_rate=8000, name="power")(audio),
        L.MelSpectrogram(fft_length=128, sequence_length=100, sequence_stride=50, window="hamming", num_mel_bins=24,
                         sampling_rate=8000, min_freq=100.0, max_freq=3500.0, top_db=20.0, name="hamming")(audio),
        L.MelSpectrogram(fft_length=200, sequence_stride=80, num_mel_bins=12, sampling_rate=8000, top_db=20.0, name="odd")(audio),
        L.MelSpectrogram(fft_length=64, sequence_stride=32, window=None, num_mel_bins=8, sampling_rate=8000, top_db=10.0,
                         ref_power=2.0, name="clipped")(audio),
        L.MelSpectrogram(fft_length=32, sequence_length=20, sequence_stride=20,
                         window=[float(v) for v in np.linspace(0.2, 1.0, 20)], num_mel_bins=6, sampling_rate=4000,
                         name="listed")(audio),
    ]
    t = np.arange(1000) / 8000.0
    wave = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1250 * t) * np.linspace(0, 1, 1000)
    return (keras.Model(audio, outputs, name="mel_spectrogram"),
            {"audio": (wave[None] + 0.05 * rng.standard_normal((1, 1000))).astype(np.float32)})


@case("Hashing of numbers as TensorFlow hashes their decimal strings: FarmHash (to_hash_bucket_fast) into 2^24 - 3 "
      "bins over ids of 1 to 8 digits (up to 2^24: nnbuild reads inputs as float32), negative ones and float32 values up to 2^62 (19 and 20 characters, fractions "
      "truncated); with mask_value; SipHash with one salt and with two; one_hot, multi_hot and count")
def hashing(rng):
    ids = keras.Input((12,), dtype="int64", name="ids")
    values = keras.Input((8,), name="values")
    bins = (1 << 24) - 3
    outputs = [
        L.Hashing(num_bins=bins, name="fast")(ids),
        L.Hashing(num_bins=bins, name="fast_floats")(values),
        L.Hashing(num_bins=1000, mask_value=0, name="masked")(ids),
        L.Hashing(num_bins=bins, salt=1337, name="salted")(ids),
        L.Hashing(num_bins=bins, salt=[7, 2 ** 40 + 3], name="salted_pair")(values),
        L.Hashing(num_bins=6, output_mode="one_hot", name="one_hot")(L.Reshape((12, 1), name="column")(ids)),
        L.Hashing(num_bins=5, output_mode="multi_hot", name="multi_hot")(ids),
        L.Hashing(num_bins=5, output_mode="count", mask_value=0, name="count")(ids),
    ]
    id_value = np.array([[0, 1, 7, 42, 999, 12345, 99999, 1234567, 8765432, -1, -250, 16777215],
                         [3, 3, 0, 0, 5, 123456, 7777777, -9, -16777215, 10, 100, 1000]], dtype=np.int64)
    value = np.array([[0.0, 1.5, -2.7, 2.0 ** 60, -(2.0 ** 62), 2.0 ** 40, 123456.0, 1e10],
                      [3.99, -0.5, 2.0 ** 62, 2.0 ** 53, -(2.0 ** 31), 7.0, 65536.0, 2.5e15]], dtype=np.float32)
    return keras.Model([ids, values], outputs, name="hashing"), {"ids": id_value, "values": value}


@case("HashedCrossing as tf.sparse.cross_hashed computes it: two (batch, 1) integer features into 2^24 - 3 bins "
      "(negative values, zeros, up to 2^24), two into 7 bins one_hot, two (batch,) features (Keras takes two inputs only)")
def hashed_crossing(rng):
    a, b, c = (keras.Input((1,), dtype="int64", name=n) for n in ("a", "b", "c"))
    u, v = keras.Input((), dtype="int64", name="u"), keras.Input((), dtype="int64", name="v")
    bins = (1 << 24) - 3
    outputs = [L.HashedCrossing(num_bins=bins, name="pair")((a, b)),
               L.HashedCrossing(num_bins=7, output_mode="one_hot", name="one_hot")((b, c)),
               L.HashedCrossing(num_bins=1000, name="flat")((u, v))]
    column = np.array([[0], [1], [-3], [42], [16777215], [-16777215]], dtype=np.int64)
    return (keras.Model([a, b, c, u, v], outputs, name="hashed_crossing"),
            {"a": column, "b": column[::-1].copy() * 7 % 1000, "c": np.array([[5], [5], [0], [-1], [9], [12345]], dtype=np.int64),
             "u": np.array([11, 12, 8, 53, 4000000, -777], dtype=np.int64), "v": np.array([0, 3, -9, 126, 5000000, -5], dtype=np.int64)})


@case("Pipeline (Keras 3's list of layers): Rescaling, CenterCrop, RandomFlip "
      "(the identity at inference), a Conv2D with weights and a ReLU, then a Flatten and a nested Pipeline holding a Dense")
def pipeline(rng):
    image = keras.Input((6, 5, 3), name="image")
    front = L.Pipeline([L.Rescaling(0.5, offset=-0.2, name="scale"),
                        L.CenterCrop(5, 4, name="crop"),
                        L.RandomFlip(name="flip"), L.Conv2D(4, 3, name="conv"), L.ReLU(name="relu")], name="front")
    back = L.Pipeline([L.Flatten(name="flat"), L.Pipeline([L.Dense(3, name="dense")], name="inner")], name="back")
    return keras.Model(image, back(front(image)), name="pipeline"), {"image": floats(rng, 2, 6, 5, 3)}


@case("one id per sample (keras.io's recommenders): Embedding on a (batch,) user id and on a (batch, 1) item id, "
      "their Dot product and a Dense over both, Embedding(mask_zero) on the (batch,) id too")
def scalar_id_embedding(rng):
    user, item = keras.Input((), dtype="int32", name="user"), keras.Input((1,), dtype="int32", name="item")
    u = L.Embedding(30, 4, name="user_embedding")(user)
    i = L.Flatten(name="item_flat")(L.Embedding(20, 4, name="item_embedding")(item))
    score = L.Dot(axes=1, name="score")([u, i])
    both = L.Dense(2, name="head")(L.Concatenate(name="both")([u, i, L.Embedding(30, 3, mask_zero=True, name="masked")(user)]))
    return (keras.Model([user, item], [score, both], name="scalar_id_embedding"),
            {"user": np.array([0, 5, 29, 7], dtype=np.int32), "item": np.array([[3], [0], [19], [7]], dtype=np.int32)})


@case("ContrastLimitedAdaptiveHistogramEqualization (applied at inference): 4x4 tiles on 16x16 images in [0, 255]; "
      "value_range [0, 1] with clip_limit 2 and 3x5 tiles on 13x17 images (padded by reflection); no clipping; "
      "channels_first")
def clahe(rng):
    image = keras.Input((16, 16, 3), name="image")
    small = keras.Input((13, 17, 2), name="small")
    first = keras.Input((2, 12, 10), name="first")
    outputs = [L.ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=(4, 4), name="bytes")(image),
               L.ContrastLimitedAdaptiveHistogramEqualization(value_range=(0, 1), clip_limit=2.0, tile_grid_size=(3, 5),
                                                             name="unit")(small),
               L.ContrastLimitedAdaptiveHistogramEqualization(clip_limit=0.0, tile_grid_size=(2, 2), name="unclipped")(image),
               L.ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=(3, 2), data_format="channels_first",
                                                             name="first_format")(first)]
    return (keras.Model([image, small, first], outputs, name="clahe"),
            {"image": rng.uniform(0, 255, (2, 16, 16, 3)).astype(np.float32) ** 1.0,
             "small": (rng.uniform(0, 1, (2, 13, 17, 2)) ** 2).astype(np.float32),
             "first": rng.uniform(0, 255, (2, 2, 12, 10)).astype(np.float32)})


@case("Reshape and Flatten on a sequence of run-time length (Input((None, 8))): Reshape((-1, 4)) into a Dense and a GRU, "
      "Reshape((-1,)) and Flatten as outputs")
def runtime_reshape(rng):
    seq = keras.Input((None, 8), name="seq")
    halves = L.Reshape((-1, 4), name="halves")(seq)
    projected = L.Dense(3, name="project")(halves)
    summary = L.GRU(5, name="gru")(halves)
    flat = L.Reshape((-1,), name="flat")(projected)
    flattened = L.Flatten(name="flattened")(projected)
    return (keras.Model(seq, [summary, flat, flattened], name="runtime_reshape"), {"seq": floats(rng, 2, 6, 8)})


@case("ops.einsum with an ellipsis: batched matmul (...ij,...jk->...ik), a per-sample dot product "
      "(...i,...i->...), a transpose of the last two axes (...ij->...ji) and a contraction with a constant")
def einsum_ellipsis(rng):
    x = keras.Input((4, 3), name="x")
    y = keras.Input((3, 2), name="y")
    v = keras.Input((5,), name="v")
    w = rng.standard_normal((3, 6)).astype(np.float32)
    outputs = [ops.einsum("...ij,...jk->...ik", x, y), ops.einsum("...i,...i->...", v, v), ops.einsum("...ij->...ji", x),
               ops.einsum("...j,jk->...k", x, w)]
    return (keras.Model([x, y, v], outputs, name="einsum_ellipsis"),
            {"x": floats(rng, 2, 4, 3), "y": floats(rng, 2, 3, 2), "v": floats(rng, 2, 5)})


@case("IntegerLookup with oov_method farmhash: unknown ids spread over 3 OOV slots by FarmHash of their decimal "
      "form, and over 4 by SipHash with a salt, beside a mask token")
def lookup_farmhash(rng):
    ids = keras.Input((8,), dtype="int64", name="ids")
    outputs = [L.IntegerLookup(vocabulary=[4, 8, 15, 16], num_oov_indices=3, oov_method="farmhash", name="farm")(ids),
               L.IntegerLookup(vocabulary=[4, 8, 15, 16], num_oov_indices=4, oov_method="farmhash", salt=[5, 77],
                               mask_token=0, name="salted")(ids)]
    value = np.array([[4, 0, 23, 42, 99, 100, -7, 16], [1, 2, 3, 5, 6, 7, 8, 123456]], dtype=np.int64)
    return keras.Model(ids, outputs, name="lookup_farmhash"), {"ids": value}


# --- string inputs ---

@case("StringLookup on a (batch, 6) string input: a vocabulary with non-ASCII terms (int, one_hot), "
      "mask_token '' with 3 OOV slots (FarmHash buckets), multi_hot and count with pad_to_max_tokens, num_oov_indices 0 "
      "on known terms; Hashing on the strings (fast, salted, mask_value ''); an Embedding and Dense on the int ids")
def string_lookup(rng):
    words = keras.Input((6,), dtype="string", name="words")
    known = keras.Input((3,), dtype="string", name="known")
    vocabulary = ["cat", "dog", "über", "日本", "a b", "🙂"]
    ids = L.StringLookup(vocabulary=vocabulary, name="ids")(words)
    outputs = [
        ids,
        L.StringLookup(vocabulary=vocabulary, output_mode="one_hot", name="one_hot")(words),
        L.StringLookup(vocabulary=vocabulary, mask_token="", num_oov_indices=3, name="masked_oov")(words),
        L.StringLookup(vocabulary=vocabulary, output_mode="multi_hot", name="multi_hot")(words),
        L.StringLookup(vocabulary=vocabulary, output_mode="count", max_tokens=10, pad_to_max_tokens=True, name="count")(words),
        L.StringLookup(vocabulary=["x", "y", "z"], num_oov_indices=0, name="closed")(known),
        L.Hashing(num_bins=(1 << 24) - 3, name="hashed")(words),
        L.Hashing(num_bins=1000, salt=[3, 2 ** 40 + 9], name="salted")(words),
        L.Hashing(num_bins=50, mask_value="", name="hash_masked")(words),
        L.Dense(2, name="head")(L.Flatten(name="flat")(L.Embedding(10, 3, name="embed")(ids))),
    ]
    value = np.array([["cat", "dog", "über", "", "unknown", "日本"],
                      ["🙂", "a b", "DOG", "a  b", "a fairly long sentence of more than thirty-two bytes", "cat"],
                      ["", "", "ü", "über", "cats", "dog"]], dtype=np.str_)
    known_value = np.array([["x", "y", "z"], ["z", "z", "x"], ["y", "x", "y"]], dtype=np.str_)
    return keras.Model([words, known], outputs, name="string_lookup"), {"words": value, "known": known_value}


@case("a structured-data classifier as keras.io builds it: a (batch, 1) string feature through StringLookup one_hot, "
      "a (batch, 1) integer feature through IntegerLookup one_hot, a numeric feature through Normalization, "
      "concatenated into Dense layers")
def structured_strings(rng):
    thal = keras.Input((1,), dtype="string", name="thal")
    sex = keras.Input((1,), dtype="int64", name="sex")
    age = keras.Input((1,), name="age")
    features = L.Concatenate(name="features")([
        L.StringLookup(vocabulary=["fixed", "normal", "reversible"], output_mode="one_hot", name="thal_lookup")(thal),
        L.IntegerLookup(vocabulary=[0, 1], output_mode="one_hot", name="sex_lookup")(sex),
        L.Normalization(mean=54.0, variance=81.0, name="age_norm")(age)])
    hidden = L.Dense(8, activation="relu", name="hidden")(features)
    output = L.Dense(1, activation="sigmoid", name="output")(hidden)
    return (keras.Model([thal, sex, age], output, name="structured_strings"),
            {"thal": np.array([["fixed"], ["normal"], ["reversible"], ["1"], ["normal"]], dtype=np.str_),
             "sex": np.array([[0], [1], [1], [0], [2]], dtype=np.int64),
             "age": np.array([[63.0], [37.0], [41.0], [56.0], [70.0]], dtype=np.float32)})


@case("TextVectorization on a (batch, 1) string input: the defaults (lower_and_strip_punctuation, whitespace) in int "
      "mode cut and padded to 8, multi_hot with ngrams=2, count of characters with standardize lower, int with ngrams "
      "(1, 3) padded to the batch's longest row, split None and standardize None over a (batch, 3) input; an Embedding, "
      "pooling and Dense on the int ids (a text classifier)")
def text_vectorization(rng):
    text = keras.Input((1,), dtype="string", name="text")
    words = keras.Input((3,), dtype="string", name="words")
    vocabulary = ["the", "cat", "sat", "on", "mat", "über", "ÜBER", "dog's", "dogs", "a", "the cat", "cat sat", "日本語"]
    ids = L.TextVectorization(vocabulary=vocabulary, output_sequence_length=8, name="ids")(text)
    outputs = [
        ids,
        L.TextVectorization(vocabulary=vocabulary, output_mode="multi_hot", ngrams=2, name="bigrams")(text),
        L.TextVectorization(vocabulary=list("abcdefghijklmnopqrstuvwxyz") + ["ü", "Ü", "日"], standardize="lower", split="character",
                            output_mode="count", name="characters")(text),
        L.TextVectorization(vocabulary=vocabulary, ngrams=(1, 3), name="ragged_ids")(text),
        L.TextVectorization(vocabulary=["x", "Y", "z z"], standardize=None, split=None, output_sequence_length=4, name="whole")(words),
        L.Dense(2, name="head")(L.GlobalAveragePooling1D(name="pool")(L.Embedding(20, 4, name="embed")(ids))),
    ]
    value = np.array([["The cat sat on the mat."], ["  DOGS, dogs; dog's!\tÜBER über  "], [""],
                      ["cat\nsat\u00a0on a 日本語 mat mat mat mat mat mat"], ["Über-cat"]], dtype=np.str_)
    words_value = np.array([["x", "Y", "z z"], ["y", "", "x"], ["X", "z", "q"], ["", "", ""], ["Y", "Y", "x"]], dtype=np.str_)
    return keras.Model([text, words], outputs, name="text_vectorization"), {"text": value, "words": words_value}


@case("ReLU layers with max_value, negative_slope and threshold given as a layer's activation (Dense, Conv2D, "
      "DepthwiseConv2D), and as a layer after a Conv2D, which nnbuild runs in the convolution's pass")
def relu_activation_objects(rng):
    x = keras.Input((6, 6, 3), name="image")
    flat = keras.Input((5,), name="features")
    conv = L.Conv2D(4, 3, activation=L.ReLU(negative_slope=0.1, threshold=0.5), name="conv")(x)
    depthwise = L.DepthwiseConv2D(3, padding="same", activation=L.ReLU(max_value=4.0), name="depthwise")(conv)
    after = L.ReLU(max_value=1.5, negative_slope=0.05, threshold=0.25, name="relu_layer")(L.Conv2D(2, 1, name="pointwise")(depthwise))
    dense = L.Dense(4, activation=L.ReLU(max_value=3.0), name="capped")(flat)
    both = L.Dense(3, activation=L.ReLU(max_value=2.0, negative_slope=0.2, threshold=0.3), name="both")(dense)
    return (keras.Model([x, flat], [after, both, L.Flatten(name="flat")(depthwise)], name="relu_activation_objects"),
            {"image": floats(rng, 2, 6, 6, 3) * 3, "features": floats(rng, 2, 5) * 3})


@case("output_mode tf_idf with idf_weights in the config: StringLookup (a vocabulary without special tokens, so "
      "its OOV slot is weighted by the mean), IntegerLookup (a vocabulary starting with its OOV token), "
      "TextVectorization with bigrams padded to max_tokens")
def lookup_tf_idf(rng):
    words = keras.Input((5,), dtype="string", name="words")
    ids = keras.Input((4,), dtype="int64", name="ids")
    text = keras.Input((1,), dtype="string", name="text")
    outputs = [
        L.StringLookup(vocabulary=["a", "b", "c"], idf_weights=[0.5, 1.0, 2.0], output_mode="tf_idf", name="strings")(words),
        L.IntegerLookup(vocabulary=[-1, 7, 8, 9], idf_weights=[0.25, 1.5, 0.75, 3.0], output_mode="tf_idf", name="integers")(ids),
        L.TextVectorization(vocabulary=["the", "cat", "the cat", "sat"], idf_weights=[0.1, 1.2, 2.3, 0.7], ngrams=2,
                            output_mode="tf_idf", max_tokens=8, pad_to_max_tokens=True, name="text_tf_idf")(text),
    ]
    return (keras.Model([words, ids, text], outputs, name="lookup_tf_idf"),
            {"words": np.array([["a", "c", "c", "z", "b"], ["", "a", "a", "a", "q"]], dtype=np.str_),
             "ids": np.array([[7, 9, 9, 100], [8, -1, 3, 7]], dtype=np.int64),
             "text": np.array([["The cat sat, the cat!"], ["a dog"]], dtype=np.str_)})


@case("Dense on six per-sample axes (Keras's matmul over the last axis, any rank), with a ReLU and after it a tanh")
def dense_many_axes(rng):
    x = keras.Input((2, 3, 2, 2, 3, 4), name="x")
    y = L.Dense(5, activation="relu", name="first")(x)
    return keras.Model(x, L.Dense(3, activation="tanh", name="second")(y), name="dense_many_axes"), {"x": floats(rng, 2, 2, 3, 2, 2, 3, 4)}


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main(argv):
    if argv[:1] == ["--list"]:
        for name, (description, _) in CASES.items():
            print("%-26s %s" % (name, description))
        for name, (description, _) in DERIVED.items():
            print("%-26s %s" % (name, description))
        return 0
    unknown = [n for n in argv if n not in CASES]
    if unknown:
        print("error: unknown case(s) %s; --list shows them" % ", ".join(unknown), file=sys.stderr)
        return 2
    os.makedirs(OUT, exist_ok=True)
    manifest_path = os.path.join(OUT, "MANIFEST.json")
    manifest = {"cases": {}}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest.update(json.load(f))
    import tensorflow as tf

    manifest["made_by"] = {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__,
                           "script": "tools/make_graph_fixtures.py", "tolerance": "max |ours - keras| / (1 + |keras|) <= 1e-5"}
    for name in argv or list(CASES):
        made = generate(name)
        manifest["cases"].update(made)
        for made_name in made:
            print("%s: %.1f KB" % (made_name, folder_size(os.path.join(OUT, made_name)) / 1024), flush=True)
    on_disk = {d for d in os.listdir(OUT) if os.path.isfile(os.path.join(OUT, d, "model.json"))}
    manifest["cases"] = {k: v for k, v in sorted(manifest["cases"].items()) if k in on_disk}
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return 0


# --- issue 15: pooling and shape layers ---

@case("ops.image.resize in a graph: bilinear down, bicubic up, area with crop_to_aspect_ratio, nearest with "
      "pad_to_aspect_ratio and fill_value, lanczos3 and lanczos5; a Dense on the bilinear branch")
def image_resize_ops(rng):
    x = keras.Input((7, 9, 2), name="images")
    down = ops.image.resize(x, (4, 5))
    up = ops.image.resize(x, (10, 12), interpolation="bicubic")
    cropped = ops.image.resize(x, (3, 3), interpolation="area", crop_to_aspect_ratio=True)
    padded = ops.image.resize(x, (6, 5), interpolation="nearest", pad_to_aspect_ratio=True, fill_value=-1.0)
    l3 = ops.image.resize(x, (5, 4), interpolation="lanczos3")
    l5 = ops.image.resize(x, (9, 11), interpolation="lanczos5")
    head = L.Dense(3, name="head")(down)
    return keras.Model(x, [head, up, cropped, padded, l3, l5], name="image_resize"), {"images": floats(rng, 2, 7, 9, 2)}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
