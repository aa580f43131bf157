#!/usr/bin/env python3
"""Round trip through real Keras: build models (Sequential, and a Functional model of two inputs and
two outputs), save them as .keras and .h5, export them with
tools/keras_export.py, run them in nnbuild, and compare with Keras's predictions.

    python3 tools/roundtrip_test.py [NNBUILD_BINARY]

Also checks that the exporter refuses a layer type nnbuild has not registered (a custom layer), by name and before
writing anything, and that tools/make_examples.py gives an example the same layer names whatever
ran before it in the same process (that check needs scikit-learn, and is skipped without it).

Skips when TensorFlow is not installed (CI need not install it): prints 'SKIPPED: <why>' and
'0 passed, 0 failed, 1 skipped', and exits 0, so test.sh reports it as skipped, not passed.
Prints one line per case and 'N passed, M failed, K skipped' last.
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BINARY = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/nnbuild"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

try:
    import keras
    import numpy as np
    from keras import layers as L
except ImportError as error:
    print("SKIPPED: the Keras round trip needs TensorFlow, which is not installed (%s); "
          "pip install tensorflow-cpu==2.20.0 safetensors" % error)
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)


@keras.saving.register_keras_serializable(package="roundtrip")
class Doubler(L.Layer):
    """A custom layer, which nnbuild runs only through a plugin: the exporter must refuse it."""

    def call(self, x):
        return x * 2


def fresh(seed):
    """A new Keras session (layer names restart at `dense`), seeded: each model independent of the others."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)


def preprocessing_model():
    """Rescaling and an adapted Normalization (whose int64 `count` the exporter and nnbuild must accept)."""
    fresh(4)
    norm = L.Normalization()
    model = keras.Sequential([keras.Input((6, 6, 3)), L.Rescaling(1 / 127.5, offset=-1), norm, L.Conv2D(4, 3), L.Flatten(),
                              L.Dense(2, activation="softmax")])
    x = np.random.default_rng(4).uniform(0, 255, size=(40, 6, 6, 3)).astype("float32")
    norm.adapt(x / 127.5 - 1)
    return model


def two_in_two_out():
    """A Functional model of two inputs (image, tabular) and two outputs (class, value), the inputs a list."""
    fresh(6)
    image = keras.Input((6, 6, 2), name="image")
    table = keras.Input((4,), name="tabular")
    x = L.GlobalAveragePooling2D(name="pool")(L.Conv2D(3, 3, activation="relu", name="conv")(image))
    t = L.Dense(3, activation="tanh", name="table_dense")(table)
    x = L.Concatenate(name="join")([x, t])
    return keras.Model([image, table], [L.Dense(3, activation="softmax", name="class_head")(x), L.Dense(1, name="value_head")(x)])


def augmented_classifier():
    """keras.io's image classifier: augmentation layers applied in a Functional model, which Keras 3
    saves with training=True in their calls (predict replaces it with False)."""
    fresh(7)
    inputs = keras.Input((8, 8, 3))
    x = L.RandomFlip("horizontal")(inputs)
    x = L.RandomRotation(0.1)(x)
    x = L.Rescaling(1 / 255)(x)
    x = L.Conv2D(4, 3, activation="relu")(x)
    return keras.Model(inputs, L.Dense(2, activation="softmax")(L.GlobalAveragePooling2D()(x)))


def masks_and_preprocessing():
    """Two inputs through most of what Keras 3 writes call arguments for: a masked Embedding into
    MultiHeadAttention, a Bidirectional LSTM and a GRU (masks as tensors), Attention handing its mask
    on through ops.convert_to_tensor, dropout and noise layers (training=False), and image
    preprocessing (Resizing, CenterCrop, RandomCrop, RandomZoom: training=True) before a
    convolution and its BatchNormalization."""
    fresh(8)
    ids, image = keras.Input((6,), name="ids"), keras.Input((12, 12, 3), name="image")
    e = L.LayerNormalization()(L.GaussianNoise(0.1)(L.Dropout(0.1)(L.Embedding(20, 8, mask_zero=True)(ids))))
    s = L.Bidirectional(L.LSTM(4))(L.MultiHeadAttention(2, 4)(e, e))
    g = L.GRU(3)(e)
    a = L.GlobalAveragePooling1D()(L.Attention()([e, e]))
    x = L.RandomZoom(0.1)(L.Normalization(mean=0.5, variance=2.0)(L.RandomCrop(8, 8)(L.CenterCrop(8, 8)(L.Resizing(10, 10)(image)))))
    x = L.GlobalAveragePooling2D()(L.SpatialDropout2D(0.1)(L.BatchNormalization()(L.Conv2D(4, 3)(x))))
    return keras.Model([ids, image], L.Dense(2)(L.Concatenate()([s, g, a, x])))


def text_classifier():
    """keras.io's text classifier exported whole: a string input through TextVectorization (its
    vocabulary in the config), an Embedding, pooling and a Dense."""
    fresh(9)
    text = keras.Input((1,), dtype="string", name="text")
    ids = L.TextVectorization(vocabulary=["good", "bad", "movie", "plot", "actors"], output_sequence_length=6)(text)
    return keras.Model(text, L.Dense(2, activation="softmax")(L.GlobalAveragePooling1D()(L.Embedding(8, 4)(ids))))


def models():
    fresh(3)
    yield "cnn.keras", keras.Sequential([keras.Input((12, 12, 3)), L.Conv2D(8, 3, padding="same", activation="relu"), L.MaxPooling2D(),
                                        L.BatchNormalization(), L.Flatten(), L.Dense(4, activation="softmax")])
    fresh(3)
    yield "masked_bilstm.keras", keras.Sequential([keras.Input((10,), dtype="int32"), L.Embedding(30, 8, mask_zero=True),
                                                  L.Bidirectional(L.LSTM(6, return_sequences=True)), L.Bidirectional(L.GRU(4)),
                                                  L.Dense(3, activation="softmax")])
    fresh(3)
    yield "gru_series.h5", keras.Sequential([keras.Input((15, 2)), L.GRU(8, return_sequences=True), L.SimpleRNN(5), L.Dense(1)])
    yield "preprocessing.keras", preprocessing_model()
    yield "preprocessing.h5", preprocessing_model()
    # Functional: each input and each output by name, through inputs.npz and expected.npz.
    yield "two_in_two_out.keras", two_in_two_out()
    yield "two_in_two_out.h5", two_in_two_out()
    yield "augmented_classifier.keras", augmented_classifier()
    yield "masks_and_preprocessing.keras", masks_and_preprocessing()
    yield "text_classifier.keras", text_classifier()


def main():
    passed = failed = skipped = 0
    with tempfile.TemporaryDirectory() as work:
        for filename, model in models():
            path = os.path.join(work, filename)
            model.save(path)
            out = os.path.join(work, filename.replace(".", "_"))
            # keras_export writes a model of several inputs or outputs an .npz per side.
            npz_sides = len(model.inputs) > 1 or len(model.outputs) > 1
            several = filename.startswith("two_in_two_out")
            sample_input, expected = ("inputs.npz", "expected.npz") if npz_sides else ("input.npy", "expected.npy")
            steps = [
                [sys.executable, os.path.join(HERE, "keras_export.py"), path, out, "--sample", "6", "--nnbuild", BINARY],
                [BINARY, "validate", os.path.join(out, "model.json"), os.path.join(out, "weights.safetensors")],
                [BINARY, "compare", os.path.join(out, "model.json"), os.path.join(out, "weights.safetensors"),
                 "--input", os.path.join(out, sample_input), "--expected", os.path.join(out, expected), "--tolerance", "1e-5"],
            ]
            if several:  # and each input given by name, the outputs written as an .npz
                steps.append([BINARY, "infer", os.path.join(out, "model.json"), os.path.join(out, "weights.safetensors"),
                              "--input", "image=" + os.path.join(out, "image.npy"), "--input", "tabular=" + os.path.join(out, "tabular.npy"),
                              "--output", os.path.join(out, "ours.npz")])
            why = ""
            for step in steps:
                if several and step[1] == "infer":  # the named inputs, split out of inputs.npz
                    with np.load(os.path.join(out, "inputs.npz")) as named:
                        for name in named.files:
                            np.save(os.path.join(out, name + ".npy"), named[name])
                result = subprocess.run(step, capture_output=True, text=True)
                if result.returncode != 0:
                    why = "%s exit %d: %s" % (os.path.basename(step[1]) if step[0] == sys.executable else step[1], result.returncode,
                                              (result.stderr or result.stdout).strip().splitlines()[-1:])
                    break
            if not why and several:
                with np.load(os.path.join(out, "ours.npz")) as ours, np.load(os.path.join(out, "expected.npz")) as theirs:
                    if ours.files != theirs.files or ours.files != ["class_head", "value_head"]:
                        why = "infer wrote arrays %s, Keras's are %s" % (ours.files, theirs.files)
                    else:
                        worst = max(float(np.max(np.abs(ours[k] - theirs[k]) / (1 + np.abs(theirs[k])))) for k in ours.files)
                        why = "infer's .npz differs from Keras by %g" % worst if worst > 1e-5 else ""
            if why:
                failed += 1
                print("FAIL %s: %s" % (filename, why))
            else:
                passed += 1
                print("ok   %s: exported, validated, matches Keras" % filename)
        # What cannot be exported is refused clearly.
        lam = keras.Sequential([keras.Input((3,)), L.Lambda(lambda x: x * 2)])
        lam_path = os.path.join(work, "lambda.keras")
        lam.save(lam_path)
        result = subprocess.run([sys.executable, os.path.join(HERE, "keras_export.py"), lam_path, os.path.join(work, "lam")],
                                capture_output=True, text=True)
        if result.returncode == 2 and "Lambda" in result.stderr:
            passed += 1
            print("ok   lambda.keras: refused: %s" % result.stderr.strip().splitlines()[-1])
        else:
            failed += 1
            print("FAIL lambda.keras: expected exit 2 naming the Lambda layer, got %d: %s" % (result.returncode, result.stderr.strip()[-200:]))
        # A layer type nnbuild lacks (a custom layer, which takes a plugin) is refused by name, up
        # front, with nothing written.
        fresh(5)
        refused = keras.Sequential([keras.Input((3,)), L.Dense(2), Doubler(name="doubler")])
        refused_path, refused_out = os.path.join(work, "custom.keras"), os.path.join(work, "custom")
        refused.save(refused_path)
        # keras_export.py run with Doubler registered (importing this file), as a user's own
        # script would register it before loading the model.
        result = subprocess.run([sys.executable, "-c", "import sys, runpy; sys.path.insert(0, %r); import roundtrip_test; "
                                 "sys.argv = ['keras_export.py'] + sys.argv[1:]; runpy.run_path(%r, run_name='__main__')"
                                 % (HERE, os.path.join(HERE, "keras_export.py")),
                                 refused_path, refused_out, "--sample", "2", "--nnbuild", BINARY], capture_output=True, text=True)
        if result.returncode == 2 and "'Doubler' (layer 'doubler')" in result.stderr and not os.path.exists(refused_out):
            passed += 1
            print("ok   custom.keras: refused: %s" % result.stderr.strip().splitlines()[-1])
        else:
            failed += 1
            print("FAIL custom.keras: expected exit 2 naming Doubler and no output, got %d: %s"
                  % (result.returncode, result.stderr.strip()[-200:]))
        # An example's layer names do not depend on what ran before it in the same process.
        # (make_examples.py also writes scikit-learn's report of the held-out data.)
        name = "make_examples.py tabular_mlp twice in one process"
        if importlib.util.find_spec("sklearn") is None:
            skipped += 1
            print("skip %s: it needs scikit-learn, which is not installed (pip install scikit-learn)" % name)
        else:
            failure = example_twice_failure(os.path.join(work, "examples"))
            if failure is None:
                passed += 1
                print("ok   %s: the same model.json as specs/tabular_mlp" % name)
            else:
                failed += 1
                print("FAIL %s: %s" % (name, failure))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)


def example_twice_failure(examples):
    """Why make_examples.py, asked for tabular_mlp twice in one process, did not write the committed
    specs/tabular_mlp/model.json into `examples`; None when it did."""
    result = subprocess.run([sys.executable, os.path.join(HERE, "make_examples.py"), "--out", examples, "tabular_mlp", "tabular_mlp"],
                            capture_output=True, text=True)
    committed = os.path.join(ROOT, "specs", "tabular_mlp", "model.json")
    made = os.path.join(examples, "tabular_mlp", "model.json")
    if result.returncode == 0 and os.path.exists(made) and json.load(open(made)) == json.load(open(committed)):
        return None
    return "model.json differs from specs/tabular_mlp (exit %d) %s" % (result.returncode, result.stderr.strip()[-200:])


if __name__ == "__main__":
    main()
