#!/usr/bin/env python3
"""ONNX Runtime behind a minimal HTTP server speaking TF Serving's REST predict request, for the
load benchmark (Benchmarks/serve_load.py) to compare with `nnbuild serve`.

    python3 Benchmarks/ort_http_server.py --model NAME=model.onnx [--model ...] [--port 0] [--threads N]

One process: the standard library's ThreadingHTTPServer (a thread per connection) and one
onnxruntime.InferenceSession per model, shared by every thread (its run() is thread-safe), with
its default intra-op threads or --threads. No batching across requests.

    POST /v1/models/NAME:predict  {"instances": [row, ...]}  ->  200 {"predictions": [row, ...]}

A bad request gets {"error": "..."} with 400 (malformed JSON, no "instances", a shape or value the
model does not take), an unknown model or path 404. Binds 127.0.0.1. Prints
"ort_http_server: listening on http://127.0.0.1:PORT serving NAME, ..." once ready, and stops on
SIGTERM or SIGINT.
"""
import argparse
import json
import os
import re
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^/v1/models/([^/:]+):predict$")
MAX_BODY = 64 << 20


def load(specs, threads):
    """{name: (session, input name, numpy dtype)} for NAME=PATH specs; exits with one line on error."""
    import numpy as np
    import onnxruntime as ort

    models = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            sys.exit("ort_http_server: --model '%s': expected NAME=PATH of an .onnx file" % spec)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as error:
            lines = str(error).strip().splitlines() or [type(error).__name__]
            sys.exit("ort_http_server: --model %s: ONNX Runtime cannot load %s: %s" % (name, path, lines[-1]))
        first = session.get_inputs()[0]
        dtype = {"tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(float)": np.float32}.get(first.type)
        if dtype is None:
            sys.exit("ort_http_server: --model %s: input '%s' has type %s; expected int32, int64 or float" % (name, first.name, first.type))
        row_shape = [d if isinstance(d, int) else None for d in first.shape[1:]]
        models[name] = (session, first.name, dtype, row_shape)
    return models


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the load clients reuse their connection
    models = {}

    def setup(self):
        super().setup()
        # The headers and the body go out in two writes: without TCP_NODELAY, Nagle's algorithm
        # holds the body until the client's delayed ACK, adding ~40 ms to every answer.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *_):  # quiet: the load test makes thousands of requests
        pass

    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(404, {"error": "GET %s: this server only answers POST /v1/models/NAME:predict" % self.path})

    def do_POST(self):
        import numpy as np

        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.rfile.read(length)
            return self.answer(413, {"error": "request body of %d bytes is over the %d limit" % (length, MAX_BODY)})
        body = self.rfile.read(length)
        match = PATH.match(self.path)
        if not match:
            return self.answer(404, {"error": "POST %s: expected /v1/models/NAME:predict" % self.path})
        model = self.models.get(match.group(1))
        if model is None:
            return self.answer(404, {"error": "unknown model '%s'; serving %s" % (match.group(1), ", ".join(sorted(self.models)))})
        session, input_name, dtype, row_shape = model
        try:
            request = json.loads(body)
        except ValueError as error:
            return self.answer(400, {"error": "request body is not JSON: %s" % error})
        if not isinstance(request, dict) or not isinstance(request.get("instances"), list) or not request["instances"]:
            return self.answer(400, {"error": "expected an object with a non-empty \"instances\" list"})
        try:
            x = np.asarray(request["instances"], dtype=dtype)
        except (ValueError, TypeError) as error:
            return self.answer(400, {"error": "instances: expected numbers in rows of one shape: %s" % error})
        found = list(x.shape[1:])
        if len(found) != len(row_shape) or any(want is not None and want != got for want, got in zip(row_shape, found)):
            return self.answer(400, {"error": "instances: expected rows of shape %s, found %s" % (
                [d if d is not None else "any" for d in row_shape], found)})
        try:
            out = session.run(None, {input_name: x})[0]
        except Exception as error:  # a value the model does not take (a token id out of range)
            return self.answer(400, {"error": "instances: %s" % " ".join(str(error).split())[:300]})
        self.answer(200, {"predictions": out.tolist()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH", help="an .onnx model to serve as NAME; repeatable")
    parser.add_argument("--port", type=int, default=8501, help="port (0 picks a free one)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: its own)")
    args = parser.parse_args()
    try:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        sys.exit("ort_http_server: needs numpy and onnxruntime (%s): pip install onnxruntime" % error)
    Handler.models = load(args.model, args.threads)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ort_http_server: listening on http://127.0.0.1:%d serving %s" % (server.server_address[1], ", ".join(sorted(Handler.models))), flush=True)
    server.serve_forever()
    server.server_close()
    os._exit(0)


if __name__ == "__main__":
    main()
