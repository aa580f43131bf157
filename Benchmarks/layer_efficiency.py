#!/usr/bin/env python3
"""How close nnbuild's convolution and Dense layers come to the core's single-precision FMA peak.

Issue 18's target: the largest convolution layers of cnn_cifar and ResNet50 reach at least 70% of
the machine's measured peak. This script measures both sides in one run on one thread:
- the peak: Benchmarks/fma_peak.c (12 FMA chains, AVX-512 or AVX2), built with cc and run here;
- each layer: `nnbuild bench --profile --threads 1` (median ms per step; a layer fused with its
  BatchNormalization, Add and activation is one step, timed whole), and its multiply-adds from
  the model's JSON (Conv2D: output pixels x kernel taps x input channels per group x filters;
  Dense: inputs x units per row), so a layer run as Winograd shows its effective rate.

Usage (the workloads come from Benchmarks/workloads.py's cache, as run_benchmarks.py makes them):
  python3 Benchmarks/layer_efficiency.py [--workloads cnn_cifar resnet50] [--batches 1 16]
         [--top 5] [--seconds 2] [--nnbuild .build/release/nnbuild] [--out Benchmarks/layer_efficiency.md]
Prints, per workload and batch, the layers with the most multiply-adds: ms, GFLOP/s and % of peak,
with the CPU, its kernel path and the load average. Standard library only (no TensorFlow).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import machine

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.expanduser("~/.cache/nnbuild-bench")


def fail(message):
    print(f"layer_efficiency: {message}", file=sys.stderr)
    sys.exit(1)


def peak():
    """(GFLOP/s of one core's FMA peak, the vector width's name), from fma_peak.c."""
    with tempfile.TemporaryDirectory() as work:
        binary = os.path.join(work, "fma_peak")
        for compiler in ("cc", "gcc", "clang"):
            try:
                built = subprocess.run([compiler, "-O2", os.path.join(HERE, "fma_peak.c"), "-o", binary],
                                       capture_output=True, text=True, timeout=120)
            except OSError:
                continue
            if built.returncode == 0:
                break
        else:
            fail("no C compiler (cc, gcc or clang) could build Benchmarks/fma_peak.c")
        words = subprocess.run([binary], capture_output=True, text=True, timeout=120).stdout.split()
        if len(words) != 2:
            fail(f"fma_peak printed {' '.join(words)!r}, expected 'GFLOPS WIDTH'")
        return float(words[0]), words[1]


def workload_files(name):
    """model.json and weights.safetensors of the newest cached export of workload `name`."""
    if not os.path.isdir(CACHE):
        fail(f"{CACHE} does not exist: run Benchmarks/run_benchmarks.py --only {name} once to export the workloads")
    matches = sorted((d for d in os.listdir(CACHE) if d.startswith(name + "-")),
                     key=lambda d: os.path.getmtime(os.path.join(CACHE, d)), reverse=True)
    for directory in matches:
        model, weights = (os.path.join(CACHE, directory, f) for f in ("model.json", "weights.safetensors"))
        if os.path.isfile(model) and os.path.isfile(weights):
            return model, weights
    fail(f"no cached export of {name} in {CACHE}: run Benchmarks/run_benchmarks.py --only {name} once")


def pair(value):
    return list(value) if isinstance(value, (list, tuple)) else [value, value]


def multiply_adds(model_path):
    """{layer name: (class name, multiply-adds per batch row)} for the Conv2D and Dense layers."""
    with open(model_path) as handle:
        spec = json.load(handle)
    counts = {}
    for layer in spec["config"]["layers"]:
        kind, config = layer["class_name"], layer["config"]
        shape = (layer.get("build_config") or {}).get("input_shape")
        if not shape:
            continue
        if kind == "Conv2D" and len(shape) == 4:
            (kh, kw), (sh, sw), (dh, dw) = pair(config["kernel_size"]), pair(config["strides"]), pair(config.get("dilation_rate", 1))
            height, width, channels = shape[1], shape[2], shape[3]
            if config["padding"] == "same":
                out_h, out_w = -(-height // sh), -(-width // sw)
            else:
                out_h, out_w = (height - (kh - 1) * dh - 1) // sh + 1, (width - (kw - 1) * dw - 1) // sw + 1
            groups = config.get("groups", 1) or 1
            counts[config["name"]] = (kind, out_h * out_w * kh * kw * (channels // groups) * config["filters"])
        elif kind == "Dense":
            rows = 1
            for extent in shape[1:-1]:
                rows *= extent or 1
            counts[config["name"]] = (kind, rows * shape[-1] * config["units"])
    return counts


STEP = re.compile(r"^\s{4}(\S+) \((\w+)\)(?: \+ .*?)?\s+([0-9.]+)\s+[0-9.]+%$")


def profile(nnbuild, model, weights, batch, seconds):
    """{first layer of each step: median ms} and the kernel path, from `nnbuild bench --profile`."""
    result = subprocess.run([nnbuild, "bench", model, weights, "--batch", str(batch), "--threads", "1",
                             "--seconds", str(seconds), "--profile"], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        fail(f"nnbuild bench failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    steps, path = {}, "unknown"
    for line in result.stdout.splitlines():
        if line.startswith("kernels:"):
            path = line.split()[1]
        match = STEP.match(line)
        if match:
            steps[match.group(1)] = float(match.group(3))
    if not steps:
        fail("nnbuild bench --profile printed no per-layer lines")
    return steps, path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["cnn_cifar", "resnet50"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--top", type=int, default=5, help="layers shown per workload and batch, by multiply-adds")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--nnbuild", default=os.path.join(ROOT, ".build", "release", "nnbuild"))
    parser.add_argument("--out", help="also write the table as Markdown here")
    args = parser.parse_args()
    if not os.access(args.nnbuild, os.X_OK):
        fail(f"{args.nnbuild} is not an executable: build it with `swift build -c release`")
    cpu = machine.cpu()
    load_before = os.getloadavg()
    gflops_peak, width = peak()
    lines = [f"CPU: {cpu['model']} ({cpu['vector']}), one thread. FMA peak (Benchmarks/fma_peak.c, {width}): "
             f"{gflops_peak:.1f} GFLOP/s. Load average at start {load_before[0]:.2f}. {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
             "", "| workload | batch | layer (step) | multiply-adds per row | ms | GFLOP/s | % of peak |", "|---|---:|---|---:|---:|---:|---:|"]
    for name in args.workloads:
        model, weights = workload_files(name)
        counts = multiply_adds(model)
        largest = sorted(counts.items(), key=lambda item: -item[1][1])[: args.top]
        for batch in args.batches:
            steps, path = profile(args.nnbuild, model, weights, batch, args.seconds)
            for layer, (kind, macs) in largest:
                if layer not in steps:
                    lines.append(f"| {name} | {batch} | {layer} ({kind}) | {macs:,} | not a step's first layer | | |")
                    continue
                ms = steps[layer]
                rate = 2.0 * macs * batch / (ms * 1e-3) / 1e9 if ms > 0 else float("inf")
                lines.append(f"| {name} | {batch} | {layer} ({kind}, {path}) | {macs:,} | {ms:.3f} | {rate:.1f} | {100 * rate / gflops_peak:.0f}% |")
    lines.append("")
    lines.append("Multiply-adds are the direct convolution's: a 3×3 layer at stride 1 with 16 or more channels runs as "
                 "Winograd F(2×2, 3×3) with 2.25× fewer multiplies, so its effective rate can pass 100% of the peak.")
    lines.append(f"Load average at end {os.getloadavg()[0]:.2f}.")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
