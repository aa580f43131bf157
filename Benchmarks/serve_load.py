#!/usr/bin/env python3
"""Bounded load test on loopback (issue 17): `nnbuild serve` with dynamic batching off and on,
beside ONNX Runtime behind a minimal Python HTTP server, and TF Serving's own model server when
it is installed, all speaking TF Serving's REST predict API, in one run.

    python3 Benchmarks/serve_load.py [--duration 10] [--clients 8] [--only cnn_cifar bilstm_text]

The models are run_benchmarks' workloads cnn_cifar and bilstm_text, built with the same seeds and
taken from the same cache (--cache): the nnbuild export (model.json and weights.safetensors, a
directory `nnbuild serve` takes) and the tf2onnx conversion. Every server gets the same request,
one row ({"instances": [row]}, batch 1) from --clients concurrent keep-alive clients for --duration
seconds, and reports requests/s, p50 and p99 latency and errors (a status other than 200, or a
failed connection). Before the load, each server's answer to that request is compared with the
first server's and with Keras's model.predict (max |x - y| / (1 + |y|)).

- nnbuild: `nnbuild serve --port 0 --model NAME=DIR [--disable-batching]` (--binary).
- ONNX Runtime: Benchmarks/ort_http_server.py, one process, ThreadingHTTPServer; skipped with a
  note when onnxruntime or tf2onnx is not installed.
- TF Serving: `tensorflow_model_server` on the model's SavedModel (model.export), only when that
  binary is on PATH. It is on neither PyPI nor Debian; the run checks both (apt-cache policy
  tensorflow-model-server, pip index versions tensorflow-model-server) and says what it found.

Written: --out (Benchmarks/serve_results.json, every run kept) and a Markdown table beside it
(.md), each run with CPU, load average at start and end, and date.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import machine  # noqa: E402

DEFAULT_WORKLOADS = ["cnn_cifar", "bilstm_text"]
DASH = "—"


def fail(message):
    print("serve_load: %s" % message, file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------- the servers

class Server:
    """A running server process: its port, and how to stop it (by its own pid)."""

    def __init__(self, label, process, port, path, cleanup=None):
        self.label, self.process, self.port, self.path, self.cleanup = label, process, port, path, cleanup

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.cleanup:
            self.cleanup()


def read_listening_line(process, what, timeout=300):
    """The port from the server's 'listening on http://127.0.0.1:PORT' line, or raises RuntimeError."""
    import re

    found = {}

    def reader():
        for line in process.stdout:
            match = re.search(r"127\.0\.0\.1:(\d+)", line)
            if match:
                found["port"] = int(match.group(1))
                return
            found.setdefault("lines", []).append(line.strip())
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    if "port" not in found:
        process.kill()
        _, err = process.communicate(timeout=30)
        raise RuntimeError("%s did not start: %s" % (what, (err or " ".join(found.get("lines", [])) or "no output").strip()[-500:]))
    return found["port"]


def start_nnbuild(binary, name, directory, batching):
    args = [binary, "serve", "--port", "0", "--model", "%s=%s" % (name, directory)]
    if not batching:
        args.append("--disable-batching")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = read_listening_line(process, "nnbuild serve")
    return Server("nnbuild serve, batching %s" % ("on" if batching else "off"), process, port, "/v1/models/%s:predict" % name)


def start_ort(name, onnx_path):
    args = [sys.executable, os.path.join(HERE, "ort_http_server.py"), "--port", "0", "--model", "%s=%s" % (name, onnx_path)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = read_listening_line(process, "ort_http_server.py")
    return Server("ONNX Runtime (Python ThreadingHTTPServer)", process, port, "/v1/models/%s:predict" % name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tf_serving(binary, name, model, work):
    """tensorflow_model_server on `model` exported as a SavedModel; ready once its status says AVAILABLE."""
    base = os.path.join(work, "tfserving", name)
    shutil.rmtree(base, ignore_errors=True)
    model.export(os.path.join(base, "1"), format="tf_saved_model", verbose=False)
    port, grpc = free_port(), free_port()
    process = subprocess.Popen([binary, "--port=%d" % grpc, "--rest_api_port=%d" % port, "--rest_api_num_threads=%d" % (os.cpu_count() * 2),
                                "--model_name=%s" % name, "--model_base_path=%s" % base],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("tensorflow_model_server exited %d: %s" % (process.returncode, process.stderr.read()[-500:]))
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/v1/models/%s" % name)
            status = connection.getresponse()
            if status.status == 200 and b"AVAILABLE" in status.read():
                return Server("TF Serving", process, port, "/v1/models/%s:predict" % name)
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    process.wait()
    raise RuntimeError("tensorflow_model_server did not make %s AVAILABLE within 120 s" % name)


def tf_serving_status():
    """(path of tensorflow_model_server or None, what the checks found)."""
    binary = shutil.which("tensorflow_model_server")
    if binary:
        return binary, "tensorflow_model_server found at %s" % binary
    found = []
    try:
        policy = subprocess.run(["apt-cache", "policy", "tensorflow-model-server"], capture_output=True, text=True, timeout=60).stdout
        candidate = [line.split(":", 1)[1].strip() for line in policy.splitlines() if line.strip().startswith("Candidate:")]
        found.append("apt-cache policy tensorflow-model-server: %s" % (
            "candidate %s (install it with apt-get install tensorflow-model-server)" % candidate[0] if candidate and candidate[0] != "(none)"
            else "no such package in the configured Debian sources"))
    except (OSError, subprocess.SubprocessError) as error:
        found.append("apt-cache policy could not run (%s)" % error)
    try:
        pip = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "tensorflow-model-server"],
                             capture_output=True, text=True, timeout=60)
        found.append("pip: %s" % ("tensorflow-model-server is on the index: %s" % pip.stdout.strip().splitlines()[0] if pip.returncode == 0
                                  else "no distribution named tensorflow-model-server on the index (tensorflow-serving-api is only a client)"))
    except (OSError, subprocess.SubprocessError) as error:
        found.append("pip index could not run (%s)" % error)
    return None, "TF Serving skipped: tensorflow_model_server is not installed; " + "; ".join(found)


# ---------------------------------------------------------------- load

def predict(port, path, body, timeout=60):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError("status %d: %s" % (response.status, payload[:300].decode(errors="replace")))
    return json.loads(payload)["predictions"]


def load(server, body, duration, clients):
    latencies, errors = [], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client():
        connection, mine, failed = None, [], 0
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                connection.request("POST", server.path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failed += 1
                    continue
                mine.append(time.perf_counter() - start)
            except (OSError, http.client.HTTPException):
                failed += 1
                connection = None
                time.sleep(0.01)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else None
    return {"requests": len(latencies), "errors": errors[0], "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def rel_err(got, want):
    import numpy as np

    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    return float(np.max(np.abs(got - want) / (1.0 + np.abs(want))))


# ---------------------------------------------------------------- main

def prepare(name, args, peers):
    """(the Keras model, its cache directory with the nnbuild export, the ONNX file or None, notes)."""
    import run_benchmarks
    import workloads
    from keras_export import export_model

    model = workloads.build(name, args.seed)
    cache = os.path.join(args.cache, workloads.fingerprint(name, args.seed))
    os.makedirs(cache, exist_ok=True)
    if not all(os.path.exists(os.path.join(cache, f)) for f in ("model.json", "weights.safetensors")):
        export_model(model, cache)
    notes, onnx = [], None
    if peers.ort is not None:
        onnx = run_benchmarks.cached(os.path.join(cache, "model.onnx"), lambda p: run_benchmarks.to_onnx(peers, model, p), "ONNX conversion", notes)
    return model, cache, onnx, notes


def markdown(runs):
    out = []
    for run in runs[::-1]:
        out.append("### %s (%s), %s: %d clients, %s s per server, batch 1" % (run["cpu"]["model"], run["cpu"]["vector"].upper(), run["date"],
                                                                             run["clients"], run["duration"]))
        out.append("")
        out.append("Load average (1, 5, 15 min) at start → end: %s → %s. %s" % (run["load_average_start"], run["load_average_end"], run["tf_serving"]))
        out.append("")
        out.append("| model | server | requests | errors | requests/s | p50 ms | p99 ms | first answer vs the first server's | vs Keras |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in run["rows"]:
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["workload"], r["server"], r.get("requests", DASH), r.get("errors", DASH),
                DASH if r.get("requests_per_s") is None else "%.1f" % r["requests_per_s"],
                DASH if r.get("p50_ms") is None else "%.2f" % r["p50_ms"], DASH if r.get("p99_ms") is None else "%.2f" % r["p99_ms"],
                DASH if r.get("vs_reference") is None else "%.1e" % r["vs_reference"],
                DASH if r.get("vs_keras") is None else "%.1e" % r["vs_keras"]))
        notes = [n for n in run["notes"]] + ["%s, %s: %s" % (r["workload"], r["server"], r["note"]) for r in run["rows"] if r.get("note")]
        if notes:
            out.append("")
            out += ["- %s" % n for n in notes]
        out.append("")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="See the module docstring for details.")
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "nnbuild"), help="the nnbuild release binary")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per server and model (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--only", nargs="+", default=DEFAULT_WORKLOADS, metavar="WORKLOAD", help="workloads (default: cnn_cifar bilstm_text)")
    parser.add_argument("--seed", type=int, default=1234, help="the models' seed, as run_benchmarks (default 1234)")
    parser.add_argument("--cache", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nnbuild-bench"),
                        help="exports and conversions, shared with run_benchmarks.py (default ~/.cache/nnbuild-bench)")
    parser.add_argument("--out", default=os.path.join(HERE, "serve_results.json"), help="results; the Markdown is written beside it as .md")
    args = parser.parse_args()
    if args.duration <= 0 or args.clients < 1 or args.clients > 256:
        fail("--duration must be above 0 and --clients from 1 to 256")
    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        fail("no nnbuild binary at %s: build it with `swift build -c release` (nnbuild and nnbuild-serve, which `nnbuild serve` runs), or pass --binary PATH" % args.binary)
    try:
        import numpy as np
        import keras  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError as error:
        fail("the models are built by Keras, which is not installed (%s): pip install tensorflow-cpu==2.20.0 safetensors" % error)
    import run_benchmarks
    import workloads
    for name in args.only:
        if name not in workloads.WORKLOADS + workloads.EXTRA_WORKLOADS:
            fail("unknown workload '%s' in --only: expected one of %s" % (name, ", ".join(workloads.WORKLOADS)))
    peers = run_benchmarks.Peers()
    cpu_info = machine.cpu()
    tf_binary, tf_note = tf_serving_status()
    run = {"date": machine.now(), "cpu": cpu_info, "load_average_start": machine.load_average(), "clients": args.clients,
           "duration": args.duration, "tf_serving": tf_note, "notes": [n.replace("ONNX Runtime column", "ONNX Runtime server") for n in peers.notes if "LiteRT" not in n], "rows": []}
    print("date %s; CPU %s (%s), %d cores; load average %s" % (run["date"], cpu_info["model"], cpu_info["vector"], cpu_info["cores"], run["load_average_start"]))
    print(tf_note)
    for note in run["notes"]:
        print("note:", note)
    print("%-12s %-44s %9s %7s %10s %9s %9s %12s %10s" % ("model", "server", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs first", "vs Keras"))
    failed = False
    for name in args.only:
        model, directory, onnx, notes = prepare(name, args, peers)
        run["notes"] += ["%s: %s" % (name, n) for n in notes]
        x = workloads.make_input(name, model, 1, seed=1)
        body = json.dumps({"instances": x.tolist()})
        want = model.predict(x, verbose=0)
        starters = [lambda: start_nnbuild(args.binary, name, directory, False), lambda: start_nnbuild(args.binary, name, directory, True)]
        labels = ["nnbuild serve, batching off", "nnbuild serve, batching on"]
        if onnx:
            starters.append(lambda: start_ort(name, onnx))
            labels.append("ONNX Runtime (Python ThreadingHTTPServer)")
        if tf_binary:
            starters.append(lambda: start_tf_serving(tf_binary, name, model, directory))
            labels.append("TF Serving")
        reference = None
        for label, start in zip(labels, starters):
            row = {"workload": name, "server": label}
            server = None
            try:
                server = start()
                answer = predict(server.port, server.path, body)
                reference = answer if reference is None else reference
                row["vs_reference"], row["vs_keras"] = rel_err(answer, reference), rel_err(answer, want)
                row.update(load(server, body, args.duration, args.clients))
            except (RuntimeError, OSError, ValueError, KeyError, http.client.HTTPException) as error:
                row["note"] = "no figure: %s" % " ".join(str(error).split())[:400]
                failed = failed or label.startswith("nnbuild")
            finally:
                if server is not None:
                    server.stop()
            run["rows"].append(row)

            def show(value, form):
                return DASH if value is None else form % value
            print("%-12s %-44s %9s %7s %10s %9s %9s %12s %10s" % (
                name, label, row.get("requests", DASH), row.get("errors", DASH), show(row.get("requests_per_s"), "%.1f"),
                show(row.get("p50_ms"), "%.2f"), show(row.get("p99_ms"), "%.2f"), show(row.get("vs_reference"), "%.1e"),
                show(row.get("vs_keras"), "%.1e")), flush=True)
            if row.get("note"):
                print("    note: %s" % row["note"], flush=True)
    run["load_average_end"] = machine.load_average()
    print("load average at the end: %s" % run["load_average_end"])
    try:
        with open(args.out) as handle:
            runs = json.load(handle).get("runs", [])
    except (OSError, ValueError, AttributeError):
        runs = []
    runs.append(run)
    with open(args.out, "w") as handle:
        json.dump({"runs": runs}, handle, indent=1)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as handle:
        handle.write(markdown(runs))
    print("wrote %s and %s" % (args.out, os.path.splitext(args.out)[0] + ".md"))
    disagree = [r for r in run["rows"] if r.get("vs_keras") is not None and r["server"].startswith("nnbuild") and not r["vs_keras"] <= 1e-5]
    if failed or disagree:
        print("FAILED: %s" % "; ".join(["an nnbuild server gave no figure"] * failed +
                                       ["%s %s is %.1e from Keras" % (r["workload"], r["server"], r["vs_keras"]) for r in disagree]))
        sys.exit(1)


if __name__ == "__main__":
    main()
