"""Ablation grids: many (cache, levels, model, weighting, stacking) rows, computed in parallel,
each cached on disk, compared with McNemar's test against the L4-logreg baseline."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from classify.atomic import write_json
from classify.rows import Result, row_name, rows_document
from featx.cache import Cache, fingerprint
from featx.errors import FeatxError
from featx.levels import parse_levels

ROW_FORMAT = 4  # bump when the code computing a row changes (the estimator settings and grid
# are in the row key already), so old cached rows are not reused


@dataclass(frozen=True)
class RowSpec:
    """One row of a grid; `meta` set means a stack of per-level `model`s."""

    cache: str
    levels: tuple[str, ...]
    model: str = "logreg"
    weighted: bool = False
    meta: str | None = None

    @property
    def name(self) -> str:
        return row_name(self.levels, self.model, self.weighted, self.meta)

    def key(self, cache_fingerprint: str, seed: int, protocol: dict | None = None,
            fewshot: dict | None = None) -> str:
        """Names the stored result: what the row computes, not where the cache lies; the
        protocol as resolved (a task map's content, not its file name)."""
        from classify.models import make_model, model_kind

        spec = {k: v for k, v in asdict(self).items() if k != "cache"}
        # the estimator's own settings too, so that a changed default is never served from disk
        est = make_model(self.model, weighted=self.weighted, seed=seed).get_params(deep=True)
        settings = {k: repr(v) for k, v in est.items() if not hasattr(v, "get_params")}
        key = {"cache": cache_fingerprint, "row": spec, "seed": seed,
               "grid": model_kind(self.model).grid, "settings": settings, "format": ROW_FORMAT,
               "protocol": protocol or {}}
        if fewshot:
            key["fewshot"] = fewshot
        return fingerprint(key)[:24]


Shape = tuple[tuple[str, ...], str, bool, str | None]  # levels, model, weighted, meta


def _deep(levels: Sequence[str]) -> str:
    return "L4" if "L4" in levels else levels[-1]


def default_grid(levels: Sequence[str]) -> list[Shape]:
    """Each level alone; L4 vs L3+L4 vs all concatenated vs stacked; weighted vs not; logreg vs
    LightGBM."""
    lv, deep = tuple(levels), _deep(levels)
    rows: list[Shape] = [((x,), "logreg", False, None) for x in lv]
    if "L3" in lv and "L4" in lv:
        rows.append((("L3", "L4"), "logreg", False, None))
    for w in (False, True):
        rows += [((deep,), "logreg", w, None), (lv, "logreg", w, None),
                 (lv, "logreg", w, "weighted")]
    rows += [(lv, "logreg", False, "logreg"), ((deep,), "lgbm", False, None),
             ((deep,), "lgbm", True, None)]
    return rows


def quick_grid(levels: Sequence[str]) -> list[Shape]:
    """A few cheap rows (for tests and a first look)."""
    deep = _deep(levels)
    pair = tuple(levels[-2:]) if len(levels) > 1 else (deep,)
    return [((deep,), "logreg", False, None), (pair, "logreg", False, None),
            (pair, "logreg", False, "weighted"), ((deep,), "logreg", True, None)]


GRIDS: dict[str, Callable[[Sequence[str]], list[Shape]]] = {"default": default_grid,
                                                            "quick": quick_grid}


def _grid_file(path: Path) -> Callable[[Sequence[str]], list[Shape]]:
    """A JSON list of {"levels": "L3,L4", "model": "logreg", "weighted": false, "meta": null}."""
    try:
        items = json.loads(path.read_text())
        shapes = [(tuple(parse_levels(it["levels"])), str(it.get("model", "logreg")),
                   bool(it.get("weighted", False)), it.get("meta")) for it in items]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise FeatxError(f"{path}: not a grid file (a JSON list of rows with levels, model, "
                         f"weighted, meta): {e}") from None
    return lambda levels: shapes


def grid_specs(caches: Sequence[str], grid: str) -> tuple[list[RowSpec], RowSpec]:
    """The rows of `grid` over `caches`, and the baseline (L4 logreg on the first cache)."""
    from classify.models import MODELS
    from classify.stacking import META_MODELS

    if grid in GRIDS:
        make = GRIDS[grid]
    elif Path(grid).is_file():
        make = _grid_file(Path(grid))
    else:
        raise FeatxError(f"--grid {grid!r}: not a grid name ({', '.join(GRIDS)}) nor a file")
    specs: list[RowSpec] = []
    for c in caches:
        with Cache(c) as cache:
            levels = cache.levels
        if not levels:
            raise FeatxError(f"{c}: the cache has no feature level")
        for lv, model, weighted, meta in make(levels):
            missing = [x for x in lv if x not in levels]
            if missing:
                raise FeatxError(f"{c}: level {', '.join(missing)} is not in this cache "
                                 f"(it has {', '.join(levels)})")
            if model not in MODELS or (meta is not None and meta not in META_MODELS):
                raise FeatxError(f"grid row {lv} {model} {meta}: unknown model or meta")
            s = RowSpec(str(c), tuple(lv), model, weighted, meta)
            if s not in specs:
                specs.append(s)
    with Cache(caches[0]) as cache:
        base = RowSpec(str(caches[0]), (_deep(cache.levels),), "logreg", False, None)
    if base not in specs:
        specs.insert(0, base)
    return specs, base


def check_comparable(caches: Sequence[str]) -> None:
    """Rows of several caches are compared only over the same classes and, for the images they
    share (same relative path), the same labels; the first difference is the error."""
    first = None
    for c in caches:
        with Cache(c) as cache:
            classes = cache.classes
            labels = dict(zip(cache.paths, cache.labels.tolist()))
        if first is None:
            first = (c, classes, labels)
            continue
        c0, classes0, labels0 = first
        if classes != classes0:
            diff = next((i for i, (a, b) in enumerate(zip(classes0, classes)) if a != b),
                        min(len(classes0), len(classes)))
            what = (f"class {diff} is {classes0[diff]!r} in {c0}, {classes[diff]!r} in {c}"
                    if diff < min(len(classes0), len(classes)) else
                    f"{len(classes0)} classes in {c0}, {len(classes)} in {c}")
            raise FeatxError(f"ablate: {c0} and {c} have other class lists ({what}); their rows "
                             f"cannot be compared")
        for p in sorted(labels0.keys() & labels.keys()):
            if labels0[p] != labels[p]:
                raise FeatxError(f"ablate: {c0} and {c} label the same image differently "
                                 f"({p}: {classes[labels0[p]]} vs {classes[labels[p]]}); their "
                                 f"rows cannot be compared")


def run_row(spec: RowSpec, seed: int | None, out_file: str, threads: int = 1,
            split: str | None = None, task: str | None = None,
            shots: Sequence[int] = (), trials: int = 5) -> list[dict]:
    """Compute one row -- under k-fold, each fold's and the summary; with `shots`, each trial's
    and each K's summary -- (its fits one after another, each on `threads` OpenMP threads) and
    store it in `out_file`."""
    from classify.training import run_fit, run_stack

    if shots:
        from classify.fewshot import fewshot_trained

        kw = (dict(model=spec.model, threads=threads) if spec.meta is None
              else dict(base=spec.model, meta=spec.meta))
        trained = fewshot_trained("fit" if spec.meta is None else "stack", spec.cache,
                                  list(spec.levels), shots, trials, seed, split, task,
                                  weighted=spec.weighted, jobs=1, quiet=True, **kw)
        wanted = spec.model if spec.meta is None else f"stack:{spec.model}>{spec.meta}"
        results = [r for r in trained.results if r.row["model"] == wanted]
    elif spec.meta is None:
        trained = run_fit(spec.cache, list(spec.levels), spec.model, spec.weighted, seed=seed,
                          jobs=1, threads=threads, quiet=True, split=split, task=task)
        results = trained.results
    else:
        trained = run_stack(spec.cache, list(spec.levels), spec.model, spec.meta, spec.weighted,
                            seed=seed, jobs=1, quiet=True, split=split, task=task)
        stacked = trained.results[-1].row["name"]  # the stack's rows, not its levels' alone
        results = [r for r in trained.results
                   if r.row["name"].split(" [fold ")[0] == stacked.split(" [fold ")[0]]
    stored = [_stored(r) for r in results]
    write_json(out_file, {"results": stored})
    return stored


def _stored(res: Result) -> dict:
    return {"row": rows_document([res])["rows"][0], "test_true": res.test_true.tolist(),
            "test_pred": res.test_pred.tolist(), "test_paths": res.test_paths}


def _result(d: dict) -> Result:
    return Result(d["row"], np.asarray(d["test_true"]), np.asarray(d["test_pred"]),
                  d["test_paths"])


def _load_row(path: Path) -> list[Result] | None:
    try:
        return [_result(d) for d in json.loads(path.read_text())["results"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: computed again


def add_mcnemar(results: Sequence[Result], base: Result, seed: int = 0) -> None:
    """Each row against `base` on the test images both have: McNemar's exact test on accuracy
    and a paired bootstrap test on macro recall."""
    from classify.metrics import mcnemar, paired_bootstrap_macro_recall

    where = {p: i for i, p in enumerate(base.test_paths)}
    base_ok = base.test_true == base.test_pred
    n_classes = len(base.row["test"]["per_class_recall"])
    for r in results:
        idx = [(i, where[p]) for i, p in enumerate(r.test_paths) if p in where]
        if not idx:
            r.row["mcnemar_p"] = None
            r.row["macro_recall_p"] = None
            continue
        a, b = (np.array(x) for x in zip(*idx))
        m = mcnemar((r.test_true == r.test_pred)[a], base_ok[b])
        r.row["mcnemar_p"] = m["p_value"]
        r.row["mcnemar"] = {**m, "n_paired": len(a), "baseline": base.row["name"]}
        same_truth = np.array_equal(r.test_true[a], base.test_true[b])
        if r is base or not same_truth:
            boot = {"diff": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0} if r is base else None
        else:
            boot = paired_bootstrap_macro_recall(r.test_true[a], r.test_pred[a],
                                                 base.test_pred[b], n_classes, seed=seed)
        r.row["macro_recall_p"] = boot["p_value"] if boot else None
        if boot:
            r.row["macro_recall_vs_base"] = {**boot, "n_paired": len(a),
                                             "baseline": base.row["name"]}


@dataclass
class GridRun:
    results: list[Result]
    computed: int
    reused: int


def run_grid(caches: Sequence[str], grid: str, out: str | os.PathLike, jobs: int | None = None,
             seed: int | None = None, quiet: bool = False, split: str | None = None,
             task: str | None = None, shots: Sequence[int] = (), trials: int = 5,
             backend: str | None = None) -> GridRun:
    """Compute (or reuse from `out`/rows) every row of the grid; rows in parallel processes,
    or as tasks on a Dask cluster (`backend`, classify.cluster). With `shots`: the few-shot
    protocol, each K's summaries compared with the baseline's."""
    from featx.progress import track

    from classify.cluster import parse_backend, run_calls
    from classify.models import model_kind

    kind, _ = parse_backend(backend)
    if grid == "fusion":  # several caches of the same images: classify.fusion_grid
        from classify.fusion_grid import run_fusion_grid

        if shots:
            raise FeatxError("--grid fusion with --shots: run fit/stack --shots on the fused "
                             "caches instead")
        if kind != "local":
            raise FeatxError(f"--grid fusion runs its rows locally; --backend {backend} is for "
                             f"the other grids")
        if seed is None:  # the seed of the first cache's split (classify.protocol.resolve)
            from classify.protocol import cache_seed

            with Cache(caches[0]) as c:
                seed = cache_seed(c)
        return run_fusion_grid(caches, jobs=jobs, seed=seed, quiet=quiet, split=split, task=task)
    check_comparable(caches)
    specs, base = grid_specs(caches, grid)
    from classify.protocol import resolve

    fps, protos = {}, {}
    for c in caches:
        with Cache(c) as cache:
            fps[str(c)] = cache.fingerprint
            protos[str(c)] = resolve(cache, split, task, seed).record

    def model_seed(c: str) -> int:  # as training.run_fit chooses it
        return seed if seed is not None else int(protos[c]["seed"])

    rows_dir = Path(out) / "rows"
    fewshot = {"shots": list(shots), "trials": trials} if shots else None
    files = [rows_dir / f"{s.key(fps[s.cache], model_seed(s.cache), protos[s.cache], fewshot)}"
                        f".json" for s in specs]
    from classify.zeroshot import zeroshot_rows

    # CLIP caches' zero-shot rows (cheap) first: one that cannot be made is refused before
    # any grid row is computed
    zeroshot = zeroshot_rows([str(c) for c in caches], seed=seed, split=split, task=task)
    done = {i: r for i, f in enumerate(files) if f.exists() and (r := _load_row(f)) is not None}
    todo = [i for i in range(len(specs)) if i not in done]
    # slowest rows first, so that the cheap ones fill the other workers meanwhile
    todo.sort(key=lambda i: -model_kind(specs[i].model).cost)
    if todo:
        rows_dir.mkdir(parents=True, exist_ok=True)
        cpus = os.cpu_count() or 1
        workers = min(jobs or cpus, len(todo))
        # rows run in processes; a row's LightGBM (OpenMP) threads share the cores with the
        # other rows': more threads than cores makes OpenMP spin and LightGBM several x slower
        threads = max(1, cpus // workers)
        gen = run_calls(backend, workers, _run_row_indexed,
                        [(i, specs[i], seed, str(files[i]), threads, split, task, shots, trials)
                         for i in todo])
        # each worker's first row also pays its start-up: the ETA counts from their end
        for i, stored in track(gen, total=len(todo), desc="ablation rows", unit="row",
                               quiet=quiet, warmup=workers):
            done[i] = [_result(d) for d in stored]
    base_seed = model_seed(str(caches[0]))
    if shots:  # each K's summary rows against the baseline's at that K
        for k in shots:
            summaries = [next(r for r in done[i] if r.row.get("shots") == k
                              and r.row.get("trial") == "all") for i in range(len(specs))]
            add_mcnemar(summaries, summaries[specs.index(base)], seed=base_seed)
    else:
        # under k-fold a spec has its fold rows and then its summary (the row compared)
        summaries = [done[i][-1] for i in range(len(specs))]
        add_mcnemar(summaries + zeroshot, summaries[specs.index(base)], seed=base_seed)
    results = [r for i in range(len(specs)) for r in done[i]] + zeroshot
    return GridRun(results, computed=len(todo), reused=len(specs) - len(todo))


def _run_row_indexed(i: int, spec: RowSpec, seed: int | None, out_file: str, threads: int,
                     split: str | None, task: str | None, shots: Sequence[int] = (),
                     trials: int = 5) -> tuple[int, list[dict]]:
    return i, run_row(spec, seed, out_file, threads, split, task, shots, trials)
