#!/usr/bin/env python3
"""Compares a JSON or .npy array with Keras's expected .npy: max |x - keras| / (1 + |keras|).

    python3 tools/check_output.py OURS EXPECTED [--tol 1e-5] [--label NAME]
Prints one line and '1 passed, 0 failed' or '0 passed, 1 failed'; exits non-zero on failure.
"""
import argparse
import json
import sys

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("ours")
ap.add_argument("expected")
ap.add_argument("--tol", type=float, default=1e-5)
ap.add_argument("--label", default="output")
a = ap.parse_args()
raw = open(a.ours, "rb").read()
ours = np.load(a.ours) if raw[:6] == b"\x93NUMPY" else np.array(json.loads(raw), dtype=np.float64)
expected = np.load(a.expected).astype(np.float64)
ok = ours.shape == expected.shape
err = float(np.max(np.abs(ours - expected) / (1 + np.abs(expected)))) if ok else float("inf")
ok = ok and err <= a.tol
print("%s %s: max relative error %.3g (shape %s)" % ("ok  " if ok else "FAIL", a.label, err, ours.shape))
print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
sys.exit(0 if ok else 1)
