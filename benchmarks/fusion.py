"""Benchmark: a fused stack over 5 caches x 5 levels of one FI-sized synthetic image set
(23,308 images; each cache its own features, dims up to 2,048, float16):
`classify stack C1.h5 ... C5.h5 --levels L0-L4 --base logreg --meta weighted --folds 5`, run
as its own process; prints JSON with its wall time, peak RSS (the process's maximum resident
set) and the stack's test accuracy beside the best single (cache, level).

    python benchmarks/fusion.py [--n 23308] [--jobs 2] [--dir DIR] [--caches 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the repository first, so that `classify` is this checkout's
_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

# five "backbones": ResNet-101's widths and four others up to 2,048 dims
DIMS = [
    {"L0": 64, "L1": 256, "L2": 512, "L3": 1024, "L4": 2048},   # resnet101-like
    {"L0": 96, "L1": 192, "L2": 384, "L3": 768, "L4": 768},     # convnext-tiny-like
    {"L0": 384, "L1": 384, "L2": 384, "L3": 384, "L4": 384},    # vit-small / dinov2-like
    {"L0": 64, "L1": 256, "L2": 512, "L3": 1024, "L4": 2048},   # resnet50-like
    {"L0": 768, "L1": 768, "L2": 768, "L3": 768, "L4": 768},    # vit-base / clip-like
]


def write_caches(folder: Path, n: int, count: int) -> list[str]:
    from classify.synthetic import FI_SHARES, write_synthetic_cache

    out = []
    for i in range(count):
        path = folder / f"backbone{i}.h5"
        if not path.exists():
            write_synthetic_cache(path, n=n, dims=DIMS[i % len(DIMS)], shares=FI_SHARES,
                                  dtype="float16", split_spec="80/5/15", seed=0,
                                  feature_seed=100 + i, tag=f"backbone{i}", strong=0.5,
                                  faint=0.2)
        out.append(str(path))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=23308)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--caches", type=int, default=5)
    ap.add_argument("--dir", help="keep/reuse the caches here (default: a temporary folder)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    folder = Path(args.dir or tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    caches = write_caches(folder, args.n, args.caches)
    written = time.perf_counter() - t
    out = folder / "fused_stack.json"
    env = {**os.environ, "PYTHONPATH": str(_ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "classify", "stack", *caches, "--levels", "L0-L4", "--base",
           "logreg", "--meta", "weighted", "--folds", "5", "--quiet", "--jobs", str(args.jobs),
           "--json", str(out)]
    load = os.getloadavg()
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if res.returncode:
        raise SystemExit(res.stderr)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kB
    rows = json.loads(out.read_text())["rows"]
    stack = rows[-1]
    best = max(rows[:-1], key=lambda r: r["val"]["accuracy"])
    print(json.dumps({
        "n": args.n, "caches": args.caches, "levels_per_cache": 5,
        "dims": DIMS[:args.caches], "features_total": sum(sum(d.values())
                                                          for d in DIMS[:args.caches]),
        "jobs": args.jobs, "cpus": os.cpu_count(), "load_at_start": [round(x, 1) for x in load],
        "caches_written_s": round(written, 1), "fused_stack_s": round(seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024), "stack_test_accuracy": stack["test"]["accuracy"],
        "best_single_on_val": [best["name"], best["test"]["accuracy"]],
        "weights": {k: round(v, 3) for k, v in stack["level_weights"].items()}}, indent=2))
    tmp.cleanup()


if __name__ == "__main__":
    main()
