#!/usr/bin/env python3
"""Writes real Keras 3 model files for nnbuild's loader tests, deterministically.

    pip install tensorflow-cpu==2.20.0
    python3 tools/make_keras_files.py [case...]    # the six cases, .keras and Keras 3's legacy .h5
    python3 tools/make_keras_files.py --keras2 [case...]  # the same cases from tf-keras (pip install tf-keras==2.20.*)
    python3 tools/make_keras_files.py --sweep      # every Keras 3 fixture as .keras (Tests/KerasFiles/sweep)
    python3 tools/make_keras_files.py --malformed  # the malformed corpus (Tests/KerasFiles/malformed)
    python3 tools/make_keras_files.py --walk       # saving_lib's tracking names (Tests/KerasFiles/walk)
    python3 tools/make_keras_files.py --export     # keras_export.py's blob of every .keras case (Tests/KerasFiles/export)
    python3 tools/make_keras_files.py --assets     # adapted_lookup, adapted_string_lookup, adapted_text, adapted_tfidf (.keras): vocabularies in the assets

Each case becomes Tests/KerasFiles/<case>.keras (model.save), <case>.h5 (model.save in the legacy
HDF5 format, which Keras 3 still writes), <case>.input.npy and <case>.expected.npy (Keras's
model.predict on that input); cnn also as cnn.json (to_json) and cnn.weights.h5 (save_weights). Weights are redrawn from a seed so that the outputs are not trivial.
"""
import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "Tests", "KerasFiles")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers as L  # noqa: E402


def randomize(model, rng):
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "moving_variance" in getattr(variable, "path", variable.name):
            variable.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
        else:
            variable.assign(rng.normal(0, 0.4, shape).astype("float32"))


def cnn(rng):
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        L.Conv2D(4, 3, padding="same", activation="relu"),
        L.BatchNormalization(),
        L.MaxPooling2D(),
        L.Conv2D(5, 3),
        L.Flatten(),
        L.Dense(6, activation="relu"),
        L.Dense(3, activation="softmax"),
    ])
    return model, rng.normal(size=(2, 8, 8, 3)).astype("float32")


def bilstm_masked(rng):
    model = keras.Sequential([
        keras.Input((7,), dtype="int32"),
        L.Embedding(20, 6, mask_zero=True),
        L.Bidirectional(L.LSTM(5, return_sequences=True)),
        L.Bidirectional(L.LSTM(4)),
        L.Dense(2),
    ])
    x = rng.integers(1, 20, size=(3, 7)).astype("int32")
    x[0, 5:] = 0
    x[1, 2:] = 0
    return model, x


def gru(rng):
    model = keras.Sequential([
        keras.Input((6, 4)),
        L.GRU(5, return_sequences=True),
        L.GRU(3, reset_after=False),
        L.Dense(2),
    ])
    return model, rng.normal(size=(2, 6, 4)).astype("float32")


def residual_nested(rng):
    inner = keras.Sequential([L.Dense(6, activation="relu"), L.Dense(6)], name="inner")
    inputs = keras.Input((6,))
    x = L.Dense(6, name="first")(inputs)
    y = inner(x)
    z = L.Add()([x, y])
    z = L.LayerNormalization()(z)
    outputs = L.Dense(3)(z)
    model = keras.Model(inputs, outputs)
    return model, rng.normal(size=(4, 6)).astype("float32")


def wrappers(rng):
    model = keras.Sequential([
        keras.Input((5, 4)),
        L.TimeDistributed(L.Dense(6, activation="tanh")),
        L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
        L.TimeDistributed(L.Dense(2)),
    ])
    return model, rng.normal(size=(2, 5, 4)).astype("float32")


def depthwise(rng):
    # A MobileNetV2 block: expansion, depthwise convolution (which Keras 2 names
    # `depthwise_kernel`, Keras 3 `kernel`), projection and the residual sum.
    inputs = keras.Input((6, 6, 4))
    x = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(8, 1, use_bias=False)(inputs)))
    x = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)))
    x = L.BatchNormalization()(L.Conv2D(4, 1, use_bias=False)(x))
    x = L.Add()([inputs, x])
    x = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2)(x)
    outputs = L.Dense(3)(L.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs), rng.normal(size=(2, 6, 6, 4)).astype("float32")


CASES = {"cnn": cnn, "bilstm_masked": bilstm_masked, "gru": gru,
         "residual_nested": residual_nested, "wrappers": wrappers, "depthwise": depthwise}


def main():
    os.makedirs(OUT, exist_ok=True)
    names = sys.argv[1:] or list(CASES)
    for name in names:
        keras.backend.clear_session()
        seed = zlib.crc32(name.encode())
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        model, x = CASES[name](rng)
        randomize(model, rng)
        expected = model.predict(x, verbose=0)
        model.save(os.path.join(OUT, name + ".keras"))
        model.save(os.path.join(OUT, name + ".h5"))
        if name == "cnn":  # weights alone (save_weights), beside the model's to_json()
            model.save_weights(os.path.join(OUT, name + ".weights.h5"))
            with open(os.path.join(OUT, name + ".json"), "w") as f:
                f.write(model.to_json())
        np.save(os.path.join(OUT, name + ".input.npy"), x)
        np.save(os.path.join(OUT, name + ".expected.npy"), expected.astype("float32"))
        print(name, x.shape, "->", expected.shape)




# saving_lib's tracking names differ from the layers' names (Tests/KerasFiles/walk): each case as
# <case>.keras, <case>.stripped.keras (the same file with every `name` attribute removed, which
# only the config walk can map), <case>.input.npy and <case>.expected.npy.
def walk_nested(rng):
    # layers/sequential/layers/dense holds the layer named dense_7 of the Sequential named inner.
    inner = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="tanh", name="dense_7")], name="inner")
    inputs = keras.Input((4,))
    outputs = L.Dense(3, name="dense")(inner(L.Dense(4, name="dense_1")(inputs)))
    return keras.Model(inputs, outputs), rng.normal(size=(3, 4)).astype("float32")


def walk_renamed(rng):
    # layers/dense holds the layer named dense_1, layers/dense_1 the one named dense_2.
    model = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu", name="dense_1"), L.Dense(3, name="dense_2")])
    return model, rng.normal(size=(3, 4)).astype("float32")


def walk_wrappers(rng):
    model = keras.Sequential([
        keras.Input((5, 3)),
        L.Bidirectional(L.GRU(4, return_sequences=True)),
        L.Bidirectional(L.LSTM(3, return_sequences=True), backward_layer=L.LSTM(3, return_sequences=True, go_backwards=True, name="bw")),
        L.TimeDistributed(L.Dense(2)),
    ])
    return model, rng.normal(size=(2, 5, 3)).astype("float32")


def walk_attention(rng):
    query, value = keras.Input((5, 4), name="query"), keras.Input((6, 4), name="value")
    outputs = L.MultiHeadAttention(2, 3)(query, value)
    return keras.Model([query, value], outputs), [rng.normal(size=(2, 5, 4)).astype("float32"), rng.normal(size=(2, 6, 4)).astype("float32")]


def walk_shared(rng):
    inputs = keras.Input((4,))
    shared = L.Dense(4, activation="tanh", name="shared")
    outputs = L.Dense(2)(shared(shared(inputs)))
    return keras.Model(inputs, outputs), rng.normal(size=(3, 4)).astype("float32")


def walk_stacked(rng):
    # The cells list: lstm_cell, gru_cell, lstm_cell_1.
    model = keras.Sequential([keras.Input((5, 3)), L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3), L.LSTMCell(2)]))])
    return model, rng.normal(size=(2, 5, 3)).astype("float32")


def walk_compiled(rng):
    # Trained once, so the file also holds the optimizer's variables (optimizer/vars), not the model's.
    model = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.BatchNormalization(), L.Dense(2)])
    model.compile("adam", "mse")
    model.fit(np.zeros((4, 4), "float32"), np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    return model, rng.normal(size=(3, 4)).astype("float32")


@keras.saving.register_keras_serializable(package="nnbuild_test")
class Scale(keras.layers.Layer):
    """A user's layer with one variable of its own: y = x * scale."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), name="scale")

    def call(self, x):
        return x * self.scale


def walk_custom(rng):
    # A user's layer, registered by nnbuild's test as `nnbuild_test>Scale`: its own variables only.
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), Scale(), L.Dense(2)])
    return model, rng.normal(size=(3, 4)).astype("float32")


WALK_CASES = {"nested": walk_nested, "renamed": walk_renamed, "wrappers": walk_wrappers, "attention": walk_attention,
              "shared": walk_shared, "stacked": walk_stacked, "compiled": walk_compiled, "custom": walk_custom}


def strip_names(source, target):
    """A copy of the .keras file at `source` whose weights file has no `name` attribute."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(source) as archive:
        members = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for member, data in members:
            if member == "model.weights.h5":
                buffer = io.BytesIO(data)
                with h5py.File(buffer, "r+") as f:
                    groups = [f]
                    f.visititems(lambda _, item: groups.append(item) if isinstance(item, h5py.Group) else None)
                    for group in groups:
                        if "name" in group.attrs:
                            del group.attrs["name"]
                data = buffer.getvalue()
            archive.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), data)
    with open(target, "wb") as f:
        f.write(out.getvalue())


def walk(only=None):
    target = os.path.join(OUT, "walk")
    os.makedirs(target, exist_ok=True)
    for name, build in WALK_CASES.items():
        if only and name not in only:
            continue
        keras.backend.clear_session()
        seed = zlib.crc32(("walk_" + name).encode())
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        model, x = build(rng)
        randomize(model, rng)
        expected = model.predict(x, verbose=0)
        path = os.path.join(target, name + ".keras")
        model.save(path)
        strip_names(path, os.path.join(target, name + ".stripped.keras"))
        if isinstance(x, list):
            names = [layer[0] for layer in model.get_config()["input_layers"]]
            np.savez(os.path.join(target, name + ".inputs.npz"), **dict(zip(names, x)))
        else:
            np.save(os.path.join(target, name + ".input.npy"), x)
        np.save(os.path.join(target, name + ".expected.npy"), expected.astype("float32"))
        print("walk", name, "->", expected.shape)
    if only:
        return
    # The template KerasLoadMemoryTests enlarges into a ~40 MB model to measure loading's memory:
    # the dims (37, 41) and the contiguous layouts of its kernel and bias are patched in place.
    keras.backend.clear_session()
    keras.Sequential([keras.Input((37,)), L.Dense(41)]).save(os.path.join(target, "dense_template.keras"))


# keras_export.py's weights.safetensors for every .keras case (Tests/KerasFiles/export/<case>.safetensors,
# and walk/<case> as walk__<case>): `nnbuild convert` must write the same keys, Keras's variable
# paths, with the same values.
def export():
    import glob
    import shutil
    import subprocess
    import tempfile

    target = os.path.join(OUT, "export")
    os.makedirs(target, exist_ok=True)
    # (Not walk/custom.keras, whose user layer Keras loads only with the module defining it, nor
    # walk/dense_template.keras, the memory test's template: the convert check takes neither.)
    sources = sorted(glob.glob(os.path.join(OUT, "*.keras"))) + sorted(
        p for p in glob.glob(os.path.join(OUT, "walk", "*.keras"))
        if not p.endswith(".stripped.keras") and os.path.basename(p) not in ("custom.keras", "dense_template.keras"))
    for source in sources:
        name = os.path.basename(source)[:-len(".keras")]
        if os.path.basename(os.path.dirname(source)) == "walk":
            name = "walk__" + name
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run([sys.executable, os.path.join(HERE, "keras_export.py"), source, folder], check=True,
                           stdout=subprocess.DEVNULL)
            shutil.copy(os.path.join(folder, "weights.safetensors"), os.path.join(target, name + ".safetensors"))
        print("export", name)


# Models only Keras 2 writes: TensorFlow functions on Keras tensors (TFOpLambda layers: `x + 3.0`,
# `1.0 - x`, `tf.nn.relu6(x)`, MobileNetV3's hard sigmoid) and layer names holding `/`, as
# tf-keras's MobileNetV3 has them. Keras 3 builds neither.
def tf_functions(rng):
    import tensorflow as tf

    inputs = keras.Input((6, 6, 4))
    x = L.BatchNormalization(name="block/expand/BatchNorm")(L.Conv2D(8, 1, use_bias=False, name="block/expand")(inputs))
    x = x * (L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0))
    y = L.DepthwiseConv2D(3, padding="same", name="block/depthwise")(x)
    y = tf.nn.relu6(y) - tf.math.sigmoid(y) + tf.nn.silu(y) / 2.0
    y = 1.0 - tf.math.tanh(y)
    y = tf.math.maximum(-y, y * 0.5) + tf.math.minimum(y, x)
    outputs = L.Dense(3)(L.GlobalAveragePooling2D()(y))
    return keras.Model(inputs, outputs), rng.normal(size=(2, 6, 6, 4)).astype("float32")


def layer_scale(rng):
    # ConvNeXt's LayerScale, whose one weight tf-keras names `gamma` (Keras 3: `variable`).
    from tf_keras.src.applications.convnext import LayerScale

    inputs = keras.Input((5, 6))
    outputs = L.Dense(2)(LayerScale(1e-6, 6)(L.Dense(6)(inputs)))
    return keras.Model(inputs, outputs), rng.normal(size=(3, 5, 6)).astype("float32")


def tf_shape_functions(rng):
    # Reductions, reshapes, concat and stack, transpose, matmul, softmax and slices as TensorFlow
    # functions on tensors (TFOpLambda, SlicingOpLambda).
    import tensorflow as tf

    inputs = keras.Input((5, 4))
    x = L.Dense(4)(inputs)
    mean = tf.reduce_mean(x, axis=1)
    total = tf.reshape(tf.math.reduce_sum(x, axis=[1, 2], keepdims=True), (-1, 1))
    widest = tf.reduce_max(x, -1)
    joined = tf.reshape(tf.concat([x, x * 2.0], axis=-1), (-1, 40))
    same = tf.squeeze(tf.expand_dims(x, 1), axis=1)
    turned = tf.transpose(x, perm=[0, 2, 1])
    product = tf.reshape(tf.matmul(x, turned), (-1, 25))
    sliced = tf.reshape(x[:, 1:3, ::2], (-1, 4))
    last = x[:, -1]
    soft = tf.reshape(tf.nn.softmax(x, axis=-1), (-1, 20))
    stacked = tf.reshape(tf.stack([x, same], axis=1), (-1, 40))
    least = tf.math.reduce_min(turned, axis=2)
    flat = L.Concatenate()([mean, total, widest, joined, product, sliced, last, soft, stacked, least])
    return keras.Model(inputs, L.Dense(3)(flat)), rng.normal(size=(3, 5, 4)).astype("float32")


def tf_image_functions(rng):
    # tf.image.resize (bilinear and nearest), tf.split (in equal parts and by sizes) and tf.gather.
    import tensorflow as tf

    inputs = keras.Input((6, 8, 4))
    x = L.Conv2D(4, 1)(inputs)
    up = tf.image.resize(x, (12, 16))
    near = tf.image.resize(x, [3, 5], method="nearest")
    a, b = tf.split(x, 2, axis=-1)
    c, d, e = tf.split(x, [1, 2, 1], axis=-1)
    picked = tf.gather(x, [3, 0, 2], axis=2)
    flat = L.Concatenate()([L.Flatten()(t) for t in [up, near, a * b, c + e, d, picked]])
    return keras.Model(inputs, L.Dense(3)(flat)), rng.normal(size=(2, 6, 8, 4)).astype("float32")


def tf_math_functions(rng):
    # The rest of the element-wise TensorFlow functions tf-keras records, comparisons and logic
    # (cast to float), where, clip_by_value, tile, repeat, cumsum, argmax, the reductions Keras 3
    # composes (variance, std, logsumexp, any), matmul with its operands transposed, bias_add and
    # l2_normalize. No layer after them, so that each value is compared as computed.
    import tensorflow as tf

    inputs = keras.Input((4, 6))
    x = L.Dense(6)(inputs)
    positive = tf.abs(x) + 1.0
    parts = [
        tf.math.log(positive), tf.math.rsqrt(positive), tf.math.reciprocal(positive), tf.math.log1p(tf.abs(x)),
        tf.math.expm1(x), tf.math.sin(x), tf.math.cos(x), tf.math.tan(x * 0.3), tf.math.atan(x), tf.math.sinh(x),
        tf.math.cosh(x), tf.math.erf(x), tf.math.sign(x), tf.math.floor(x), tf.math.ceil(x), tf.math.round(x * 3.0),
        tf.cast(x > 0.1, tf.float32), tf.cast(x >= 0.2, "float32"), tf.cast(x < -0.1, tf.float32), tf.cast(x <= 0.0, tf.float32),
        tf.cast(tf.equal(x, tf.math.floor(x)), tf.float32), tf.cast(tf.not_equal(x, x * 0.5), tf.float32),
        tf.cast(tf.logical_and(x > 0.0, x < 1.0), tf.float32), tf.cast(tf.logical_or(x > 1.0, x < -1.0), tf.float32),
        tf.cast(tf.math.logical_not(x > 0.0), tf.float32), tf.where(x > 0.0, x, x * 0.1),
        tf.clip_by_value(x, -0.5, 0.5), tf.nn.gelu(x), tf.nn.gelu(x, approximate=True), tf.nn.leaky_relu(x, alpha=0.3),
        tf.nn.elu(x), tf.nn.selu(x), tf.nn.softsign(x), tf.math.log_sigmoid(x), tf.nn.log_softmax(x, axis=-1),
        x // 0.3, x % 0.3, tf.tile(x, [1, 2, 1]), tf.repeat(x, 2, axis=1), tf.math.cumsum(x, axis=1),
        tf.math.reduce_variance(x, axis=1), tf.math.reduce_std(x, axis=-1, keepdims=True), tf.math.reduce_logsumexp(x, axis=1),
        tf.cast(tf.reduce_any(x > 1.0, axis=1), tf.float32), tf.cast(tf.math.argmax(x, axis=-1), tf.float32),
        tf.matmul(x, x, transpose_b=True), tf.matmul(x, x, transpose_a=True), tf.linalg.matmul(x[:, :3], x[:, :, :3], transpose_a=True, transpose_b=True),
        tf.nn.bias_add(x, [1.0, -2.0, 3.0, 0.5, 0.0, -1.5]), tf.cast(tf.math.argmin(x, axis=1, output_type=tf.int32), tf.float32),
        tf.math.l2_normalize(x, axis=-1), tf.math.l2_normalize(x * 0.01, axis=[1, 2], epsilon=0.25),
    ]
    return keras.Model(inputs, L.Concatenate()([L.Flatten()(part) for part in parts])), rng.normal(size=(3, 4, 6)).astype("float32")


def custom_scale(rng):
    # InceptionResNetV2's CustomScaleLayer, which tf-keras writes as `Custom>CustomScaleLayer`.
    from tf_keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    inputs = keras.Input((4, 4, 6))
    up = L.Conv2D(6, 1)(L.Conv2D(3, 3, padding="same", activation="relu")(inputs))
    outputs = L.Activation("relu")(CustomScaleLayer(0.2)([inputs, up]))
    return keras.Model(inputs, outputs), rng.normal(size=(2, 4, 4, 6)).astype("float32")


KERAS2_ONLY = {"tf_functions": tf_functions, "layer_scale": layer_scale, "tf_shape_functions": tf_shape_functions,
               "tf_image_functions": tf_image_functions, "tf_math_functions": tf_math_functions, "custom_scale": custom_scale}


# True Keras 2 files: the same cases built with tf-keras (`pip install tf-keras==2.20.*`), saved
# with its own HDF5 writer as <case>.keras2.h5, with <case>.keras2.expected.npy from its predict;
# the KERAS2_ONLY cases also get <case>.input.npy.
def keras2(names=None):
    import tf_keras

    global keras, L
    keras, L = tf_keras, tf_keras.layers
    for name in names or list(CASES) + list(KERAS2_ONLY):
        build = CASES.get(name) or KERAS2_ONLY[name]
        keras.backend.clear_session()
        seed = zlib.crc32(name.encode())
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        model, x = build(rng)
        randomize(model, rng)
        expected = model.predict(x, verbose=0)
        model.save(os.path.join(OUT, name + ".keras2.h5"))
        np.save(os.path.join(OUT, name + ".keras2.expected.npy"), expected.astype("float32"))
        if name in KERAS2_ONLY:
            np.save(os.path.join(OUT, name + ".input.npy"), x)
        print("keras2", name, expected.shape)


# The sweep: every Keras 3 fixture of Tests/Fixtures and Tests/GraphFixtures, rebuilt in Keras
# from its model.json, given its weights by variable path (verify_fixtures.bind), and saved as a
# .keras archive, re-zipped with deflate to stay small (and to exercise deflated members). The
# test builds each from the archive and from model.json + weights.safetensors and requires the
# same outputs bit for bit: the saving_lib mapping is exact for every layer those fixtures use.
# An archive past SWEEP_MAX_BYTES is not kept (listed in SKIPPED.txt).
SWEEP_MAX_BYTES = 512 * 1024


def sweep():
    import io
    import json
    import zipfile

    from safetensors.numpy import load_file

    sys.path.insert(0, HERE)
    from verify_fixtures import bind

    root = os.path.dirname(HERE)
    target = os.path.join(OUT, "sweep")
    os.makedirs(target, exist_ok=True)
    saved, skipped = [], []
    for group in ("Fixtures", "GraphFixtures"):
        base = os.path.join(root, "Tests", group)
        for name in sorted(os.listdir(base)):
            spec_path = os.path.join(base, name, "model.json")
            if not os.path.exists(spec_path):
                continue
            with open(spec_path) as f:
                text = f.read()
            if "module" not in json.loads(text):
                skipped.append((group, name, "Keras 2 spec"))
                continue
            keras.backend.clear_session()
            try:
                model = keras.models.model_from_json(text)
                bind(model, load_file(os.path.join(base, name, "weights.safetensors")))
                buffer = io.BytesIO()
                path = os.path.join(target, "%s__%s.keras" % (group, name))
                model.save(path)
            except Exception as error:  # a fixture Keras cannot rebuild or save is listed, not hidden
                skipped.append((group, name, str(error).splitlines()[0][:120]))
                continue
            with zipfile.ZipFile(path) as archive:
                members = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for member, data in members:
                    info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, data)
            if len(buffer.getvalue()) > SWEEP_MAX_BYTES:
                # The Keras Applications fixtures keep float16 weights; Keras saves them as float32.
                os.remove(path)
                skipped.append((group, name, "archive of %d KB, past the %d KB kept in the repository"
                                % (len(buffer.getvalue()) // 1024, SWEEP_MAX_BYTES // 1024)))
                continue
            with open(path, "wb") as f:
                f.write(buffer.getvalue())
            saved.append("%s/%s" % (group, name))
    with open(os.path.join(target, "CASES.txt"), "w") as f:
        f.write("".join(line + "\n" for line in saved))
    with open(os.path.join(target, "SKIPPED.txt"), "w") as f:
        f.write("".join("%s/%s: %s\n" % item for item in skipped))
    print("sweep: %d saved, %d skipped" % (len(saved), len(skipped)))


# The malformed corpus (Tests/KerasFiles/malformed, cases.txt: file, then a fragment of the one
# error line nnbuild must print). Zip defects are made on a real tiny .keras; HDF5 defects on a
# Keras-shaped weights file (layers/dense/vars with its "name" attribute, a chunked kernel, a
# contiguous bias) written by h5py, patched by structure as tools/make_hdf5_fixtures.py does,
# then packed with the real config.json as a stored zip.
def malformed():
    import io
    import struct
    import zipfile

    import h5py

    target = os.path.join(OUT, "malformed")
    os.makedirs(target, exist_ok=True)
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((4,)), L.Dense(4, name="dense")])
    real = os.path.join(target, "_real.keras")
    model.save(real)
    with zipfile.ZipFile(real) as archive:
        config, metadata = archive.read("config.json"), archive.read("metadata.json")
    good = open(real, "rb").read()
    os.remove(real)
    cases = []

    def case(name, data, fragment):
        with open(os.path.join(target, name), "wb") as f:
            f.write(bytes(data))
        cases.append((name, fragment))

    def pack(members):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for name, data in members:
                archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
        return buffer.getvalue()

    case("truncated.keras", good[: len(good) * 3 // 5], "end-of-central-directory")
    # config.json's uncompressed size, in its central-directory entry, claimed 1000 bytes larger.
    d = bytearray(good)
    entry = d.index(b"PK\x01\x02")
    while d[entry + 46: entry + 46 + len(b"config.json")] != b"config.json":
        entry = d.index(b"PK\x01\x02", entry + 4)
    size = struct.unpack("<I", d[entry + 24: entry + 28])[0]
    d[entry + 24: entry + 28] = struct.pack("<I", size + 1000)
    case("size_lies.keras", d, "is stored but declares")
    case("dotdot.keras", pack([("metadata.json", metadata), ("config.json", config), ("../model.weights.h5", b"x")]),
         "is not a plain relative path")
    case("not_a_model.keras", pack([("metadata.json", metadata), ("config.json", b'{"hello": "world"}'), ("model.weights.h5", b"")]),
         "config.json")

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        vars_group = f.create_group("layers/dense/vars")
        vars_group.attrs["name"] = "dense"
        vars_group.create_dataset("0", data=np.arange(16, dtype="<f4").reshape(4, 4), chunks=(2, 2), compression="gzip")
        vars_group.create_dataset("1", data=np.arange(4, dtype="<f4"))
        bias_offset = vars_group["1"].id.get_offset()
    base = buffer.getvalue()

    def weights_case(name, data, fragment):
        case(name, pack([("metadata.json", metadata), ("config.json", config), ("model.weights.h5", bytes(data))]), fragment)

    at = base.index(b"\x03\x01" + struct.pack("<Q", bias_offset))
    weights_case("h5_offset_past_end.keras", base[:at + 2] + struct.pack("<Q", 1 << 40) + base[at + 10:], "past the end of the file")
    tree = base.index(b"TREE")
    d = bytearray(base)
    d[tree + 5] = 1
    d[tree + 8 + 16 + 8: tree + 8 + 16 + 16] = struct.pack("<Q", tree)
    weights_case("h5_btree_cycle.keras", d, "a B-tree cycle")
    layout = base.index(b"\x03\x02\x03")
    d = bytearray(base)
    d[layout + 11: layout + 19] = struct.pack("<II", 1 << 20, 1 << 20)
    weights_case("h5_chunk_2pow40.keras", d, "a chunk claims")
    gcol = base.index(b"GCOL")
    element = struct.pack("<IQ", len("dense"), gcol)
    at = base.index(element)
    weights_case("h5_vlen_outside_heap.keras", base[:at + 4] + struct.pack("<Q", 1 << 40) + base[at + 12:], "points outside the global heap")

    # Groups the config walk does not expect, and a variable it expects that is missing.
    def weights_file(groups):
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as f:
            for path, arrays in groups.items():
                group = f.create_group(path)
                for index, array in enumerate(arrays):
                    group.create_dataset(str(index), data=array)
        return buffer.getvalue()

    kernel, bias = np.ones((4, 4), "<f4"), np.zeros(4, "<f4")
    weights_case("h5_unexpected_group.keras", weights_file({"layers/dense/vars": [kernel, bias], "layers/dense_1/vars": [bias]}),
                 "'layers/dense_1/vars' holds 1 variable, but Keras's saving_lib saves no layer of this model there")
    weights_case("h5_missing_variable.keras", weights_file({"layers/dense/vars": [kernel]}),
                 "has no 'layers/dense/vars/1', where Keras's saving_lib saves this layer's variable 1")

    legacy = os.path.join(target, "_legacy.h5")
    model.save(legacy)
    data = open(legacy, "rb").read()
    os.remove(legacy)
    case("truncated.h5", data[: len(data) // 2], "past the end of the file")
    with h5py.File(os.path.join(target, "not_a_model.h5"), "w") as f:
        f.attrs["model_config"] = '{"hello": "world"}'
        f.create_group("model_weights").attrs["layer_names"] = np.array([], dtype="S1")
    cases.append(("not_a_model.h5", "model_config"))
    with open(os.path.join(target, "cases.txt"), "w") as f:
        f.write("# file\tfragment of the one error line (KerasFileTests.testMalformedCorpus)\n")
        f.write("".join("%s\t%s\n" % item for item in cases))
    print("malformed: %d cases" % len(cases))


def assets():
    """adapted_lookup.keras (and adapted_string_lookup.keras, the same with StringLookup layers on
    strings): IntegerLookup layers adapted to data, so their vocabularies live in the
    archive's assets (assets/layers/<layer>/vocabulary.txt), not in config.json; one with a mask
    token and two OOV indices, one multi_hot; ids seen and unseen."""
    import tensorflow as tf

    def save(name, model, x):
        """The model as NAME.keras, beside its input and Keras's output on it."""
        model.save(os.path.join(OUT, name + ".keras"))
        np.save(os.path.join(OUT, name + ".input.npy"), x)
        # Keras's predict takes strings as TensorFlow tensors, not numpy str arrays.
        feed = tf.constant(x) if x.dtype.kind == "U" else x
        np.save(os.path.join(OUT, name + ".expected.npy"), model.predict(feed, verbose=0).astype("float32"))
        print(name, x.shape)

    def three_lookups(lookup, inputs, seen, masked_seen, hot_seen, mask):
        """A lookup adapted to `seen`, one with a mask token and two OOV slots, one multi_hot;
        the first two's ids embedded, concatenated with the third's, into a Dense."""
        first = lookup(name="lookup")
        first.adapt(np.array(seen))
        second = lookup(mask_token=mask, num_oov_indices=2, name="masked_lookup")
        second.adapt(np.array(masked_seen))
        hot = lookup(output_mode="multi_hot", name="hot_lookup")
        hot.adapt(np.array(hot_seen))
        indices = L.Concatenate(name="join")([first(inputs), second(inputs)])
        embedded = L.Flatten(name="flat")(L.Embedding(16, 3, name="embed")(indices))
        return keras.Model(inputs, L.Dense(2, name="head")(L.Concatenate(name="both")([embedded, hot(inputs)])))

    keras.backend.clear_session()
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    model = three_lookups(L.IntegerLookup, keras.Input((4,), dtype="int64", name="ids"),
                          [3, 3, 5, 7, 7, 7, 11, 42, 42], [1, 2, 2, 9, 9, 9], [4, 4, 8, 15], mask=0)
    randomize(model, rng)
    save("adapted_lookup", model, np.array([[3, 7, 0, 9], [42, 100, 2, 4], [11, 5, 1, 15]], dtype=np.int64))

    # The same for strings, terms seen and unseen, non-ASCII ones too.
    keras.backend.clear_session()
    model = three_lookups(L.StringLookup, keras.Input((4,), dtype="string", name="words"),
                          ["red", "red", "green", "blue", "blue", "blue", "grün", "紅"], ["a", "b", "b", "c", "c", "c"], ["x", "x", "y", "z"],
                          mask="")
    randomize(model, rng)
    save("adapted_string_lookup", model, np.array([["red", "blue", "", "c"], ["紅", "purple", "b", "x"], ["grün", "a", "zz", "y"]], dtype=np.str_))

    # A text classifier as keras.io exports one: an adapted TextVectorization (its vocabulary in
    # the assets) into an Embedding, pooling and Dense, and an adapted multi_hot one with bigrams.
    keras.backend.clear_session()
    text = keras.Input((1,), dtype="string", name="text")
    corpus = np.array(["The cat sat on the mat.", "A dog sat on a log!", "The dog ate the cat's food", "cats and dogs"])
    ids = L.TextVectorization(max_tokens=20, output_sequence_length=6, name="ids")
    ids.adapt(corpus)
    bags = L.TextVectorization(output_mode="multi_hot", ngrams=2, name="bags")
    bags.adapt(corpus)
    pooled = L.GlobalAveragePooling1D(name="pool")(L.Embedding(20, 4, name="embed")(ids(text)))
    model = keras.Model(text, L.Dense(2, name="head")(L.Concatenate(name="both")([pooled, L.Flatten(name="flat")(bags(text))])))
    randomize(model, rng)
    save("adapted_text", model, np.array([["the cat sat"], ["A DOG, a log; a mat."], ["zebra"], [""]], dtype=np.str_))

    # TF-IDF adapted: the IDF weights are in the weights file, saved under their name
    # (layers/<layer>/vars/idf_weights, and again for its StringLookup at _lookup_layer).
    keras.backend.clear_session()
    text = keras.Input((1,), dtype="string", name="text")
    tfidf = L.TextVectorization(max_tokens=12, ngrams=2, output_mode="tf_idf", name="tfidf")
    tfidf.adapt(corpus)
    model = keras.Model(text, L.Dense(2, name="head")(tfidf(text)))
    randomize(model, rng)
    save("adapted_tfidf", model, np.array([["the cat sat on the mat"], ["dogs and cats"], [""]], dtype=np.str_))


if __name__ == "__main__":
    if sys.argv[1:] == ["--assets"]:
        assets()
        sys.exit(0)
    if sys.argv[1:2] == ["--keras2"]:
        keras2(sys.argv[2:])
        sys.exit(0)
    if sys.argv[1:2] == ["--walk"]:
        walk(sys.argv[2:])
        sys.exit(0)
    if sys.argv[1:] == ["--export"]:
        export()
        sys.exit(0)
    if sys.argv[1:] == ["--malformed"]:
        malformed()
        sys.exit(0)
    if sys.argv[1:] == ["--sweep"]:
        sweep()
    else:
        main()
