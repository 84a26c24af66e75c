"""Stratified, seeded train/val/test splits that keep duplicate groups on one side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from featx.errors import FeatxError

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2
MAX_FOLDS = 127  # folds are stored as int8 (/fold)


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


def _groups_by_class(labels: Sequence[int], groups: Sequence[int]):
    """The duplicate groups (first item, item -> group, size) and, per class, its groups in
    canonical order; a group's class is the label of its first (canonical) item."""
    labels = np.asarray(labels, dtype=np.int64)
    _, first, inverse, sizes = np.unique(np.asarray(groups, dtype=np.int64), return_index=True,
                                         return_inverse=True, return_counts=True)
    group_label = labels[first]
    per_class = []
    for c in np.unique(group_label):
        members = np.flatnonzero(group_label == c)
        per_class.append((c, members[np.argsort(first[members], kind="stable")]))
    return first, inverse, sizes, per_class


def stratified_split(labels: Sequence[int], groups: Sequence[int], spec: str, seed: int) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) per item.

    Items are assumed to be in a canonical order (sorted paths), so the result does not depend on
    the order files were found in. Items sharing a group id (identical files) always land in the
    same split; a group is stratified under the label of its first item.
    """
    fractions = parse_split(spec)
    first, inverse, sizes, per_class = _groups_by_class(labels, groups)
    group_split = np.zeros(len(first), dtype=np.uint8)
    for c, members in per_class:
        rng = np.random.default_rng((int(seed), int(c)))
        members = members[rng.permutation(len(members))]
        n = int(sizes[members].sum())
        n_test = int(round(fractions[TEST] * n))
        n_val = int(round(fractions[VAL] * n))
        start = np.concatenate([[0], np.cumsum(sizes[members])[:-1]])
        group_split[members[start < n_test]] = TEST
        group_split[members[(start >= n_test) & (start < n_test + n_val)]] = VAL
        group_split[members[start >= n_test + n_val]] = TRAIN
    return group_split[inverse]


def is_kfold(spec: str | None) -> bool:
    return bool(spec) and str(spec).startswith("kfold:")


def has_rounds(spec: str | None) -> bool:
    """Whether the protocol is several rounds (kfold:K): one model per fold, not one model."""
    return is_kfold(spec) and parse_kfold(spec)[1] is None


def parse_kfold(spec: str) -> tuple[int, int | None]:
    """'kfold:5' -> (5, None); 'kfold:5:2' -> (5, 2): the view of fold 2 as test."""
    parts = str(spec).split(":")
    try:
        k = int(parts[1])
        fold = int(parts[2]) if len(parts) == 3 else None
        if len(parts) > 3:
            raise ValueError
    except (ValueError, IndexError):
        raise FeatxError(f"bad --split {spec!r}: use kfold:K (e.g. kfold:5), or kfold:K:F for "
                         f"the train/val/test view with fold F as test") from None
    if not 3 <= k <= MAX_FOLDS or (fold is not None and not 0 <= fold < k):
        # K=2 leaves no training fold: fold F is test and fold F+1 val
        raise FeatxError(f"bad --split {spec!r}: K must be 3..{MAX_FOLDS} (fold F is test, "
                         f"F+1 val, the rest train) and F in 0..K-1")
    return k, fold


def check_spec(spec: str) -> str:
    """Validate a --split value (ratios, kfold:K[:F] or official); returns it."""
    if spec == "official":
        return spec
    if is_kfold(spec):
        parse_kfold(spec)
    else:
        parse_split(spec)
    return spec


def kfold_assign(labels: Sequence[int], groups: Sequence[int], k: int, seed: int) -> np.ndarray:
    """Fold (0..k-1) per item: stratified per class, seeded, independent of file order (items in
    canonical order), identical files (shared group id) in one fold. Groups are dealt, largest
    first, to the fold of their class with the fewest items so far."""
    first, inverse, sizes, per_class = _groups_by_class(labels, groups)
    group_fold = np.zeros(len(first), dtype=np.int8)
    for c, members in per_class:
        rng = np.random.default_rng((int(seed), int(c), 7919))
        members = members[rng.permutation(len(members))]
        members = members[np.argsort(-sizes[members], kind="stable")]
        load = np.zeros(k, dtype=np.int64)
        start = int(rng.integers(k))  # which fold gets a class's remainder varies by class
        for g in members:
            f = (int(np.argmin(np.roll(load, -start))) + start) % k
            group_fold[g] = f
            load[f] += sizes[g]
    return group_fold[inverse]


def fold_view(fold: np.ndarray, k: int, test_fold: int) -> np.ndarray:
    """Split indices of one k-fold round: fold `test_fold` test, the next fold val, the rest
    train (hyperparameters are chosen on val as under a ratio split)."""
    fold = np.asarray(fold)
    split = np.full(len(fold), TRAIN, dtype=np.uint8)
    split[fold == (test_fold + 1) % k] = VAL
    split[fold == test_fold] = TEST
    return split
