"""Several caches of the same images (one per backbone) as one: their (cache, level) blocks side
by side, each block named `ALIAS:LEVEL`. The images, labels and split must agree; the feature
settings may differ (that is the point)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from classify.data import LevelData, Part, iter_rounds
from featx.cache import Cache, CacheError, fingerprint
from featx.errors import FeatxError
from featx.levels import parse_levels

SEP = ":"


@dataclass(frozen=True)
class Source:
    """One cache of a fusion and the levels taken from it."""

    alias: str
    cache: str
    levels: tuple[str, ...]

    @property
    def blocks(self) -> list[str]:
        return [block_name(self.alias, lv) for lv in self.levels]


def block_name(alias: str, level: str) -> str:
    return f"{alias}{SEP}{level}"


def split_block(name: str) -> tuple[str | None, str]:
    """'clip:emb' -> ('clip', 'emb'); 'L4' -> (None, 'L4')."""
    alias, sep, level = name.rpartition(SEP)
    return (alias, level) if sep else (None, name)


def _alias_of(backbone: str) -> str:
    # clip/ViT-B-32 -> clip (the family is what tells CLIP caches apart from the others);
    # timm/vit_small_patch14_dinov2 -> vit_small_patch14_dinov2; resnet101 -> resnet101
    head, _, tail = backbone.partition("/")
    return head if head == "clip" or not tail else tail.rsplit("/", 1)[-1]


def aliases(caches: Sequence[str]) -> list[str]:
    """Each cache's alias: its backbone's name, made unique by -2, -3, ... in order."""
    out: list[str] = []
    for c in caches:
        with Cache(c) as cache:
            base = _alias_of(str(cache.attrs.get("backbone", "cache"))).replace(SEP, "_")
        name, i = base, 1
        while name in out:
            i += 1
            name = f"{base}-{i}"
        out.append(name)
    return out


def check_same_images(caches: Sequence[str]) -> None:
    """Refuse (one line, the first difference) caches that are not of the same images: the same
    classes, paths, labels, split and folds, in the same order."""
    def facts(c):
        with Cache(c) as cache:
            return {"classes": list(cache.classes), "images": len(cache),
                    "paths": cache.paths, "labels": cache.labels, "split": cache.split,
                    "split spec": str(cache.attrs.get("split_spec", "")),
                    "folds": cache.fold}

    first = facts(caches[0])
    for c in caches[1:]:
        other = facts(c)
        for what, a in first.items():
            b = other[what]
            if isinstance(a, list) and what == "paths":
                if a != b:
                    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
                             min(len(a), len(b)))
                    raise FeatxError(f"fusion: {c} is not of the same images as {caches[0]}: "
                                     f"image {i} is {_at(b, i)} in {c}, {_at(a, i)} in {caches[0]}")
            elif isinstance(a, np.ndarray) or a is None or b is None:
                if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                    i = _first_diff(a, b)
                    raise FeatxError(f"fusion: {c} is not of the same images as {caches[0]}: "
                                     f"the {what} differ" + (f" (image {i}: {first['paths'][i]})"
                                                             if i is not None else ""))
            elif a != b:
                raise FeatxError(f"fusion: {c} is not of the same images as {caches[0]}: "
                                 f"{what} {b!r} vs {a!r}")


def _at(seq: Sequence[str], i: int) -> str:
    return repr(seq[i]) if i < len(seq) else "missing"


def _first_diff(a, b) -> int | None:
    if a is None or b is None or len(a) != len(b):
        return None
    return int(np.flatnonzero(np.asarray(a) != np.asarray(b))[0])


def parse_sources(caches: Sequence[str], spec: str,
                  names: Sequence[str] | None = None) -> list[Source]:
    """`--levels` for several caches: 'L3,L4' for each cache, or ALIAS:LEVELS items
    ('clip:emb,resnet101:L3-L4,L2' -- a plain item continues the alias before it). An alias is
    a cache's backbone alias (see `aliases`) or its file stem."""
    names = list(names or aliases(caches))
    stems = [Path(c).stem for c in caches]
    items = [p.strip() for p in spec.split(",") if p.strip()]
    if not any(SEP in p for p in items):
        levels = tuple(parse_levels(spec))
        return [Source(a, str(c), levels) for a, c in zip(names, caches)]
    chosen: dict[int, list[str]] = {}
    current = None
    for item in items:
        if SEP in item:
            alias, _, lv = item.partition(SEP)
            current = _which(alias.strip(), names, stems, spec)
        elif current is None:
            raise FeatxError(f"--levels {spec!r}: {item!r} names no cache; write ALIAS:{item} "
                             f"(aliases: {', '.join(names)})")
        else:
            lv = item
        chosen.setdefault(current, []).append(lv.strip())
    missing = [names[i] for i in range(len(caches)) if i not in chosen]
    if missing:
        raise FeatxError(f"--levels {spec!r} names no level of {missing[0]} "
                         f"({caches[names.index(missing[0])]}); give one or leave that cache out")
    return [Source(names[i], str(caches[i]), tuple(parse_levels(",".join(chosen[i]))))
            for i in range(len(caches))]


def _which(alias: str, names: list[str], stems: list[str], spec: str) -> int:
    if alias in names:
        return names.index(alias)
    if stems.count(alias) == 1:
        return stems.index(alias)
    raise FeatxError(f"--levels {spec!r}: no cache is called {alias!r} (aliases: "
                     f"{', '.join(names)}; or a cache's file name without .h5)")


@dataclass
class FusedData(LevelData):
    """LevelData of several caches: `levels` are ALIAS:LEVEL block names."""

    sources: list[Source] = field(default_factory=list)
    source_info: list[dict] = field(default_factory=list)  # per cache, for model files

    def model_sources(self) -> list[dict]:
        """What a model file records of each cache: alias, fingerprints, levels, dims and the
        settings to extract features like it."""
        from classify.persist import _EXTRACT_ATTRS

        out = []
        for i in self.source_info:
            extract = {k: i["attrs"][k] for k in _EXTRACT_ATTRS if k in i["attrs"]}
            if isinstance(extract.get("layers"), str):  # stored as JSON text in the cache
                extract["layers"] = json.loads(extract["layers"])
            out.append({k: v for k, v in i.items() if k != "attrs"} | {"extract": extract})
        return out


class Fused:
    """What `run_fit` / `run_stack` take instead of a cache path to fuse several caches."""

    def __init__(self, caches: Sequence[str | os.PathLike], levels: str,
                 names: Sequence[str] | None = None):
        self.caches = [str(c) for c in caches]
        if len(self.caches) < 2:
            raise FeatxError("fusion needs at least two caches")
        check_same_images(self.caches)
        self.sources = parse_sources(self.caches, levels, names)
        for s in self.sources:
            with Cache(s.cache) as c:
                c.check_levels(s.levels)

    @property
    def levels(self) -> list[str]:
        return [b for s in self.sources for b in s.blocks]

    def __str__(self) -> str:
        return " + ".join(self.caches)

    def row_extra(self) -> dict:
        return {"caches": {s.alias: s.cache for s in self.sources}}

    def rounds(self, split: str | None, task: str | None, seed: int) -> Iterator[FusedData]:
        """The fused LevelData of each round of the protocol (see classify.data.iter_rounds)."""
        gens = [iter_rounds(s.cache, list(s.levels), split, task, seed) for s in self.sources]
        for parts in zip(*gens):
            yield combine(parts, self.sources)


def combine(datas: Sequence[LevelData], sources: Sequence[Source]) -> FusedData:
    """One round's LevelData of each cache -> one FusedData over the rows usable in all."""
    first = datas[0]
    info = []
    for d, s in zip(datas, sources):
        info.append({"alias": s.alias, "cache": str(Path(d.cache).resolve()),
                     "cache_fingerprint": d.fingerprint,
                     "feature_fingerprint": d.feature_fingerprint, "levels": list(s.levels),
                     "dims": dict(d.dims), "attrs": d.attrs})
    dims = {block_name(s.alias, lv): d.dims[lv] for d, s in zip(datas, sources)
            for lv in s.levels}
    fused = FusedData(
        cache=first.cache, classes=first.classes, levels=list(dims), dims=dims,
        fingerprint=fingerprint({"fused": [i["cache_fingerprint"] for i in info]}),
        feature_fingerprint=fused_feature_fingerprint(info), attrs=first.attrs,
        protocol=first.protocol, fold=first.fold, sources=list(sources), source_info=info)
    for split in first.parts:
        rows = first[split].rows
        for d in datas[1:]:  # an image failed in one backbone is left out of all
            rows = np.intersect1d(rows, d[split].rows, assume_unique=True)
        X = np.empty((len(rows), sum(dims.values())), dtype=np.float32)
        start = 0
        for d in datas:
            at = np.searchsorted(d[split].rows, rows)
            X[:, start:start + d[split].X.shape[1]] = d[split].X[at]
            start += d[split].X.shape[1]
        at = np.searchsorted(first[split].rows, rows)
        p = first[split]
        fused.parts[split] = Part(X=X, y=p.y[at], rows=rows, paths=[p.paths[i] for i in at],
                                  dist=None if p.dist is None else p.dist[at])
    return fused


def fused_feature_fingerprint(info: Sequence[dict]) -> str:
    """One fingerprint for the features of every (cache, levels) of a fusion."""
    return fingerprint({"fused": [[i["feature_fingerprint"], i["levels"]] for i in info]})


def predict_fused(bundle: dict, caches: Sequence[str]):
    """classify.predict.Predictions of a fused model on `caches` (in the model's order): every
    row usable in all of them; refuses caches made otherwise than the model's."""
    from classify.predict import Predictions, _proba

    sources = bundle["sources"]
    if len(caches) != len(sources):
        raise FeatxError(f"the model fuses {len(sources)} caches "
                         f"({', '.join(s['alias'] for s in sources)}): give {len(sources)} "
                         f"caches in that order")
    check_same_images([str(c) for c in caches])
    blocks, valid, errors = [], None, []
    for path, s in zip(caches, sources):
        with Cache(path) as c:
            theirs = str(c.attrs.get("feature_fingerprint", c.fingerprint))
            if theirs != s["feature_fingerprint"]:
                raise CacheError(f"{path}: its features were made with other settings than the "
                                 f"model's {s['alias']} cache (feature fingerprint {theirs[:12]}"
                                 f" vs {s['feature_fingerprint'][:12]}); give the caches in the "
                                 f"model's order: {', '.join(x['alias'] for x in sources)}")
            c.check_levels(s["levels"])
            blocks += [c.features([lv]) for lv in s["levels"]]
            valid = c.valid if valid is None else valid & c.valid
            errors = [a or b for a, b in zip(errors, c.errors)] if errors else c.errors
    with Cache(caches[0]) as c:
        paths, labels = c.paths, [c.classes[y] for y in c.labels]
        split = [c.split_names[v] for v in c.split]
    proba = np.full((len(valid), len(bundle["classes"])), np.nan)
    rows = np.flatnonzero(valid)
    if len(rows):
        proba[rows] = _proba(bundle, np.concatenate([b[rows] for b in blocks], axis=1))
    errors = [e or ("" if v else "invalid row (in at least one cache)")
              for e, v in zip(errors, valid)]
    return Predictions(paths, proba, errors, labels, split)
