"""Hyperparameter selection on the validation split or by K-fold cross-validation on train.

Test rows never reach this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, StratifiedKFold
from threadpoolctl import threadpool_limits

from classify.metrics import macro_recall
from classify.models import make_model, model_kind
from featx.errors import FeatxError
from featx.progress import track


@dataclass
class Selected:
    """The chosen estimator (fitted on all of train), its parameters, every candidate's score and
    how many fits choosing it took."""

    estimator: object
    params: dict
    metric: str
    scores: list[tuple[dict, float]] = field(default_factory=list)
    fits: int = 0


def selection_metric(weighted: bool) -> str:
    """Balanced training aims at macro recall, so that is what picks its hyperparameters."""
    return "macro_recall" if weighted else "accuracy"


def _score(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> float:
    if metric == "accuracy":
        return float(np.mean(y_true == y_pred))
    return macro_recall(y_true, y_pred)


def _groups(grid: list[dict], staged: str | None) -> list[tuple[dict, list[int]]]:
    """Grid points that differ only in the staged parameter, as (fit params, their indices): one
    fit with the group's largest value scores them all."""
    groups: dict[tuple, tuple[dict, list[int]]] = {}
    for gi, params in enumerate(grid):
        rest = {k: v for k, v in params.items() if k != staged}
        key = tuple(sorted((k, repr(v)) for k, v in rest.items()))
        groups.setdefault(key, (dict(rest), []))[1].append(gi)
    if staged:
        for fit_params, members in groups.values():
            fit_params[staged] = max(grid[gi][staged] for gi in members)
    return list(groups.values())


def _fit_score(est, X, y, fit_rows, X_eval, y_eval, metric, kind, rounds):
    """Fit once; score each of `rounds` (staged values; [None]: the fit as it is)."""
    Xf, yf = (X, y) if fit_rows is None else (X[fit_rows], y[fit_rows])
    est.fit(Xf, yf)
    preds = [est.predict(X_eval) if k is None else kind.staged.predict(est, X_eval, k)
             for k in rounds]
    return est, [_score(y_eval, p, metric) for p in preds]


def select_and_fit(model: str, X_train: np.ndarray, y_train: np.ndarray,
                   X_val: np.ndarray | None, y_val: np.ndarray | None, *, weighted: bool = False,
                   cv: int | None = None, seed: int = 0, jobs: int | None = None,
                   threads: int | None = None, quiet: bool = False) -> Selected:
    """Try every point of the model's grid, scored on val (or K-fold CV on train when `cv`),
    and return the best one fitted on train. Points that differ only in a staged parameter
    (boosting rounds) share one fit. `threads`: per fit (default: 1 when candidates run in
    parallel, else the library's default)."""
    if threads is None:
        threads = None if jobs in (None, 1) else 1  # candidates run in parallel: one thread each
    kind = model_kind(model)
    base = make_model(model, weighted=weighted, seed=seed, threads=threads)
    grid = list(ParameterGrid(kind.grid))
    staged = kind.staged.param if kind.staged else None
    groups = _groups(grid, staged)
    rounds = [[grid[gi][staged] if staged else None for gi in members] for _, members in groups]
    metric = selection_metric(weighted)
    if cv:
        counts = np.bincount(y_train)
        if cv < 2 or counts[counts > 0].min() < cv:
            raise FeatxError(f"--cv {cv}: need K >= 2 and at least K training rows per class "
                             f"(the rarest class has {counts[counts > 0].min()})")
        folds = list(StratifiedKFold(cv, shuffle=True, random_state=seed)
                     .split(np.zeros(len(y_train)), y_train))
        tasks = [(fi, tr, te) for fi in range(len(groups)) for tr, te in folds]
        desc = f"{model}: {len(grid)} candidates ({len(groups)} fits) x {cv} folds"
    else:
        if X_val is None or len(y_val) == 0:
            raise FeatxError("the cache has no validation images to choose hyperparameters on: "
                             "pass --cv K to choose them by cross-validation on train")
        tasks = [(fi, None, None) for fi in range(len(groups))]
        desc = f"{model}: {len(grid)} candidates ({len(groups)} fits) on val"
    with threadpool_limits(limits=1, user_api="blas"):
        gen = Parallel(n_jobs=jobs, prefer="threads", return_as="generator")(
            delayed(_fit_score)(clone(base).set_params(**groups[fi][0]), X_train, y_train, tr,
                                X_val if te is None else X_train[te],
                                y_val if te is None else y_train[te], metric, kind, rounds[fi])
            for fi, tr, te in tasks)
        results = list(track(gen, total=len(tasks), desc=desc, unit="fit", quiet=quiet,
                             leave=False))
    per_candidate: dict[int, list[float]] = {}
    fitted: dict[int, object] = {}
    for (fi, tr, te), (est, scores) in zip(tasks, results):
        for gi, score in zip(groups[fi][1], scores):
            per_candidate.setdefault(gi, []).append(score)
        if te is None:
            fitted[fi] = est
    scores = [(grid[gi], float(np.mean(s))) for gi, s in sorted(per_candidate.items())]
    best = int(np.argmax([s for _, s in scores]))  # first of equals: grids go simple -> complex
    fi = next(i for i, (_, members) in enumerate(groups) if best in members)
    fits = len(tasks)
    if fi in fitted:
        est = fitted[fi]
        if staged:
            est = kind.staged.truncate(est, grid[best][staged])
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            est = clone(base).set_params(**grid[best]).fit(X_train, y_train)
        fits += 1
    return Selected(estimator=est, params=dict(grid[best]), metric=metric, scores=scores,
                    fits=fits)
