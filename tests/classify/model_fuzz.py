"""Mutated model files and a harness that runs `classify predict` on each in a forked child.

`mutations(files, n, seed)` yields (kind, model file bytes): random bytes, numbers and lines of
the LightGBM model text, header JSON fields (types, values, names) and members (shapes, dtypes,
declared sizes, extra members). `python -m tests.classify.model_fuzz SPEC.json` evaluates them:
one process, one fork per mutation, each child under an address-space limit; the result of
each is "ok" (exit 0), "error" (exit 1 with one line "Error: ...") or what went wrong (a
signal, a traceback, more lines, a hang). Used by tests/classify/test_model_fuzz.py and
benchmarks/model_fuzz.py.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import signal
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HEADER = "__header__"
EXTREMES = ("0", "-1", "1", "2", "3", "240000000", "100000", "-2000000", "2147483648",
            "9223372036854775808", "-2147483649", "1e308", "-1e308", "nan", "inf", "-inf",
            "1.5", "1e-320", "", "x", "00", "+5", "0x10", "9" * 40)
JSON_VALUES = (None, True, False, -1, 0, 1, 2, 1.5, 10**12, 10**30, -10**6, 1e300, "", "x",
               "predict_proba", "balanced", [], {}, [1, 2], [[0, 1]], {"type": "pipeline"},
               ["a"] * 3, "L4", {"predict_proba": 1}, 2**63)
NAMES = ("predict_proba", "__class__", "classes_", "coef_", "x", "", "type", "params",
         "steps", "fit", "__dict__", "n_features_in_")


def read_members(data: bytes) -> dict[str, bytes]:
    """name -> raw .npy bytes of an npz."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_members(members: dict[str, bytes], extra: dict[str, tuple[int, bytes]] | None = None,
                  level: int = 1) -> bytes:
    """An npz of raw .npy members; `extra`: name -> (size, fill byte) streamed members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        for n, b in members.items():
            z.writestr(n, b)
        for n, (size, fill) in (extra or {}).items():
            with z.open(n, "w", force_zip64=True) as f:
                f.write(npy_header((size,), "|u1"))
                chunk = fill * (1 << 20)
                for a in range(0, size, len(chunk)):
                    f.write(chunk[:size - a])
    return buf.getvalue()


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=True)
    return buf.getvalue()


def npy_header(shape: tuple, descr: str, fortran: bool = False) -> bytes:
    """A v1 .npy header declaring any shape, whatever data follows."""
    d = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode()
    pad = 64 - (10 + len(d) + 1) % 64
    d = d + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(d).to_bytes(2, "little") + d


def load_npy(b: bytes) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(b), allow_pickle=False)


def header_of(members: dict[str, bytes]) -> dict:
    return json.loads(load_npy(members[HEADER + ".npy"]).tobytes())


def with_header(members: dict[str, bytes], header) -> dict[str, bytes]:
    blob = json.dumps(header).encode()
    return {**members, HEADER + ".npy": npy(np.frombuffer(blob, np.uint8))}


def _paths(node, prefix=()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _get(node, path):
    for p in path:
        node = node[p]
    return node


def _mutate_bytes(data: bytes, rng) -> bytes:
    b = bytearray(data)
    op = rng.integers(4)
    if op == 0:  # flip a few bytes
        for _ in range(rng.integers(1, 9)):
            b[rng.integers(len(b))] = rng.integers(256)
    elif op == 1:  # overwrite a run
        a = rng.integers(len(b))
        run = bytes(rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8))
        b[a:a + len(run)] = run
    elif op == 2:  # truncate
        del b[rng.integers(4, len(b)):]
    else:  # zero a run
        a = rng.integers(len(b))
        b[a:a + rng.integers(1, 512)] = bytes(min(len(b) - a, 511))
    return bytes(b)


_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def _mutate_text(text: bytes, rng) -> bytes:
    op = rng.integers(10)
    lines = text.split(b"\n")
    if op < 6:  # numbers
        spans = [m.span() for m in _NUMBER.finditer(text)]
        out = text
        for _ in range(rng.integers(1, 4)):
            a, e = spans[rng.integers(len(spans))]
            new = EXTREMES[rng.integers(len(EXTREMES))].encode()
            out = out[:a] + new + out[e:]
            spans = [m.span() for m in _NUMBER.finditer(out)]
        return out
    if op == 6:  # delete a line
        del lines[rng.integers(len(lines))]
    elif op == 7:  # duplicate a line
        i = rng.integers(len(lines))
        lines.insert(rng.integers(len(lines)), lines[i])
    elif op == 8:  # the reported crafting: num_class changed, tree_sizes removed
        lines = [ln for ln in lines if not ln.startswith(b"tree_sizes=")]
        k = EXTREMES[rng.integers(8)].encode()
        lines = [b"num_class=" + k if ln.startswith(b"num_class=") else ln for ln in lines]
    else:  # swap two lines
        i, j = rng.integers(len(lines), size=2)
        lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _mutate_header(header: dict, rng) -> dict:
    header = json.loads(json.dumps(header))
    paths = [p for p in _paths(header) if p]
    path = paths[rng.integers(len(paths))]
    parent = _get(header, path[:-1])
    key = path[-1]
    op = rng.integers(5)
    if op <= 1:  # another value or type
        parent[key] = JSON_VALUES[rng.integers(len(JSON_VALUES))]
    elif op == 2 and isinstance(parent, dict):  # drop a field
        del parent[key]
    elif op == 3 and isinstance(parent, dict):  # rename a field
        parent[NAMES[rng.integers(len(NAMES))]] = parent.pop(key)
    elif isinstance(parent, dict):  # add a field
        parent[NAMES[rng.integers(len(NAMES))]] = JSON_VALUES[rng.integers(len(JSON_VALUES))]
    else:  # a list: drop or repeat an item
        if rng.integers(2) and len(parent) > 0:
            parent.pop(key)
        else:
            parent.append(parent[key])
    return header


def _mutate_member(members: dict[str, bytes], rng) -> tuple[dict, dict | None]:
    names = [n for n in members if n != HEADER + ".npy"]
    name = names[rng.integers(len(names))]
    arr = load_npy(members[name])
    op = rng.integers(9)
    extra = None
    if op == 0:
        dt = ("float32", "int8", "bool", "complex128", "<U3", "int64", "uint64", "float16")
        new = npy(arr.astype(dt[rng.integers(len(dt))]))
    elif op == 1:
        new = npy(arr.reshape(-1) if arr.ndim != 1 else arr.reshape(1, -1))
    elif op == 2:
        flat = arr.reshape(-1)
        new = npy(arr.T.copy() if arr.ndim == 2 else flat[: flat.size // 2])
    elif op == 3:
        new = npy(np.concatenate([arr.reshape(-1), arr.reshape(-1)])[:arr.size + 3])
    elif op == 4:  # a declared shape with no data behind it
        shape = ((10**12,), (10**6, 10**6), (2**62,), (-1,), (3, 0))[rng.integers(5)]
        new = npy_header(shape, arr.dtype.str if arr.dtype.kind != "U" else "<f8")
    elif op == 5:  # an object array: pickle in the member
        new = npy(np.array([{"a": 1}, None], dtype=object))
    elif op == 6:  # empty
        new = npy(np.zeros((0,) * max(arr.ndim, 1), arr.dtype))
    elif op == 7:  # an unreferenced member of many zeros
        new = members[name]
        extra = {f"zeros{rng.integers(100)}.npy": (int(rng.integers(50, 400)) << 20, b"\0")}
    else:  # a member gone
        out = dict(members)
        del out[name]
        return out, None
    return {**members, name: new}, extra


def mutations(files: dict[str, bytes], n: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """`n` mutated model files, spread over `files` (kind -> the bytes of a valid one)."""
    rng = np.random.default_rng(seed)
    kinds = sorted(files)
    parsed = {k: read_members(v) for k, v in files.items()}
    for i in range(n):
        kind = kinds[i % len(kinds)]
        members = parsed[kind]
        text_key = next((m for m in members if m.endswith("model_text.npy")), None)
        op = rng.integers(10 if text_key else 7)
        if op < 2:
            yield f"{kind}/bytes", _mutate_bytes(files[kind], rng)
        elif op < 5:
            yield f"{kind}/header", write_members(with_header(
                members, _mutate_header(header_of(members), rng)))
        elif op < 7:
            m, extra = _mutate_member(members, rng)
            yield f"{kind}/member", write_members(m, extra)
        else:
            text = load_npy(members[text_key]).tobytes()
            new = np.frombuffer(_mutate_text(text, rng), np.uint8)
            yield f"{kind}/lgbm-text", write_members({**members, text_key: npy(new)})


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(model: Path, cache: str, out: Path, log: Path, limit: int) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    code = 0
    try:
        from classify.cli import main

        main(["predict", str(model), cache, "--out", str(out), "--quiet"], standalone_mode=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # what the run must never do: reported as a traceback
        import traceback
        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def judge(status: int, output: str) -> str:
    """'ok', 'error' (one 'Error: ...' line) or what was wrong."""
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    code = os.WEXITSTATUS(status)
    lines = output.strip().splitlines()
    if "Traceback" in output or code == 99:
        return "traceback"
    if code == 0:
        return "ok"
    if code == 1 and len(lines) == 1 and lines[0].startswith("Error: "):
        return "error"
    return f"exit {code} with {len(lines)} lines"


def evaluate(cases: list[tuple[str, bytes, str]], headroom: int = 1 << 30,
             timeout: float = 60.0, jobs: int = 2) -> list[dict]:
    """Each (kind, model bytes, cache) through `classify predict` in a fork (`jobs` at a time),
    memory bounded by this process's address space + `headroom`."""
    import importlib

    # everything predict imports, imported once before the forks (children share it)
    for m in ("classify.cli", "classify.persist", "classify.codec", "classify.trees",
              "classify.members", "classify.predict", "classify.stacking", "classify.soft",
              "classify.calibration", "classify.atomic", "classify.zsprobes", "featx.cache",
              "sklearn.pipeline",
              "sklearn.linear_model", "sklearn.svm", "sklearn.calibration",
              "sklearn.preprocessing", "threadpoolctl", "h5py"):
        importlib.import_module(m)

    results: list[dict | None] = [None] * len(cases)
    running: dict[int, tuple[int, float, Path]] = {}  # pid -> (case, start, folder)

    def reap() -> None:
        for pid, (i, t0, d) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done and time.monotonic() - t0 > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                done, status = pid, None
            if done:
                text = (d / "log").read_text(errors="replace")
                verdict = "hang" if status is None else judge(status, text)
                results[i] = {"kind": cases[i][0], "verdict": verdict, "output": text[-2000:],
                              "s": round(time.monotonic() - t0, 4)}
                del running[pid]
                free.append(d)
                return

    with tempfile.TemporaryDirectory() as tmp:
        free = [Path(tmp) / str(j) for j in range(jobs)]
        for d in free:
            d.mkdir()
        for i, (kind, data, cache) in enumerate(cases):
            while not free:
                reap()
                time.sleep(0.001)
            d = free.pop()
            (d / "m.npz").write_bytes(data)
            limit = _vm_bytes() + headroom
            pid = os.fork()
            if pid == 0:
                _child(d / "m.npz", cache, d / "p.csv", d / "log", limit)
            running[pid] = (i, time.monotonic(), d)
        while running:
            reap()
            time.sleep(0.001)
    return results


def _main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    files = {k: Path(v["model"]).read_bytes() for k, v in spec["files"].items()}
    caches = {k: v["cache"] for k, v in spec["files"].items()}
    cases = [(k, d, caches[k.split("/")[0]])
             for k, d in mutations(files, spec["n"], spec.get("seed", 0))]
    # the untouched files first: they must predict
    cases = [(k, files[k], caches[k]) for k in sorted(files)] + cases
    res = evaluate(cases, headroom=spec.get("headroom", 1 << 30), jobs=spec.get("jobs", 2))
    Path(spec["out"]).write_text(json.dumps(res))


if __name__ == "__main__":
    _main(sys.argv[1])
