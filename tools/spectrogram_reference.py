#!/usr/bin/env python3
"""MelSpectrogram against a float64 numpy reference, where Keras's float32 cannot be the judge.

    python3 tools/spectrogram_reference.py [NNBUILD_BINARY]

Keras computes MelSpectrogram's transform in float32, and in a bin 40 dB below the loudest its
own rounding is already 4e-5 from the float64 result (at Keras's defaults, top_db 80, each of this
check's signals run alone: 1.1e-4), so the graph fixture `mel_spectrogram` keeps to top_db 20. This check covers the rest: hand-written
specs at Keras's defaults (16 kHz, fft_length 2048, stride 512, 128 mel bins, top_db 80) and
variants (fft_lengths of no power of two, 1000 and the prime 4093, Hamming, mag_exp 1, power without decibels), each run
by `nnbuild infer` on a batch of three different signals and compared with numpy's float64 FFT
and Keras's formulas (mel_spectrogram.py, tf.signal.stft), the top_db floor per sample, within
1e-6 relative (1 + |reference|). Needs numpy only. Prints one line per case and
"N passed, M failed".
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(HERE), ".build/release/nnbuild")
TOLERANCE = 1e-6

CASES = {
    "keras_defaults": dict(),
    "odd_fft_hamming": dict(fft_length=1000, sequence_length=800, sequence_stride=400, window="hamming", num_mel_bins=64,
                            min_freq=60.0, max_freq=7000.0),
    "prime_fft_length": dict(fft_length=4093, sequence_stride=2000, num_mel_bins=40),
    "magnitude_power": dict(fft_length=512, sequence_stride=256, mag_exp=1.0, power_to_db=False, num_mel_bins=32),
    "reference_level": dict(fft_length=256, sequence_stride=128, window=None, num_mel_bins=20, ref_power=0.5, top_db=60.0,
                            min_power=1e-8),
}


def config(name, options):
    full = dict(name=name, fft_length=2048, sequence_stride=512, sequence_length=None, window="hann", sampling_rate=16000,
                num_mel_bins=128, min_freq=20.0, max_freq=None, power_to_db=True, top_db=80.0, mag_exp=2.0, min_power=1e-10,
                ref_power=1.0)
    full.update(options)
    full["sequence_length"] = full["sequence_length"] or full["fft_length"]
    full["max_freq"] = full["max_freq"] or int(full["sampling_rate"] / 2)
    return full


def reference(x, c):
    """Keras's MelSpectrogram in float64: x (batch, time) -> (batch, mel bins, frames)."""
    n, step, length = c["fft_length"], c["sequence_stride"], c["sequence_length"]
    if c["window"] == "hann":
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)
    elif c["window"] == "hamming":
        window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(length) / length)
    else:
        window = np.ones(length)
    before = (n - length) // 2
    window = np.pad(window, (before, n - length - before))

    def mel(hertz):
        return 1127.0 * np.log(1.0 + hertz / 700.0)

    bins, bands, rate = n // 2 + 1, c["num_mel_bins"], c["sampling_rate"]
    linear = mel(np.linspace(0, rate / 2, bins)[1:])[:, None]
    edges = np.linspace(mel(c["min_freq"]), mel(c["max_freq"]), bands + 2)
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    filters = np.pad(np.maximum(0, np.minimum((linear - lower) / (center - lower), (upper - linear) / (upper - center))), ((1, 0), (0, 0)))
    out = []
    for signal in x:
        padded = np.pad(signal, (n // 2, n // 2), mode="reflect")
        frames = np.stack([padded[i * step:i * step + n] * window for i in range(1 + (len(padded) - n) // step)])
        spectrum = np.abs(np.fft.rfft(frames, n=n)) ** c["mag_exp"]
        mels = spectrum @ filters
        if c["power_to_db"]:
            mels = 10 * np.log10(np.maximum(mels, c["min_power"])) - 10 * np.log10(max(abs(c["ref_power"]), c["min_power"]))
            mels = np.maximum(mels, mels.max() - c["top_db"])
        out.append(mels.T)
    return np.stack(out)


def signals(seconds=1.0, rate=16000, seed=0):
    """Three different signals: tones with a rising one and noise, a chirp, mostly silence with a click."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    a = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 3150 * t) * t + 0.01 * rng.standard_normal(t.size)
    b = 0.3 * np.sin(2 * np.pi * (100 + 2000 * t) * t)
    c = 1e-3 * rng.standard_normal(t.size)
    c[t.size // 2:t.size // 2 + 40] += 0.8
    return np.stack([a, b, c]).astype(np.float32)


def main():
    passed = failed = 0
    x = signals()
    with tempfile.TemporaryDirectory() as work:
        weights = os.path.join(work, "empty.safetensors")
        header = b"{}" + b" " * 6
        with open(weights, "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header)
        batch = os.path.join(work, "signals.npy")
        np.save(batch, x)
        for name, options in CASES.items():
            c = config(name, options)
            spec = {"class_name": "Sequential", "config": {"name": name, "layers": [
                {"class_name": "InputLayer", "config": {"name": "audio", "batch_shape": [None, x.shape[1]]}},
                {"class_name": "MelSpectrogram", "config": c}]}}
            spec_path, out_path = os.path.join(work, name + ".json"), os.path.join(work, name + ".npy")
            with open(spec_path, "w") as f:
                json.dump(spec, f)
            result = subprocess.run([BINARY, "infer", spec_path, weights, "--input", batch, "--output", out_path],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                failed += 1
                print("FAIL %s: nnbuild infer exited %d: %s" % (name, result.returncode, result.stderr.strip()[-300:]))
                continue
            got, want = np.load(out_path).astype(np.float64), reference(x.astype(np.float64), c)
            if got.shape != want.shape:
                failed += 1
                print("FAIL %s: shape %s, expected %s" % (name, got.shape, want.shape))
                continue
            error = float(np.max(np.abs(got - want) / (1 + np.abs(want))))
            if error <= TOLERANCE:
                passed += 1
                print("ok   %s: %s within %.1e of float64" % (name, "x".join(map(str, got.shape)), error))
            else:
                failed += 1
                print("FAIL %s: %.1e from float64, past %.0e" % (name, error, TOLERANCE))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
