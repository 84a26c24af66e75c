"""Cached features -> train / val / test matrices of the asked levels (valid rows only)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from classify.protocol import resolve
from featx.cache import Cache, CacheError
from featx.splits import SPLIT_NAMES


@dataclass
class Part:
    """One split's rows: features, labels, cache row indices and relative paths."""

    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    paths: list[str]
    dist: np.ndarray | None = None  # [n, C] label distributions, where the cache has them


@dataclass
class LevelData:
    """The asked levels of one cache, split, side by side in float32."""

    cache: str
    classes: list[str]
    levels: list[str]
    dims: dict[str, int]
    fingerprint: str
    feature_fingerprint: str
    attrs: dict
    parts: dict[str, Part] = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)  # classify.protocol.resolve's record
    fold: int | None = None  # the k-fold round, if any

    @property
    def slices(self) -> list[tuple[int, int]]:
        """(start, stop) column range of each level in X."""
        out, start = [], 0
        for lv in self.levels:
            out.append((start, start + self.dims[lv]))
            start += self.dims[lv]
        return out

    def __getitem__(self, split: str) -> Part:
        return self.parts[split]


def model_identity(cache: Cache) -> dict:
    """What a model file records about the features it was trained on."""
    a = cache.attrs
    return {"cache_fingerprint": cache.fingerprint,
            "feature_fingerprint": str(a.get("feature_fingerprint", cache.fingerprint)),
            "classes": list(cache.classes)}


def _read_rows(cache: Cache, levels: Sequence[str], row_sets: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
    """The levels side by side (float32) for each set of rows; every level is read once."""
    dims = [cache.dims[lv] for lv in levels]
    X = {s: np.empty((len(r), sum(dims)), dtype=np.float32) for s, r in row_sets.items()}
    start = 0
    for lv, d in zip(levels, dims):
        full = cache.features([lv], dtype=cache.f["features"][lv].dtype)  # no cast: read once
        for s, r in row_sets.items():
            X[s][:, start:start + d] = full[r]
        # checked on the copies just made, not on another gather of the rows from `full`
        _check_finite(cache, lv, np.concatenate(
            [r[~np.isfinite(X[s][:, start:start + d]).all(axis=1)] for s, r in row_sets.items()]))
        start += d
        del full
    return X


def iter_rounds(path: str | os.PathLike, levels: Sequence[str], split: str | None = None,
                task: str | None = None, seed: int | None = None,
                splits: Sequence[str] = ("train", "val", "test")) -> Iterator[LevelData]:
    """LevelData of each round of the protocol (classify.protocol.resolve: the cache's stored
    split, seed and task unless `split`, `seed`, `task` replace them; one round unless
    kfold:K), with labels (and label distributions) under the task. The features are read
    from disk once; a round's matrices exist only while it is being used."""
    with Cache(path) as cache:
        cache.check_levels(levels)
        res = resolve(cache, split, task, seed, owner=f"the training cache {path}")
        rnds, labels, classes, dist = res.rounds, res.labels, res.classes, res.dist
        valid = cache.valid
        all_paths = cache.paths
        dims = {lv: cache.dims[lv] for lv in levels}
        ident = model_identity(cache)
        attrs = dict(cache.attrs)
        protocol = res.record
        row_sets = [{s: np.flatnonzero((r.split == SPLIT_NAMES.index(s)) & valid)
                     for s in splits} for r in rnds]
        for rows in row_sets:
            if "train" in rows:
                _check_train(cache.path, classes, labels[rows["train"]])
        if len(rnds) == 1:
            X_all, where = None, None
            X_one = _read_rows(cache, levels, row_sets[0])
        else:
            usable = np.flatnonzero(valid)
            X_all = _read_rows(cache, levels, {"all": usable})["all"]
            where = np.full(len(valid), -1, dtype=np.int64)
            where[usable] = np.arange(len(usable))
    for rnd, rows in zip(rnds, row_sets):
        data = LevelData(cache=str(path), classes=classes, levels=list(levels), dims=dims,
                         fingerprint=ident["cache_fingerprint"],
                         feature_fingerprint=ident["feature_fingerprint"], attrs=attrs,
                         protocol=protocol, fold=rnd.fold)
        for s, r in rows.items():
            X = X_one[s] if X_all is None else X_all[where[r]]
            data.parts[s] = Part(X=X, y=labels[r], rows=r, paths=[all_paths[i] for i in r],
                                 dist=None if dist is None else dist[r])
        yield data
        del data


def load_levels(path: str | os.PathLike, levels: Sequence[str],
                splits: Sequence[str] = ("train", "val", "test"), split: str | None = None,
                task: str | None = None, seed: int | None = None) -> LevelData:
    """Read `levels` of the cache at `path` for `splits` (one round: a k-fold protocol is
    refused here; use iter_rounds)."""
    gen = iter_rounds(path, levels, split, task, seed, splits)
    data = next(gen)
    if data.fold is not None:
        gen.close()
        raise CacheError(f"{path}: {data.protocol['split']} is several rounds (one model per "
                         f"fold); name one fold, e.g. --split {data.protocol['split']}:0")
    return data


def _check_finite(cache: Cache, level: str, bad: np.ndarray) -> None:
    """Refuse the usable rows `bad` whose features are not finite: caches written before featx
    checked its features may hold inf (float16 overflow)."""
    if len(bad):
        raise CacheError(f"{cache.path}: level {level} has NaN or infinite features in "
                         f"{len(bad)} usable rows (e.g. {cache.paths[bad[0]]}); extract the cache "
                         f"again (with --dtype float32 if it is float16: "
                         f"{cache.attrs.get('dtype')})")


def check_same_features(path: str | os.PathLike, train: str | os.PathLike) -> None:
    """Refuse (one line) a cache whose features were made with other settings than `train`'s:
    their feature fingerprints (backbone, weights, levels, pool, preprocessing, ...) differ."""
    from featx.settings import FEATURE_KEYS, from_cache_attrs

    with Cache(train) as a, Cache(path) as b:
        ours = str(a.attrs.get("feature_fingerprint", a.fingerprint))
        theirs = str(b.attrs.get("feature_fingerprint", b.fingerprint))
        if ours == theirs:
            return
        sa, sb = from_cache_attrs(a.attrs), from_cache_attrs(b.attrs)
        what = ", ".join(f"{k} {sa[k]} vs {sb[k]}" for k in FEATURE_KEYS
                         if k in sa and k in sb and sa[k] != sb[k])
    raise CacheError(f"{path}: its features were made with other settings than {train}'s "
                     f"(feature fingerprint {theirs[:12]} vs {ours[:12]}"
                     + (f": {what}" if what else "") + "); cross-dataset evaluation needs "
                     f"features from the same backbone, weights, pool and preprocessing")


def load_eval_rows(path: str | os.PathLike, data: LevelData, task: str | None = None
                   ) -> tuple[Part, list[str]]:
    """Every valid image of another cache, for cross-dataset evaluation of a model trained on
    `data`, labelled under `task` (None: its own): refused unless its features were made with
    the same settings."""
    from classify.protocol import task_labels

    check_same_features(path, data.cache)
    with Cache(path) as cache:
        cache.check_levels(data.levels)
        bad = [lv for lv in data.levels if cache.dims[lv] != data.dims[lv]]
        if bad:
            raise CacheError(f"{path}: level {bad[0]} has {cache.dims[bad[0]]} dims, "
                             f"{data.cache} has {data.dims[bad[0]]}")
        classes, labels, dist, _, _ = task_labels(cache, task,
                                                  owner=f"the --eval cache {path}")
        rows = np.flatnonzero(cache.valid)
        X = _read_rows(cache, data.levels, {"all": rows})["all"]
        paths = cache.paths
        return Part(X=X, y=labels[rows], rows=rows, paths=[paths[i] for i in rows],
                    dist=None if dist is None else dist[rows]), list(classes)


def _check_train(path, classes: list[str], y_train: np.ndarray) -> None:
    counts = np.bincount(y_train, minlength=len(classes))
    missing = [c for c, n in zip(classes, counts) if n == 0]
    if missing:
        raise CacheError(f"{path}: class {', '.join(missing)} has no valid training image; "
                         f"a model cannot learn it (re-split or drop the class)")
