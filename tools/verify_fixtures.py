#!/usr/bin/env python3
"""Checks that every fixture reloads in Keras and reproduces its own expected output.

    python3 tools/verify_fixtures.py [CASE ...]

For each Tests/Fixtures/<case>/: a fresh Keras session rebuilds the model from model.json
(`keras.models.model_from_json`; a Keras-2-style or hand-written spec without "module" keys goes
through Keras's legacy loader, the one that reads .h5 files, with a model name added when the
spec has none and a first layer's batch_input_shape moved to an InputLayer, which Keras 3
otherwise misreads), every variable of the rebuilt model is given the tensor of weights.safetensors
its path names, and model.predict(input.npy) must equal expected.npy (max |a - b| / (1 + |b|)
<= 1e-6, NaN where Keras gives NaN). Every tensor in the file must be used exactly once.

This proves the weight names are self-consistent: a reader that follows the JSON finds every
weight. Where the rebuilt model's variable paths differ from the file's keys (a Keras 3 model
rebuilt from JSON loses the `sequential/bidirectional/` prefix of a Bidirectional's sub-layers;
Keras 2 keys end in `:0`), the tensor is found by path suffix and the difference is reported.
Prints one line per case and 'N passed, M failed' last.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "Tests", "Fixtures")
TOLERANCE = 1e-6

# Fixtures whose spec Keras 3 refuses on purpose; their expected output is checked another way.
NOT_RELOADABLE = {
    "upsampling2d_gaussian": "Keras 3 refuses interpolation 'gaussian' (Keras 2 passed it to tf.image.resize, which made expected.npy)",
    "upsampling2d_mitchellcubic": "Keras 3 refuses interpolation 'mitchellcubic' (Keras 2 passed it to tf.image.resize, which made expected.npy)",
}


class ReloadError(Exception):
    pass


def rebuild(spec_text):
    """The Keras model `spec_text` describes, and which loader built it."""
    import keras

    spec = json.loads(spec_text)
    if "module" in spec:
        return keras.models.model_from_json(spec_text), "model_from_json"
    from keras.src.legacy.saving import saving_utils

    config = spec.setdefault("config", {})
    config.setdefault("name", "sequential")
    loader = "legacy loader"
    layers = config.get("layers") or []
    if layers and layers[0].get("class_name") != "InputLayer" and "batch_input_shape" in layers[0].get("config", {}):
        # Keras 3 reads a first layer's batch_input_shape as an input_shape (one more None in
        # front); Keras 2 meant the batch dimension included, as an InputLayer reads it.
        first = layers[0]["config"]
        layers.insert(0, {"class_name": "InputLayer", "config": {"batch_input_shape": first.pop("batch_input_shape"),
                                                                 "dtype": first.get("dtype", "float32")}})
        loader += " (batch_input_shape moved to an InputLayer)"
    return saving_utils.model_from_config(spec), loader


def _segments(name):
    """Path segments with a Keras 2 ':0' suffix dropped."""
    parts = name.split("/")
    head, _, tail = parts[-1].rpartition(":")
    if head and tail.isdigit():
        parts[-1] = head
    return parts


def bind(model, tensors):
    """Assigns each variable of `model` its tensor; returns [(variable path, file key)] where they differ."""
    keys = {key: _segments(key) for key in tensors}
    used, renamed = set(), []
    for variable in model.weights:
        path = variable.path
        if path in tensors:
            key = path
        else:
            want = _segments(path)
            candidates = [k for k, seg in keys.items()
                          if k not in used and (seg[-len(want):] == want or want[-len(seg):] == seg)]
            if len(candidates) != 1:
                raise ReloadError("variable '%s' of the rebuilt model matches %s in weights.safetensors"
                                  % (path, candidates or "no tensor"))
            key = candidates[0]
            renamed.append((path, key))
        if tuple(variable.shape) != tensors[key].shape:
            raise ReloadError("variable '%s' has shape %s, tensor '%s' has %s" % (path, tuple(variable.shape), key, tensors[key].shape))
        variable.assign(tensors[key])
        used.add(key)
    for layer in model.layers:  # Normalization keeps a copy of its statistics, made when they were last loaded
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()
    unused = sorted(set(tensors) - used)
    if unused:
        raise ReloadError("tensors no variable of the rebuilt model uses: %s" % unused)
    return renamed


def max_error(got, expected):
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        return float("inf")
    if not np.array_equal(np.isnan(got), np.isnan(expected)):
        return float("inf")
    finite = ~np.isnan(expected)
    return float(np.max(np.abs(got - expected)[finite] / (1 + np.abs(expected[finite])), initial=0.0))


def verify_case(directory):
    """Reloads one fixture; returns (loader, renamed pairs, max error). Raises ReloadError."""
    import keras
    from safetensors.numpy import load_file

    keras.backend.clear_session()
    with open(os.path.join(directory, "model.json")) as f:
        model, loader = rebuild(f.read())
    renamed = bind(model, load_file(os.path.join(directory, "weights.safetensors")))
    x = np.load(os.path.join(directory, "input.npy"))
    error = max_error(model.predict(x, verbose=0), np.load(os.path.join(directory, "expected.npy")))
    if not error <= TOLERANCE:
        raise ReloadError("rebuilt model's prediction differs from expected.npy: max relative error %.3g" % error)
    return loader, renamed, error


def quirk_summary(renamed):
    """A few 'file key -> rebuilt path' examples, one per distinct kind of difference."""
    seen, lines = set(), []
    for path, key in renamed:
        kind = (len(_segments(key)) - len(_segments(path)), key.endswith(":0"))
        if kind not in seen:
            seen.add(kind)
            lines.append("'%s' -> rebuilt '%s'" % (key, path))
    return lines


def main(names=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    names = names or sorted(d for d in os.listdir(FIXTURES) if os.path.isfile(os.path.join(FIXTURES, d, "model.json")))
    passed = failed = 0
    for name in names:
        if name in NOT_RELOADABLE:
            print("skip %-28s %s" % (name, NOT_RELOADABLE[name]))
            continue
        try:
            loader, renamed, error = verify_case(os.path.join(FIXTURES, name))
            passed += 1
            note = "; ".join(quirk_summary(renamed))
            print("ok   %-28s %s, max rel err %.2g%s" % (name, loader, error, ", keys by suffix: " + note if note else ""))
        except Exception as error:  # noqa: BLE001 - report every case, whatever went wrong
            failed += 1
            print("FAIL %-28s %s" % (name, str(error).strip().splitlines()[0][:300]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
