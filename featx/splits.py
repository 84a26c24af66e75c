"""Stratified, seeded train/val/test splits that keep duplicate groups on one side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from featx.errors import FeatxError

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2


def parse_split(spec: str) -> tuple[float, float, float]:
    """'80/5/15' -> (0.80, 0.05, 0.15)."""
    try:
        parts = [float(p) for p in spec.split("/")]
    except ValueError:
        parts = []
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise FeatxError(f"bad --split {spec!r}: give three non-negative numbers, e.g. 80/5/15")
    total = sum(parts)
    return parts[0] / total, parts[1] / total, parts[2] / total


def stratified_split(labels: Sequence[int], groups: Sequence[int], spec: str, seed: int) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) per item.

    Items are assumed to be in a canonical order (sorted paths), so the result does not depend on
    the order files were found in. Items sharing a group id (identical files) always land in the
    same split; a group is stratified under the label of its first item.
    """
    fractions = parse_split(spec)
    labels = np.asarray(labels, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    split = np.zeros(len(labels), dtype=np.uint8)
    # group id -> members, group label = label of its first (canonical) member
    _, first, inverse, sizes = np.unique(groups, return_index=True, return_inverse=True,
                                         return_counts=True)
    group_label = labels[first]
    group_split = np.zeros(len(first), dtype=np.uint8)
    for c in np.unique(group_label):
        members = np.flatnonzero(group_label == c)
        members = members[np.argsort(first[members], kind="stable")]
        rng = np.random.default_rng((int(seed), int(c)))
        members = members[rng.permutation(len(members))]
        n = int(sizes[members].sum())
        n_test = int(round(fractions[TEST] * n))
        n_val = int(round(fractions[VAL] * n))
        start = np.concatenate([[0], np.cumsum(sizes[members])[:-1]])
        group_split[members[start < n_test]] = TEST
        group_split[members[(start >= n_test) & (start < n_test + n_val)]] = VAL
        group_split[members[start >= n_test + n_val]] = TRAIN
    split[:] = group_split[inverse]
    return split
