"""Evaluation rows (SPEC's `{"name", "levels", "model", "weighted", "val": M, "test": M}`) and
their names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from classify.metrics import evaluate
from featx.levels import ALL_LEVELS


@dataclass
class Result:
    """A row plus the test predictions behind it (for paired tests against another row)."""

    row: dict
    test_true: np.ndarray
    test_pred: np.ndarray
    test_paths: list[str]
    val_true: np.ndarray | None = None
    val_pred: np.ndarray | None = None


def level_label(levels: Sequence[str]) -> str:
    """['L0'..'L4'] -> 'L0-L4'; ['L3', 'L4'] -> 'L3+L4'; fused blocks ['a:L3', 'a:L4', 'b:emb']
    -> 'a:L3+L4+b:emb'."""
    if any(":" in lv for lv in levels):
        groups: dict[str, list[str]] = {}
        for lv in levels:
            alias, _, level = lv.rpartition(":")
            groups.setdefault(alias, []).append(level)
        return "+".join(f"{a}:{level_label(lvs)}" for a, lvs in groups.items())
    idx = [ALL_LEVELS.index(lv) for lv in levels]
    if len(idx) >= 3 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{levels[0]}-{levels[-1]}"
    return "+".join(levels)


def row_name(levels: Sequence[str], model: str, weighted: bool, meta: str | None = None) -> str:
    core = (f"stack {level_label(levels)} {model}>{meta}" if meta else
            f"{level_label(levels)} {model}")
    return core + (" weighted" if weighted else "")


def make_result(name: str, levels: Sequence[str], model: str, weighted: bool, classes: list[str],
                val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                test_paths: list[str], seed: int = 0, **extra) -> Result:
    """`val`, `test`: (y_true, y_pred). Extra keys (cache, params, ...) go into the row, and
    `test_rows`: the fingerprint of the test images' identities (classify.rowrule)."""
    from classify.rowrule import rows_fingerprint

    row = {"name": name, "levels": list(levels), "model": model, "weighted": bool(weighted),
           "val": evaluate(*val, classes, seed=seed), "test": evaluate(*test, classes, seed=seed),
           "test_rows": rows_fingerprint(test_paths)}
    row.update(extra)
    return Result(row=row, test_true=np.asarray(test[0]), test_pred=np.asarray(test[1]),
                  test_paths=list(test_paths), val_true=np.asarray(val[0]),
                  val_pred=np.asarray(val[1]))


FOLD_METRICS = ("accuracy", "macro_recall", "macro_f1")


def spread(metrics: Sequence[dict]) -> dict:
    """Mean and standard deviation (ddof 1; 0.0 for one value) of each FOLD_METRICS figure over
    `metrics` (one M each, e.g. the folds' or the trials' test metrics), Nones left out."""
    per = {m: [x[m] for x in metrics if x[m] is not None] for m in FOLD_METRICS}
    return {"mean": {m: float(np.mean(v)) if v else None for m, v in per.items()},
            "std": {m: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
                    for m, v in per.items()}}


def fold_rows(results: Sequence[Result], classes: list[str], seed: int = 0) -> list[Result]:
    """The k-fold protocol's rows: each fold's row (named '... [fold i]') and a summary row
    under the plain name whose `val`/`test` are computed on every fold's predictions together
    (each image is tested exactly once) and whose `kfold` holds the mean and standard
    deviation of the per-fold figures."""
    out = []
    for r in results:
        r.row["name"] = f"{r.row['name']} [fold {r.row['fold']}]"
        out.append(r)
    first = results[0].row
    name = first["name"].rsplit(" [fold ", 1)[0]
    pooled = {}
    for s in ("val", "test"):
        t = np.concatenate([getattr(r, f"{s}_true") for r in results]).astype(np.int64)
        p = np.concatenate([getattr(r, f"{s}_pred") for r in results]).astype(np.int64)
        pooled[s] = (t, p)
    kfold = {"k": len(results)}
    for s in ("val", "test"):
        kfold[s] = spread([r.row[s] for r in results])
    keep = {k: v for k, v in first.items()
            if k not in ("name", "levels", "model", "weighted", "val", "test", "fold", "params",
                         "level_weights", "test_rows")}
    summary = make_result(name, first["levels"], first["model"], first["weighted"], classes,
                          pooled["val"], pooled["test"],
                          [p for r in results for p in r.test_paths], seed=seed, **keep)
    summary.row["fold"] = "all"
    summary.row["kfold"] = kfold
    weights = [r.row["level_weights"] for r in results if r.row.get("level_weights")]
    if weights and len(weights) == len(results):  # a weighted stack: the folds' mean and std
        w = np.array([[f[lv] for lv in weights[0]] for f in weights])
        summary.row["level_weights"] = dict(zip(weights[0], map(float, w.mean(axis=0))))
        summary.row["level_weights_std"] = dict(zip(weights[0], map(float, w.std(axis=0,
                                                                                   ddof=1))))
    for s in ("val", "test"):
        ldl = [(r.row[s]["n"], r.row[s]["ldl"]) for r in results if r.row[s].get("ldl")]
        if ldl and sum(n for n, _ in ldl):
            # per-image means: the n-weighted mean of the folds' is the mean over all images
            total = sum(n for n, _ in ldl)
            summary.row[s]["ldl"] = {m: sum(n * v[m] for n, v in ldl) / total
                                     for m in ldl[0][1]}
    return out + [summary]


def rows_document(results: Sequence[Result]) -> dict:
    """What `--json` writes."""
    return {"rows": [_jsonable(r.row) for r in results]}


def _jsonable(obj):
    # NaN (a metric over zero images) is not JSON: write null
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj
