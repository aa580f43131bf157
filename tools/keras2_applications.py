#!/usr/bin/env python3
"""tf-keras (Keras 2) applications end to end: builds each model of tf_keras.applications with
random weights (`weights=None`: nothing is downloaded), saves it as tf-keras writes a legacy `.h5`,
runs that file with `nnbuild infer` (release binary) and compares with tf-keras's own predictions.

    pip install tensorflow-cpu==2.20.0 tf-keras==2.20.* h5py
    python3 tools/keras2_applications.py [--nnbuild BINARY] [--only NAME ...]

Skips without tf-keras: prints 'SKIPPED: <why>' and '0 passed, 0 failed, 1 skipped' and exits 0
(./test.sh counts it as skipped). Prints one line per model and 'N passed, M failed' last.

Keras 2 files differ from Keras 3's where it matters to a loader: variables named otherwise
(DepthwiseConv2D's `depthwise_kernel`, LayerScale's `gamma`), layer names holding `/`
(DenseNet's `conv1/conv`, MobileNetV3's `Conv/BatchNorm`), and TensorFlow functions applied to
tensors saved as TFOpLambda layers (MobileNetV3's hard sigmoid, RegNet's and ConvNeXt's sums),
and classes registered under tf-keras's default package (InceptionResNetV2's
`Custom>CustomScaleLayer`). This runs the applications that use them, each at a small input size.

Weights are drawn N(0, 0.05), BatchNormalization's variances from [0.5, 1.5], the input from
[0, 255) as the applications expect; each model is compared on its logits
(`classifier_activation=None`): max |ours - keras| / (1 + |keras|) <= 1e-5 passes. Past it, as in
tools/applications_test.py, both are measured against the same model run by tf-keras in float64,
and the model passes only when nnbuild is at most 3 times as far from it as tf-keras's float32 is
and that is under 1e-3: deep float32 networks with random weights carry rounding error of that
order in their logits (InceptionV3 at 75x75: tf-keras's float32 8.5e-6 from float64, nnbuild's
7.9e-6; InceptionResNetV2 at 75x75: 1.3e-4 and 1.7e-4), which no float32 implementation can match to 1e-5 against another's.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name: (constructor in tf_keras.applications, input size)
MODELS = {
    "MobileNetV2": ("MobileNetV2", 96), "MobileNetV3Small": ("MobileNetV3Small", 96),
    "MobileNetV3Large": ("MobileNetV3Large", 96), "EfficientNetB0": ("EfficientNetB0", 96),
    "EfficientNetV2B0": ("EfficientNetV2B0", 64), "ResNet50V2": ("ResNet50V2", 64),
    "DenseNet121": ("DenseNet121", 64), "Xception": ("Xception", 71), "InceptionV3": ("InceptionV3", 75),
    "NASNetMobile": ("NASNetMobile", 96), "ConvNeXtTiny": ("ConvNeXtTiny", 64), "RegNetX002": ("RegNetX002", 64),
    "InceptionResNetV2": ("InceptionResNetV2", 75),
}


def relative(got, want):
    return float(np.max(np.abs(np.asarray(got, "float64") - want) / (1 + np.abs(want))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nnbuild", default=os.path.join(ROOT, ".build", "release", "nnbuild"))
    parser.add_argument("--only", nargs="+", metavar="NAME", help="models to run (default: all): " + ", ".join(MODELS))
    args = parser.parse_args()
    unknown = [name for name in args.only or [] if name not in MODELS]
    if unknown:
        parser.error("unknown model %s; expected one of %s" % (", ".join(unknown), ", ".join(MODELS)))
    if not os.path.exists(args.nnbuild):
        parser.error("no nnbuild binary at %s; build it with: swift build -c release --product nnbuild" % args.nnbuild)
    try:
        import tf_keras
    except ImportError as error:
        # As tools/applications_test.py: test.sh counts this as skipped, not passed.
        print("SKIPPED: the tf-keras applications test needs tf-keras, which is not installed (%s); "
              "pip install tensorflow-cpu==2.20.0 tf-keras==2.20.* h5py" % error)
        print("0 passed, 0 failed, 1 skipped")
        sys.exit(0)

    failures = 0
    with tempfile.TemporaryDirectory() as work:
        for name in args.only or list(MODELS):
            constructor, size = MODELS[name]
            tf_keras.backend.clear_session()
            tf_keras.utils.set_random_seed(1)
            tf_keras.backend.set_floatx("float32")
            model = getattr(tf_keras.applications, constructor)(weights=None, input_shape=(size, size, 3),
                                                                 classifier_activation=None)
            rng = np.random.default_rng(0)
            values = []
            for variable in model.weights:
                if "variance" in variable.name:
                    variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
                elif "count" not in variable.name:
                    variable.assign(rng.normal(0, 0.05, variable.shape).astype("float32"))
                values.append(variable.numpy())
            x = rng.uniform(0, 255, (2, size, size, 3)).astype("float32")
            expected = model.predict(x, verbose=0)
            file, inputs, out = (os.path.join(work, name + suffix) for suffix in (".h5", ".x.npy", ".out.npy"))
            model.save(file)
            np.save(inputs, x)
            result = subprocess.run([args.nnbuild, "infer", file, "--input", inputs, "-o", out], capture_output=True, text=True)
            if result.returncode != 0:
                failures += 1
                print("%-18s FAIL  %s" % (name, result.stderr.strip().splitlines()[0] if result.stderr.strip() else "exit %d" % result.returncode))
                continue
            got = np.load(out)
            error = relative(got, expected) if got.shape == expected.shape else float("inf")
            ok, note = error <= 1e-5, ""
            if not ok and got.shape == expected.shape:
                # The same weights in float64: who is nearer the exact result?
                tf_keras.backend.clear_session()
                tf_keras.backend.set_floatx("float64")
                exact = getattr(tf_keras.applications, constructor)(weights=None, input_shape=(size, size, 3),
                                                                     classifier_activation=None)
                for variable, value in zip(exact.weights, values):
                    variable.assign(value.astype("float64"))
                reference = exact.predict(x.astype("float64"), verbose=0)
                tf_keras.backend.set_floatx("float32")
                theirs, ours = relative(expected, reference), relative(got, reference)
                ok = ours <= 3 * theirs and theirs < 1e-3
                note = "; against float64: tf-keras float32 %.2e, nnbuild %.2e" % (theirs, ours)
            failures += not ok
            print("%-18s %s  %dx%d  max rel err %.2e%s  (logits span %.2f)" % (name, "pass" if ok else "FAIL", size, size, error, note,
                                                                          float(np.ptp(expected))), flush=True)
    print("%d passed, %d failed" % (len(args.only or MODELS) - failures, failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
