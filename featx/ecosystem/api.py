"""The notebook API: `featx.load(CACHE, levels="L4", split="train") -> (X, y, paths)`."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from featx.cache import Cache
from featx.errors import FeatxError
from featx.levels import parse_levels
from featx.splits import SPLIT_NAMES


def load(cache: str | os.PathLike, levels: str | Sequence[str] = "L4",
         split: str | None = None, fold: int | None = None, valid_only: bool = True,
         ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features, labels and paths of a cache's images: X float32 [n, sum of the levels' dims]
    (levels side by side, shallow to deep), y int64 [n] (an index into the cache's classes,
    `featx.classes(CACHE)`), paths [n]. `split`: train, val or test (default: every image);
    `fold`: the images of one fold of a kfold:K cache; `valid_only`: leave out images that
    could not be decoded (their features are zeros)."""
    if split is not None and split not in SPLIT_NAMES:
        raise FeatxError(f"split {split!r}: choose {', '.join(SPLIT_NAMES)} or None")
    chosen = parse_levels(levels) if isinstance(levels, str) else parse_levels(",".join(levels))
    with Cache(cache) as c:
        mask = c.valid if valid_only else np.ones(len(c), dtype=bool)
        if split is not None:
            mask &= c.split == c.split_names.index(split)
        if fold is not None:
            if c.fold is None:
                raise FeatxError(f"{cache}: fold={fold}, but the cache has no folds (extract "
                                 f"it with --split kfold:K)")
            mask &= c.fold == fold
        rows = np.flatnonzero(mask)
        paths = c.paths
        return c.features(chosen, rows), c.labels[rows], [paths[i] for i in rows]


def classes(cache: str | os.PathLike) -> list[str]:
    """The class names a cache's labels index."""
    with Cache(cache) as c:
        return list(c.classes)
