#!/usr/bin/env python3
"""How nnbuild's cost per token grows with the sequence length, for the recurrent workloads.

    pip install tensorflow-cpu==2.20.0 safetensors
    swift build -c release --product nnbuild
    python3 Benchmarks/sequence_length.py [--lengths 64,1024] [--batches 1,64] [--threads 1,2]
                                          [--seconds 2] [--rounds 3] [--out Benchmarks/results_sequence.json]

Issue 18's target: per-token cost at length 1024 within 1.2x of length 64 (batch 64). A recurrent
layer that allocated its input projection for the whole sequence on every call paid ~24,000 page
faults a call at length 1024 and doubled its cost per token; this measures that it no longer does.

The models are gru_text and bilstm_text of Benchmarks/workloads.py (Embedding(3000, 100), then
GRU(128) or Bidirectional(LSTM(64)), then Dense(3, softmax)) with an input of any length, built
with the same seed, exported once (tools/keras_export.py) under --cache. For each length, batch
and thread count, `nnbuild bench --json --input ids.npy` runs for --seconds, the lengths in turn,
--rounds times; the median samples/s gives the cost per token (1 / (samples/s x length)), and the
ratio of each length's cost to the shortest one's is printed with its range over the rounds. Each
bench process's minor page faults per call (getrusage of the child, load included) and peak RSS
are recorded beside it, and before each round where CPUs 0 and 1 sit (a cache line's round trip,
Benchmarks/core_roundtrip.c: on a VM whose host moves its vCPUs, two-thread figures move with it).
Before timing, `nnbuild infer` on every length is checked against Keras's
model.predict (max |x - keras| / (1 + |keras|) <= 1e-5) or the run exits 1.

Written: --out keeps every run with its CPU, kernel path, load average and date; the Markdown
beside it (results_sequence.md) holds the newest run's table.
"""
import argparse
import json
import os
import resource
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import machine  # noqa: E402
from run_benchmarks import TOLERANCE, NNBuild, median, rel_err  # noqa: E402

TARGET = 1.2
SEED = 1234
MODELS = ("gru_text", "bilstm_text")


def fail(message):
    print("sequence_length.py: %s" % message, file=sys.stderr)
    sys.exit(1)


def integers(text, what):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail("--%s expects comma-separated whole numbers, got %r" % (what, text))
    if not values or min(values) < 1:
        fail("--%s expects numbers of at least 1, got %r" % (what, text))
    return values


def build(name):
    """The workload's Keras model with an input of any length (workloads.py fixes it at 64)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from keras import layers

    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    recurrent = layers.GRU(128) if name == "gru_text" else layers.Bidirectional(layers.LSTM(64))
    return keras.Sequential([
        keras.Input((None,), dtype="int32"), layers.Embedding(3000, 100),
        recurrent, layers.Dropout(0.2), layers.Dense(3, activation="softmax"),
    ])


def bench(nnbuild, files, ids_path, batch, seconds, threads):
    """`nnbuild bench --json`'s object for the batch, and the minor page faults of its process (the
    load included): how much the count of this process's waited-for children grew."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    try:
        result, _ = nnbuild.bench(files, ids_path, batch, seconds, threads)
    except RuntimeError as error:
        fail(str(error))
    return result, resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before


def prepare(name, args, nnbuild, work, lengths, rows):
    """The model's export (cached under --cache) and an ids file of `rows` rows per length, each
    length's first rows checked through `nnbuild infer` against Keras."""
    import numpy as np
    from keras_export import export_model

    model = build(name)
    cache = os.path.join(args.cache, "%s-any-length-seed%d" % (name, SEED))
    files = [os.path.join(cache, "model.json"), os.path.join(cache, "weights.safetensors")]
    if not all(os.path.exists(f) for f in files):
        os.makedirs(cache, exist_ok=True)
        export_model(model, cache)
    rng = np.random.default_rng(SEED)
    inputs = {}
    for length in lengths:
        ids = rng.integers(1, 3000, size=(rows, length)).astype(np.int32)
        inputs[length] = os.path.join(work, "%s-%d.npy" % (name, length))
        np.save(inputs[length], ids)
        check, out = os.path.join(work, "check.npy"), os.path.join(work, "out.npy")
        np.save(check, ids[:4])
        _, problem = nnbuild.infer(files, check, out)
        if problem:
            fail("nnbuild infer on %s at length %d: %s" % (name, length, problem[:400]))
        error = rel_err(np.load(out), model.predict(ids[:4], verbose=0))
        if not error <= TOLERANCE:
            fail("%s at length %d is %.2e from Keras (tolerance %.0e)" % (name, length, error, TOLERANCE))
        print("%s at length %d: %.1e from Keras" % (name, length, error), flush=True)
    return files, inputs


def measure(name, files, inputs, args, nnbuild, lengths, batch, threads):
    """One row per length for this batch and thread count: the lengths timed in turn, --rounds times."""
    rates = {length: [] for length in lengths}
    faults = {length: [] for length in lengths}
    results = {length: [] for length in lengths}
    placements = []
    for _ in range(args.rounds):
        placements.append(machine.core_roundtrip_ns())
        for length in lengths:
            result, count = bench(nnbuild, files, inputs[length], batch, args.seconds, threads)
            rates[length].append(result["samples_per_s"])
            faults[length].append(count / max(result["samples_per_s"] * args.seconds / batch, 1.0))
            results[length].append(result)
    rows = []
    base = [1e6 / (rate * lengths[0]) for rate in rates[lengths[0]]]
    for length in lengths:
        per_token = [1e6 / (rate * length) for rate in rates[length]]
        # The ratio of medians, and its range over the rounds (round i against round i).
        ratios = [p / b for p, b in zip(per_token, base)]
        rows.append({"model": name, "batch": batch, "threads": threads, "length": length,
                     "samples_per_s": round(median(rates[length]), 2), "us_per_token": round(median(per_token), 4),
                     "ratio": round(median(per_token) / median(base), 3),
                     "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
                     "faults_per_call": round(median(faults[length]), 1),
                     "peak_rss_mb": median([r.get("peak_rss_mb") for r in results[length]]),
                     "kernel_path": results[length][0].get("kernel_path"), "threads_used": results[length][0].get("threads"),
                     "core_roundtrip_ns": placements})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nnbuild", default=os.path.join(ROOT, ".build", "release", "nnbuild"))
    parser.add_argument("--lengths", default="64,1024", help="sequence lengths, the first the reference (default 64,1024)")
    parser.add_argument("--batches", default="64,1", help="batch sizes (default 64,1)")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per bench process (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="times each length is timed, in turn (default 3)")
    parser.add_argument("--only", nargs="*", choices=MODELS, help="only these models")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/nnbuild-bench/sequence"))
    parser.add_argument("--out", default=os.path.join(HERE, "results_sequence.json"))
    args = parser.parse_args()
    lengths, batches, thread_counts = integers(args.lengths, "lengths"), integers(args.batches, "batches"), integers(args.threads, "threads")
    if not (args.seconds > 0) or args.rounds < 1:
        fail("--seconds must be positive and --rounds at least 1")
    if not os.access(args.nnbuild, os.X_OK):
        fail("no nnbuild binary at %s: run `swift build -c release --product nnbuild` first" % args.nnbuild)
    try:
        import numpy  # noqa: F401
        import keras_export  # noqa: F401
    except ImportError as error:
        fail("%s: pip install tensorflow-cpu==2.20.0 safetensors" % error)

    # The runs already in --out, read before timing so that a bad file stops the run at once.
    runs = []
    if os.path.exists(args.out):
        try:
            with open(args.out) as handle:
                runs = json.load(handle)
        except (OSError, ValueError):
            runs = None
        if not isinstance(runs, list):
            fail("%s is not a JSON list of runs: move it away or pass another --out" % args.out)
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        fail("--out %s: no such directory" % args.out)

    cpu = machine.cpu()
    run = {"date": machine.now(), "cpu": cpu, "load_start": machine.load_average(), "lengths": lengths,
           "seconds": args.seconds, "rounds": args.rounds, "rows": []}
    print("CPU: %s (%s), %s cores; load %s; %s" % (cpu["model"], cpu["vector"], cpu["cores"], run["load_start"], run["date"]), flush=True)
    nnbuild = NNBuild(args.nnbuild)
    work = tempfile.mkdtemp(prefix="nnbuild-sequence-")
    try:
        for name in args.only or MODELS:
            files, inputs = prepare(name, args, nnbuild, work, lengths, max(batches))
            for batch in batches:
                for threads in thread_counts:
                    for row in measure(name, files, inputs, args, nnbuild, lengths, batch, threads):
                        run["rows"].append(row)
                        print("%-11s batch %3d threads %d length %5d: %10.1f samples/s %8.3f us/token  x%.2f (%.2f-%.2f)  %7.1f faults/call  %s MB"
                              % (name, batch, threads, row["length"], row["samples_per_s"], row["us_per_token"], row["ratio"],
                                 row["ratio_range"][0], row["ratio_range"][1], row["faults_per_call"], row["peak_rss_mb"]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run["load_end"] = machine.load_average()
    runs.append(run)
    markdown_path = os.path.splitext(args.out)[0] + ".md"
    try:
        with open(args.out + ".part", "w") as handle:
            json.dump(runs, handle, indent=1)
        os.replace(args.out + ".part", args.out)
        with open(markdown_path + ".part", "w") as handle:
            handle.write(markdown(run))
        os.replace(markdown_path + ".part", markdown_path)
    except OSError as error:
        fail("cannot write the results: %s" % error)
    print("written: %s, %s" % (args.out, markdown_path))


def markdown(run):
    cpu = run["cpu"]
    lines = ["CPU: %s (%s), %s cores. %s, load %s to %s. Per-token cost against length %d (target: at most %.1fx at batch 64)."
             % (cpu["model"], cpu["vector"], cpu["cores"], run["date"], run["load_start"], run["load_end"], run["lengths"][0], TARGET),
             "", "| model | batch | threads | length | samples/s | µs per token | × length %d (range) | minor faults per call, the load included | peak RSS MB | CPU 0↔1 round trip ns, each round |"
             % run["lengths"][0], "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in run["rows"]:
        lines.append("| %s | %d | %d | %d | %.1f | %.3f | %.2f (%.2f–%.2f) | %.1f | %s | %s |"
                     % (r["model"], r["batch"], r["threads"], r["length"], r["samples_per_s"], r["us_per_token"], r["ratio"],
                        r["ratio_range"][0], r["ratio_range"][1], r["faults_per_call"], r["peak_rss_mb"],
                        " ".join("—" if v is None else str(v) for v in r.get("core_roundtrip_ns", [])) or "—"))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
