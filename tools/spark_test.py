#!/usr/bin/env python3
"""A real Spark job drives `nnbuild infer --stream` through RDD.pipe, and its answers must equal a
direct `nnbuild infer` on the same rows.

Usage: python3 tools/spark_test.py [NNBUILD_BINARY]   (default .build/release/nnbuild)

Runs pyspark in local mode (local[2]) over 3,000 rows of specs/tabular_mlp split across 6
partitions, as one-row lines and {"instances": [...]} lines, and checks: every partition answered
every line, in order; no line was an error; every output equals the direct run's bit for bit (the
kernels are batch-invariant, so a row's result does not depend on its batch-mates or partition).
Then 600 rows of a model with a string input (Tests/GraphFixtures/structured_strings) as JSON
objects keyed by input name, checked the same way. Needs Java 17 and `pip install pyspark`. Where Java is not installed it prints
'SKIPPED: <why>' and '0 passed, 0 failed, 1 skipped' and exits 0; a missing pyspark is a failure.
Prints 'N passed, M failed' last.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "specs", "tabular_mlp")
ROWS = 3000
STRING_ROWS = 600
PARTITIONS = 6


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "release", "nnbuild"))
    java = shutil.which("java") or (os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else None)
    if not java or not os.path.exists(java):
        print("SKIPPED: the Spark test needs a Java 17 runtime, which is not installed (apt-get install openjdk-17-jre-headless)")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    try:
        from pyspark import SparkConf, SparkContext
    except ImportError as error:
        print("FAIL: pyspark is not installed (pip install pyspark): %s" % error)
        print("0 passed, 1 failed")
        return 1

    spec = os.path.join(MODEL, "model.json")
    weights = os.path.join(MODEL, "weights.safetensors")
    generator = random.Random(17)
    rows = [[round(generator.gauss(0, 1), 6) for _ in range(8)] for _ in range(ROWS)]

    # The direct run: one JSON batch through `nnbuild infer`.
    with tempfile.TemporaryDirectory() as folder:
        batch = os.path.join(folder, "rows.json")
        with open(batch, "w") as handle:
            json.dump(rows, handle)
        direct = json.loads(subprocess.run([binary, "infer", spec, weights, "--input", batch],
                                           check=True, capture_output=True, text=True).stdout)

    # Every 10th line carries 4 rows as {"instances": [...]}, the rest one row each.
    lines, spans, start = [], [], 0
    while start < ROWS:
        if len(lines) % 10 == 9 and start + 4 <= ROWS:
            lines.append(json.dumps({"instances": rows[start:start + 4]}))
            spans.append((start, 4))
            start += 4
        else:
            lines.append(json.dumps(rows[start]))
            spans.append((start, 1))
            start += 1

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    conf = SparkConf().setMaster("local[2]").setAppName("nnbuild-stream-test").set("spark.ui.enabled", "false") \
        .set("spark.ui.showConsoleProgress", "false")
    context = SparkContext(conf=conf)
    context.setLogLevel("ERROR")
    # A second job: keras.io's structured-data classifier (Tests/GraphFixtures/structured_strings),
    # whose rows carry a string feature, as JSON objects keyed by input name.
    structured = os.path.join(ROOT, "Tests", "GraphFixtures", "structured_strings")
    thal = [generator.choice(["fixed", "normal", "reversible", "1", "unknown"]) for _ in range(STRING_ROWS)]
    sex = [generator.choice([0, 1, 2]) for _ in range(STRING_ROWS)]
    age = [round(generator.gauss(55, 9), 3) for _ in range(STRING_ROWS)]
    string_lines = [json.dumps({"thal": [t], "sex": [x], "age": [a]}) for t, x, a in zip(thal, sex, age)]
    structured_args = [os.path.join(structured, "model.json"), os.path.join(structured, "weights.safetensors")]
    with tempfile.TemporaryDirectory() as folder:
        inputs = []
        for name, values in (("thal", thal), ("sex", sex), ("age", age)):
            path = os.path.join(folder, name + ".json")
            with open(path, "w") as handle:
                json.dump([[value] for value in values], handle)
            inputs += ["--input", "%s=%s" % (name, path)]
        string_direct = json.loads(subprocess.run([binary, "infer"] + structured_args + inputs,
                                                  check=True, capture_output=True, text=True).stdout)["output"]
    try:
        rdd = context.parallelize(lines, PARTITIONS)
        command = "%s infer %s %s --stream --batch-size 64" % (binary, spec, weights)
        per_partition = rdd.pipe(command, checkCode=True).glom().collect()
        partition_sizes = rdd.glom().map(len).collect()
        string_rdd = context.parallelize(string_lines, PARTITIONS)
        string_answers = string_rdd.pipe("%s infer %s %s --stream --batch-size 32" % tuple([binary] + structured_args), checkCode=True).collect()
    except Exception as error:  # a failed pipe (the command refused, or exited non-zero) fails the job
        print("FAIL the Spark job failed: %s" % str(error).strip().splitlines()[0][:400])
        print("0 passed, 1 failed")
        return 1
    finally:
        context.stop()

    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + what)
        if ok:
            passed += 1
        else:
            failed += 1

    check(len(per_partition) == PARTITIONS and all(size > 0 for size in partition_sizes),
          "the job ran over %d partitions of %s lines" % (len(per_partition), partition_sizes))
    check([len(part) for part in per_partition] == partition_sizes,
          "every partition answered one line per input line: %s answers for %s lines" % ([len(part) for part in per_partition], partition_sizes))
    answers = [json.loads(line) for part in per_partition for line in part]
    errors = [answer for answer in answers if isinstance(answer, dict) and "error" in answer]
    check(not errors, "no line was answered with an error%s" % (": %s" % errors[0] if errors else ""))

    streamed = []
    for answer, (first, count) in zip(answers, spans):
        if count == 1:
            streamed.append(answer)
        else:
            streamed.extend(answer.get("predictions", []) if isinstance(answer, dict) else [])
    check(len(streamed) == ROWS == len(direct), "%d rows answered by Spark, %d by the direct run, of %d" % (len(streamed), len(direct), ROWS))
    worst, identical = 0.0, 0
    for got, want in zip(streamed, direct):
        if got == want:
            identical += 1
        for g, w in zip(got, want):
            worst = max(worst, abs(g - w) / (1 + abs(w)))
    check(len(streamed) == len(direct) and identical == len(direct),
          "Spark's rows equal the direct run's bit for bit: %d of %d rows identical (max relative difference %.3g)" % (identical, len(direct), worst))
    string_streamed = [json.loads(line) for line in string_answers]
    check(string_streamed == string_direct and len(string_direct) == STRING_ROWS,
          "a model with a string input: Spark's %d rows equal the direct run's bit for bit (%d of %d identical)"
          % (len(string_streamed), sum(1 for got, want in zip(string_streamed, string_direct) if got == want), len(string_direct)))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
