"""The `fit` and `stack` procedures: load levels, train on train, evaluate on val and test."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from classify.data import LevelData, load_levels
from classify.rows import Result, make_result, row_name
from featx.cache import CacheError


@dataclass
class Trained:
    """A fitted estimator, its evaluation rows, the data it came from and what a model file
    records about how it was made."""

    estimator: object
    results: list[Result]
    data: LevelData
    recipe: dict = field(default_factory=dict)


def _predict(est, X: np.ndarray) -> np.ndarray:
    if len(X) == 0:
        return np.zeros(0, dtype=np.int64)
    with threadpool_limits(limits=1, user_api="blas"):
        return np.asarray(est.predict(X))


def _need_test(data: LevelData) -> None:
    if len(data["test"].y) == 0:
        raise CacheError(f"{data.cache}: no valid test images: nothing to evaluate on")


def run_fit(cache: str | os.PathLike, levels: Sequence[str], model: str = "logreg",
            weighted: bool = False, cv: int | None = None, seed: int = 0,
            jobs: int | None = None, quiet: bool = False, data: LevelData | None = None,
            threads: int | None = None) -> Trained:
    """One model on the levels side by side; hyperparameters chosen on val (or `cv` folds);
    `threads` per fit (see `select_and_fit`)."""
    from classify.select import select_and_fit

    data = data or load_levels(cache, levels)
    _need_test(data)
    tr, va, te = data["train"], data["val"], data["test"]
    if not cv and len(va.y) == 0:
        raise CacheError(f"{data.cache}: no valid validation images to choose hyperparameters "
                         f"on: pass --cv K to choose them by cross-validation on train")
    sel = select_and_fit(model, tr.X, tr.y, None if cv else va.X, None if cv else va.y,
                         weighted=weighted, cv=cv, seed=seed, jobs=jobs, threads=threads,
                         quiet=quiet)
    est = sel.estimator
    res = make_result(row_name(levels, model, weighted), levels, model, weighted, data.classes,
                      (va.y, _predict(est, va.X)), (te.y, _predict(est, te.X)), te.paths,
                      seed=seed, cache=str(cache), params=sel.params,
                      selected_by=f"cv{cv}" if cv else "val")
    recipe = {"kind": "fit", "model": model, "weighted": weighted, "params": sel.params,
              "selection": {"by": f"cv{cv}" if cv else "val", "metric": sel.metric,
                            "scores": [[p, s] for p, s in sel.scores]}}
    return Trained(estimator=est, results=[res], data=data, recipe=recipe)


def run_stack(cache: str | os.PathLike, levels: Sequence[str], base: str = "logreg",
              meta: str = "weighted", weighted: bool = False, folds: int = 5, seed: int = 0,
              jobs: int | None = None, quiet: bool = False,
              data: LevelData | None = None) -> Trained:
    """Per-level base models (the kind's default hyperparameters) stacked by `meta`; rows for
    each level's base model alone and for the stack."""
    from classify.models import make_model
    from classify.stacking import LevelStacker

    data = data or load_levels(cache, levels)
    _need_test(data)
    tr, va, te = data["train"], data["val"], data["test"]
    threads = None if jobs in (None, 1) else 1
    stacker = LevelStacker(make_model(base, weighted=weighted, seed=seed, threads=threads),
                           levels=data.slices, meta=meta, folds=folds, seed=seed,
                           class_weight="balanced" if weighted else None, n_jobs=jobs,
                           verbose=not quiet)
    stacker.fit(tr.X, tr.y)
    with threadpool_limits(limits=1, user_api="blas"):
        lp = {s: (stacker.level_proba(p.X) if len(p.y) else np.zeros((0, len(levels), 1)))
              for s, p in (("val", va), ("test", te))}
    results = []
    for li, lv in enumerate(levels):
        pred = {s: lp[s][:, li].argmax(axis=1) for s in lp}
        results.append(make_result(row_name([lv], base, weighted), [lv], base, weighted,
                                   data.classes, (va.y, pred["val"]), (te.y, pred["test"]),
                                   te.paths, seed=seed, cache=str(cache)))
    pred = {s: (stacker.meta_.predict_proba(lp[s]).argmax(axis=1) if len(lp[s])
                else np.zeros(0, dtype=np.int64)) for s in lp}
    extra = {"cache": str(cache), "meta": meta, "folds": folds}
    if meta == "weighted":
        extra["level_weights"] = dict(zip(levels, map(float, stacker.level_weights_)))
    results.append(make_result(row_name(levels, base, weighted, meta), levels,
                               f"stack:{base}>{meta}", weighted, data.classes,
                               (va.y, pred["val"]), (te.y, pred["test"]), te.paths, seed=seed,
                               **extra))
    recipe = {"kind": "stack", "model": f"stack:{base}>{meta}", "base": base, "meta": meta,
              "weighted": weighted, "folds": folds}
    return Trained(estimator=stacker, results=results, data=data, recipe=recipe)
