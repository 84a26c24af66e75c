"""The `fit` and `stack` procedures: load levels, train on train, evaluate on val and test --
once, or per round of a k-fold protocol (then each fold's row and the summary row), and
optionally on another cache (cross-dataset)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from classify.data import LevelData, iter_rounds, load_eval_rows
from classify.rows import Result, fold_rows, make_result, row_name
from featx.cache import CacheError
from featx.errors import FeatxError
from featx.splits import has_rounds

TARGETS = ("label", "distribution")
SOFT_GRID = (0.01, 0.1, 1.0)  # C of the soft-label model, chosen on val by KL
UNTUNED = " (untuned)"  # a stack's per-level rows: the base model's default hyperparameters


@dataclass
class Trained:
    """A fitted estimator, its evaluation rows, the data it came from and what a model file
    records about how it was made. Under k-fold: the last fold's estimator, every row, and
    every fold's test probabilities (`tested`: each image once)."""

    estimator: object
    results: list[Result]
    data: LevelData
    recipe: dict = field(default_factory=dict)
    tested: list[Tested] = field(default_factory=list)

    @property
    def pooled(self) -> bool:
        """Whether the test rows are several rounds' (k-fold), pooled."""
        return len(self.tested) > 1


@dataclass
class Tested:
    """One round's test rows and the model's probabilities on them."""

    paths: list[str]
    y: np.ndarray
    proba: np.ndarray
    dist: np.ndarray | None = None  # the images' vote distributions, where the cache has them


def _proba(est, X: np.ndarray, n_classes: int) -> np.ndarray:
    if len(X) == 0:
        return np.zeros((0, n_classes))
    with threadpool_limits(limits=1, user_api="blas"):
        return np.asarray(est.predict_proba(X))


def _predict(est, X: np.ndarray) -> np.ndarray:
    if len(X) == 0:
        return np.zeros(0, dtype=np.int64)
    with threadpool_limits(limits=1, user_api="blas"):
        return np.asarray(est.predict(X))


def _need_test(data: LevelData) -> None:
    if len(data["test"].y) == 0:
        raise CacheError(f"{data.cache}: no valid test images: nothing to evaluate on")


def _rounds(cache, levels, data: LevelData | None, split, task, seed) -> Iterable[LevelData]:
    if data is not None:
        return [data]
    if hasattr(cache, "rounds"):  # classify.fusion.Fused: several caches as one
        return cache.rounds(split, task, seed)
    return iter_rounds(cache, levels, split, task, seed)


def _rounds_of(d: LevelData) -> bool:
    """Whether `d` is a round of several (kfold:K; kfold:K:F names one, a few-shot draw hands
    its rounds in one by one, fold unset)."""
    return has_rounds(d.protocol.get("split")) and d.fold is not None


def _seed(seed: int | None, d: LevelData) -> int:
    """The models' seed: --seed, else the seed of the protocol's split."""
    return int(seed) if seed is not None else int(d.protocol.get("seed", 0) or 0)


def _common(data: LevelData, cache) -> dict:
    extra = {"cache": str(cache), "protocol": data.protocol}
    if hasattr(cache, "row_extra"):
        extra.update(cache.row_extra())
    if data.fold is not None:
        extra["fold"] = data.fold
    return extra


def _finish(results: list[Result], last: LevelData, seed: int) -> list[Result]:
    if not _rounds_of(last):
        return results
    return fold_rows(results, last.classes, seed=seed)


def run_fit(cache: str | os.PathLike, levels: Sequence[str], model: str = "logreg",
            weighted: bool = False, cv: int | None = None, seed: int | None = None,
            jobs: int | None = None, quiet: bool = False, data: LevelData | None = None,
            threads: int | None = None, split: str | None = None, task: str | None = None,
            target: str = "label", eval_cache: str | None = None,
            class_map: dict[str, str] | None = None) -> Trained:
    """One model on the levels side by side; hyperparameters chosen on val (or `cv` folds);
    `threads` per fit (see `select_and_fit`). `split`/`task` re-split and relabel the cache's
    images; `target='distribution'` trains on /label_dist; `eval_cache` adds a row evaluated
    on every valid image of another cache (classes matched by name or `class_map`)."""
    if target not in TARGETS:
        raise FeatxError(f"--target {target!r}: use label or distribution")
    if eval_cache:
        from classify.data import check_same_features

        check_same_features(eval_cache, cache)  # before any training
    results, est, d, recipe, tested = [], None, None, {}, []
    for d in _rounds(cache, levels, data, split, task, seed):
        if eval_cache and _rounds_of(d):
            raise FeatxError("--eval with a k-fold protocol: evaluate across datasets with one "
                             "model, trained on a ratio or the official split, or kfold:K:F")
        _need_test(d)
        s = _seed(seed, d)
        if target == "distribution":
            est, res, recipe = _fit_distribution(d, cache, s)
        else:
            est, res, recipe = _fit_labels(d, cache, model, weighted, cv, s, jobs, threads,
                                           quiet)
        results.append(res)
        te = d["test"]
        tested.append(Tested(te.paths, te.y, _proba(est, te.X, len(d.classes)), te.dist))
        if eval_cache:
            results.append(_cross_row(est, d, res, eval_cache, class_map or {}, s, target,
                                      task))
    recipe.update(protocol=d.protocol, target=target, seed=_seed(seed, d))
    return Trained(estimator=est, results=_finish(results, d, _seed(seed, d)), data=d,
                   recipe=recipe, tested=tested)


def _fit_labels(d: LevelData, cache, model, weighted, cv, seed, jobs, threads, quiet):
    from classify.models import ZERO_SHOT_MODELS
    from classify.select import select_and_fit

    tr, va, te = d["train"], d["val"], d["test"]
    if model in ZERO_SHOT_MODELS and (cv or hasattr(cache, "rounds")):
        raise FeatxError(f"--model {model}: one CLIP cache, hyperparameters chosen on val "
                         f"(no --cv, no fusion)")
    if not cv and len(va.y) == 0:
        raise CacheError(f"{d.cache}: no valid validation images to choose hyperparameters "
                         f"on: pass --cv K to choose them by cross-validation on train")
    if model in ZERO_SHOT_MODELS:  # CLIP caches: their prompts; alpha (beta) chosen on val
        from classify.zsprobes import select_zs

        sel = select_zs(model, d.cache, d.levels, d.classes, tr.X, tr.y, va.X, va.y, weighted,
                        seed)
    else:
        sel = select_and_fit(model, tr.X, tr.y, None if cv else va.X, None if cv else va.y,
                             weighted=weighted, cv=cv, seed=seed, jobs=jobs, threads=threads,
                             quiet=quiet)
    est = sel.estimator
    res = make_result(row_name(d.levels, model, weighted), d.levels, model, weighted, d.classes,
                      (va.y, _predict(est, va.X)), (te.y, _predict(est, te.X)), te.paths,
                      seed=seed, params=sel.params, selected_by=f"cv{cv}" if cv else "val",
                      **_common(d, cache))
    recipe = {"kind": "fit", "model": model, "weighted": weighted, "params": sel.params,
              "selection": {"by": f"cv{cv}" if cv else "val", "metric": sel.metric,
                            "scores": [[p, s] for p, s in sel.scores]}}
    return est, res, recipe


def _fit_distribution(d: LevelData, cache, seed: int):
    """Soft-label logistic regression on the label distributions; C chosen on val by KL."""
    from classify.ldl import ldl_measures
    from classify.soft import SoftLabelLogReg

    tr, va, te = d["train"], d["val"], d["test"]
    if tr.dist is None:
        raise CacheError(f"{d.cache}: the cache has no label distributions (/label_dist): "
                         f"--target distribution needs a dataset that has them (Emotion6, "
                         f"Abstract, a CSV with p_<class> columns)")
    if len(va.y) == 0:
        raise CacheError(f"{d.cache}: no valid validation images to choose C on")
    scores, best = [], None
    with threadpool_limits(limits=1, user_api="blas"):
        for C in SOFT_GRID:
            est = SoftLabelLogReg(C=C, n_classes=len(d.classes)).fit(tr.X, tr.dist)
            kl = ldl_measures(va.dist, est.predict_proba(va.X))["kl"]
            scores.append([{"C": C}, kl])
            if best is None or kl < best[1]:
                best = (est, kl, C)
        est = best[0]
        proba = {s: est.predict_proba(p.X) if len(p.y) else np.zeros((0, len(d.classes)))
                 for s, p in (("val", va), ("test", te))}
    # top-1 accuracy against the most-voted class (the distribution's mode)
    res = make_result(row_name(d.levels, "softlr", False) + " distribution", d.levels, "softlr",
                      False, d.classes,
                      (va.dist.argmax(axis=1), proba["val"].argmax(axis=1)),
                      (te.dist.argmax(axis=1), proba["test"].argmax(axis=1)), te.paths,
                      seed=seed, params={"C": best[2]}, selected_by="val kl", target="distribution",
                      **_common(d, cache))
    for s, p in (("val", va), ("test", te)):
        res.row[s]["ldl"] = ldl_measures(p.dist, proba[s])
    recipe = {"kind": "fit", "model": "softlr", "weighted": False, "params": {"C": best[2]},
              "selection": {"by": "val", "metric": "kl", "scores": scores}}
    return est, res, recipe


def cross_images(d: LevelData, other: str, class_map: dict[str, str], task: str | None):
    """Every valid image of `other` whose class matches one of `d`'s (after `task` and
    `class_map`) and that was not a train or val row of `d`, labelled with the training
    classes; the count of the unmatched per class; the count left out as seen."""
    from classify.protocol import match_classes
    from classify.rowrule import row_ids, seen_record

    part, other_classes = load_eval_rows(other, d, task)  # the same task on both sides
    # classes the task left as they were: through the training task's map (original -> class)
    task_map = d.protocol.get("task_map") or {}
    other_classes = [c if c in d.classes else task_map.get(c, c) for c in other_classes]
    to_train = match_classes(d.classes, other_classes, class_map, other)
    y = to_train[part.y]
    # the row rule: an image this model was trained or selected on is not scored
    _, seen_ids = seen_record(d["train"].paths + d["val"].paths)
    seen = np.isin(row_ids(part.paths), seen_ids)
    if seen.all():
        raise FeatxError(f"--eval {other}: every image of it was a training or validation row "
                         f"of this model: nothing to evaluate on")
    keep = (y >= 0) & ~seen
    unmatched = {other_classes[c]: int(n) for c, n in
                 enumerate(np.bincount(part.y[(y < 0) & ~seen], minlength=len(other_classes)))
                 if n}
    part.X, part.y, part.rows = part.X[keep], y[keep], part.rows[keep]
    part.paths = [p for p, k in zip(part.paths, keep) if k]
    part.dist = None  # over the other set's classes, not the model's
    return part, unmatched, int(seen.sum())


def _cross_row(est, d: LevelData, res: Result, other: str, class_map: dict[str, str],
               seed: int, target: str, task: str | None) -> Result:
    """`res`'s model evaluated on every valid image of `other` whose class matches and that
    it never trained or selected on."""
    part, unmatched, n_seen = cross_images(d, other, class_map, task)
    X, y, paths = part.X, part.y, part.paths
    pred = _predict(est, X)
    va = res.row["val"]
    row = make_result(f"{res.row['name']} -> {_stem(other)}", res.row["levels"],
                      res.row["model"], res.row["weighted"], d.classes,
                      (res.val_true, res.val_pred), (y, pred), paths, seed=seed,
                      cache=res.row["cache"], eval_cache=str(other), protocol=d.protocol,
                      cross_dataset={"train": res.row["cache"], "eval": str(other),
                                     "class_map": class_map, "unmatched": unmatched,
                                     "n_eval": len(y), "excluded_seen": n_seen},
                      target=target)
    row.row["val"] = va
    return row


def _stem(path: str) -> str:
    from pathlib import Path

    return Path(path).stem


def run_stack(cache: str | os.PathLike, levels: Sequence[str], base: str = "logreg",
              meta: str = "weighted", weighted: bool = False, folds: int = 5,
              seed: int | None = None,
              jobs: int | None = None, quiet: bool = False,
              data: LevelData | None = None, split: str | None = None,
              task: str | None = None) -> Trained:
    """Per-level base models (the kind's default hyperparameters) stacked by `meta`; rows for
    each level's base model alone and for the stack (per fold and summarised under k-fold)."""
    per_kind: dict[str, list[Result]] = {}
    order: list[str] = []
    stacker, d, tested = None, None, []
    for d in _rounds(cache, levels, data, split, task, seed):
        stacker, results, proba = _stack_round(d, cache, base, meta, weighted, folds,
                                               _seed(seed, d), jobs, quiet)
        tested.append(Tested(d["test"].paths, d["test"].y, proba, d["test"].dist))
        for r in results:
            key = r.row["name"]
            if key not in per_kind:
                order.append(key)
            per_kind.setdefault(key, []).append(r)
    if not _rounds_of(d):
        out = [per_kind[k][0] for k in order]
    else:
        out = [r for k in order for r in fold_rows(per_kind[k], d.classes, seed=_seed(seed, d))]
    recipe = {"kind": "stack", "model": f"stack:{base}>{meta}", "base": base, "meta": meta,
              "weighted": weighted, "folds": folds, "protocol": d.protocol,
              "seed": _seed(seed, d)}
    return Trained(estimator=stacker, results=out, data=d, recipe=recipe, tested=tested)


def _stack_round(d: LevelData, cache, base, meta, weighted, folds, seed, jobs, quiet):
    from classify.models import ZERO_SHOT_MODELS, make_model

    if base in ZERO_SHOT_MODELS:
        raise FeatxError(f"--base {base}: not a per-level base model (it needs the emb level "
                         f"and the prompts); use classify fit --model {base}")
    from classify.stacking import LevelStacker

    _need_test(d)
    tr, va, te = d["train"], d["val"], d["test"]
    levels = d.levels
    threads = None if jobs in (None, 1) else 1
    stacker = LevelStacker(make_model(base, weighted=weighted, seed=seed, threads=threads),
                           levels=d.slices, meta=meta, folds=folds, seed=seed,
                           class_weight="balanced" if weighted else None, n_jobs=jobs,
                           verbose=not quiet)
    stacker.fit(tr.X, tr.y)
    with threadpool_limits(limits=1, user_api="blas"):
        lp = {s: (stacker.level_proba(p.X) if len(p.y) else np.zeros((0, len(levels), 1)))
              for s, p in (("val", va), ("test", te))}
    common = _common(d, cache)
    results = []
    for li, lv in enumerate(levels):
        pred = {s: lp[s][:, li].argmax(axis=1) for s in lp}
        # "(untuned)": fit's row of the same level and model chooses C etc. on val
        results.append(make_result(row_name([lv], base, weighted) + UNTUNED, [lv], base,
                                   weighted, d.classes, (va.y, pred["val"]), (te.y, pred["test"]),
                                   te.paths, seed=seed, selected_by="none (defaults)",
                                   **common))
    proba = {s: (stacker.meta_.predict_proba(lp[s]) if len(lp[s])
                 else np.zeros((0, len(d.classes)))) for s in lp}
    pred = {s: p.argmax(axis=1) for s, p in proba.items()}
    extra = {**common, "meta": meta, "folds": folds}
    if meta == "weighted":
        extra["level_weights"] = dict(zip(levels, map(float, stacker.level_weights_)))
    results.append(make_result(row_name(levels, base, weighted, meta), levels,
                               f"stack:{base}>{meta}", weighted, d.classes,
                               (va.y, pred["val"]), (te.y, pred["test"]), te.paths, seed=seed,
                               **extra))
    return stacker, results, proba["test"]
