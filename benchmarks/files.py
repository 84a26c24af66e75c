"""Costs of the safety added for messy collections, as ratios within one run (JSON):

- walking an FI-sized class-folder tree (23,308 files) with featx's walker (each folder once
  by (device, inode), every entry recorded) vs. the plain os.walk(followlinks=True) scan it
  replaced;
- saving and loading a model file (arrays + JSON) vs. joblib, for an FI-sized L0-L4 logreg
  stack (dims 64..2048, 8 classes).

python benchmarks/files.py [--files 23308]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featx.dataset import is_image, walk_folder  # noqa: E402


def old_scan(root: Path) -> list[tuple[str, str]]:
    items = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            items += [(Path(dirpath, n).relative_to(root).as_posix(), class_dir.name.lower())
                      for n in filenames if is_image(n) and not n.startswith(".")]
    return sorted(items)


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_walk(n: int, tmp: Path) -> dict:
    root = tmp / "data"
    for i in range(n):
        d = root / f"class{i % 8}" / f"sub{i % 50}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"img{i:06d}.jpg").touch()
    assert len(old_scan(root)) == len(walk_folder(root).items) == n
    t_old, t_new = best(lambda: old_scan(root)), best(lambda: walk_folder(root))
    return {"files": n, "os_walk_s": round(t_old, 3), "featx_walk_s": round(t_new, 3),
            "ratio": round(t_new / t_old, 2)}


def bench_model(tmp: Path) -> dict:
    import joblib

    from classify.persist import load_model, save_bundle
    from classify.stacking import LevelStacker

    rng = np.random.default_rng(0)
    dims = [64, 256, 512, 1024, 2048]
    X = rng.standard_normal((1200, sum(dims))).astype(np.float32)
    y = rng.integers(0, 8, 1200)
    cuts = np.cumsum([0] + dims)
    est = LevelStacker(levels=list(zip(cuts[:-1], cuts[1:])), folds=2).fit(X, y)
    bundle = {"estimator": est, "classes": [str(i) for i in range(8)]}
    npz, jl = tmp / "m.npz", tmp / "m.joblib"
    save_npz = best(lambda: save_bundle(npz, bundle))
    save_jl = best(lambda: joblib.dump(bundle, jl, compress=3))
    load_npz = best(lambda: load_model(npz))
    load_jl = best(lambda: joblib.load(jl))
    assert np.array_equal(load_model(npz)["estimator"].predict_proba(X[:50]),
                          est.predict_proba(X[:50]))
    return {"model": "stack L0-L4 logreg>weighted, 8 classes, dims 64..2048",
            "npz_bytes": npz.stat().st_size, "joblib_bytes": jl.stat().st_size,
            "save_s": {"npz": round(save_npz, 3), "joblib": round(save_jl, 3)},
            "load_s": {"npz": round(load_npz, 3), "joblib": round(load_jl, 3)}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=23_308)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = {"walk": bench_walk(args.files, Path(tmp)), "model_file": bench_model(Path(tmp))}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
