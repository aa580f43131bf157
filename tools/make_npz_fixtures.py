#!/usr/bin/env python3
"""Writes Tests/NpzFixtures/: .npz files made by numpy itself, and malformed zips built byte by
byte, each breaking one rule the zip reader (Sources/ModelSpec/Zip.swift) enforces.

numpy only. Run from the repository root:  python3 tools/make_npz_fixtures.py
The expected messages live in Tests/ModelSpecTests/NpzTests.swift beside each file's name.
"""
import io
import os
import struct
import zlib

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "NpzFixtures")


def arrays():
    return {
        "image": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
        "tokens": np.array([[1, 5, 0], [7, 2, 9]], dtype=np.int64),
        "dense_1:1": np.array([0.5, -1.25], dtype=np.float64),
    }


def npy_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array))
    return buffer.getvalue()


def member(name, data, method=0, flags=0, declared_size=None, crc=None, local_name=None):
    """One member: (local header + data, central entry without its offset)."""
    payload = zlib.compressobj(6, zlib.DEFLATED, -15)
    stored = data if method == 0 else payload.compress(data) + payload.flush()
    crc = zlib.crc32(data) if crc is None else crc
    size = len(data) if declared_size is None else declared_size
    encoded = name.encode()
    local_encoded = (local_name or name).encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, len(stored), size,
                        len(local_encoded), 0) + local_encoded + stored
    central = (flags, method, crc, len(stored), size, encoded)
    return local, central


def archive(members, central_offset_shift=0, extra_central=(), zip64=False):
    """A zip of `members` [(local, central)]; `extra_central` adds entries pointing at earlier locals;
    `zip64` writes every size, offset and count in zip64 records, as numpy does for large arrays."""
    body = b""
    entries = []
    for local, central in members:
        entries.append((central, len(body)))
        body += local
    entries += list(extra_central)
    directory = b""
    for (flags, method, crc, csize, size, name), offset in entries:
        extra = struct.pack("<HHQQQ", 1, 24, size, csize, offset) if zip64 else b""
        if zip64:
            csize = size = offset = 0xFFFFFFFF
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45 if zip64 else 20, 45 if zip64 else 20, flags,
                                 method, 0, 0x21, crc, csize, size, len(name), len(extra), 0, 0, 0, 0o100644 << 16,
                                 offset) + name + extra
    directory_offset = len(body) + central_offset_shift
    if not zip64:
        return body + directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                                              len(directory), directory_offset, 0)
    record = len(body) + len(directory)
    tail = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(directory),
                       directory_offset)
    tail += struct.pack("<IIQI", 0x07064B50, 0, record, 1)
    tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return body + directory + tail


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as handle:
        handle.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    # Made by numpy: what users hand to nnbuild.
    np.savez(os.path.join(OUT, "savez.npz"), **arrays())
    np.savez_compressed(os.path.join(OUT, "savez_compressed.npz"), **arrays())
    np.savez(os.path.join(OUT, "positional.npz"), np.ones((1, 2), np.float32), np.zeros((3,), np.float32))

    good = npy_bytes(np.arange(4, dtype=np.float32))
    zeros = npy_bytes(np.zeros(1 << 18, dtype=np.float32))  # 1 MiB that deflates to about 1 KiB
    write("zip64.npz", archive([member("a.npy", good), member("b.npy", good, method=8)], zip64=True))
    write("bad_truncated.npz", open(os.path.join(OUT, "savez.npz"), "rb").read()[:-30])
    write("bad_not_zip.npz", b"this is not a zip archive at all, just text\n")
    write("bad_crc.npz", archive([member("a.npy", good, crc=0x12345678)]))
    write("bad_encrypted.npz", archive([member("a.npy", good, flags=1)]))
    write("bad_method.npz", archive([member("a.npy", good, method=12)]))
    write("bad_name_parent.npz", archive([member("../a.npy", good)]))
    write("bad_not_npy.npz", archive([member("notes.txt", b"hello")]))
    write("bad_duplicate.npz", archive([member("a.npy", good), member("a.npy", good)]))
    write("bad_local_name.npz", archive([member("a.npy", good, local_name="b.npy")]))
    write("bad_directory_offset.npz", archive([member("a.npy", good)], central_offset_shift=1000))
    # A zip bomb that lies: 1 MiB of zeros declared as 1000 bytes; inflating must stop there.
    write("bomb_past_declared.npz", archive([member("a.npy", zeros, method=8, declared_size=1000)]))
    # A zip bomb that tells: 4 GiB declared from about 1 KiB, more than deflate can express.
    write("bomb_ratio.npz", archive([member("a.npy", zeros, method=8, declared_size=0xFFFFFFFE)]))
    # Overlapping members (the smallest zip bombs): a member whose stored data holds the next
    # member's whole local header. (Two entries for one header would fail the name check first.)
    inner_local, inner_central = member("b.npy", good)
    outer_data = inner_local
    outer_local, outer_central = member("a.npy", outer_data)
    write("bomb_overlap_nested.npz", archive([(outer_local, outer_central)],
                                             extra_central=[(inner_central, len(outer_local) - len(inner_local))]))


if __name__ == "__main__":
    main()
