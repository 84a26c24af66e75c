"""The few-shot protocol: for each K and trial, K training images a class drawn (seeded,
stratified, at most one of a group of identical files) from the training side of each round;
validation and test unchanged. Each trial gives rows; one summary row per K and row kind holds
the mean over trials and a t-interval."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from classify.data import LevelData, Part
from classify.rows import FOLD_METRICS, Result, fold_rows, spread
from featx.cache import Cache
from featx.errors import FeatxError


def parse_shots(spec: str | None) -> list[int]:
    """'1,4,16' -> [1, 4, 16] (sorted, no duplicates); None -> []."""
    if not spec:
        return []
    try:
        shots = sorted({int(s) for s in spec.split(",") if s.strip()})
    except ValueError:
        raise FeatxError(f"--shots {spec!r}: give K[,K...], positive whole numbers") from None
    if not shots or shots[0] < 1:
        raise FeatxError(f"--shots {spec!r}: give K[,K...], positive whole numbers")
    return shots


def draw_shots(y: np.ndarray, groups: np.ndarray, k: int, classes: Sequence[str], seed: int,
               trial: int, fold: int | None = None, where: str = "") -> np.ndarray:
    """Sorted positions of K rows a class in `y` (the training rows): K distinct groups of
    identical files a class, one row of each, drawn with a generator seeded by (seed, K,
    trial, fold). A class with fewer than K distinct images is an error naming it."""
    rng = np.random.default_rng((int(seed), int(k), int(trial),
                                 0 if fold is None else int(fold) + 1, 4099))
    out, used = [], np.zeros(0, dtype=groups.dtype)
    for c in range(len(classes)):
        members = np.flatnonzero(y == c)
        # one row per group of identical files (the first in file order), none of a group
        # already drawn for another class (the same file under two labels)
        members = members[~np.isin(groups[members], used)]
        _, first = np.unique(groups[members], return_index=True)
        distinct = members[np.sort(first)]
        if len(distinct) < k:
            raise FeatxError(f"{where}: class {classes[c]} has {len(distinct)} distinct "
                             f"training images" + (f" in fold {fold}'s round" if fold is not None
                                                   else "")
                             + f", fewer than --shots {k}")
        out.append(rng.choice(distinct, size=k, replace=False))
        used = np.concatenate([used, groups[out[-1]]])
    return np.sort(np.concatenate(out))


def with_train(d: LevelData, idx: np.ndarray) -> LevelData:
    """`d` whose training part keeps only the rows at `idx` (val and test unchanged)."""
    tr = d["train"]
    part = Part(X=tr.X[idx], y=tr.y[idx], rows=tr.rows[idx], paths=[tr.paths[i] for i in idx],
                dist=None if tr.dist is None else tr.dist[idx])
    return dataclasses.replace(d, parts={**d.parts, "train": part}, fold=None)


def t_interval(values: Sequence[float], level: float = 0.95) -> list[float] | None:
    """Student-t confidence interval of the mean of `values` (None under two values)."""
    from scipy.stats import t

    v = np.asarray([x for x in values if x is not None and x == x], dtype=np.float64)
    if len(v) < 2:
        return None
    half = t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return [float(v.mean() - half), float(v.mean() + half)]


def _mean_metrics(ms: list[dict]) -> dict:
    """SPEC's M averaged over trials: the mean of each figure, the summed confusion, the
    t-intervals over trials in place of the bootstrap ones."""
    out = {m: float(np.mean([x[m] for x in ms])) for m in FOLD_METRICS}
    classes = list(ms[0]["per_class_recall"])
    out["per_class_recall"] = {}
    for c in classes:
        v = [x["per_class_recall"][c] for x in ms if x["per_class_recall"][c] is not None]
        out["per_class_recall"][c] = float(np.mean(v)) if v else None
    out["confusion"] = np.sum([x["confusion"] for x in ms], axis=0).tolist()
    for m in ("accuracy", "macro_recall"):
        out[f"{m}_ci95"] = t_interval([x[m] for x in ms]) or [out[m], out[m]]
    out["n"] = ms[0]["n"]
    return out


def summary_row(trials: list[Result], name: str, k: int) -> Result:
    """The row of K shots over `trials` (each a Result of one trial)."""
    first = trials[0].row
    row = {key: v for key, v in first.items() if key not in ("val", "test", "name", "trial",
                                                              "params", "level_weights",
                                                              "kfold")}
    row.update(name=f"{name} [{k}-shot]", shots=k, trial="all", fewshot_kind=name,
               val=_mean_metrics([r.row["val"] for r in trials]),
               test=_mean_metrics([r.row["test"] for r in trials]))
    fs = {"k": k, "trials": len(trials)}
    for s in ("val", "test"):
        fs[s] = {**spread([r.row[s] for r in trials]),
                 "ci95": {m: t_interval([r.row[s][m] for r in trials]) for m in FOLD_METRICS}}
    row["fewshot"] = fs
    # each trial's test predictions, paired with another row's same trial by a trial prefix
    cat = lambda a: np.concatenate([getattr(r, a) for r in trials])  # noqa: E731
    return Result(row=row, test_true=cat("test_true"), test_pred=cat("test_pred"),
                  test_paths=[f"trial{r.row['trial']}/{p}" for r in trials
                              for p in r.test_paths])


def run_fewshot(train: Callable[[LevelData], object], rounds, shots: Sequence[int], trials: int,
                seed: int | None = None):
    """For each round of `rounds`, K of `shots` and trial: `train(data)` -> a training.Trained
    on K training images a class. Returns (the last Trained, every row: per K and row kind,
    each trial's row (pooled over folds under k-fold, with the fold rows) then the summary)."""
    if trials < 1:
        raise FeatxError(f"--trials {trials}: give at least 1")
    got: dict[tuple[int, int], dict[str, list[Result]]] = {}
    order: list[str] = []
    last, d = None, None
    for d in rounds:
        if seed is None:  # the seed of the protocol's split (classify.training._seed)
            seed = int(d.protocol.get("seed", 0) or 0)
        with Cache(d.cache) as c:
            groups = c.duplicate_groups[d["train"].rows]
        for k in shots:
            for t in range(trials):
                idx = draw_shots(d["train"].y, groups, k, d.classes, seed, t, d.fold, d.cache)
                last = train(with_train(d, idx))
                for r in last.results:
                    name = r.row["name"]
                    if name not in order:
                        order.append(name)
                    if d.fold is not None:
                        r.row["fold"] = d.fold
                    got.setdefault((k, t), {}).setdefault(name, []).append(r)
    out: list[Result] = []
    for k in shots:
        for name in order:
            per_trial = []
            for t in range(trials):
                rs = got[(k, t)][name]
                if d.fold is not None:
                    rs = fold_rows(rs, d.classes, seed=seed)  # fold rows, then the pooled one
                for r in rs:
                    r.row.update(shots=k, trial=t)
                    base = r.row["name"]
                    r.row["name"] = (f"{base[:-1]}, {k}-shot trial {t}]" if base.endswith("]")
                                     else f"{base} [{k}-shot trial {t}]")
                out += rs
                per_trial.append(rs[-1])
            out.append(summary_row(per_trial, name, k))
    last.recipe["fewshot"] = {"shots": list(shots), "trials": trials}
    return last, out


def fewshot_trained(kind: str, cache, levels: Sequence[str], shots: Sequence[int], trials: int,
                    seed: int | None = None, split: str | None = None,
                    task: str | None = None, **kw):
    """`classify fit|stack --shots ... --trials N`: training.Trained whose rows are the
    few-shot protocol's (see run_fewshot); `kw` go to run_fit / run_stack."""
    from classify.training import Trained, _rounds, run_fit, run_stack

    def train(d: LevelData):
        if kind == "fit":
            return run_fit(cache, levels, data=d, seed=seed, **kw)
        per_class = int(np.bincount(d["train"].y).min())
        if per_class < 2:
            raise FeatxError("--shots 1 with stack: out-of-fold stacking needs at least 2 "
                             "training images a class")
        return run_stack(cache, levels, data=d, seed=seed,
                         **{**kw, "folds": min(kw.get("folds", 5), per_class)})

    rounds = _rounds(cache, levels, None, split, task, seed)
    last, rows = run_fewshot(train, rounds, shots, trials, seed)
    return Trained(estimator=last.estimator, results=rows, data=last.data, recipe=last.recipe)
