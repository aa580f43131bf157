#!/usr/bin/env python3
"""Bounded load test of `nnbuild serve` on loopback (standard library only).

Starts `nnbuild serve` on a free port for each model and batching setting, sends batch-1
predict requests from C concurrent clients for D seconds, and prints requests/s and p50/p99
latency. Every run stops by itself: --duration seconds per case, --clients threads.

    python3 Benchmarks/serve_load.py [--binary .build/release/nnbuild] [--duration 10] [--clients 8]
"""
import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    "cifar10_cnn": os.path.join(ROOT, "specs", "cifar10_cnn"),
    "text_bilstm": os.path.join(ROOT, "specs", "text_bilstm"),
}


def first_row(model_dir):
    """One input row of the model, from its input.npy, as JSON nested lists (needs no numpy)."""
    path = os.path.join(model_dir, "input.npy")
    with open(path, "rb") as handle:
        data = handle.read()
    header_len = int.from_bytes(data[8:10], "little")
    header = data[10:10 + header_len].decode("latin1")
    descr = re.search(r"'descr':\s*'([^']+)'", header).group(1)
    shape = tuple(int(s) for s in re.search(r"'shape':\s*\(([^)]*)\)", header).group(1).split(",") if s.strip())
    import struct
    code = {"<f4": "f", "<i4": "i", "<f8": "d", "<i8": "q"}[descr]
    size = struct.calcsize(code)
    per_row = 1
    for s in shape[1:]:
        per_row *= s
    body = data[10 + header_len:10 + header_len + per_row * size]
    flat = list(struct.unpack("<%d%s" % (per_row, code), body))

    def nest(values, dims):
        if not dims:
            return values[0]
        step = len(values) // dims[0]
        return [nest(values[i * step:(i + 1) * step], dims[1:]) for i in range(dims[0])]
    return nest(flat, list(shape[1:]))


def start_server(binary, name, path, batching):
    args = [binary, "serve", "--port", "0", "--model", "%s=%s" % (name, path)]
    args += [] if batching else ["--disable-batching"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    match = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not match:
        process.kill()
        sys.exit("server did not start: %r" % line)
    return process, int(match.group(1))


def run_case(binary, name, path, batching, duration, clients):
    process, port = start_server(binary, name, path, batching)
    body = json.dumps({"instances": [first_row(path)]})
    latencies, errors = [], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            connection.request("POST", "/v1/models/%s:predict" % name, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                with lock:
                    errors[0] += 1
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")
    return {"model": name, "batching": batching, "requests": len(latencies), "errors": errors[0],
            "rps": len(latencies) / elapsed, "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "nnbuild"))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per case (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    args = parser.parse_args()
    print("%-12s %-9s %9s %7s %10s %9s %9s" % ("model", "batching", "requests", "errors", "req/s", "p50 ms", "p99 ms"))
    for name, path in MODELS.items():
        for batching in (False, True):
            r = run_case(args.binary, name, path, batching, args.duration, args.clients)
            print("%-12s %-9s %9d %7d %10.1f %9.2f %9.2f" % (r["model"], "on" if batching else "off", r["requests"],
                                                            r["errors"], r["rps"], r["p50_ms"], r["p99_ms"]))


if __name__ == "__main__":
    main()
