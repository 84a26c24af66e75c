"""Evaluation protocols over a cache's images, chosen after extraction (features do not depend
on the split): the cache's own split, a ratio split, k-fold rounds, the official split; the
task (emotion classes or sentiment); cross-dataset class matching."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featx.cache import Cache, CacheError
from featx.errors import FeatxError
from featx.splits import (check_spec, fold_view, is_kfold, kfold_assign, parse_kfold,
                          stratified_split)
from featx.tasks import read_map_file


@dataclass
class Round:
    """One train/val/test assignment of the cache's rows; `fold` set for a k-fold round."""

    split: np.ndarray  # uint8 per cache row: 0 train, 1 val, 2 test
    fold: int | None = None


def rounds(cache: Cache, spec: str | None, seed: int) -> tuple[str, list[Round]]:
    """(the protocol's name to record, its rounds) for `--split spec` on `cache`. None: the
    cache's own split (each of its folds if it was extracted with kfold:K)."""
    own = str(cache.attrs.get("split_spec", ""))
    if spec is None:
        fold = cache.fold  # read once: a property that reads /fold from the file
        if fold is not None and is_kfold(own):
            k, _ = parse_kfold(own)
            return own, [Round(fold_view(fold, k, f), f) for f in range(k)]
        return own, [Round(cache.split)]
    check_spec(spec)
    if spec == "official":
        if own in ("official", "csv") or (own and not is_kfold(own) and "/" not in own):
            return own, [Round(cache.split)]
        raise CacheError(f"{cache.path}: --split official: the cache's split is {own!r}, not "
                         f"the dataset's own")
    labels, groups = cache.labels, cache.duplicate_groups
    if is_kfold(spec):
        k, only = parse_kfold(spec)
        fold = kfold_assign(labels, groups, k, seed)
        folds = range(k) if only is None else [only]
        return spec, [Round(fold_view(fold, k, f), f) for f in folds]
    return spec, [Round(stratified_split(labels, groups, spec, seed))]


def class_map_file(path: str | Path | None) -> dict[str, str]:
    return read_map_file(Path(path)) if path else {}


def match_classes(train: list[str], other: list[str], mapping: dict[str, str],
                  other_path: str) -> np.ndarray:
    """Index into `train` of each class of the evaluation cache (-1: no match), by name after
    `mapping` (other name -> train name)."""
    index = {c: i for i, c in enumerate(train)}
    bad = [f"{a}->{b}" for a, b in mapping.items() if b not in index]
    if bad:
        raise FeatxError(f"--class-map: target {bad[0]} is not a class of the training cache "
                         f"({', '.join(train)})")
    out = np.array([index.get(mapping.get(c, c), -1) for c in other], dtype=np.int64)
    if (out < 0).all():
        raise FeatxError(f"{other_path}: none of its classes ({', '.join(other)}) matches the "
                         f"training classes ({', '.join(train)}); give --class-map FILE "
                         f"(other,train per line)")
    return out
