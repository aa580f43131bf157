#!/usr/bin/env python3
"""Single layers of MobileNetV2 and cnn_cifar, timed in nnbuild and in LiteRT (XNNPACK) at batch 1.

Where a whole model loses to a peer, this says which layer shapes lose: each case is a Keras model
of one convolution (with its BatchNormalization and ReLU6 as MobileNetV2 has them, which LiteRT's
converter folds and nnbuild fuses), or of an expansion and its depthwise layer (the `block` cases,
one step of nnbuild's profile), exported with tools/keras_export.py and converted with
TFLiteConverter. LiteRT: the best of 3 one-second rounds of invoke(); nnbuild: `nnbuild bench`'s
median latency over 2 s (whole calls: the output's allocation included, the same input each call).

    python3 Benchmarks/layer_peers.py                      # every case, one thread
    python3 Benchmarks/layer_peers.py --threads 2 expand16x96 dw96s2

Needs: pip install tensorflow-cpu==2.20.0 ai-edge-litert safetensors, and a release build
(swift build -c release --product nnbuild).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# name: (input shape, what follows the input; the MobileNetV2 layer it stands for)
CASES = {
    "expand16x96": ((112, 112, 16), "conv 1x1 96, BN, ReLU6: block_1_expand"),
    "expand24x144": ((56, 56, 24), "conv 1x1 144, BN, ReLU6: block_2_expand"),
    "expand384s14": ((14, 14, 64), "conv 1x1 384, BN, ReLU6: block_7_expand"),
    "expand96x576": ((14, 14, 96), "conv 1x1 576, BN, ReLU6: block_11_expand"),
    "expand160x960": ((7, 7, 160), "conv 1x1 960, BN, ReLU6: block_14_expand"),
    "conv_1": ((7, 7, 320), "conv 1x1 1280, BN, ReLU6: Conv_1"),
    "project144x24": ((56, 56, 144), "conv 1x1 24, BN: block_2_project"),
    "project576x96": ((14, 14, 576), "conv 1x1 96, BN: block_11_project"),
    "project960x320": ((7, 7, 960), "conv 1x1 320, BN: block_16_project"),
    "project32x16": ((112, 112, 32), "conv 1x1 16, BN: expanded_conv_project"),
    "dw144s1": ((56, 56, 144), "depthwise 3x3, BN, ReLU6: block_2_depthwise"),
    "dw32s1": ((112, 112, 32), "depthwise 3x3, BN, ReLU6: expanded_conv_depthwise"),
    "dw96s2": ((112, 112, 96), "zero padding, depthwise 3x3 stride 2, BN, ReLU6: block_1_depthwise"),
    "dw384s1": ((14, 14, 384), "depthwise 3x3, BN, ReLU6: block_7_depthwise"),
    "dw960s1": ((7, 7, 960), "depthwise 3x3, BN, ReLU6: block_14_depthwise"),
    "conv1": ((224, 224, 3), "conv 3x3 stride 2 32, BN, ReLU6: Conv1"),
    "cifar_stage1": ((32, 32, 3), "conv 3x3 32, ReLU, max pool 2: cnn_cifar's first stage"),
    # An expansion and the depthwise layer after it, which nnbuild runs as one step in bands
    # (PointwiseDepthwise) and LiteRT as two operators: the steps of the whole model's profile.
    "block1": ((112, 112, 16), "expand 96 + zero padding + depthwise stride 2: block_1"),
    "block2": ((56, 56, 24), "expand 144 + depthwise: block_2"),
    "block7": ((14, 14, 64), "expand 384 + depthwise: block_7"),
    "block14": ((7, 7, 160), "expand 960 + depthwise: block_14"),
}


def build(name):
    import keras
    import numpy as np
    layers = keras.layers
    shape, _ = CASES[name]
    x = inputs = keras.Input(shape)

    def normalized(y, relu6=True):
        y = layers.BatchNormalization()(y)
        return layers.ReLU(6.0)(y) if relu6 else y

    if name.startswith("block"):
        x = normalized(layers.Conv2D({"block1": 96, "block2": 144, "block7": 384, "block14": 960}[name], 1, use_bias=False)(x))
        if name == "block1":
            x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
            x = normalized(layers.DepthwiseConv2D(3, strides=2, use_bias=False)(x))
        else:
            x = normalized(layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x))
    elif name == "conv_1":
        x = normalized(layers.Conv2D(1280, 1, use_bias=False)(x))
    elif name.startswith("expand"):
        x = normalized(layers.Conv2D({"expand16x96": 96, "expand24x144": 144, "expand384s14": 384, "expand96x576": 576,
                                              "expand160x960": 960}[name], 1, use_bias=False)(x))
    elif name.startswith("project"):
        x = normalized(layers.Conv2D({"project144x24": 24, "project32x16": 16, "project576x96": 96,
                                                "project960x320": 320}[name], 1, use_bias=False)(x), relu6=False)
    elif name == "dw96s2":
        x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
        x = normalized(layers.DepthwiseConv2D(3, strides=2, use_bias=False)(x))
    elif name.startswith("dw"):
        x = normalized(layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x))
    elif name == "conv1":
        x = normalized(layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(x))
    elif name == "cifar_stage1":
        x = layers.MaxPooling2D()(layers.ReLU()(layers.Conv2D(32, 3, padding="same")(x)))
    model = keras.Model(inputs, x)
    random = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([random.uniform(0.5, 1.5, c).astype("f"), random.uniform(-0.5, 0.5, c).astype("f"),
                               random.uniform(-0.5, 0.5, c).astype("f"), random.uniform(0.5, 1.5, c).astype("f")])
    return model


def litert_ms(model, threads):
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert(), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.random.rand(*detail["shape"]).astype("f"))
    for _ in range(5):
        interpreter.invoke()
    best = float("inf")
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            interpreter.invoke()
            count += 1
        best = min(best, (time.perf_counter() - start) / count * 1e3)
    return best


def nnbuild_ms(binary, directory, threads):
    result = subprocess.run([binary, "bench", os.path.join(directory, "model.json"), os.path.join(directory, "weights.safetensors"),
                             "--batch", "1", "--seconds", "2", "--threads", str(threads), "--json"],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout[result.stdout.index("["):])[0]["p50_ms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="cases to run (default: all): " + ", ".join(CASES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nnbuild", default=os.path.join(ROOT, ".build", "release", "nnbuild"))
    args = parser.parse_args()
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        parser.error("unknown case %s; expected one of %s" % (", ".join(unknown), ", ".join(CASES)))
    from keras_export import export_model
    print("%-14s %-68s %10s %10s %8s" % ("case", "layers", "LiteRT ms", "nnbuild ms", "LiteRT/nnbuild"))
    with tempfile.TemporaryDirectory() as work:
        for name in args.cases or list(CASES):
            model = build(name)
            directory = os.path.join(work, name)
            export_model(model, directory)
            lite, ours = litert_ms(model, args.threads), nnbuild_ms(args.nnbuild, directory, args.threads)
            print("%-14s %-68s %10.4f %10.4f %7.2fx" % (name, CASES[name][1], lite, ours, lite / ours), flush=True)


if __name__ == "__main__":
    main()
