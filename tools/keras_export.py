#!/usr/bin/env python3
"""Exports a Keras model (Sequential or Functional) for nnbuild: model.json, weights.safetensors
and a sample.

Usage:

    python3 tools/keras_export.py MODEL OUTDIR [--sample N] [--seed S] [--import MODULE ...]
                                  [--nnbuild BINARY] [--plugin LIB ...]

MODEL is a Keras 3 `.keras` file or a legacy `.h5` file. OUTDIR receives

    model.json           model.to_json(), verbatim
    weights.safetensors  every weight of the model, keyed by its Keras variable path
                         (`v.path`, e.g. `sequential/conv2d/kernel`): float32, or the
                         integer dtype Keras gives it (Normalization's int64 `count`)
    inputs.npz           with --sample N: a valid random batch of N for every model input, named
                         as nnbuild names inputs (float32 standard normal, or int32 token ids
                         inside the Embedding's input_dim for an input that feeds an Embedding;
                         with mask_zero=True every row but the first is post-padded with zeros
                         and, for N > 2, the last row is all padding)
    expected.npz         with --sample N: model.predict(inputs) for every model output, float32,
                         in the model's output order (config.output_layers)
    input.npy            the same, for a model of one input and one output: its one input
    expected.npy         and its one output

Names, as `nnbuild infer --input NAME=PATH` and its .npz output use them: the dict key when the
model's inputs (outputs) are a dict, else the input (producing) layer's name, with ":k" added for
its k-th output tensor when k > 0; a Sequential's output is named by its last layer.

From Python, `export_model(model, outdir, sample_input=None)` does the same for a live model
(`sample_input`: one array, a list in input order, or a dict keyed by input name) and
`sample_for(model, n, seed)` makes such a batch for a one-input model, `samples_for(model, n,
seed)` a dict of them for any model.

What is exported: `model.weights` (trainable and non-trainable weights: kernels, biases,
BatchNormalization moving statistics, LoRA factors). Keras 3 also lists one int64
`seed_generator_state` variable per Dropout-like layer (Dropout, SpatialDropout*, GaussianNoise,
GaussianDropout, AlphaDropout) in `model.variables`; that is random-number state, not a weight,
inference never uses it, and it is left out.

What is refused, with a message on stderr and exit status 2 (ExportError from Python), before
anything is written: a layer type nnbuild has not registered (a Keras 3 operation on tensors,
module keras.src.ops.*, as `ops.ClassName`)
(named with the list nnbuild has; the list comes from `nnbuild layers`, the binary given by
--nnbuild or $NNBUILD, else .build/release or .build/debug of this checkout, else `nnbuild` on
PATH; --plugin LIB adds a plugin's layers), a Lambda layer or a lambda activation (Python code,
not data), a quantized model, a weight that is neither floating point
nor integer, and a file whose custom layer class is not importable (pass --import MODULE for the
module that defines and registers it).

Needs only keras (with a backend), numpy and safetensors.
"""
import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys

import numpy as np

# Keras 3 tracks this state variable for every layer that draws random numbers.
SEED_STATE = "seed_generator_state"


class ExportError(Exception):
    """The model cannot be exported for nnbuild; the message says why and what to do."""


def _all_layers(model):
    """Every layer below `model`, wrapped ones included (a Bidirectional's LSTM, a TimeDistributed's Dense)."""
    found, stack = [], list(model.layers)
    while stack:
        layer = stack.pop(0)
        found.append(layer)
        stack.extend(getattr(layer, "_layers", None) or [])
        for attribute in ("layer", "forward_layer", "backward_layer"):
            inner = getattr(layer, attribute, None)
            if inner is not None and inner not in found and inner not in stack and hasattr(inner, "get_config"):
                stack.append(inner)
    return found


def _layer_specs(specs):
    """(registered name, name) of every layer spec nnbuild would build: the model's layers, the layers
    of a nested Sequential or Functional model, and the layers wrappers hold under `layer`,
    `forward_layer` and `backward_layer` (not a recurrent layer's cell, which the recurrent layer
    builds itself). A Keras 3 operation on tensors (module keras.src.ops.*) is `ops.ClassName`,
    as nnbuild registers it apart from the layer of the same class name."""
    for spec in specs:
        if not isinstance(spec, dict) or "class_name" not in spec:
            continue
        config = spec.get("config") or {}
        kind = spec["class_name"]
        if str(spec.get("module") or "").startswith("keras.src.ops"):
            kind = "ops." + kind
        yield kind, config.get("name", "?")
        if kind in ("Sequential", "Functional", "Model"):
            yield from _layer_specs(config.get("layers") or [])
        yield from _layer_specs([config.get(key) for key in ("layer", "forward_layer", "backward_layer")])


def _is_lambda(function):
    """A Python lambda, which Keras would serialize as bytecode rather than by name."""
    return callable(function) and getattr(function, "__name__", "") == "<lambda>"


def find_nnbuild():
    """The nnbuild binary to ask for its layers: $NNBUILD, this checkout's build, or PATH; None if none."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates = [os.environ.get("NNBUILD")] + [os.path.join(root, ".build", kind, "nnbuild") for kind in ("release", "debug")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("nnbuild")


def registered_layers(binary=None, plugins=()):
    """The layer type names (aliases included) that `nnbuild layers` lists. Raises ExportError when
    there is no binary to ask or it fails."""
    binary = binary or find_nnbuild()
    if not binary:
        raise ExportError("cannot check the layers against nnbuild: no nnbuild binary found (build it with "
                          "`swift build -c release`, or pass --nnbuild BINARY or set NNBUILD)")
    command = [binary] + [arg for lib in plugins for arg in ("--plugin", lib)] + ["layers"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ExportError("cannot ask %s for its layers: %s" % (binary, error))
    if result.returncode != 0:
        raise ExportError("`%s` failed (exit %d): %s" % (" ".join(command), result.returncode, result.stderr.strip()[-300:]))
    names = set()
    for line in result.stdout.splitlines():
        if not line.strip():
            continue
        names.add(line.split()[0])
        aliases = re.search(r"\(aliases: ([^)]*)\)\s*$", line)
        if aliases:
            names.update(a.strip() for a in aliases.group(1).split(","))
    if not names:
        raise ExportError("`%s` listed no layers" % " ".join(command))
    return names


def check_exportable(model, registered=None):
    """Raises ExportError when nnbuild could not run what `model.to_json()` would describe.

    `registered` is the set of layer type names nnbuild knows (`registered_layers()`); every layer,
    wrapped ones included, must be one of them."""
    import keras

    if registered is not None:
        unknown = {}
        for kind, name in _layer_specs(model.get_config().get("layers", [])):
            if kind not in registered and kind not in ("Lambda", "Sequential", "Functional", "Model"):  # Lambda: refused below
                unknown.setdefault(kind, []).append(name)
        if unknown:
            raise ExportError("nnbuild has no layer type %s; `nnbuild layers` lists those it has (a custom layer needs "
                              "a registered factory or a plugin, see Examples/CustomLayer)"
                              % ", ".join("'%s' (layer %s)" % (kind, ", ".join("'%s'" % n for n in names))
                                          for kind, names in sorted(unknown.items())))
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Lambda):
            raise ExportError("layer '%s' is a Lambda layer: its Python code cannot be exported; "
                              "write it as a registered custom layer instead" % layer.name)
        mode = getattr(getattr(layer, "dtype_policy", None), "quantization_mode", None)
        if mode:
            raise ExportError("layer '%s' is quantized (%s); nnbuild runs float weights: export the model before quantizing"
                              % (layer.name, mode))
        for key in ("activation", "recurrent_activation"):
            if _is_lambda(getattr(layer, key, None)):
                raise ExportError("layer '%s' has a Python lambda as its %s, which cannot be exported; "
                                  "use a named activation or a registered function" % (layer.name, key))


def weights_of(model):
    """Every weight of `model` keyed by its Keras variable path, as contiguous arrays: float32, or
    the integer dtype of an integer variable (Normalization's int64 `count`)."""
    tensors = {}
    for variable in model.weights:
        path = getattr(variable, "path", None) or variable.name
        if path.split("/")[-1].split(":")[0] == SEED_STATE:  # not a weight (see the module docstring)
            continue
        value = np.asarray(variable.numpy())
        if np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float32)
        elif not np.issubdtype(value.dtype, np.integer):
            raise ExportError("weight '%s' has dtype %s; only floating-point and integer weights can be exported" % (path, value.dtype))
        if path in tensors:
            raise ExportError("two weights share the path '%s'; give the layers distinct names" % path)
        tensors[path] = np.array(value, order="C")  # ascontiguousarray would make a scalar (count) of shape (1,)
    return tensors


def _model_config(model):
    import json

    return json.loads(model.to_json())


def port_names(model):
    """(input names, output names) in the model's order, as nnbuild names them (module docstring)."""
    from make_graph_fixtures import names_of

    spec = _model_config(model)
    config = spec.get("config") or {}
    if "input_layers" in config and "output_layers" in config:
        return names_of(config["input_layers"], None), names_of(config["output_layers"], None)
    layers = config.get("layers") or []
    if not layers:
        raise ExportError("model '%s' has no layers" % model.name)
    first = layers[0]
    first_name = (first.get("config") or {}).get("name", "?")
    input_name = first_name if first.get("class_name") == "InputLayer" else first_name + "_input"
    return [input_name], [(layers[-1].get("config") or {}).get("name", "?")]


def _embedding_readers(model):
    """{input layer name: Embedding config} for each model input that an Embedding reads directly."""
    config = _model_config(model).get("config") or {}
    layers = config.get("layers") or []
    if "input_layers" not in config:  # a Sequential: its first layer after the input
        body = [layer for layer in layers if layer.get("class_name") != "InputLayer"]
        if body and body[0].get("class_name") in ("Embedding", "StringLookup", "TextVectorization"):
            return {None: dict(body[0].get("config") or {}, class_name=body[0].get("class_name"))}
        return {}
    readers = {}

    def histories(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                yield (value.get("config") or {}).get("keras_history", [None])[0]
            else:
                for item in value.values():
                    yield from histories(item)
        elif isinstance(value, list):
            for item in value:
                yield from histories(item)

    for layer in layers:
        # An Embedding's ids, or the terms of a StringLookup or TextVectorization with its vocabulary in the config.
        if layer.get("class_name") in ("Embedding", "StringLookup", "TextVectorization"):
            for source in histories(layer.get("inbound_nodes")):
                readers.setdefault(source, dict(layer.get("config") or {}, class_name=layer.get("class_name")))
    return readers


def _batch(rng, n, shape, dtype, embedding):
    """A valid random batch of `n` rows of `shape` (unknown dimensions become 16)."""
    shape = (n,) + tuple(16 if d is None else d for d in shape)
    if "str" in str(dtype):  # a string input: its StringLookup's terms, and a tenth unknown words
        terms = [t for t in (embedding or {}).get("vocabulary") or [] if isinstance(t, str)] or ["w%d" % i for i in range(9)]
        words = np.array(terms + ["unknown"], dtype=np.str_)
        return words[rng.integers(0, len(words), size=shape)]
    if embedding is not None and embedding.get("class_name") == "Embedding":
        x = rng.integers(1, max(int(embedding.get("input_dim", 2)), 2), size=shape).astype(np.int32)
        if embedding.get("mask_zero") and len(shape) == 2:
            steps = shape[1]
            for row in range(1, n):  # row 0 keeps every step; the others are post-padded
                keep = 0 if row == n - 1 and n > 2 else int(rng.integers(1, max(steps, 2)))
                x[row, keep:] = 0
        return x
    if "int" in str(dtype):
        return rng.integers(0, 10, size=shape).astype(np.int32)
    return rng.standard_normal(shape).astype(np.float32)


def _input_specs(model):
    """(input layer name, per-sample shape, dtype) of each model input, in input order; the name is
    None for a Sequential, whose input `_embedding_readers` keys as None."""
    import keras

    if isinstance(model, keras.Sequential):
        inputs = getattr(model, "inputs", None) or []
        dtype = getattr(inputs[0], "dtype", "float32") if inputs else "float32"
        return [(None, tuple(model.input_shape[1:]), dtype)]
    inputs = model.input
    if isinstance(inputs, dict):
        tensors = [inputs[key] for key in port_names(model)[0]]
    else:
        tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    specs = []
    for tensor in tensors:
        history = getattr(tensor, "_keras_history", None)
        specs.append((history[0].name if history else None, tuple(tensor.shape[1:]), getattr(tensor, "dtype", "float32")))
    return specs


def samples_for(model, n, seed=0):
    """{input name: a valid random batch of `n`} for every model input, in input order.

    Token ids in [1, input_dim) for an input an Embedding reads; with mask_zero=True the first row
    is whole, the others are post-padded with zeros to random shorter lengths and, for n > 2, the
    last row is all padding. Words for a string input (a StringLookup's terms, with one unknown
    word among them). Otherwise float32 standard normal values (small non-negative
    integers for another integer input). Unknown dimensions become 16.
    """
    rng = np.random.default_rng(seed)
    readers = _embedding_readers(model)
    return {name: _batch(rng, n, shape, dtype, readers.get(layer_name))
            for name, (layer_name, shape, dtype) in zip(port_names(model)[0], _input_specs(model))}


def sample_for(model, n, seed=0):
    """A valid random batch of `n` for a one-input model (see `samples_for`)."""
    batches = samples_for(model, n, seed)
    if len(batches) != 1:
        raise ExportError("model '%s' has %d inputs; use samples_for" % (model.name, len(batches)))
    return next(iter(batches.values()))


def _feed(model, names, sample_input):
    """`sample_input` as model.predict takes it, and as {input name: array}."""
    if isinstance(sample_input, dict):
        unknown = sorted(set(sample_input) - set(names))
        missing = [name for name in names if name not in sample_input]
        if unknown or missing:
            raise ExportError("the sample inputs are named %s; the model's inputs are %s" % (sorted(sample_input), names))
        named = {name: np.asarray(sample_input[name]) for name in names}
    else:
        arrays = list(sample_input) if isinstance(sample_input, (list, tuple)) else [sample_input]
        if len(arrays) != len(names):
            raise ExportError("%d sample input(s) given; the model's inputs are %s" % (len(arrays), names))
        named = {name: np.asarray(array) for name, array in zip(names, arrays)}
    import keras

    # Keras's predict takes strings as TensorFlow tensors, not numpy str arrays (saved as they are).
    given = dict(named)
    for name, array in named.items():
        if array.dtype.kind in "USO":
            import tensorflow as tf
            given[name] = tf.constant(array.astype(str))
    if not isinstance(model, keras.Sequential) and isinstance(model.input, dict):
        return given, named
    ordered = [given[name] for name in names]
    return (ordered[0] if len(ordered) == 1 else ordered), named


def export_model(model, outdir, sample_input=None, registered=None):
    """Writes OUTDIR/model.json and weights.safetensors, and with `sample_input` inputs.npz and
    expected.npz (plus input.npy and expected.npy for a model of one input and one output).

    Every layer type must be one nnbuild has: `registered` names them, or else the nnbuild binary
    `find_nnbuild()` finds is asked (`registered_layers()`)."""
    from make_graph_fixtures import flat_outputs
    from safetensors.numpy import save_file

    check_exportable(model, registered if registered is not None else registered_layers())
    tensors = weights_of(model)
    input_names, output_names = port_names(model)
    if sample_input is not None:
        feed, named_inputs = _feed(model, input_names, sample_input)
        outputs = [np.asarray(value, dtype=np.float32) for value in flat_outputs(model, model.predict(feed, verbose=0))]
        if len(outputs) != len(output_names):
            raise ExportError("the model returned %d outputs; its config names %d (%s)" % (len(outputs), len(output_names), output_names))
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "model.json"), "w") as f:
        f.write(model.to_json())
    save_file(tensors, os.path.join(outdir, "weights.safetensors"))
    if sample_input is not None:
        np.savez(os.path.join(outdir, "inputs.npz"), **named_inputs)
        np.savez(os.path.join(outdir, "expected.npz"), **dict(zip(output_names, outputs)))
        if len(input_names) == 1 and len(output_names) == 1:
            np.save(os.path.join(outdir, "input.npy"), named_inputs[input_names[0]])
            np.save(os.path.join(outdir, "expected.npy"), outputs[0])


def _load_failure(path, error):
    """One line saying why Keras could not load `path`."""
    text = str(error)
    missing = re.search(r"Could not locate (?:class|function) '([^']+)'", text) or re.search(r"Unknown (?:layer|object)[^:]*: '?([\w.>]+)", text)
    if "Lambda" in text or "lambda" in text:
        return "it contains a Lambda layer or lambda function, whose Python code cannot be exported; write it as a registered custom layer"
    if missing:
        return ("it uses the custom class '%s', which is not importable here; pass --import MODULE for the module that "
                "defines it with @keras.saving.register_keras_serializable()" % missing.group(1))
    lines = [line for line in text.splitlines() if line.strip()]
    return "Keras cannot load it: %s" % (lines[0] if lines else type(error).__name__)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export a Keras model (Sequential or Functional) for nnbuild.")
    parser.add_argument("model", help="a Keras 3 .keras file or a legacy .h5 file")
    parser.add_argument("outdir", help="directory to write model.json and weights.safetensors into")
    parser.add_argument("--sample", type=int, default=0, metavar="N", help="also write a random input batch of N and Keras's predictions")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input batch")
    parser.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                        help="import MODULE first (it defines and registers a custom layer)")
    parser.add_argument("--nnbuild", metavar="BINARY", help="the nnbuild binary whose `layers` the model's layers are checked against")
    parser.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="LIB",
                        help="a layer plugin nnbuild will load (its layers count as registered); repeatable")
    args = parser.parse_args(argv)
    if args.sample < 0:
        parser.error("--sample must be positive")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    sys.path.insert(0, os.getcwd())
    try:
        for module in args.modules:
            importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 - any import failure is the user's to fix
        print("error: cannot import %s: %s" % (module, error), file=sys.stderr)
        return 2
    if not os.path.isfile(args.model):
        print("error: %s: no such file" % args.model, file=sys.stderr)
        return 2
    try:
        registered = registered_layers(args.nnbuild, args.plugins)
    except ExportError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    try:
        model = keras.models.load_model(args.model, compile=False)
    except Exception as error:  # noqa: BLE001 - a Lambda layer, an unknown custom class, a corrupt file
        print("error: %s: %s" % (args.model, _load_failure(args.model, error)), file=sys.stderr)
        return 2
    try:
        export_model(model, args.outdir, samples_for(model, args.sample, args.seed) if args.sample else None, registered)
    except ExportError as error:
        print("error: %s: %s" % (args.model, error), file=sys.stderr)
        return 2
    written = ["model.json", "weights.safetensors"]
    if args.sample:
        written += ["inputs.npz", "expected.npz"] + [name for name in ("input.npy", "expected.npy")
                                                        if os.path.exists(os.path.join(args.outdir, name))]
    print("wrote %s (%s)" % (args.outdir, ", ".join(written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
