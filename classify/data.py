"""Cached features -> train / val / test matrices of the asked levels (valid rows only)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from featx.cache import Cache, CacheError


@dataclass
class Part:
    """One split's rows: features, labels, cache row indices and relative paths."""

    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    paths: list[str]


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


def load_levels(path: str | os.PathLike, levels: Sequence[str],
                splits: Sequence[str] = ("train", "val", "test")) -> LevelData:
    """Read `levels` of the cache at `path` for `splits`; every level is read from disk once."""
    with Cache(path) as cache:
        cache.check_levels(levels)
        labels = cache.labels
        rows = {s: cache.split_indices(s) for s in splits}
        if "train" in rows:
            _check_train(cache, labels[rows["train"]])
        all_paths = cache.paths
        dims = {lv: cache.dims[lv] for lv in levels}
        width = sum(dims.values())
        X = {s: np.empty((len(r), width), dtype=np.float32) for s, r in rows.items()}
        start = 0
        for lv in levels:
            full = cache.features([lv], dtype=cache.f["features"][lv].dtype)  # no cast: read once
            _check_finite(cache, lv, full, np.concatenate(list(rows.values())), all_paths)
            for s, r in rows.items():
                X[s][:, start:start + dims[lv]] = full[r]
            start += dims[lv]
            del full
        ident = model_identity(cache)
        data = LevelData(cache=str(path), classes=ident["classes"], levels=list(levels), dims=dims,
                         fingerprint=ident["cache_fingerprint"],
                         feature_fingerprint=ident["feature_fingerprint"], attrs=dict(cache.attrs))
        for s, r in rows.items():
            data.parts[s] = Part(X=X[s], y=labels[r], rows=r, paths=[all_paths[i] for i in r])
    return data


def _check_finite(cache: Cache, level: str, x: np.ndarray, rows: np.ndarray,
                  paths: list[str]) -> None:
    """Caches written before featx checked its features may hold inf (float16 overflow)."""
    bad = rows[~np.isfinite(x[rows]).all(axis=1)]
    if len(bad):
        raise CacheError(f"{cache.path}: level {level} has NaN or infinite features in "
                         f"{len(bad)} usable rows (e.g. {paths[bad[0]]}); extract the cache "
                         f"again (with --dtype float32 if it is float16: "
                         f"{cache.attrs.get('dtype')})")


def _check_train(cache: Cache, y_train: np.ndarray) -> None:
    counts = np.bincount(y_train, minlength=len(cache.classes))
    missing = [c for c, n in zip(cache.classes, counts) if n == 0]
    if missing:
        raise CacheError(f"{cache.path}: class {', '.join(missing)} has no valid training image; "
                         f"a model cannot learn it (re-split or drop the class)")
