#!/usr/bin/env python3
"""Writes the HDF5 reader's fixtures into Tests/HDF5Fixtures/ with h5py (and Keras for real model
files). Each file is small; HDF5Tests.swift checks the values written here.

    python3 tools/make_hdf5_fixtures.py
"""
import os, io, zipfile
import numpy as np
import h5py

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "HDF5Fixtures")
os.makedirs(OUT, exist_ok=True)
LONG_CONFIG = '{"class_name": "Sequential", "config": {"layers": [' + ", ".join(
    '{"class_name": "Dense", "config": {"name": "dense_%d", "units": %d}}' % (i, i + 1) for i in range(200)) + "]}}"


def fill(f, compact_ok=True):
    """The same content in every superblock version, so one Swift test checks them all."""
    f.attrs["title"] = "nnbuild"                                  # variable-length string
    f.attrs.create("fixed", np.bytes_("abc"), dtype="S3")        # fixed-length string
    f.attrs["numbers"] = np.array([1.5, -2.0, 3.25], dtype="<f8")
    f.attrs["names"] = np.array([b"x", b"yz"], dtype="S2")
    f.attrs["model_config"] = LONG_CONFIG                        # a long attribute (>4 kB), as legacy Keras writes
    g = f.create_group("model_weights")
    sub = g.create_group("dense")
    sub.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
    sub.create_dataset("kernel", data=np.arange(12, dtype="<f4").reshape(3, 4) / 4)
    sub.create_dataset("bias", data=np.array([0.5, -0.5, 1.0, 2.0], dtype=">f4"))
    d = f.create_group("types")
    d.create_dataset("f16", data=np.array([1.0, -2.5, 65504.0, 0.0], dtype="<f2"))
    d.create_dataset("f64", data=np.array([[1e-3, 2.0], [-3.0, 1e10]], dtype=">f8"))
    # At most 8 members per group: more makes libver v108+ files use dense link storage (see "big").
    for name in ["i1", "u1", "<i2", ">u2", "<i4", ">i4", "<u4", "<i8", ">i8", "<u8"]:
        dt = np.dtype(name)
        vals = np.array([0, 1, 2, 100], dtype=dt) if dt.kind == "u" else np.array([0, -1, 2, -100], dtype=dt)
        target = f.require_group("signed" if dt.kind == "i" else "unsigned")
        target.create_dataset(dt.kind + str(dt.itemsize * 8) + ("be" if dt.byteorder == ">" else ""), data=vals)
    d.create_dataset("scalar", data=np.float32(7.5))
    d.create_dataset("vlen", data=np.array(["alpha", "β", ""], dtype=object), dtype=h5py.string_dtype())
    d.create_dataset("fixedstr", data=np.array([b"ab", b"cde"], dtype="S3"))
    lay = f.create_group("layouts")
    data = (np.arange(6 * 10, dtype="<f4").reshape(6, 10) - 30) / 8
    lay.create_dataset("contiguous", data=data)
    lay.create_dataset("chunked", data=data, chunks=(4, 3))
    lay.create_dataset("gzip", data=data, chunks=(4, 3), compression="gzip", compression_opts=6)
    lay.create_dataset("shuffle_gzip", data=data, chunks=(5, 5), shuffle=True, compression="gzip")
    lay.create_dataset("single_chunk", data=data, chunks=(6, 10), compression="gzip")
    lay.create_dataset("fletcher", data=data, chunks=(6, 10), fletcher32=True)
    # Chunks allocated when the dataset is created: libver "latest" indexes them implicitly.
    early = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    early.set_chunk((4, 3))
    early.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    ds = h5py.h5d.create(lay.id, b"early", h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple((6, 10)), dcpl=early)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, data)
    # A fill value, and chunks never written: they read as the fill value.
    filled = f.create_dataset("filled", shape=(6, 10), dtype="<f4", chunks=(4, 3), fillvalue=2.5)
    filled[0:4, 0:3] = data[0:4, 0:3]
    if compact_ok:
        sid = h5py.h5s.create_simple((6, 10))
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_layout(h5py.h5d.COMPACT)
        ds = h5py.h5d.create(lay.id, b"compact", h5py.h5t.IEEE_F32LE, sid, dcpl=plist)
        ds.write(h5py.h5s.ALL, h5py.h5s.ALL, data)
    many = f.create_group("attrs")                            # more than 8: dense attribute storage in v108+
    for i in range(12):
        many.attrs["a%02d" % i] = np.int32(i)
    big = f.create_group("big")
    for i in range(60):                               # > 45: a v2 B-tree of depth 1 in v108+ files
        big.create_dataset("m%03d" % i, data=np.array([i], dtype="<i4"))


def write(name, **kw):
    with h5py.File(os.path.join(OUT, name), "w", **kw) as f:
        fill(f)


write("sb0.h5")                                       # superblock 0, symbol-table groups, layout v3
write("sb2.h5", libver=("v108", "v108"))              # superblock 2, object header v2, link messages
write("sb3.h5", libver="latest")                      # superblock 3, layout v4 chunk indexes
with h5py.File(os.path.join(OUT, "huge_attribute.h5"), "w", libver="latest") as f:
    f.attrs["huge"] = np.arange(20000, dtype="<f4")                # over 64 kB: a 'huge' fractal heap object
with h5py.File(os.path.join(OUT, "ordered.h5"), "w", track_order=True) as f:
    for name in ["zeta", "alpha", "mid"]:
        f.create_group(name)

try:
    import keras
    inputs = keras.Input((4,))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"), keras.layers.Dense(2, name="out")])
    for layer in model.layers:
        layer.set_weights([np.arange(w.size, dtype="float32").reshape(w.shape) / 10 for w in layer.get_weights()])
    path = os.path.join(OUT, "m.keras")
    model.save(path)
    with zipfile.ZipFile(path) as z:
        open(os.path.join(OUT, "keras3.weights.h5"), "wb").write(z.read("model.weights.h5"))
    os.remove(path)
    model.save(os.path.join(OUT, "legacy.h5"))
except ImportError:
    print("keras is not installed: the Keras files were not rewritten")


# The malformed corpus: a small valid file, then one defect per copy, found by structure (not by
# fixed offsets), so regenerating with another h5py still hits the same structure.
import struct
MAL = os.path.join(OUT, "malformed")
os.makedirs(MAL, exist_ok=True)
base_path = os.path.join(MAL, "base.h5")
with h5py.File(base_path, "w") as f:
    f.attrs["s"] = "a variable-length string"
    g = f.create_group("g")
    g.create_dataset("d", data=np.arange(4, dtype="<f4"))
    g.create_dataset("c", data=np.arange(16, dtype="<f4").reshape(4, 4), chunks=(2, 2), compression="gzip")
    data_offset = g["d"].id.get_offset()
with h5py.File(os.path.join(MAL, "lzf.h5"), "w") as f:
    f.create_dataset("x", data=np.arange(16, dtype="<f4"), chunks=(8,), compression="lzf")
base = open(base_path, "rb").read()
os.remove(base_path)
cases = []


def case(name, data, fragment):
    open(os.path.join(MAL, name), "wb").write(bytes(data))
    cases.append((name, fragment))


def patched(old, new, start=0):
    at = base.index(old, start)
    return base[:at] + new + base[at + len(old):]


case("truncated.h5", base[: len(base) // 2], "past the end of the file")
case("bad_signature.h5", b"\x88" + base[1:], "no HDF5 signature")
# The contiguous dataset's data address, moved far past the end of the file.
case("offset_past_end.h5", patched(b"\x03\x01" + struct.pack("<Q", data_offset), b"\x03\x01" + struct.pack("<Q", 1 << 40)),
     "is past the end of the file")
# The root group's B-tree node made an internal node whose child is itself.
root_header = struct.unpack("<Q", base[64:72])[0]
tree = base.index(b"TREE")
d = bytearray(base)
d[tree + 5] = 1                                                # level 1
d[tree + 8 + 16 + 8: tree + 8 + 16 + 16] = struct.pack("<Q", tree)  # first child = this node
case("btree_cycle.h5", d, "a B-tree cycle")
# The root group's first continuation message (h5py puts one first) pointed back at its own block.
d = bytearray(base)
header_size = struct.unpack("<I", base[root_header + 8: root_header + 12])[0]
msg = root_header + 16
while struct.unpack("<H", base[msg: msg + 2])[0] != 0x10:
    msg += 8 + struct.unpack("<H", base[msg + 2: msg + 4])[0]
d[msg: msg + 2] = struct.pack("<H", 0x10)
d[msg + 8: msg + 24] = struct.pack("<QQ", root_header + 16, header_size)
case("continuation_cycle.h5", d, "a continuation cycle")
# The chunked dataset's chunk dimensions (2, 2) claimed as (2^20, 2^20): 2^40 elements.
layout = base.index(b"\x03\x02\x03")
d = bytearray(base)
d[layout + 11: layout + 19] = struct.pack("<II", 1 << 20, 1 << 20)
case("chunk_2pow40.h5", d, "a chunk claims 4398046511104 bytes")
# The variable-length string attribute's global heap collection moved past the end of the file.
gcol = base.index(b"GCOL")
element = struct.pack("<IQ", len("a variable-length string"), gcol)   # length, then collection address
case("vlen_outside_heap.h5", patched(element, element[:4] + struct.pack("<Q", 1 << 40)), "points outside the global heap")
# The same string pointing at an object its collection does not hold.
ref = base.index(element) + 4
d = bytearray(base)
d[ref + 8: ref + 12] = struct.pack("<I", 999)
case("vlen_missing_object.h5", d, "has no object 999")
# The contiguous dataset's layout class turned into 'virtual'.
case("virtual_layout.h5", patched(b"\x03\x01" + struct.pack("<Q", data_offset), b"\x03\x03" + struct.pack("<Q", data_offset)),
     "layout class 'virtual' is not supported")
cases.append(("lzf.h5", "filter 'lzf' is not supported"))
with open(os.path.join(MAL, "cases.txt"), "w") as out:
    out.write("# file\tmessage fragment (HDF5Tests.testMalformedCorpus)\n")
    for name, fragment in cases:
        out.write(f"{name}\t{fragment}\n")
