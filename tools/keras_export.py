#!/usr/bin/env python3
"""Exports a Keras Sequential model for nnbuild: model.json, weights.safetensors, and a sample.

    python3 tools/keras_export.py MODEL OUTDIR [--sample N] [--seed S]

MODEL is a Keras 3 `.keras` file or a legacy `.h5`. OUTDIR receives
  model.json            model.to_json(), verbatim
  weights.safetensors   every variable, keyed by its Keras variable path (sequential/dense/kernel), float32
  input.npy, expected.npy   with --sample N: a valid random batch of N and Keras's model.predict on it
From Python, `export_model(model, outdir, sample_input=None)` does the same for a live model.
Needs only keras, numpy and safetensors. Exits 2 with a message for what cannot be exported.
"""
import argparse
import os
import sys

import numpy as np


class ExportError(Exception):
    pass


def check_exportable(model):
    import keras

    if not isinstance(model, keras.Sequential):
        raise ExportError("only Sequential models can be exported (found %s); nnbuild runs Sequential models" % type(model).__name__)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Lambda):
            raise ExportError("layer '%s' is a Lambda layer: its Python code cannot be exported; "
                              "write it as a registered custom layer instead" % layer.name)


def weights_of(model):
    """Every variable keyed by its Keras variable path, as float32 arrays.

    Keras 3 also tracks non-weight state (a Dropout's seed generator state): only float variables
    that belong to a layer's weights are exported.
    """
    tensors = {}
    for variable in model.weights:
        path = getattr(variable, "path", None) or variable.name
        value = np.asarray(variable.numpy())
        if not np.issubdtype(value.dtype, np.floating):
            continue
        if path in tensors:
            raise ExportError("two variables share the path '%s'" % path)
        tensors[path] = np.ascontiguousarray(value.astype(np.float32))
    return tensors


def sample_for(model, n, seed=0):
    """A valid random batch: token ids inside the Embedding's range, else standard normal floats."""
    import keras

    rng = np.random.default_rng(seed)
    shape = (n,) + tuple(d if d is not None else 16 for d in model.input_shape[1:])
    first = next((l for l in model.layers if not isinstance(l, keras.layers.InputLayer)), None)
    if isinstance(first, keras.layers.Embedding):
        x = rng.integers(1, first.input_dim, size=shape).astype(np.int32)
        if first.mask_zero and len(shape) == 2:
            for row in range(n):  # post-padded rows of different real lengths, one all padding
                keep = 0 if row == n - 1 and n > 2 else int(rng.integers(1, shape[1] + 1))
                x[row, keep:] = 0
        return x
    return rng.standard_normal(shape).astype(np.float32)


def export_model(model, outdir, sample_input=None):
    from safetensors.numpy import save_file

    check_exportable(model)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "model.json"), "w") as f:
        f.write(model.to_json())
    save_file(weights_of(model), os.path.join(outdir, "weights.safetensors"))
    if sample_input is not None:
        np.save(os.path.join(outdir, "input.npy"), sample_input)
        np.save(os.path.join(outdir, "expected.npy"), np.asarray(model.predict(sample_input, verbose=0), dtype=np.float32))


def main():
    ap = argparse.ArgumentParser(description="Export a Keras Sequential model for nnbuild.")
    ap.add_argument("model", help="a Keras 3 .keras file or a legacy .h5 file")
    ap.add_argument("outdir")
    ap.add_argument("--sample", type=int, default=0, help="also write a random input batch of N and Keras's predictions")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        model = keras.models.load_model(args.model, compile=False)
    except Exception as error:  # a Lambda layer, an unknown custom class, a corrupt file
        text = str(error)
        if "Lambda" in text:
            reason = "it contains a Lambda layer, whose Python code cannot be exported; write it as a registered custom layer"
        elif "Unknown layer" in text or "Could not locate class" in text:
            reason = "it uses a custom layer class Keras cannot find; import the module that defines it (with @keras.saving.register_keras_serializable) before exporting: %s" % text.splitlines()[0]
        else:
            reason = "Keras cannot load it: %s" % text.splitlines()[0]
        print("error: %s: %s" % (args.model, reason), file=sys.stderr)
        sys.exit(2)
    try:
        export_model(model, args.outdir, sample_for(model, args.sample, args.seed) if args.sample else None)
    except ExportError as error:
        print("error: %s: %s" % (args.model, error), file=sys.stderr)
        sys.exit(2)
    print("wrote %s (model.json, weights.safetensors%s)" % (args.outdir, ", input.npy, expected.npy" if args.sample else ""))


if __name__ == "__main__":
    main()
