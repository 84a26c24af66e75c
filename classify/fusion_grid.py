"""`classify ablate A.h5 B.h5 ... --grid fusion`: what each backbone adds. Rows: each cache's
best single level (chosen on val), each cache's stack of its levels, the concatenation of the
caches' deepest levels, the stack over them, the stack over every (cache, level), and that
stack without each cache in turn; each compared with the best single cache (McNemar, paired
bootstrap of macro recall)."""

from __future__ import annotations

from collections.abc import Sequence

from classify.rows import Result
from featx.cache import Cache
from featx.errors import FeatxError


def _rows_of(trained) -> list[Result]:
    """The last row kind of a run (under k-fold: its fold rows and summary)."""
    last = trained.results[-1].row["name"].split(" [fold ")[0]
    return [r for r in trained.results if r.row["name"].split(" [fold ")[0] == last]


def _named(rows: list[Result], name: str, kind: str) -> list[Result]:
    for r in rows:
        fold = r.row["name"].partition(" [fold ")[2]
        r.row["name"] = name + (f" [fold {fold}" if fold else "")
        r.row["fusion_row"] = kind
    return rows


def run_fusion_grid(caches: Sequence[str], jobs: int | None = None, seed: int = 0,
                    quiet: bool = False, split: str | None = None, task: str | None = None):
    """The fusion grid's rows (see the module), computed one after another."""
    from classify.ablate import GridRun, add_mcnemar
    from classify.fusion import Fused, aliases
    from classify.training import run_fit, run_stack

    caches = [str(c) for c in caches]
    if len(caches) < 2:
        raise FeatxError("--grid fusion needs at least two caches of the same images")
    Fused(caches, _deepest_spec(caches))  # refuses other images before any fit
    names = aliases(caches)
    levels = {}
    for c in caches:
        with Cache(c) as cache:
            levels[c] = list(cache.levels)
    kw = dict(seed=seed, jobs=jobs, quiet=True, split=split, task=task)
    groups: list[list[Result]] = []
    best_single: list[list[Result]] = []
    for alias, c in zip(names, caches):
        singles = [_rows_of(run_fit(c, [lv], "logreg", **kw)) for lv in levels[c]]
        best = max(singles, key=lambda rs: rs[-1].row["val"]["accuracy"])
        chosen = best[-1].row["levels"][0]
        best_single.append(_named(best, f"{alias}: best single level ({chosen}, on val)",
                                  "best single level"))
        if len(levels[c]) > 1:
            groups.append(_named(_rows_of(run_stack(c, levels[c], **kw)),
                                 f"{alias}: stack {'+'.join(levels[c])}", "cache stack"))
        if not quiet:
            import click

            click.echo(f"fusion grid: {alias}'s rows done", err=True)
    deep = _deepest_spec(caches)
    fused_deep = Fused(caches, deep)
    groups.append(_named(_rows_of(run_fit(fused_deep, fused_deep.levels, "logreg", **kw)),
                         "concat of deepest levels", "concat deepest"))
    groups.append(_named(_rows_of(run_stack(fused_deep, fused_deep.levels, **kw)),
                         "stack of deepest levels", "stack deepest"))
    every = Fused(caches, _every_spec(caches, names, levels))
    groups.append(_named(_rows_of(run_stack(every, every.levels, **kw)),
                         "stack of every (cache, level)", "stack every"))
    for alias, c in zip(names, caches):
        rest = [x for x in caches if x != c]
        if len(rest) > 1:
            rest_names = [n for n, x in zip(names, caches) if x != c]  # the same aliases
            f = Fused(rest, _every_spec(rest, rest_names, levels), rest_names)
            trained = run_stack(f, f.levels, **kw)
        else:
            trained = run_stack(rest[0], levels[rest[0]], **kw)
        groups.append(_named(_rows_of(trained), f"stack of every (cache, level) without {alias}",
                             "leave one backbone out"))
    base = max(best_single, key=lambda rs: rs[-1].row["val"]["accuracy"])
    every_group = best_single + groups
    add_mcnemar([g[-1] for g in every_group], base[-1], seed=seed)
    for g in every_group:
        g[-1].row["baseline"] = g is base
    results = [r for g in every_group for r in g]
    return GridRun(results, computed=len(every_group), reused=0)


def _deepest_spec(caches: Sequence[str]) -> str:
    from classify.fusion import aliases

    out = []
    for alias, c in zip(aliases(caches), caches):
        with Cache(c) as cache:
            out.append(f"{alias}:{cache.levels[-1]}")
    return ",".join(out)


def _every_spec(caches: Sequence[str], names: Sequence[str], levels: dict) -> str:
    return ",".join(f"{a}:{lv}" for a, c in zip(names, caches) for lv in levels[c])
