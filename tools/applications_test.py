#!/usr/bin/env python3
"""Keras Applications end to end: builds each model of keras.applications with random weights
(`weights=None`: nothing is downloaded), gives its BatchNormalization layers realistic statistics,
exports it with tools/keras_export.py, runs it with `nnbuild infer` (release binary) and compares
with Keras's predictions.

    python3 tools/applications_test.py [NNBUILD_BINARY] [--all] [--channels-first] [--only NAME ...]

By default each model runs at a small input size (32x32, 71x71 for Xception): the smallest Keras
allows, which keeps the run bounded; --all adds each model's default size (224x224, 299x299 for
Xception). --channels-first builds every model with keras.config.set_image_data_format(
"channels_first"), as a user who set that in keras.json gets it: (3, size, size) images, every
spatial layer channels-first.

Pass, two checks on each model and size:
1. The model as keras.applications ships it (softmax classifier): max |ours - keras| / (1 + |keras|)
   <= 1e-5, strictly.
2. Its logits (the same weights, classifier_activation=None), since a softmax over 1000 classes
   scales each class's difference by the class's probability and could hide a defect on unlikely
   classes. Logits of these deep float32 networks carry rounding error that every
   BatchNormalization's centering amplifies (measured: on ResNet50 at 32x32 the relative error of
   Keras's own float32 activations against float64 grows from 2e-7 after the first convolution to
   6e-5 rms and 3e-4 max at the logits), so no float32 implementation can match another's logits
   to 1e-5 there. Within 1e-5 passes; past it, Keras's float32 logits are measured against the
   same model run by Keras in float64 (floatx float64, same weights), and the case passes only
   when nnbuild is at most NOISE_FACTOR (3) times as far from the float64 result as Keras's
   float32 is, and Keras's own error is under 1e-3 (else the network is too ill-conditioned to
   prove anything, and the case fails). Every number is printed. A defect (a wrong padding, a
   missing bias) gives errors of order 1, far past either bound.

Statistics: with random weights and BatchNormalization's initial moving statistics (mean 0,
variance 1), activations grow or collapse with depth and every input gives nearly the same
output. So each BatchNormalization layer gets random gamma and beta, and then its moving mean and
variance are set to the mean and variance of its own input over a random calibration batch, layer
by layer in one pass: the model runs once in training mode with every momentum set to 0 (and
every dropout rate to 0), which makes each layer's moving statistics exactly its batch statistics
computed after the layers before it were normalized the same way. A network with no
normalization layer (VGG16) has each convolution and Dense layer scaled instead, in order, to
unit output deviation over the calibration batch (LSUV). ConvNeXt's LayerScale factors
(1e-6 at initialisation, which would make each block invisible) are drawn from [0.05, 0.3]. The test then checks that
the model's logits differ across inputs by more than 10 times the tolerance (it would prove
little otherwise; the softmax of 1000 classes can flatten a real variation below that).

Skips when TensorFlow is not installed: prints 'SKIPPED: <why>' and '0 passed, 0 failed, 1 skipped',
and exits 0. Prints one line per model and size and 'N passed, M failed' last.
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

try:
    import keras
    import numpy as np
    import safetensors  # noqa: F401 (keras_export needs it)
except ImportError as error:
    print("SKIPPED: the Keras Applications test needs TensorFlow, which is not installed (%s); "
          "pip install tensorflow-cpu==2.20.0 safetensors" % error)
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)

BINARY = os.path.join(ROOT, ".build/release/nnbuild")

import keras_export  # noqa: E402

TOLERANCE = 1e-5
SAMPLE = 3          # inputs compared per model
CALIBRATION = 8     # calibration batch for the BatchNormalization statistics at the default sizes
CALIBRATION_SMALL = 64  # and at the small sizes, where the last stages are 1x1: 8 samples would make
SMALL = 71              # some channels' variance tiny by chance, and the network ill-conditioned
NOISE_FACTOR = 3    # past 1e-5 of Keras: nnbuild may be at most this many times as far from the
NOISE_LIMIT = 1e-3  # float64 result as Keras's float32 is, and Keras's own error must be under this

# (name, default size, small size): the small size is the smallest Keras accepts (32, 71 for
# Xception), or near it.
APPLICATIONS = [
    ("MobileNet", 224, 32),
    ("MobileNetV2", 224, 32),
    ("MobileNetV3Small", 224, 32),
    ("MobileNetV3Large", 224, 32),
    ("ResNet50", 224, 32),
    ("ResNet50V2", 224, 32),
    ("DenseNet121", 224, 32),
    ("EfficientNetB0", 224, 32),
    ("EfficientNetV2B0", 224, 32),
    ("VGG16", 224, 32),
    ("Xception", 299, 71),
    ("InceptionResNetV2", 299, 75),
    ("NASNetMobile", 224, 32),
    ("ConvNeXtTiny", 224, 32),
]


CHANNELS_FIRST = False  # --channels-first


def build(name, size, seed=0, classifier_activation=None, **options):
    """keras.applications.<name> with random weights at size x size x 3 (3 x size x size with
    --channels-first), logits out by default."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    keras.config.set_image_data_format("channels_first" if CHANNELS_FIRST else "channels_last")
    constructor = getattr(keras.applications, name)
    shape = (3, size, size) if CHANNELS_FIRST else (size, size, 3)
    return constructor(weights=None, input_shape=shape, classifier_activation=classifier_activation, **options)


def calibrate(model, seed=1, batch=None):
    """Realistic BatchNormalization statistics (see the module docstring), in one training-mode pass."""
    rng = np.random.default_rng(seed)
    batch_norms = [layer for layer in keras_export._all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    dropouts = [layer for layer in keras_export._all_layers(model) if hasattr(layer, "rate") and isinstance(getattr(layer, "rate"), float)]
    saved_momentum = [layer.momentum for layer in batch_norms]
    saved_rate = [layer.rate for layer in dropouts]
    for layer in batch_norms:
        channels = layer.gamma.shape if layer.gamma is not None else None
        if channels is not None:
            layer.gamma.assign(rng.uniform(0.5, 1.5, size=channels).astype("float32"))
        if layer.beta is not None:
            layer.beta.assign(rng.normal(0, 0.2, size=layer.beta.shape).astype("float32"))
        layer.momentum = 0.0
    for layer in dropouts:
        layer.rate = 0.0
    # ConvNeXt's LayerScale starts at 1e-6, which makes every block an identity to within the
    # tolerance: a wrong block would go unseen. Give it the size a trained model has.
    for layer in keras_export._all_layers(model):
        if type(layer).__name__ == "LayerScale":
            for variable in layer.weights:
                variable.assign(rng.uniform(0.05, 0.3, size=variable.shape).astype("float32"))
    shape = (batch or CALIBRATION,) + tuple(model.input_shape[1:])
    calibration = rng.standard_normal(shape).astype("float32")
    normalizes = any(isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LayerNormalization))
                     for layer in keras_export._all_layers(model))
    if not normalizes:
        unit_variance(model, calibration)
    model(calibration, training=True)
    for layer, momentum in zip(batch_norms, saved_momentum):
        layer.momentum = momentum
    for layer, rate in zip(dropouts, saved_rate):
        layer.rate = rate
    return len(batch_norms)


def unit_variance(model, calibration):
    """For a network with no normalization layer (VGG16): random Glorot weights shrink the
    activations layer by layer until the softmax is uniform to 1e-7 for every input. As a trained
    network's are not, scale each convolution's and Dense layer's kernel and bias, in order, so
    that its output has unit standard deviation over the calibration batch (LSUV initialisation)."""
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            continue
        probe = keras.Model(model.inputs, layer.output)
        deviation = float(np.std(probe.predict(calibration, verbose=0)))
        if deviation > 0 and np.isfinite(deviation):
            for variable in layer.weights:
                variable.assign(variable.numpy() / deviation)


def float64_reference(name, size, model, sample):
    """Keras's prediction of `model` on `sample` computed in float64: the same architecture built
    with floatx float64 and given the same weights."""
    weights = [np.asarray(v.numpy()) for v in model.weights]
    keras.config.set_floatx("float64")
    try:
        exact = build(name, size)
        if [tuple(v.shape) for v in exact.weights] != [w.shape for w in weights]:
            raise RuntimeError("the float64 build of %s has other weights than the float32 one" % name)
        for variable, value in zip(exact.weights, weights):
            variable.assign(value.astype(variable.dtype))
        return np.asarray(exact.predict(sample.astype("float64"), verbose=0), dtype=np.float64)
    finally:
        keras.config.set_floatx("float32")


def relative(got, want):
    return float(np.max(np.abs(np.asarray(got, np.float64) - want) / (1 + np.abs(want))))


def run_nnbuild(out):
    """nnbuild's output for the export in `out` (its input.npy), or (None, why not)."""
    files = [os.path.join(out, "model.json"), os.path.join(out, "weights.safetensors")]
    ours_path = os.path.join(out, "ours.npy")
    result = subprocess.run([BINARY, "infer"] + files + ["--input", os.path.join(out, "input.npy"), "--output", ours_path],
                            capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
        return None, "nnbuild infer exit %d: %s" % (result.returncode, " | ".join(lines[:3]))
    return np.load(ours_path), ""


def varies(expected):
    """'' when Keras's outputs differ across the sample's inputs by far more than the tolerance,
    else why the comparison would prove nothing."""
    spread = float(np.max(np.std(expected, axis=0)))
    scale = float(np.max(np.abs(expected)))
    if not np.all(np.isfinite(expected)) or spread <= 10 * TOLERANCE * (1 + scale):
        return "Keras's outputs hardly differ across inputs (spread %g, scale %g): the test would prove nothing" % (spread, scale)
    return ""


def check(name, size, work):
    """('' when nnbuild matches Keras on `name` at `size`, else why not; the summary of a pass;
    the number of BatchNormalization layers calibrated).

    Two comparisons, both must pass:
    1. The model as Keras ships it (softmax classifier): within 1e-5 of Keras, strictly.
    2. Its logits (the same weights, classifier_activation=None): a softmax over 1000 classes
       scales each class's difference by its probability, so a defect on unlikely classes could
       hide in 1. The logits of a deep float32 network carry rounding error amplified by every
       BatchNormalization's centering (measured on ResNet50 at 32x32: Keras's own float32 logits
       are 3e-4 from its float64 ones), so past 1e-5 they are judged against Keras in float64."""
    logits = build(name, size)
    count = calibrate(logits, batch=CALIBRATION_SMALL if size <= SMALL else CALIBRATION)
    weights = [np.asarray(v.numpy()) for v in logits.weights]
    shipped = build(name, size, classifier_activation="softmax")
    if [tuple(v.shape) for v in shipped.weights] != [w.shape for w in weights]:
        return "the softmax build of %s has other weights than the logits one" % name, "", count
    for variable, value in zip(shipped.weights, weights):
        variable.assign(value)
    sample = keras_export.sample_for(shipped, SAMPLE, seed=2)
    registered = keras_export.registered_layers(BINARY)
    results = {}
    for label, model in (("softmax", shipped), ("logits", logits)):
        out = os.path.join(work, "%s_%d_%s" % (name, size, label))
        try:
            keras_export.export_model(model, out, sample, registered=registered)
        except keras_export.ExportError as error:
            return "export refused: %s" % error, "", count
        expected = np.load(os.path.join(out, "expected.npy"))
        # The logits must vary across inputs (a softmax over 1000 classes may flatten a real
        # variation below the bound, as ConvNeXtTiny's at 224 does).
        why = varies(expected) if label == "logits" else ""
        if why:
            return "%s: %s" % (label, why), "", count
        ours, why = run_nnbuild(out)
        if ours is None:
            return why, "", count
        if ours.shape != expected.shape:
            return "nnbuild's output has shape %s, Keras's %s" % (ours.shape, expected.shape), "", count
        results[label] = (ours, expected)
    ours, expected = results["softmax"]
    shipped_error = relative(ours, expected)
    if shipped_error > TOLERANCE:
        return "the model as shipped (softmax): %.1e from Keras, past %g" % (shipped_error, TOLERANCE), "", count
    summary = "softmax within %.1e of Keras" % shipped_error
    ours, expected = results["logits"]
    against_keras = relative(ours, expected)
    if against_keras <= TOLERANCE:
        return "", "%s; logits within %.1e" % (summary, against_keras), count
    # Past 1e-5 on the logits: float32 rounding, amplified by depth, or a defect? Ask float64.
    exact = float64_reference(name, size, logits, sample)
    keras_error, our_error = relative(expected, exact), relative(ours, exact)
    numbers = "logits %.1e from Keras float32; against Keras in float64, nnbuild %.1e and Keras float32 %.1e" % (against_keras, our_error, keras_error)
    if keras_error > NOISE_LIMIT:
        return "%s; %s: Keras's own float32 rounding is past %g, the network is too ill-conditioned to compare" % (summary, numbers, NOISE_LIMIT), "", count
    if our_error > max(TOLERANCE, NOISE_FACTOR * keras_error):
        return "%s; %s: nnbuild is more than %g times as far from the float64 result as Keras's float32" % (summary, numbers, NOISE_FACTOR), "", count
    return "", "%s; %s (float32 rounding only)" % (summary, numbers), count


def parse(argv):
    """(binary, run every size, only these models) from the command line."""
    run_all = "--all" in argv
    only = []
    if "--only" in argv:
        at = argv.index("--only")
        only = [a for a in argv[at + 1:] if not a.startswith("--")]
        argv = argv[:at] + argv[at + 1 + len(only):]
    positional = [a for a in argv if not a.startswith("--")]
    return os.path.abspath(positional[0] if positional else os.path.join(ROOT, ".build/release/nnbuild")), run_all, only


def main():
    global BINARY, CHANNELS_FIRST
    BINARY, RUN_ALL, ONLY = parse(sys.argv[1:])
    CHANNELS_FIRST = "--channels-first" in sys.argv[1:]
    passed = failed = 0
    cases = []
    for name, default, small in APPLICATIONS:
        if ONLY and name not in ONLY:
            continue
        cases.append((name, small))
        if RUN_ALL and default != small:
            cases.append((name, default))
    with tempfile.TemporaryDirectory() as work:
        for name, size in cases:
            start = time.time()
            try:
                why, summary, count = check(name, size, work)
            except Exception as error:  # a Keras failure is this case's failure, not the whole run's
                why, summary, count = "%s: %s" % (type(error).__name__, str(error).splitlines()[0][:300] if str(error) else ""), "", 0
            seconds = time.time() - start
            if why:
                failed += 1
                print("FAIL %s %dx%d: %s" % (name, size, size, why), flush=True)
            else:
                passed += 1
                print("ok   %s %dx%d: %d BatchNormalization layers calibrated, %s (%.0f s)"
                      % (name, size, size, count, summary, seconds), flush=True)
            import shutil
            for label in ("softmax", "logits"):
                shutil.rmtree(os.path.join(work, "%s_%d_%s" % (name, size, label)), ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
