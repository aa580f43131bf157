#!/usr/bin/env python3
"""Batch scoring with Spark: every row of a Parquet file through `nnbuild infer --stream`.

Each executor receives the nnbuild binary and the model's two files (spark-submit --files, or
SparkContext.addFile), finds them with SparkFiles.get, and starts one nnbuild process per
partition: the model loads once per partition, rows stream through it in batches, and the answers
come back in order. A row nnbuild refuses gets its error message in the `error` column instead of
failing the job.

    python3 score.py make-sample rows.parquet [--rows 2000]
    spark-submit --master 'local[2]' \
        --files nnbuild,model.json,weights.safetensors,classes.txt \
        score.py score rows.parquet scores.parquet

or, without spark-submit, `python3 score.py score IN OUT --ship nnbuild model.json weights.safetensors`,
which adds the files itself. The input has a `features` column of arrays (8 floats per row for
specs/tabular_mlp) and any other columns (an `id` here), which are kept.
"""
import argparse
import collections
import json
import os
import random
import stat
import subprocess
import threading

from pyspark import SparkFiles
from pyspark.sql import SparkSession
from pyspark.sql.types import ArrayType, FloatType, IntegerType, LongType, StringType, StructField, StructType


def make_sample(spark, path, rows):
    """A Parquet file of `rows` rows: an id and 8 standard-normal features."""
    generator = random.Random(7)
    data = [(index, [generator.gauss(0, 1) for _ in range(8)]) for index in range(rows)]
    schema = StructType([StructField("id", LongType()), StructField("features", ArrayType(FloatType()))])
    spark.createDataFrame(data, schema).repartition(4).write.mode("overwrite").parquet(path)
    print("wrote %d rows to %s" % (rows, path))


def shipped(name):
    """The executor-local path of a file shipped with --files / addFile."""
    path = SparkFiles.get(name)
    if not os.path.exists(path):
        raise FileNotFoundError("%s was not shipped to this executor: pass it in spark-submit --files" % name)
    return path


def score_partition(rows, batch_size, class_names):
    """Streams one partition's rows through one nnbuild process, yielding a result per row, in order."""
    binary = shipped("nnbuild")
    os.chmod(binary, os.stat(binary).st_mode | stat.S_IXUSR)  # --files does not always keep the mode
    command = [binary, "infer", shipped("model.json"), shipped("weights.safetensors"), "--stream", "--batch-size", str(batch_size)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    pending = collections.deque()  # the rows written and not yet answered, oldest first

    def feed():
        try:
            for row in rows:
                pending.append(row)
                process.stdin.write(json.dumps([float(x) for x in row.features]) + "\n")
        finally:
            process.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    for line in process.stdout:
        row = pending.popleft()
        answer = json.loads(line)
        if isinstance(answer, dict):
            yield (*row, None, None, None, answer.get("error"))
        else:
            best = max(range(len(answer)), key=lambda index: answer[index] if answer[index] is not None else float("-inf"))
            label = class_names[best] if best < len(class_names) else str(best)
            yield (*row, [float("nan") if value is None else value for value in answer], best, label, None)
    writer.join()
    # Exit 1 only says some row was refused; those rows carry the message in `error`.
    if process.wait() not in (0, 1):
        raise RuntimeError("nnbuild stopped with exit code %d on this partition" % process.returncode)


def score(spark, source, target, batch_size):
    frame = spark.read.parquet(source)
    names_path = SparkFiles.get("classes.txt")
    class_names = open(names_path).read().split() if os.path.exists(names_path) else []
    schema = StructType(frame.schema.fields + [
        StructField("scores", ArrayType(FloatType())), StructField("class_index", IntegerType()),
        StructField("class_name", StringType()), StructField("error", StringType())])
    scored = frame.rdd.mapPartitions(lambda rows: score_partition(rows, batch_size, class_names))
    result = spark.createDataFrame(scored, schema)
    result.write.mode("overwrite").parquet(target)
    written = spark.read.parquet(target)
    print("scored %d rows into %s (%d refused)" % (written.count(), target, written.filter("error IS NOT NULL").count()))
    written.groupBy("class_name").count().orderBy("class_name").show()
    written.orderBy("id").show(5, truncate=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("make-sample", help="write a small Parquet file of rows to score")
    sample.add_argument("path")
    sample.add_argument("--rows", type=int, default=2000)
    run = commands.add_parser("score", help="score a Parquet file of rows into another")
    run.add_argument("source")
    run.add_argument("target")
    run.add_argument("--batch-size", type=int, default=256)
    run.add_argument("--ship", nargs="+", metavar="FILE",
                     help="files to send to the executors (nnbuild, model.json, weights.safetensors, classes.txt) when not using spark-submit --files")
    arguments = parser.parse_args()

    spark = SparkSession.builder.appName("nnbuild-score").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        if arguments.command == "make-sample":
            make_sample(spark, arguments.path, arguments.rows)
        else:
            for path in arguments.ship or []:
                spark.sparkContext.addFile(os.path.abspath(path))
            score(spark, arguments.source, arguments.target, arguments.batch_size)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
