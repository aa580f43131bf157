#!/usr/bin/env python3
"""Writes Tests/Malformed/: broken specs, weight blobs and inputs, each a realistic mistake or attack.

    python3 tools/make_malformed.py

Every case is derived from a valid bundled example (specs/tabular_mlp, specs/text_bilstm), so each
file has exactly one thing wrong. Tests/Malformed/cases.json lists, per case, the nnbuild command
to run (paths relative to the repository), the error class it must raise (NNError.Kind) and a
fragment of the message. The test suite runs every case and asserts a non-zero exit without a
signal, one error per problem, and the class. Needs only numpy.
"""
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "Tests", "Malformed")
TAB = "specs/tabular_mlp"
TEXT = "specs/text_bilstm"

cases = []
# Functions that add cases of a later round; each round's section at the end of this file registers one.
SECTIONS = []


def write(name, data):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return "Tests/Malformed/" + name


def case(name, why, args, kind, fragment):
    cases.append({"name": name, "why": why, "args": args, "kind": kind, "fragment": fragment})


def read_blob(path):
    raw = open(os.path.join(ROOT, path), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def blob(header, data, raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        os.remove(os.path.join(OUT, old))
    spec = f"{TAB}/model.json"
    good_weights = f"{TAB}/weights.safetensors"
    x = f"{TAB}/input.npy"
    header, data = read_blob(good_weights)
    names = sorted(k for k in header if k != "__metadata__")
    first = min(names, key=lambda k: header[k]["data_offsets"][0])

    def weights_case(name, why, content, fragment, kind="weights"):
        path = write(name + ".safetensors", content)
        case(name, why, ["validate", spec, path], kind, fragment)

    # Weight blobs -------------------------------------------------------------------------------
    weights_case("w_empty", "an empty file", b"", "starts with an 8-byte header length")
    weights_case("w_short", "shorter than the 8-byte length field", b"\x01\x02\x03\x04\x05", "starts with an 8-byte header length")
    weights_case("w_header_huge", "a header length of 2^63 (an attempt to allocate memory away)", struct.pack("<Q", 1 << 63) + b"{}", "the largest accepted is 100000000")
    weights_case("w_header_over_cap", "a header length of 200 MB, over the reference reader's cap", struct.pack("<Q", 200_000_000) + b"{}", "the largest accepted is 100000000")
    weights_case("w_header_past_eof", "a header length past the end of the file", struct.pack("<Q", 5000) + b"{}", "truncated file?")
    weights_case("w_header_garbage", "a header of random bytes", blob(None, b"", bytes(range(1, 60))), "does not start with '{'")
    weights_case("w_header_array", "a JSON array instead of an object", blob(None, b"", b"[1, 2, 3]"), "does not start with '{'")
    weights_case("w_header_not_utf8", "a header that is not UTF-8", blob(None, b"", b'{"\xff\xfe": 1}'), "not valid UTF-8")
    weights_case("w_header_deep", "a header nested 5000 levels deep", blob(None, b"", b"{\"a\":" + b"[" * 5000 + b"]" * 5000 + b"}"), "nested deeper than 64")
    dup = json.dumps({k: header[k] for k in names})
    dup = dup[:-1] + ", " + json.dumps(first) + ": " + json.dumps(header[first]) + "}"
    weights_case("w_duplicate_name", "a tensor name that appears twice", blob(None, data, dup.encode()), "appears twice")
    h = dict(header); h[first] = dict(h[first], dtype="F7")
    weights_case("w_unknown_dtype", "an unknown dtype", blob(h, data), "unknown dtype 'F7'")
    h = dict(header); h[first] = dict(h[first], dtype="BOOL")
    weights_case("w_bool_dtype", "a boolean dtype for a weight (integer dtypes are read, as Keras stores some state as integers)", blob(h, data), "is not supported for weights")
    h = {k: dict(v) for k, v in header.items()}
    for k in names:
        if k != "__metadata__" and h[k]["data_offsets"][0] > 0:
            h[k]["data_offsets"] = [h[k]["data_offsets"][0] + 4, h[k]["data_offsets"][1] + 4]
    weights_case("w_offset_gap", "offsets that leave a gap between tensors", blob(h, data + b"\0\0\0\0"), "leaves a gap")
    h = {k: dict(v) for k, v in header.items()}
    second = sorted(names, key=lambda k: header[k]["data_offsets"][0])[1]
    size = h[second]["data_offsets"][1] - h[second]["data_offsets"][0]
    h[second]["data_offsets"] = [0, size]
    weights_case("w_offset_overlap", "two tensors that share bytes", blob(h, data), "overlaps")
    h = {k: dict(v) for k, v in header.items()}
    last = max(names, key=lambda k: header[k]["data_offsets"][1])
    h[last]["data_offsets"] = [h[last]["data_offsets"][0], h[last]["data_offsets"][1] + 4096]
    weights_case("w_offset_past_end", "an offset past the end of the data", blob(h, data), "truncated file?")
    h = {k: dict(v) for k, v in header.items()}
    h[first]["shape"] = [d + 1 for d in h[first]["shape"]]
    weights_case("w_shape_bytes_mismatch", "a shape whose byte size does not match its offsets", blob(h, data), "needs")
    h = {k: dict(v) for k, v in header.items()}
    h[first]["shape"] = [2**31 - 1, 2**31 - 1, 2**31 - 1]
    weights_case("w_shape_overflow", "a shape whose element count overflows", blob(h, data), "too many elements")
    h = {k: dict(v) for k, v in header.items()}
    h[first]["shape"] = ["3"]
    weights_case("w_shape_string", "a shape of strings", blob(h, data), "must hold non-negative integers")
    h = {k: dict(v) for k, v in header.items()}
    h[first]["data_offsets"] = [-4, 0]
    weights_case("w_offset_negative", "a negative offset", blob(h, data), "run backwards")
    h = {k: dict(v) for k, v in header.items()}
    h[first]["data_offsets"] = [0]
    weights_case("w_offset_arity", "data_offsets with one number", blob(h, data), "data_offsets must be [begin, end]")
    weights_case("w_trailing", "extra bytes after the last tensor", blob(header, data + b"junk"), "4 trailing bytes")
    weights_case("w_truncated", "a download cut short", blob(header, data)[:-10], "truncated file?")
    # Missing / unused / mis-shaped tensors: a well-formed blob that does not fit the model.
    h = {}
    out = b""
    for k in sorted(names, key=lambda k: header[k]["data_offsets"][0]):
        if k == first:
            continue
        b0, b1 = header[k]["data_offsets"]
        h[k] = {"dtype": "F32", "shape": header[k]["shape"], "data_offsets": [len(out), len(out) + b1 - b0]}
        out += data[b0:b1]
    weights_case("w_missing_tensor", "a weight the model needs is absent", blob(h, out), "is missing")
    h2 = dict(h); h2["sequential/stray/kernel"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(out), len(out) + 4]}
    h2[first] = {"dtype": "F32", "shape": header[first]["shape"], "data_offsets": [len(out) + 4, len(out) + 4 + header[first]["data_offsets"][1] - header[first]["data_offsets"][0]]}
    b0, b1 = header[first]["data_offsets"]
    weights_case("w_unused_tensor", "a tensor no layer uses", blob(h2, out + b"\0\0\0\0" + data[b0:b1]), "is not used by any layer")
    kernel = next(k for k in names if k.endswith("kernel"))
    h = {k: dict(v) for k, v in header.items()}
    shape = h[kernel]["shape"]
    h[kernel]["shape"] = [shape[1], shape[0]]
    weights_case("w_transposed_kernel", "a kernel saved transposed", blob(h, data), "expected")
    weights_case("w_is_json", "the spec given where the weights belong", open(os.path.join(ROOT, spec), "rb").read(), "the largest accepted is 100000000")

    # Specs ----------------------------------------------------------------------------------------
    base = json.load(open(os.path.join(ROOT, spec)))
    layers = base["config"]["layers"]

    def spec_case(name, why, text, kind, fragment, weights=None):
        path = write(name + ".json", text if isinstance(text, (str, bytes)) else json.dumps(text))
        case(name, why, ["validate", path] + ([weights] if weights else []), kind, fragment)

    def with_layer(index, **changes):
        spec_copy = json.loads(json.dumps(base))
        spec_copy["config"]["layers"][index]["config"].update(changes)
        return spec_copy

    text = json.dumps(base, indent=1)
    spec_case("s_trailing_comma", "a trailing comma (hand editing)", text.replace('}', ',}', 1), "json", "invalid JSON")
    spec_case("s_truncated", "a file cut in the middle", text[: len(text) // 2], "json", "ends early")
    spec_case("s_deep", "JSON nested 100000 levels deep", "[" * 100000 + "]" * 100000, "json", "nested deeper than 64")
    spec_case("s_binary", "a binary file given as the spec", bytes(range(256)) * 4, "json", "not valid UTF-8")
    spec_case("s_array", "a JSON array instead of a model", "[1, 2, 3]", "spec", "expected a JSON object")
    spec_case("s_functional", "a Functional model without layers", {"class_name": "Functional", "config": {"layers": []}}, "spec", "the model has no layers")
    spec_case("s_no_layers", "a config without layers", {"class_name": "Sequential", "config": {"name": "x"}}, "spec", "missing; expected the list of layers")
    spec_case("s_empty_layers", "an empty layer list", {"class_name": "Sequential", "config": {"layers": []}}, "spec", "the model has no layers")
    spec_case("s_no_input_shape", "no input shape anywhere", {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 2}}]}}, "spec", "cannot tell the model's input shape")
    dup = json.loads(json.dumps(base)); dup["config"]["layers"][2]["config"]["name"] = dup["config"]["layers"][1]["config"]["name"]
    spec_case("s_duplicate_names", "two layers with one name", dup, "spec", "is used twice")
    unknown = json.loads(json.dumps(base)); unknown["config"]["layers"][1]["class_name"] = "Dens"
    spec_case("s_unknown_layer", "a misspelt layer type", unknown, "unknownLayer", "closest registered: 'Dense'")
    spec_case("s_units_string", "units as a string", with_layer(1, units="32"), "layer", "'units' must be an integer")
    spec_case("s_units_negative", "a negative size", with_layer(1, units=-4), "layer", "must be a positive integer")
    spec_case("s_units_absurd", "a Dense with 10^12 units", with_layer(1, units=10**12), "layer", "must be an integer")
    spec_case("s_units_huge", "a Dense whose kernel would need 8 TB", with_layer(1, units=2**28), "layer", "GB); the largest accepted is")
    spec_case("s_activation_unknown", "an activation that does not exist", with_layer(1, activation="relu7"), "layer", "unknown activation 'relu7'")
    spec_case("s_use_bias_string", "a boolean given as a string", with_layer(1, use_bias="yes"), "layer", "must be true or false")
    conv_after_flatten = {"class_name": "Sequential", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 8, 8, 1]}}, {"class_name": "Flatten"},
        {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3}}]}}
    spec_case("s_conv_after_flatten", "a Conv2D that cannot follow a Flatten", conv_after_flatten, "layer", "from layer 'flatten' (Flatten)")
    conv = json.loads(json.dumps(conv_after_flatten)); conv["config"]["layers"].pop(1)
    conv["config"]["layers"][1]["config"]["kernel_size"] = 0
    spec_case("s_kernel_zero", "a zero kernel size", conv, "layer", "kernel_size")
    conv["config"]["layers"][1]["config"].update(kernel_size=3, padding="full")
    spec_case("s_padding_unknown", "a padding Keras does not have", conv, "layer", "padding")
    conv["config"]["layers"][1]["config"].update(padding="valid", kernel_size=[20, 20])
    spec_case("s_kernel_too_big", "a kernel larger than its input", conv, "layer", "kernel")
    spec_case("s_batch_shape_negative", "a negative input size", {"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [None, -3]}}]}}, "spec", "expected a positive size or null")
    spec_case("s_layer_not_object", "a layer that is a string", {"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [None, 3]}}, "Dense"]}}, "spec", "expected a layer object")
    spec_case("s_weights_for_other_model", "weights of a different model", base, "weights", "is missing", weights=f"{TEXT}/weights.safetensors")

    # Inputs ---------------------------------------------------------------------------------------
    def input_case(name, why, content, kind, fragment, model=TAB):
        path = write(name, content)
        case(name.split(".")[0], why, ["infer", f"{model}/model.json", f"{model}/weights.safetensors", "--input", path], kind, fragment)

    good = np.load(os.path.join(ROOT, x))

    def npy(array):
        import io
        buffer = io.BytesIO(); np.save(buffer, array); return buffer.getvalue()

    input_case("i_wrong_rank.npy", "a batch with an extra axis", npy(good[:, :, None]), "input", "expected (None, 8)")
    input_case("i_wrong_width.npy", "rows of the wrong width", npy(good[:, :5]), "input", "expected (None, 8)")
    input_case("i_truncated.npy", "a .npy file cut short", npy(good)[:-7], "input", "truncated?")
    raw = npy(good)
    input_case("i_bad_header.npy", "a .npy header that is not a dict", raw[:10] + b"#" * (len(raw) - 10), "input", "malformed")
    input_case("i_object_dtype.npy", "a pickled object array", npy(np.array([{"a": 1}], dtype=object)) if False else raw.replace(b"'<f4'", b"'|O8'", 1), "input", "unsupported .npy dtype")
    input_case("i_fortran.npy", "a Fortran-order array", npy(np.asfortranarray(good.astype(np.float32))) if good.ndim > 1 and False else raw.replace(b"'fortran_order': False", b"'fortran_order': True ", 1), "input", "Fortran order")
    input_case("i_ragged.json", "a ragged JSON batch", "[[1, 2, 3, 4, 5, 6, 7, 8], [1, 2]]", "input", "rectangular")
    input_case("i_strings.json", "strings instead of numbers", '[["a", "b", "c", "d", "e", "f", "g", "h"]]', "input", "expected a number")
    input_case("i_not_json.json", "neither .npy nor JSON", "hello, world", "input", "expected a .npy file or JSON nested arrays")
    input_case("i_token_out_of_range.json", "a token id past the vocabulary", json.dumps([[5, 7, 4000] + [0] * 21]), "input", "outside the embedding's range", model=TEXT)
    input_case("i_token_negative.json", "a negative token id", json.dumps([[-1] + [0] * 23]), "input", "outside the embedding's range", model=TEXT)
    input_case("i_token_fraction.json", "a fractional token id", json.dumps([[1.5] + [0] * 23]), "input", "takes int32 input", model=TEXT)

    for section in SECTIONS:
        section()

    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    print("wrote %d cases to %s" % (len(cases), OUT))



# --- round two: reading files ---
# Hostile files for the readers in Sources/ModelSpec (issue 12, classes 2 and 5): safetensors
# names that repeat once decoded or hold NUL, UTF-8 that RFC 3629 forbids, .npy headers that are
# not the dict numpy writes, and JSON batches whose first elements claim terabytes. FIFOs and
# devices are not files a corpus can hold; the unit tests in Tests/ModelSpecTests make them.
def round_two_reading_files():
    spec = f"{TAB}/model.json"
    header, data = read_blob(f"{TAB}/weights.safetensors")
    names = sorted(k for k in header if k != "__metadata__")
    first = min(names, key=lambda k: header[k]["data_offsets"][0])

    def weights_case(name, why, content, fragment):
        case(name, why, ["validate", spec, write(name + ".safetensors", content)], "weights", fragment)

    def with_extra_name(raw_name):
        # The header as JSON text with one more entry named by `raw_name` (already escaped JSON).
        text = json.dumps({k: header[k] for k in header})
        return (text[:-1] + ", " + raw_name + ": " + json.dumps(header[first]) + "}").encode()

    escaped = '"' + "".join("\\u%04x" % ord(c) if c == first[0] else c for c in first) + '"'
    weights_case("w2_duplicate_escaped", "a tensor name repeated with a \\u escape, which json-c folds into the first",
                 blob(None, data, with_extra_name(escaped)), "appears twice")
    weights_case("w2_duplicate_nul_suffix", "a tensor name repeated with a \\u0000 suffix, where json-c ends keys",
                 blob(None, data, with_extra_name(json.dumps(first)[:-1] + '\\u0000"')), "holds a NUL character")
    for name, why, bad in [
        ("w2_name_surrogate", "a tensor name holding an encoded surrogate (ED A0 80)", b"\xed\xa0\x80"),
        ("w2_name_overlong", "a tensor name holding an overlong '/' (E0 80 AF)", b"\xe0\x80\xaf"),
        ("w2_name_above_unicode", "a tensor name holding a code point above U+10FFFF (F4 90 80 80)", b"\xf4\x90\x80\x80"),
    ]:
        text = json.dumps({k: header[k] for k in header}).encode()
        text = text.replace(json.dumps(first).encode(), json.dumps(first)[:-1].encode() + bad + b'"', 1)
        weights_case(name, why, blob(None, data, text), "not valid UTF-8")

    base = open(os.path.join(ROOT, spec), "rb").read()
    case("s2_overlong_utf8", "a spec holding an overlong three-byte form (E0 80 AF)",
         ["validate", write("s2_overlong_utf8.json", base.replace(b'"input_layer"', b'"input_layer\xe0\x80\xaf"', 1))], "json", "not valid UTF-8")
    case("s2_key_nul", "a spec key holding NUL, which json-c would cut off",
         ["validate", write("s2_key_nul.json", base.replace(b'"class_name"', b'"class_name\\u0000x"', 1))], "json", "holds a NUL character")

    x = np.load(os.path.join(ROOT, f"{TAB}/input.npy")).astype(np.float32)
    model = [f"{TAB}/model.json", f"{TAB}/weights.safetensors"]

    def npy_with_header(text, payload):
        # A version 1 .npy file whose header is exactly `text`.
        raw = text.encode("latin1")
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + payload

    def input_case(name, why, content, fragment):
        case(name.split(".")[0], why, ["infer"] + model + ["--input", write(name, content)], "input", fragment)

    shape = "(%d, %d)" % x.shape
    good = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape
    input_case("i2_fortran_string.npy", "fortran_order given as the string 'False'",
               npy_with_header(good.replace("False", "'False'") + "\n", x.tobytes()), "must be True or False, found the string 'False'")
    input_case("i2_duplicate_descr.npy", "descr given twice: the last ('<f8') wins, as in numpy, so the data is too short",
               npy_with_header(good[:-1] + "'descr': '<f8'}\n", x.tobytes()), "of float64 needs")
    input_case("i2_nul_padding.npy", "a header padded with NUL bytes instead of spaces",
               npy_with_header(good + "\0" * 8 + "\n", x.tobytes()), "padding holds byte 0x00")
    input_case("i2_unknown_key.npy", "a header with a key numpy does not write",
               npy_with_header(good[:-1] + "'order': 'C'}\n", x.tobytes()), "unknown key 'order'")
    input_case("i2_shape_list.npy", "a shape given as a list",
               npy_with_header(good.replace(shape, "[%d, %d]" % x.shape) + "\n", x.tobytes()), "expected a string, True, False or a tuple")
    input_case("i2_shape_overflow.npy", "a shape whose element count overflows",
               npy_with_header(good.replace(shape, "(4294967296, 4294967296)") + "\n", x.tobytes()), "holds too many elements")

    def bomb(width, depth):
        text = "0"
        for _ in range(depth):
            text = "[" + text + ",0" * (width - 1) + "]"
        return text

    input_case("i2_json_reserve_bomb.json", "240 bytes whose first elements claim 13^9 numbers (42 GB) before the array is checked",
               bomb(13, 9), "rectangular")
    input_case("i2_json_reserve_overflow.json", "first elements whose sizes multiply past 2^63",
               bomb(3, 60), "rectangular")


SECTIONS.append(round_two_reading_files)


# --- round two: shapes and memory ---
# Specs of a few hundred bytes whose shapes overflow (one case per layer that used to trap), and
# layers that would ask for gigabytes without weights to justify it.
def shapes_and_memory_cases():
    big = 2147483647

    def model(name, why, input_shape, layer, kind, fragment):
        text = {"class_name": "Sequential", "config": {"layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None] + input_shape}}, layer]}}
        case(name, why, ["validate", write(name + ".json", json.dumps(text))], kind, fragment)

    def first(name, why, class_name, input_shape, config=None):
        # The layer takes the input itself, so the error names it.
        layer = {"class_name": class_name, "config": dict({"name": "x", "batch_input_shape": [None] + input_shape}, **(config or {}))}
        text = {"class_name": "Sequential", "config": {"layers": [layer]}}
        case(name, why, ["validate", write(name + ".json", json.dumps(text))], "layer",
             "layer 'x' (%s): its input would hold" % class_name)

    m = big
    first("s_flatten_overflow", "Flatten of an input whose size overflows", "Flatten", [m, m, m])
    first("s_reshape_input_overflow", "Reshape of an input whose size overflows", "Reshape", [m, m, m], {"target_shape": [-1]})
    first("s_batchnorm_overflow", "BatchNormalization whose inner size overflows", "BatchNormalization", [2, m, m, m], {"axis": 1})
    first("s_layernorm_overflow", "LayerNormalization over axes whose size overflows", "LayerNormalization", [m, m, m], {"axis": [1, 2, 3], "scale": False, "center": False})
    first("s_rmsnorm_overflow", "RMSNormalization over axes whose size overflows", "RMSNormalization", [m, m, m], {"axis": [1, 2, 3]})
    first("s_unitnorm_overflow", "UnitNormalization over axes whose size overflows", "UnitNormalization", [m, m, m], {"axis": [1, 2, 3]})
    first("s_softmax_axis_overflow", "Softmax over one axis with an inner size that overflows", "Softmax", [2, m, m, m], {"axis": 1})
    first("s_softmax_axes_overflow", "Softmax over several axes whose size overflows", "Softmax", [m, m, m], {"axis": [1, 2, 3]})
    first("s_prelu_overflow", "PReLU over an input whose size overflows", "PReLU", [m, m, m], {"shared_axes": [1, 2, 3]})
    model("s_reshape_target_overflow", "a Reshape target_shape whose product overflows", [4],
          {"class_name": "Reshape", "config": {"name": "x", "target_shape": [65536, 65536, 65536, 65536, -1]}},
          "layer", "layer 'x' (Reshape): 'target_shape'")
    model("s_repeat_vector_memory", "RepeatVector asking for 8 GiB per sample", [16],
          {"class_name": "RepeatVector", "config": {"name": "x", "n": 134217728}}, "layer", "one sample would need 8.0 GiB")
    model("s_upsampling_memory", "UpSampling2D asking for 8 GiB per sample", [1, 1, 2],
          {"class_name": "UpSampling2D", "config": {"name": "x", "size": [32768, 32768]}}, "layer", "one sample would need 8.0 GiB")
    model("s_zero_padding_memory", "ZeroPadding2D asking for 6 GiB per sample", [1, 1, 1],
          {"class_name": "ZeroPadding2D", "config": {"name": "x", "padding": 20000}}, "layer", "one sample would need 6.0 GiB")
    model("s_dilated_conv_memory", "a dilated same Conv2D whose padded input is 16 TiB", [1, 1, 1],
          {"class_name": "Conv2D", "config": {"name": "x", "filters": 1, "kernel_size": 3, "padding": "same", "dilation_rate": 1048576}},
          "layer", "a zero-padded copy of the input 16.0 TiB")
    model("s_bidirectional_dense", "Bidirectional around a layer that is not recurrent", [3, 2],
          {"class_name": "Bidirectional", "config": {"name": "x", "layer": {"class_name": "Dense", "config": {"name": "d", "units": 2}}}},
          "layer", "'layer' must be a recurrent layer")


SECTIONS.append(shapes_and_memory_cases)


# --- round two: command line ---
# Outputs that must not clobber (issue 12, class 4) and plugin paths that are files, not library
# names (class 6). Devices, FIFOs, modes and signals need a private folder each; the CLI tests in
# Tests/nnbuildTests/OutputSafetyTests.swift make those. Usage errors (exit 64) are in
# ArgumentTests.swift, since every case here must exit 1.
def round_two_command_line():
    model = [f"{TAB}/model.json", f"{TAB}/weights.safetensors"]
    x = write("c2_input.npy", open(os.path.join(ROOT, f"{TAB}/input.npy"), "rb").read())
    case("c2_output_is_input", "--output naming the command's own input", ["infer"] + model + ["--input", x, "--output", x],
         "io", "--output names the input file")
    weights = write("c2_weights.safetensors", open(os.path.join(ROOT, f"{TAB}/weights.safetensors"), "rb").read())
    case("c2_output_is_weights", "--output naming the weights being read", ["infer", f"{TAB}/model.json", weights, "--input", x, "--output", weights],
         "io", "--output names the weights file")
    spec = write("c2_spec.json", open(os.path.join(ROOT, f"{TAB}/model.json"), "rb").read())
    case("c2_output_is_spec", "--output naming the spec being read", ["infer", spec, f"{TAB}/weights.safetensors", "--input", x, "--output", spec],
         "io", "--output names the spec file")
    case("c2_output_is_directory", "--output naming a directory", ["infer"] + model + ["--input", x, "--output", "Tests/Malformed"],
         "io", "is a directory, expected a file path for the output")
    case("c2_plugin_library_name", "a bare --plugin name that is a system library (libm.so.6), not a file here",
         ["--plugin", "libm.so.6", "layers"], "plugin", "no such plugin file in the working directory")


SECTIONS.append(round_two_command_line)


if __name__ == "__main__":
    main()
