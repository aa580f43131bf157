"""What a benchmark figure needs beside it: the CPU, its vector extensions, the machine's load, the
date, and which kernel path nnbuild runs on. Standard library only."""
import atexit
import os
import re
import shutil
import subprocess
import tempfile
import time


def cpu():
    """{'model': lscpu's model name with the CPU family and model numbers, 'vector': 'avx512' /
    'avx2' / 'sse' summary, 'flags': the relevant flags present, 'cores': online CPUs}. A VM may
    name its CPU only "AMD EPYC": family 26 is then Zen 5, family 25 Zen 4 (this project's notes
    called a family-26 machine Zen 4 until the numbers were recorded)."""
    model, flags, family, number = "unknown", set(), None, None
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "Flags":
                flags = set(value.split())
            elif key.strip() == "CPU family" and family is None:
                family = value.strip()
            elif key.strip() == "Model" and number is None:
                number = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    if not flags:  # no lscpu: /proc/cpuinfo has the same flags
        try:
            with open("/proc/cpuinfo") as handle:
                for line in handle:
                    if line.startswith("flags"):
                        flags = set(line.split(":", 1)[1].split())
                    elif line.startswith("model name") and model == "unknown":
                        model = line.split(":", 1)[1].strip()
        except OSError:
            pass
    if family and number and model != "unknown":
        model = "%s (family %s, model %s)" % (model, family, number)
    wanted = ["fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"]
    present = [f for f in wanted if f in flags]
    return {"model": model, "vector": vector_level(flags), "flags": present, "cores": os.cpu_count()}


def vector_level(flags):
    """The kernel path nnbuild's dispatch picks for these CPU flags (nnb_cpu_kernel_level)."""
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "fma"} <= set(flags):
        return "avx512"
    if {"avx2", "fma"} <= set(flags):
        return "avx2"
    return "baseline"


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


_ROUNDTRIP = {}


def core_roundtrip_ns():
    """How far apart CPUs 0 and 1 sit: one cache line's round trip between them, in ns, by
    Benchmarks/core_roundtrip.c (built once per process with cc or gcc). On this project's 2-vCPU
    VM it is 70-125 ns or 330-420 ns as the host places the vCPUs near or far, and two-thread
    figures move with it, so every figure records it. None with one CPU or no C compiler."""
    if (os.cpu_count() or 1) < 2:
        return None
    if "binary" not in _ROUNDTRIP:
        _ROUNDTRIP["binary"] = None
        compiler = shutil.which("cc") or shutil.which("gcc")
        source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "core_roundtrip.c")
        if compiler and os.path.exists(source):
            folder = tempfile.mkdtemp(prefix="nnbuild-roundtrip-")
            atexit.register(shutil.rmtree, folder, True)
            binary = os.path.join(folder, "core_roundtrip")
            built = subprocess.run([compiler, "-O2", "-pthread", "-o", binary, source], capture_output=True)
            if built.returncode == 0:
                _ROUNDTRIP["binary"] = binary
    if not _ROUNDTRIP["binary"]:
        return None
    try:
        text = subprocess.run([_ROUNDTRIP["binary"]], capture_output=True, text=True, timeout=30).stdout
        return int(re.search(r"(\d+) ns", text).group(1))
    except (OSError, subprocess.SubprocessError, AttributeError, ValueError):
        return None


def now():
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


KERNEL_PATHS = ("baseline", "avx2", "avx512")


def kernel_path_from_output(text):
    """The kernel path named in `nnbuild bench`'s output (a JSON key or a text line containing
    'kernel', e.g. "kernel_path": "avx512" or "kernels: avx2"), or None when it names none."""
    for line in text.splitlines():
        if "kernel" not in line.lower():
            continue
        match = re.search(r"kernel[a-z _-]*[\"']?\s*[:=]\s*[\"']?(baseline|avx512|avx2)\b", line, re.IGNORECASE)
        if match:
            return match.group(1).lower()
    return None


def kernel_path(bench_output, requested, cpu_info, reported=None):
    """(path, how it was known): `reported` (the kernel_path key of `nnbuild bench --json`) or
    bench's own line when it prints one; else derived from NNBUILD_KERNELS (`requested`) or,
    unset, from the CPU's flags."""
    said = reported if reported in KERNEL_PATHS else kernel_path_from_output(bench_output or "")
    if said:
        return said, "reported by nnbuild bench"
    if requested:
        return requested, "derived from NNBUILD_KERNELS: nnbuild bench did not print it"
    return cpu_info["vector"], "derived from the CPU flags: nnbuild bench did not print it"
