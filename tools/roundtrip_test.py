#!/usr/bin/env python3
"""Round trip through real Keras: build models, save them as .keras and .h5, export them with
tools/keras_export.py, run them in nnbuild, and compare with Keras's predictions.

    python3 tools/roundtrip_test.py [NNBUILD_BINARY]

Skips (exit 0, with a message) when TensorFlow is not installed; CI need not install it.
Prints one line per case and 'N passed, M failed' last.
"""
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
except ImportError:
    print("SKIPPED: the Keras round trip needs TensorFlow (pip install tensorflow-cpu==2.20.0 safetensors)")
    sys.exit(0)


def models():
    keras.utils.set_random_seed(3)
    yield "cnn.keras", keras.Sequential([keras.Input((12, 12, 3)), L.Conv2D(8, 3, padding="same", activation="relu"), L.MaxPooling2D(),
                                        L.BatchNormalization(), L.Flatten(), L.Dense(4, activation="softmax")])
    yield "masked_bilstm.keras", keras.Sequential([keras.Input((10,), dtype="int32"), L.Embedding(30, 8, mask_zero=True),
                                                  L.Bidirectional(L.LSTM(6, return_sequences=True)), L.Bidirectional(L.GRU(4)),
                                                  L.Dense(3, activation="softmax")])
    yield "gru_series.h5", keras.Sequential([keras.Input((15, 2)), L.GRU(8, return_sequences=True), L.SimpleRNN(5), L.Dense(1)])


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as work:
        for filename, model in models():
            path = os.path.join(work, filename)
            model.save(path)
            out = os.path.join(work, filename.split(".")[0])
            steps = [
                [sys.executable, os.path.join(HERE, "keras_export.py"), path, out, "--sample", "6"],
                [BINARY, "validate", os.path.join(out, "model.json"), os.path.join(out, "weights.safetensors")],
                [BINARY, "compare", os.path.join(out, "model.json"), os.path.join(out, "weights.safetensors"),
                 "--input", os.path.join(out, "input.npy"), "--expected", os.path.join(out, "expected.npy"), "--tolerance", "1e-5"],
            ]
            why = ""
            for step in steps:
                result = subprocess.run(step, capture_output=True, text=True)
                if result.returncode != 0:
                    why = "%s exit %d: %s" % (os.path.basename(step[1]) if step[0] == sys.executable else step[1], result.returncode,
                                              (result.stderr or result.stdout).strip().splitlines()[-1:])
                    break
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
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
