#!/usr/bin/env python3
"""Trains the example models in specs/ on small synthetic data and exports them.

    pip install tensorflow-cpu==2.20.0 safetensors scikit-learn
    python3 tools/make_examples.py            # all of them
    python3 tools/make_examples.py text_bilstm
    python3 tools/make_examples.py --out DIR tabular_mlp   # into DIR/tabular_mlp instead of specs/

Every example is a classic teaching architecture, actually trained in Keras on data this script
makes (nothing is downloaded), so its predictions mean something. Each folder gets:

    model.json            model.to_json(), verbatim
    weights.safetensors   every variable keyed by its Keras variable path
    input.npy / .json     a sample batch (token ids for the text models)
    expected.npy          Keras's model.predict on that batch
    classes.txt           class names (classifiers)
    eval_input.npy, eval_labels.npy, sklearn_report.json   held-out data and scikit-learn's
                          classification_report(output_dict=True) + confusion matrix of Keras's
                          predictions, which `nnbuild eval` must reproduce (classifiers)

The CIFAR-10 CNN keeps its weights in float16 (the dense layer alone holds 1.6 M parameters); its
Keras model is given the same float16-rounded weights before `expected.npy` is computed, so the
comparison stays exact.

Determinism: each example starts a fresh Keras session and seeds numpy and Keras with SEED, so its
layer names (`dense`, `dense_1`, ...) and files do not depend on which examples ran before it in
the same process (tools/make_malformed.py and MalformedTests read these names).
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPECS = os.path.join(ROOT, "specs")
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

SEED = 20261123

# A tiny synthetic sentiment language: a few positive, negative and neutral words.
WORDS = ["<pad>", "<unk>"]
POSITIVE = ["good", "great", "love", "excellent", "happy", "nice", "wonderful", "enjoyed", "best", "delicious"]
NEGATIVE = ["bad", "terrible", "hate", "awful", "sad", "poor", "worst", "boring", "disappointing", "rude"]
NEUTRAL = ["the", "food", "movie", "service", "was", "is", "it", "and", "a", "very", "this", "place", "staff", "today",
           "i", "we", "our", "meal", "room", "hotel", "price", "quite", "not", "really", "so"]
WORDS += POSITIVE + NEGATIVE + NEUTRAL
VOCAB = {w: i for i, w in enumerate(WORDS)}
CLASSES_SENTIMENT = ["negative", "neutral", "positive"]


def sentences(rng, n, length):
    """Random sentences labelled by the sentiment words they contain (none: neutral)."""
    x = np.zeros((n, length), dtype=np.int32)
    y = np.zeros((n,), dtype=np.int32)
    for row in range(n):
        size = int(rng.integers(4, length + 1))
        label = int(rng.integers(0, 3))
        words = list(rng.choice(NEUTRAL, size=size))
        k = int(rng.integers(1, 4))
        pool = NEGATIVE if label == 0 else POSITIVE if label == 2 else []
        for _ in range(k if pool else 0):
            words[int(rng.integers(0, size))] = str(rng.choice(pool))
        if label == 1:
            words = [w for w in words if w != "not"]
        x[row, :len(words)] = [VOCAB[w] for w in words]
        y[row] = label
    return x, y


def detokenize(ids):
    return " ".join(WORDS[i] for i in ids if i != 0)


OUT = SPECS  # --out changes it


def export(model, name, sample, classes=None, eval_data=None, float16=False, extra=None):
    from keras_export import export_model

    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    if float16:
        model.set_weights([w.astype(np.float16).astype(np.float32) for w in model.get_weights()])
    export_model(model, out, sample_input=sample)
    if name == "text_bilstm":
        # setup.sh's first example runs the model as model.save() writes it, with no Python.
        model.save(os.path.join(out, "model.keras"))
    if float16:
        from safetensors.numpy import load_file, save_file
        path = os.path.join(out, "weights.safetensors")
        tensors = load_file(path)
        save_file({k: v.astype(np.float16) for k, v in tensors.items()}, path, metadata={"note": "float16 weights; nnbuild converts them to float32"})
    if classes:
        with open(os.path.join(out, "classes.txt"), "w") as f:
            f.write("\n".join(classes) + "\n")
    if sample.dtype.kind == "i":
        with open(os.path.join(out, "input.json"), "w") as f:
            json.dump(sample.tolist(), f)
    if eval_data is not None:
        from sklearn.metrics import classification_report, confusion_matrix
        x_eval, y_eval = eval_data
        np.save(os.path.join(out, "eval_input.npy"), x_eval)
        np.save(os.path.join(out, "eval_labels.npy"), y_eval.astype(np.int64))
        predicted = np.argmax(model.predict(x_eval, verbose=0), axis=1)
        report = classification_report(y_eval, predicted, labels=list(range(len(classes))), target_names=classes,
                                       output_dict=True, zero_division=0)
        report["confusion_matrix"] = confusion_matrix(y_eval, predicted, labels=list(range(len(classes)))).tolist()
        with open(os.path.join(out, "sklearn_report.json"), "w") as f:
            json.dump(report, f, indent=1)
        print("  %s: held-out accuracy %.3f" % (name, report["accuracy"]))
    for filename, text in (extra or {}).items():
        with open(os.path.join(out, filename), "w") as f:
            f.write(text)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("  %s: %.1f KB" % (name, size / 1024))


def text_model(name, recurrent):
    rng = np.random.default_rng(SEED)
    keras.utils.set_random_seed(SEED)
    x, y = sentences(rng, 3000, 24)
    x_eval, y_eval = sentences(rng, 300, 24)
    model = keras.Sequential([keras.Input((24,), dtype="int32"), layers.Embedding(len(WORDS), 16, mask_zero=True),
                              recurrent, layers.Dropout(0.2), layers.Dense(3, activation="softmax")], name=name)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=64, verbose=0, validation_split=0.1)
    sample = np.zeros((4, 24), dtype=np.int32)
    demo = ["the food was great and the staff was nice", "this movie was boring and the price was awful",
            "we had a meal at the hotel today", "i love this place it is the best"]
    for row, text in enumerate(demo):
        ids = [VOCAB.get(w, 1) for w in text.split()]
        sample[row, :len(ids)] = ids
    vocab = json.dumps(VOCAB, indent=0)
    export(model, name, sample, CLASSES_SENTIMENT, (x_eval, y_eval),
           extra={"sentences.txt": "\n".join(demo) + "\n", "vocab.json": vocab})


def text_bilstm():
    text_model("text_bilstm", layers.Bidirectional(layers.LSTM(24)))


def text_simplernn():
    text_model("text_simplernn", layers.SimpleRNN(32))


def sine_gru():
    rng = np.random.default_rng(SEED)
    keras.utils.set_random_seed(SEED)
    steps = 40

    def windows(n):
        phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
        freq = rng.uniform(0.15, 0.35, size=(n, 1))
        t = np.arange(steps + 1)[None, :]
        wave = np.sin(freq * t + phase) + rng.normal(0, 0.05, size=(n, steps + 1))
        return wave[:, :steps, None].astype(np.float32), wave[:, steps:].astype(np.float32)

    x, y = windows(3000)
    model = keras.Sequential([keras.Input((steps, 1)), layers.GRU(32), layers.Dense(1)], name="sine_gru")
    model.compile("adam", "mse")
    model.fit(x, y, epochs=10, batch_size=64, verbose=0)
    sample, target = windows(8)
    print("  sine_gru: sample MSE %.4f" % float(np.mean((model.predict(sample, verbose=0) - target) ** 2)))
    export(model, "sine_gru", sample, extra={"target.json": json.dumps(target.tolist())})


def tabular_mlp():
    rng = np.random.default_rng(SEED)
    keras.utils.set_random_seed(SEED)
    centers = rng.normal(0, 2.0, size=(3, 8))

    def data(n):
        y = rng.integers(0, 3, size=n)
        return (centers[y] + rng.normal(0, 3.0, size=(n, 8))).astype(np.float32), y.astype(np.int64)

    x, y = data(3000)
    model = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.BatchNormalization(),
                              layers.Dropout(0.2), layers.Dense(16, activation="relu"), layers.Dense(3, activation="softmax")],
                             name="tabular_mlp")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10, batch_size=64, verbose=0)
    sample, _ = data(6)
    export(model, "tabular_mlp", sample, ["class_a", "class_b", "class_c"], data(400))


def cifar10_cnn():
    rng = np.random.default_rng(SEED)
    keras.utils.set_random_seed(SEED)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    # Each synthetic class is a colour and a stripe orientation/frequency, plus noise.
    colors = rng.uniform(0.2, 0.8, size=(10, 3))
    yy, xx = np.mgrid[0:32, 0:32]

    def data(n):
        y = rng.integers(0, 10, size=n)
        images = np.empty((n, 32, 32, 3), dtype=np.float32)
        for i, c in enumerate(y):
            angle = np.pi * c / 10
            stripes = 0.5 + 0.5 * np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * (0.3 + 0.05 * c))
            images[i] = colors[c][None, None, :] * stripes[..., None] + rng.normal(0, 0.6, size=(32, 32, 3))
        return images, y.astype(np.int64)

    x, y = data(2000)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, padding="same", activation="relu"), layers.MaxPooling2D(2, strides=1),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(256, activation="relu"), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ], name="cifar10_cnn")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    sample, _ = data(4)
    export(model, "cifar10_cnn", sample, names, data(40), float16=True)


EXAMPLES = {"text_bilstm": text_bilstm, "text_simplernn": text_simplernn, "sine_gru": sine_gru,
            "tabular_mlp": tabular_mlp, "cifar10_cnn": cifar10_cnn}

def main(argv):
    global OUT
    if argv[:1] == ["--out"]:
        if len(argv) < 2:
            print("error: --out needs a directory", file=sys.stderr)
            return 2
        OUT, argv = os.path.abspath(argv[1]), argv[2:]
    unknown = [name for name in argv if name not in EXAMPLES]
    if unknown:
        print("error: unknown example(s) %s; choose from %s" % (", ".join(unknown), ", ".join(EXAMPLES)), file=sys.stderr)
        return 2
    print("Keras %s" % keras.__version__)
    for name in argv or list(EXAMPLES):
        print("training %s" % name, flush=True)
        keras.backend.clear_session()  # layer names restart at `dense`: the files depend on this example only
        EXAMPLES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
