#!/usr/bin/env python3
"""Side-by-side benchmark: nnbuild, ONNX Runtime, LiteRT and Keras (tf.function), in one run, on the same inputs.

    pip install tensorflow-cpu==2.20.0 tf2onnx onnxruntime ai-edge-litert safetensors
    swift build -c release --product nnbuild
    python3 Benchmarks/run_benchmarks.py [--seconds 3] [--rounds 3] [--only cnn_cifar ...] [--batches 1,64]
    python3 Benchmarks/run_benchmarks.py --contention          # batch 1 beside one busy process
    python3 Benchmarks/run_benchmarks.py --kernels avx2 avx512 # nnbuild once more per kernel path

Workloads (Benchmarks/workloads.py): cnn_cifar, bilstm_text, rnn_stack3, gru_text and
transformer_text at batches 1 and 64; mobilenet_v2 and resnet50 at 224x224 at batches 1 and 16.

For each workload the Keras model is built with fixed seeds, exported for nnbuild
(tools/keras_export.py, then checked with `nnbuild validate`), converted to ONNX by tf2onnx (opset
17) and to a float32 .tflite file per batch size (tf.lite.TFLiteConverter.from_keras_model on the
model with that fixed batch size: recurrent layers convert only with a static shape). The exports
and conversions are cached under --cache, keyed by workload, seed and the workload's definition.

Runtimes, each timed for --seconds after a warm-up, in turn, --rounds times (the median rate is
the table's; the JSON keeps each round's too, beside the placement measured before it, and on a
noisy machine only ratios from one run mean anything):
- Keras: model(x, training=False) in a tf.function;
- ONNX Runtime: CPUExecutionProvider, its default threads (or --threads);
- LiteRT: ai_edge_litert.interpreter.Interpreter (pip ai-edge-litert), with its default XNNPACK
  delegate, on --threads threads or one per core; when ai-edge-litert is not installed,
  TensorFlow's tf.lite.Interpreter, and the output says which one ran;
- nnbuild: `nnbuild bench --json` (model loaded and warm) on every core (or --threads), and once
  more per --kernels path (NNBUILD_KERNELS); also a whole `nnbuild infer` process, median of runs.

Every output is compared with Keras's model.predict: max |x - keras| / (1 + |keras|). nnbuild must
be within 1e-5 on every kernel path timed, or the run exits 1; the peers' errors are recorded. A
runtime that is not installed, or cannot convert or run a workload, gets no figure: its column
shows '—' and the output says why.

Each row also records where CPUs 0 and 1 sat before each round and after the last: one cache
line's round trip between them (Benchmarks/core_roundtrip.c; on a VM whose host moves its vCPUs,
two-thread figures move with it).

Written: --out (Benchmarks/results.json) keeps every run, each with its CPU (lscpu model name,
vector extensions), nnbuild's kernel path, versions, load average at start and end, and date; the
Markdown beside it (results.md) has one table per CPU and mode, the newest figure of each
workload and batch, ready for BENCHMARKS.md.
"""
import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")

import machine  # noqa: E402
import workloads  # noqa: E402

TOLERANCE = 1e-5
DASH = "—"


def fail(message):
    """Stops the run with one line saying what is wrong (never a traceback)."""
    print("run_benchmarks: %s" % message, file=sys.stderr)
    sys.exit(2)


def last_line(error):
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return "%s: %s" % (type(error).__name__, lines[-1][:300]) if lines else type(error).__name__


@contextlib.contextmanager
def quiet():
    """Keeps the converters' own chatter (TensorFlow's logs, 'Saved artifact at ...') off the
    terminal: file descriptors 1 and 2 go to a scratch file meanwhile. Failures still arrive as
    exceptions, whose last line is printed."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


# ---------------------------------------------------------------- the runtimes

class Peers:
    """The optional runtimes that are installed, and why each missing one is missing."""

    def __init__(self):
        self.notes = []
        try:
            import onnxruntime
            import tf2onnx
            self.ort, self.tf2onnx = onnxruntime, tf2onnx
        except ImportError as error:
            self.ort = self.tf2onnx = None
            self.notes.append("ONNX Runtime column skipped: %s (pip install onnxruntime tf2onnx)" % error)
        try:
            from ai_edge_litert.interpreter import Interpreter
            import ai_edge_litert
            self.litert = Interpreter
            self.litert_name = "ai_edge_litert %s" % getattr(ai_edge_litert, "__version__", "?")
        except ImportError as error:
            import tensorflow as tf
            self.litert = tf.lite.Interpreter
            self.litert_name = "tf.lite.Interpreter of TensorFlow %s (ai-edge-litert not installed: %s)" % (tf.__version__, error)
            self.notes.append("LiteRT: ai-edge-litert is not installed, so TensorFlow's tf.lite.Interpreter runs the LiteRT column")


def to_onnx(peers, model, path):
    import tensorflow as tf

    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), model.inputs[0].dtype, name="x")

    @tf.function(input_signature=[spec])
    def forward(x):
        return model(x, training=False)

    peers.tf2onnx.convert.from_function(forward, input_signature=[spec], opset=17, output_path=path)


def to_tflite(model, batch, path):
    """A float32 .tflite of `model` at a fixed batch size, by TFLiteConverter.from_keras_model."""
    import keras
    import tensorflow as tf

    fixed = keras.Input(batch_shape=(batch,) + tuple(model.input_shape[1:]), dtype=model.inputs[0].dtype)
    wrapper = keras.Model(fixed, model(fixed, training=False))
    blob = tf.lite.TFLiteConverter.from_keras_model(wrapper).convert()
    with open(path + ".part", "wb") as handle:
        handle.write(blob)
    os.replace(path + ".part", path)


def cached(path, make, label, notes):
    """`path`, made by `make(path)` unless the cache has it; None (with a note) when making fails."""
    if os.path.exists(path):
        return path
    try:
        with quiet():
            make(path)
        return path
    except Exception as error:  # a converter's failure is that runtime's missing figure, not the run's end
        if os.path.exists(path):
            os.remove(path)
        notes.append("%s: %s" % (label, last_line(error)))
        print("  %s: %s" % (label, last_line(error)), flush=True)
        return None


def litert_runner(peers, path, x, threads):
    interpreter = peers.litert(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    output = interpreter.get_output_details()[0]["index"]

    def run():
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(output)
    return run


def timed(run, seconds):
    """Calls per second of `run`, over `seconds` after a warm-up (at least 3 calls)."""
    warm = time.perf_counter() + min(0.5, seconds / 4)
    while time.perf_counter() < warm:
        run()
    count, start = 0, time.perf_counter()
    while True:
        run()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            return count / elapsed


def rel_err(got, want):
    import numpy as np

    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    return float(np.max(np.abs(got - want) / (1.0 + np.abs(want))))


# ---------------------------------------------------------------- nnbuild

class NNBuild:
    def __init__(self, binary):
        self.binary = binary

    def run(self, args, kernels=None, timeout=900):
        """Runs nnbuild with NNBUILD_KERNELS=`kernels`, or as the environment has it (unset: the
        CPU's best path)."""
        env = dict(os.environ)
        if kernels:
            env["NNBUILD_KERNELS"] = kernels
        return subprocess.run([self.binary] + args, capture_output=True, text=True, env=env, timeout=timeout)

    def validate(self, files):
        """'' when `nnbuild validate` builds the export, else its error (which names the layer)."""
        result = self.run(["validate"] + files)
        return "" if result.returncode == 0 else (result.stderr.strip() or result.stdout.strip())

    def infer(self, files, x_path, out_path, kernels=None):
        """(seconds of the whole process, error text or '')."""
        start = time.perf_counter()
        result = self.run(["infer"] + files + ["--input", x_path, "--output", out_path], kernels)
        elapsed = time.perf_counter() - start
        return elapsed, "" if result.returncode == 0 else (result.stderr.strip() or result.stdout.strip())

    def bench(self, files, x_path, batch, seconds, threads=None, kernels=None):
        """(`nnbuild bench --json`'s object for the batch, its whole output) or raises RuntimeError."""
        args = ["bench"] + files + ["--input", x_path, "--batch", str(batch), "--seconds", str(seconds), "--json"]
        if threads:
            args += ["--threads", str(threads)]
        result = self.run(args, kernels, timeout=max(300, 20 * seconds))
        if result.returncode != 0:
            raise RuntimeError("nnbuild bench exit %d: %s" % (result.returncode, (result.stderr.strip() or result.stdout.strip())[:500]))
        text = result.stdout
        start = text.find("[")
        try:
            objects = json.loads(text[start:text.rfind("]") + 1])
        except ValueError:
            raise RuntimeError("nnbuild bench printed no JSON array: %r" % text[:300])
        mine = [o for o in objects if isinstance(o, dict) and o.get("batch") == batch] or objects
        return mine[0], text + result.stderr


def first_divergence(model, x, nnbuild, work, kernels=None):
    """Which layer nnbuild first differs from Keras at, by bisection over the layers in graph
    order: each probe exports the model cut at a layer's output and compares `nnbuild infer`
    with Keras there."""
    import keras
    import numpy as np
    from keras_export import export_model

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]

    def differs(index):
        layer = layers[index]
        cut = keras.Model(model.inputs, layer.output)
        want = np.asarray(cut(x, training=False))
        directory = os.path.join(work, "probe_%d" % index)
        with quiet():
            export_model(cut, directory)
        files = [os.path.join(directory, "model.json"), os.path.join(directory, "weights.safetensors")]
        _, problem = nnbuild.infer(files, os.path.join(work, "x.npy"), os.path.join(directory, "ours.npy"), kernels)
        if problem:
            return True, "nnbuild infer fails: %s" % problem.splitlines()[0]
        error = rel_err(np.load(os.path.join(directory, "ours.npy")), want)
        return not error <= TOLERANCE, "%.1e from Keras" % error

    try:
        low, high, found = 0, len(layers) - 1, None
        while low <= high:  # the first index whose output differs
            middle = (low + high) // 2
            bad, how = differs(middle)
            if bad:
                found, high = (middle, how), middle - 1
            else:
                low = middle + 1
        if found is None:
            return "nnbuild diverges from Keras only in the whole model's output (every layer's own output matches)"
        layer = layers[found[0]]
        return "nnbuild diverges from Keras first at layer '%s' (%s): %s there; the layers before it match" % (
            layer.name, type(layer).__name__, found[1])
    except Exception as error:  # a model that cannot be cut at every layer (a shared layer, a nested model)
        return "nnbuild differs from Keras; the layer could not be found (%s)" % last_line(error)


# ---------------------------------------------------------------- one workload

@contextlib.contextmanager
def competing(enabled):
    """With `enabled`, one competing busy process (a Python spin loop) runs meanwhile, and is
    stopped by its pid after; so only the timing, not the conversions, runs beside it."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if enabled else None
    try:
        yield
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def timed_rounds(args, runners, rates, variants, errors, nnbuild_ok, nnbuild, files, x_path, batch, row, bench_info):
    """Every runtime in turn, --rounds times: rates[key] gets each round's samples/s, bench_info
    each nnbuild variant's `nnbuild bench` object and output; row["core_roundtrip_ns"] the
    placement of CPUs 0 and 1 before each round and after the last (machine.core_roundtrip_ns)."""
    row["core_roundtrip_ns"] = []

    def time_peer(key):
        rates[key].append(timed(runners[key], args.seconds) * batch)

    def time_nnbuild(label, kernels, threads):
        try:
            result, output = nnbuild.bench(files, x_path, batch, args.seconds, threads or args.threads, kernels)
        except (RuntimeError, subprocess.SubprocessError) as error:
            row["notes"].append("%s: %s" % (label, last_line(error)))
            return
        rates[label].append(result["samples_per_s"])
        bench_info.setdefault(label, []).append((result, output))

    turns = [lambda key=key: time_peer(key) for key in runners]
    if nnbuild_ok:
        turns += [lambda variant=variant: time_nnbuild(*variant) for variant in variants
                  if errors.get(variant[0], float("inf")) != float("inf")]
    for round_index in range(args.rounds):
        row["core_roundtrip_ns"].append(machine.core_roundtrip_ns())
        # Every other round in the reverse order: the machine's speed drifts over seconds (a VM's
        # neighbours), and a fixed order gave whichever runtime ran first its share of the drift in
        # every round. Alternating, each runtime sits before and after the others equally often.
        for turn in (turns if round_index % 2 == 0 else reversed(turns)):
            turn()
    row["core_roundtrip_ns"].append(machine.core_roundtrip_ns())


def run_workload(name, args, peers, nnbuild, cpu_info, batches):
    import numpy as np
    import tensorflow as tf
    from keras_export import export_model

    print("%s: building" % name, flush=True)
    model = workloads.build(name, args.seed)
    cache = os.path.join(args.cache, workloads.fingerprint(name, args.seed))
    os.makedirs(cache, exist_ok=True)
    notes = []
    files = [os.path.join(cache, "model.json"), os.path.join(cache, "weights.safetensors")]
    if not all(os.path.exists(f) for f in files):
        with quiet():
            export_model(model, cache)
    refused = nnbuild.validate(files)
    if refused:
        notes.append("nnbuild validate refuses the export: %s" % refused)
        print("  nnbuild refuses %s: %s" % (name, refused), flush=True)
    onnx_path = None
    if peers.ort is not None:
        onnx_path = cached(os.path.join(cache, "model.onnx"), lambda p: to_onnx(peers, model, p), "ONNX conversion", notes)
    session = None
    if onnx_path:
        options = peers.ort.SessionOptions()
        if args.threads:
            options.intra_op_num_threads = args.threads
        session = peers.ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])

    @tf.function
    def keras_forward(x):
        return model(x, training=False)

    litert_threads = args.threads or os.cpu_count()
    rows = []
    for batch in batches:
        x = workloads.make_input(name, model, batch, seed=batch)
        work = tempfile.mkdtemp(prefix="nnbuild-bench-")
        try:
            x_path = os.path.join(work, "x.npy")
            np.save(x_path, x)
            want = model.predict(x, verbose=0, batch_size=batch)
            row = {"workload": name, "batch": batch, "notes": list(notes)}
            runners = {"keras": lambda: keras_forward(x)}
            errors = {}
            if session is not None:
                feed = {session.get_inputs()[0].name: x}
                try:
                    errors["onnxruntime"] = rel_err(session.run(None, feed)[0], want)
                    runners["onnxruntime"] = lambda: session.run(None, feed)
                except Exception as error:
                    row["notes"].append("ONNX Runtime failed: %s" % last_line(error))
            tflite = cached(os.path.join(cache, "model_batch%d.tflite" % batch), lambda p: to_tflite(model, batch, p),
                            "LiteRT conversion at batch %d" % batch, row["notes"])
            if tflite:
                try:
                    run = litert_runner(peers, tflite, x, litert_threads)
                    errors["litert"] = rel_err(run(), want)
                    runners["litert"] = run
                except Exception as error:
                    row["notes"].append("LiteRT failed: %s" % last_line(error))
            # nnbuild: checked on every path it is timed on, each by a whole `nnbuild infer` process.
            variants = [("nnbuild", None, None)]
            if args.contention:
                variants.append(("nnbuild_1thread", None, 1))
            variants += [("nnbuild_%s" % k, k, None) for k in args.kernels]
            nnbuild_ok = not refused
            if nnbuild_ok:
                for label, kernels, _ in variants:
                    if label == "nnbuild_1thread":
                        continue
                    out_path = os.path.join(work, "%s.npy" % label)
                    _, problem = nnbuild.infer(files, x_path, out_path, kernels)
                    if problem:
                        row["notes"].append("%s: nnbuild infer failed: %s" % (label, problem))
                        errors[label] = float("inf")
                        nnbuild_ok = nnbuild_ok and label != "nnbuild"
                    else:
                        errors[label] = rel_err(np.load(out_path), want)
                        if not errors[label] <= TOLERANCE and "diverges" not in " ".join(row["notes"]):
                            print("  %s is %.1e from Keras: looking for the first layer that differs" % (label, errors[label]), flush=True)
                            row["notes"].append(first_divergence(model, x, nnbuild, work, kernels))
                if args.contention:
                    errors["nnbuild_1thread"] = errors.get("nnbuild")
            rates = {key: [] for key in list(runners) + ([v[0] for v in variants] if nnbuild_ok else [])}
            bench_info = {}
            with competing(args.contention):
                timed_rounds(args, runners, rates, variants, errors, nnbuild_ok, nnbuild, files, x_path, batch, row, bench_info)
            for key, values in rates.items():
                row[key + "_samples_per_s"] = None if not values else round(median(values), 1)
                # Each round's rate too, in the order of core_roundtrip_ns: a row whose rounds sat
                # in different placements can be split afterwards.
                row[key + "_samples_per_s_by_round"] = [round(v, 1) for v in values]
            for key in ("onnxruntime", "litert") + tuple(v[0] for v in variants):
                row[key + "_rel_err"] = errors.get(key)
            main_runs = bench_info.get("nnbuild", [])
            if main_runs:
                result, output = main_runs[len(main_runs) // 2]
                row.update(nnbuild_p50_ms=result.get("p50_ms"), nnbuild_peak_rss_mb=result.get("peak_rss_mb"),
                           nnbuild_load_ms=result.get("load_ms"))
                row["kernel_path"], row["kernel_path_source"] = machine.kernel_path(output, os.environ.get("NNBUILD_KERNELS"), cpu_info,
                                                                                    result.get("kernel_path"))
            for label, kernels, _ in variants:
                if kernels and bench_info.get(label):
                    said = bench_info[label][0][0].get("kernel_path") or machine.kernel_path_from_output(bench_info[label][0][1])
                    if said and said != kernels:
                        row["notes"].append("%s: asked NNBUILD_KERNELS=%s, nnbuild bench reports %s" % (label, kernels, said))
            if nnbuild_ok and not args.contention:
                walls = []
                for _ in range(args.infer_runs if name not in workloads.APPLICATIONS else max(1, args.infer_runs // 3)):
                    seconds, problem = nnbuild.infer(files, x_path, os.path.join(work, "again.npy"))
                    if not problem:
                        walls.append(seconds * 1000)
                row["nnbuild_infer_process_ms"] = round(median(walls), 1) if walls else None
            ours = row.get("nnbuild_samples_per_s")
            ort, lite = row.get("onnxruntime_samples_per_s"), row.get("litert_samples_per_s")
            best = max([r for r in (ort, lite) if r] or [0]) or None
            row["ratio_nnbuild_onnxruntime"] = round(ours / ort, 3) if ours and ort else None
            row["ratio_nnbuild_litert"] = round(ours / lite, 3) if ours and lite else None
            row["ratio_nnbuild_best_peer"] = round(ours / best, 3) if ours and best else None
            row["best_peer"] = None if not best else ("onnxruntime" if best == ort else "litert")
            if args.contention and ours and row.get("nnbuild_1thread_samples_per_s"):
                row["all_cores_at_least_one_thread"] = ours >= row["nnbuild_1thread_samples_per_s"]
            rows.append(row)
            print_row(row, args)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def figure(value, form="%.1f"):
    return DASH if value is None else form % value


def print_row(r, args):
    parts = ["%-16s batch %3d" % (r["workload"], r["batch"]),
             "keras %s" % figure(r.get("keras_samples_per_s")),
             "ort %s" % figure(r.get("onnxruntime_samples_per_s")),
             "litert %s" % figure(r.get("litert_samples_per_s")),
             "nnbuild %s" % figure(r.get("nnbuild_samples_per_s"))]
    if args.contention:
        parts.append("nnbuild 1 thread %s (all cores >= 1 thread: %s)" % (figure(r.get("nnbuild_1thread_samples_per_s")),
                                                                    {True: "yes", False: "NO"}.get(r.get("all_cores_at_least_one_thread"), DASH)))
    for k in args.kernels:
        parts.append("nnbuild %s %s" % (k, figure(r.get("nnbuild_%s_samples_per_s" % k))))
    parts.append("nnbuild/ort %s  nnbuild/litert %s  nnbuild/best %s" % (
        figure(r.get("ratio_nnbuild_onnxruntime"), "%.2fx"), figure(r.get("ratio_nnbuild_litert"), "%.2fx"),
        figure(r.get("ratio_nnbuild_best_peer"), "%.2fx")))
    parts.append("err ort %s litert %s nnbuild %s" % (figure(r.get("onnxruntime_rel_err"), "%.1e"),
                                                      figure(r.get("litert_rel_err"), "%.1e"), figure(r.get("nnbuild_rel_err"), "%.1e")))
    if r.get("core_roundtrip_ns"):
        parts.append("CPU 0-1 round trip ns %s" % " ".join(figure(v, "%d") for v in r["core_roundtrip_ns"]))
    print("  " + "  ".join(parts), flush=True)
    for note in r["notes"]:
        print("    note: %s" % note, flush=True)


# ---------------------------------------------------------------- results

def load_results(path):
    """(the runs already in `path`, what else it held): a file in the old one-run format is kept
    whole under "previous_format", so that writing never loses a figure."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return [], None
    if isinstance(data, dict) and data.get("format") == 2:
        return data.get("runs", []), data.get("previous_format")
    return [], data


def markdown(runs):
    """One table per CPU and mode, newest first, each row the newest figure of its workload and batch."""
    groups = {}
    for run in runs:
        key = (run["cpu"]["model"], run["cpu"]["vector"], run["mode"])
        groups.setdefault(key, []).append(run)
    out = []
    for (model, vector, mode), group in sorted(groups.items(), key=lambda kv: kv[1][-1]["date"], reverse=True):
        newest = {}
        for run in group:
            for row in run["rows"]:
                newest[(row["workload"], row["batch"])] = (run, row)
        order = {w: i for i, w in enumerate(workloads.WORKLOADS)}
        chosen = sorted(newest.values(), key=lambda rr: (order.get(rr[1]["workload"], 99), rr[1]["batch"]))
        used = [run for run in group if any(run is c[0] for c in chosen)]
        dates = sorted({run["date"] for run in used})
        kernels = [k for k in machine.KERNEL_PATHS if any(k in run.get("kernels", []) for run in used)]
        heading = "### %s (%s; %s), %s%s" % (model, vector.upper(), ", ".join(used[-1]["cpu"]["flags"]),
                                              " to ".join([dates[0], dates[-1]] if len(dates) > 1 else dates),
                                              " — under contention (one busy process), batch 1" if mode == "contention" else "")
        out.append(heading)
        out.append("")
        loads = ["%s → %s" % (run["load_average_start"], run["load_average_end"]) for run in used]
        out.append("nnbuild kernel path: %s. Load average (1, 5, 15 min) at start → end: %s. %s. Versions: %s. "
                   "Samples/s, higher is better; each runtime %s s per round, median of %s round(s)." % (
                       ", ".join(sorted({"%s (%s)" % (row.get("kernel_path"), row.get("kernel_path_source")) if row.get("kernel_path") else DASH
                                         for _, row in chosen})),
                       "; ".join(loads), used[-1]["litert"], ", ".join("%s %s" % kv for kv in used[-1]["versions"].items()),
                       used[-1]["seconds"], used[-1]["rounds"]))
        out.append("")
        header = ["workload", "batch", "Keras tf.function", "ONNX Runtime", "LiteRT", "nnbuild"]
        align = ["---", "---:", "---:", "---:", "---:", "---:"]
        if mode == "contention":
            header += ["nnbuild 1 thread", "all cores ≥ 1 thread"]
            align += ["---:", "---"]
        header += ["nnbuild %s" % k for k in kernels]
        align += ["---:"] * len(kernels)
        header += ["nnbuild / ORT", "nnbuild / LiteRT", "nnbuild / best peer", "nnbuild p50 ms"]
        align += ["---:"] * 4
        if mode != "contention":
            header += ["`nnbuild infer` process ms", "peak RSS MiB"]
            align += ["---:", "---:"]
        header.append("max rel err vs Keras (ORT / LiteRT / nnbuild)")
        align.append("---")
        header.append("CPU 0↔1 round trip ns, each round and after")
        align.append("---")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(align) + "|")
        for _, r in chosen:
            cells = [r["workload"], str(r["batch"]), figure(r.get("keras_samples_per_s")), figure(r.get("onnxruntime_samples_per_s")),
                     figure(r.get("litert_samples_per_s")), figure(r.get("nnbuild_samples_per_s"))]
            if mode == "contention":
                cells += [figure(r.get("nnbuild_1thread_samples_per_s")),
                          {True: "yes", False: "**no**"}.get(r.get("all_cores_at_least_one_thread"), DASH)]
            cells += [figure(r.get("nnbuild_%s_samples_per_s" % k)) for k in kernels]
            cells += [figure(r.get("ratio_nnbuild_onnxruntime"), "%.2f×"), figure(r.get("ratio_nnbuild_litert"), "%.2f×"),
                      figure(r.get("ratio_nnbuild_best_peer"), "**%.2f×**"), figure(r.get("nnbuild_p50_ms"), "%.3f")]
            if mode != "contention":
                cells += [figure(r.get("nnbuild_infer_process_ms")), figure(r.get("nnbuild_peak_rss_mb"))]
            cells.append(" / ".join(figure(r.get(k), "%.1e") for k in ("onnxruntime_rel_err", "litert_rel_err", "nnbuild_rel_err")))
            cells.append(" ".join(figure(v, "%d") for v in r.get("core_roundtrip_ns") or []) or DASH)
            out.append("| " + " | ".join(cells) + " |")
        notes = sorted({n for run in used for n in run.get("notes", [])}) + sorted({"%s: %s" % (r["workload"], n) for _, r in chosen for n in r["notes"]})
        if notes:
            out.append("")
            out += ["- %s" % n for n in notes]
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="See the module docstring for details.")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per runtime, workload, batch and round (default 3)")
    ap.add_argument("--rounds", type=int, default=1, help="times every runtime is timed, in turn, every other round in the reverse order; the median is kept (default 1)")
    ap.add_argument("--batches", default=None, help="e.g. 1,64 for every workload (default: 1,64, and 1,16 for the ImageNet models)")
    ap.add_argument("--only", nargs="+", default=workloads.WORKLOADS, metavar="WORKLOAD",
                    help="of: %s (and, not by default, %s)" % (", ".join(workloads.WORKLOADS), ", ".join(workloads.EXTRA_WORKLOADS)))
    ap.add_argument("--nnbuild", default=os.path.join(ROOT, ".build/release/nnbuild"), help="the release binary")
    ap.add_argument("--threads", type=int, default=None, help="threads for every runtime (default: each one's own default; LiteRT one per core)")
    ap.add_argument("--contention", action="store_true", help="batch-1 rows only, beside one competing busy process; also nnbuild --threads 1")
    ap.add_argument("--kernels", nargs="+", default=[], choices=machine.KERNEL_PATHS, help="also time nnbuild on these kernel paths (NNBUILD_KERNELS)")
    ap.add_argument("--seed", type=int, default=workloads.SEED, help="the models' seed (default %d)" % workloads.SEED)
    ap.add_argument("--infer-runs", type=int, default=15, help="whole `nnbuild infer` processes timed per row (default 15; a third for the ImageNet models)")
    ap.add_argument("--cache", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nnbuild-bench"),
                    help="exports and conversions, keyed by workload and seed (default ~/.cache/nnbuild-bench)")
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"), help="results; the Markdown is written beside it as .md")
    args = ap.parse_args()
    for name in args.only:
        if name not in workloads.WORKLOADS + workloads.EXTRA_WORKLOADS:
            fail("unknown workload '%s' in --only: expected one of %s" % (name, ", ".join(workloads.WORKLOADS + workloads.EXTRA_WORKLOADS)))
    try:
        given = [int(b) for b in args.batches.split(",")] if args.batches else None
    except ValueError:
        fail("--batches is '%s': expected batch sizes separated by commas, e.g. 1,64" % args.batches)
    if given is not None and not all(0 < b <= 4096 for b in given):
        fail("--batches is '%s': expected sizes from 1 to 4096" % args.batches)
    if args.seconds <= 0 or args.rounds < 1 or (args.threads is not None and args.threads < 1) or args.infer_runs < 1:
        fail("--seconds must be above 0, and --rounds, --threads and --infer-runs at least 1")
    if not (os.path.isfile(args.nnbuild) and os.access(args.nnbuild, os.X_OK)):
        fail("no nnbuild binary at %s: build it with `swift build -c release --product nnbuild`, or pass --nnbuild PATH" % args.nnbuild)
    cpu_info = machine.cpu()
    for k in args.kernels:
        if machine.KERNEL_PATHS.index(k) > machine.KERNEL_PATHS.index(cpu_info["vector"]):
            fail("--kernels %s: this CPU (%s) supports at most %s" % (k, cpu_info["model"], cpu_info["vector"]))
    forced = os.environ.get("NNBUILD_KERNELS")
    if forced is not None and (forced not in machine.KERNEL_PATHS or
                               machine.KERNEL_PATHS.index(forced) > machine.KERNEL_PATHS.index(cpu_info["vector"])):
        fail("NNBUILD_KERNELS is '%s': expected one of %s, at most %s on this CPU (%s)" % (
            forced, ", ".join(machine.KERNEL_PATHS), cpu_info["vector"], cpu_info["model"]))
    try:
        import keras
        import numpy  # noqa: F401
        import safetensors  # noqa: F401
        import tensorflow as tf
    except ImportError as error:
        fail("Keras is the reference every runtime is checked against, and it is not installed (%s): "
             "pip install tensorflow-cpu==2.20.0 safetensors" % error)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    peers = Peers()
    os.makedirs(args.cache, exist_ok=True)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}
    if peers.ort is not None:
        versions.update(onnxruntime=peers.ort.__version__, tf2onnx=peers.tf2onnx.__version__)
    nnbuild = NNBuild(os.path.abspath(args.nnbuild))
    version = nnbuild.run(["--version"])
    versions["nnbuild"] = version.stdout.strip() if version.returncode == 0 else "(no --version)"
    run = {"date": machine.now(), "cpu": cpu_info, "mode": "contention" if args.contention else "normal",
           "load_average_start": machine.load_average(), "versions": versions, "litert": "LiteRT: %s, XNNPACK, %d threads" % (
               peers.litert_name, args.threads or os.cpu_count()), "seconds": args.seconds, "rounds": args.rounds,
           "threads": args.threads, "kernels": args.kernels, "nnbuild_kernels_env": os.environ.get("NNBUILD_KERNELS"),
           "notes": peers.notes, "rows": []}
    print("date %s; CPU %s (%s: %s), %d cores; load average %s" % (run["date"], cpu_info["model"], cpu_info["vector"],
                                                                   " ".join(cpu_info["flags"]), cpu_info["cores"], run["load_average_start"]))
    print("versions:", json.dumps(versions))
    print(run["litert"])
    for note in peers.notes:
        print("note:", note)
    for name in args.only:
        batches = [1] if args.contention else (given or workloads.batches_of(name))
        try:
            run["rows"] += run_workload(name, args, peers, nnbuild, cpu_info, batches)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # one workload's failure (Keras, export) is reported, the others still run
            print("%s: FAILED: %s" % (name, last_line(error)), flush=True)
            run["rows"].append({"workload": name, "batch": batches[0], "notes": ["failed: %s" % last_line(error)]})
    run["load_average_end"] = machine.load_average()
    print("load average at the end: %s" % run["load_average_end"])
    runs, previous = load_results(args.out)
    runs.append(run)
    with open(args.out, "w") as handle:
        json.dump({"format": 2, "runs": runs, **({"previous_format": previous} if previous is not None else {})}, handle, indent=1)
    text = markdown(runs)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as handle:
        handle.write(text)
    print()
    print(markdown([run]))
    print("wrote %s and %s" % (args.out, os.path.splitext(args.out)[0] + ".md"))
    checked = ["nnbuild"] + ["nnbuild_%s" % k for k in args.kernels]
    bad = []
    for r in run["rows"]:
        for label in checked:
            error = r.get(label + "_rel_err")
            if error is None or not error <= TOLERANCE:
                bad.append("%s@%d %s (%s)" % (r["workload"], r["batch"], label, "did not run" if error is None else "%.1e" % error))
    if bad:
        print("FAILED: nnbuild not within %g of Keras in: %s" % (TOLERANCE, ", ".join(bad)))
        sys.exit(1)


if __name__ == "__main__":
    main()
