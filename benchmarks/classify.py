"""Benchmark: `classify stack --levels L0-L4 --base logreg --meta weighted --folds 5` on a
synthetic cache of FI's size, side by side with scikit-learn's StackingClassifier doing the same
work. Prints JSON. `--ablate` instead times `classify ablate CACHE --grid default` (every row
computed, none reused) and reports each row's test accuracy.

    python benchmarks/classify.py [--n 23308] [--jobs 2] [--cache PATH] [--skip-sklearn]
    python benchmarks/classify.py --ablate [--jobs 2] [--cache PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# run as a script, this file's folder comes first on sys.path and its name would shadow the
# classify package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


class PeakRSS:
    """Peak resident memory of this process and its children, sampled every 50 ms."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return 0

    @staticmethod
    def _children(pid: int) -> list[int]:
        out = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out += [int(c) for c in f.read().split()]
        except OSError:
            pass
        return out

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            pids, todo = [], [me]
            while todo:
                p = todo.pop()
                pids.append(p)
                todo += self._children(p)
            self.peak = max(self.peak, sum(self._rss(p) for p in pids))
            time.sleep(0.05)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def ours(cache: str, jobs: int) -> dict:
    """The command itself, in-process (as the CLI runs it)."""
    from click.testing import CliRunner

    from classify.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stack.json"
        t = time.perf_counter()
        res = CliRunner().invoke(main, ["stack", cache, "--levels", "L0-L4", "--base", "logreg",
                                        "--meta", "weighted", "--folds", "5", "--quiet",
                                        "--jobs", str(jobs), "--json", str(out)])
        seconds = time.perf_counter() - t
        if res.exit_code != 0:
            raise SystemExit(res.output)
        rows = json.loads(out.read_text())["rows"]
    return {"seconds": round(seconds, 2),
            "test_accuracy": {r["name"]: round(r["test"]["accuracy"], 4) for r in rows}}


def sklearn_stacking(cache: str, jobs: int, limit_blas: bool) -> dict:
    """StackingClassifier: per-level StandardScaler+LogisticRegression selected by a
    ColumnTransformer, cv=5 (same folds), predict_proba, a logistic-regression final estimator.
    Timed from reading the cache to test predictions, like ours."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    from classify.data import load_levels
    from classify.models import make_model

    levels = ["L0", "L1", "L2", "L3", "L4"]
    t = time.perf_counter()
    data = load_levels(cache, levels)
    tr, te = data["train"], data["test"]
    base = make_model("logreg")  # the same scaler + lbfgs settings as ours
    estimators = [(lv, Pipeline([("select", ColumnTransformer([(lv, "passthrough",
                                                                 list(range(a, b)))])),
                                 *base.steps]))
                  for lv, (a, b) in zip(levels, data.slices)]
    clf = StackingClassifier(estimators, final_estimator=LogisticRegression(max_iter=500),
                             cv=StratifiedKFold(5, shuffle=True, random_state=0),
                             stack_method="predict_proba", n_jobs=jobs)
    with threadpool_limits(limits=1 if limit_blas else None, user_api="blas"):
        clf.fit(tr.X, tr.y)
        acc = float(np.mean(clf.predict(te.X) == te.y))
    return {"seconds": round(time.perf_counter() - t, 2), "test_accuracy": round(acc, 4),
            "blas_threads": 1 if limit_blas else "default"}


def ablate(cache: str, jobs: int) -> dict:
    """The default ablation grid, in-process (as the CLI runs it), into an empty folder."""
    from click.testing import CliRunner

    from classify.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = CliRunner().invoke(main, ["ablate", cache, "--grid", "default", "--out", tmp,
                                        "--quiet", "--jobs", str(jobs)])
        seconds = time.perf_counter() - t
        if res.exit_code != 0:
            raise SystemExit(res.output)
        rows = json.loads((Path(tmp) / "ablation.json").read_text())["rows"]
    return {"seconds": round(seconds, 1), "rows": len(rows),
            "test_accuracy": {r["name"]: round(r["test"]["accuracy"], 4) for r in rows},
            "lgbm_params": {r["name"]: r.get("params") for r in rows if r["model"] == "lgbm"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=23308)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--cache", help="use/keep this synthetic cache (default: a temporary one)")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--ablate", action="store_true", help="time the default ablation grid")
    args = ap.parse_args()

    from classify.synthetic import FI_SHARES, RESNET101_DIMS, write_synthetic_cache

    tmp = tempfile.TemporaryDirectory()
    cache = args.cache or str(Path(tmp.name) / "fi_synthetic.h5")
    if not Path(cache).exists():
        write_synthetic_cache(cache, n=args.n, dims=RESNET101_DIMS, shares=FI_SHARES,
                              dtype="float16", split_spec="80/5/15")
    report = {"n": args.n, "dims": RESNET101_DIMS, "dtype": "float16", "cpus": os.cpu_count(),
              "jobs": args.jobs}
    if args.ablate:
        with PeakRSS() as mem:
            report["ablate_default"] = ablate(cache, args.jobs)
        report["ablate_default"]["peak_rss_mb"] = round(mem.peak / 2**20)
        print(json.dumps(report, indent=2))
        tmp.cleanup()
        return
    with PeakRSS() as mem:
        report["ours"] = ours(cache, args.jobs)
    report["ours"]["peak_rss_mb"] = round(mem.peak / 2**20)
    if not args.skip_sklearn:
        for limit in (False, True):
            with PeakRSS() as mem:
                r = sklearn_stacking(cache, args.jobs, limit)
            r["peak_rss_mb"] = round(mem.peak / 2**20)
            report["sklearn_blas_default" if not limit else "sklearn_blas_1"] = r
    print(json.dumps(report, indent=2))
    tmp.cleanup()


if __name__ == "__main__":
    main()
