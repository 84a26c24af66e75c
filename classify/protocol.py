"""Evaluation protocols over a cache's images, chosen after extraction (features do not depend
on the split): the cache's own split, a ratio split, k-fold rounds, the official split; the
task (emotion classes or sentiment); cross-dataset class matching."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featx.cache import Cache, CacheError, fingerprint
from featx.errors import FeatxError
from featx.splits import (check_spec, fold_view, has_rounds, is_kfold, kfold_assign,
                          parse_kfold, stratified_split)
from featx.tasks import class_mapping, map_dist, map_labels, read_map_file, task_name


@dataclass
class Round:
    """One train/val/test assignment of the cache's rows; `fold` set for a k-fold round."""

    split: np.ndarray  # uint8 per cache row: 0 train, 1 val, 2 test
    fold: int | None = None


@dataclass
class Resolved:
    """What a command evaluates on a cache: its protocol as used (`record`: split, fold, seed,
    task and the task's map with its hash), its rounds, and the labels under the task."""

    record: dict
    rounds: list[Round]
    classes: list[str]
    labels: np.ndarray
    dist: np.ndarray | None
    seed: int  # the seed of the split, also the models' unless --seed replaces it


def cache_seed(cache: Cache) -> int:
    try:
        return int(cache.attrs.get("seed", 0))
    except (TypeError, ValueError):
        return 0


def resolve(cache: Cache, split: str | None, task: str | None, seed: int | None,
            owner: str | None = None) -> Resolved:
    """The cache's stored protocol (split, fold, seed, task), each part replaced by the option
    given (None: not given); `owner` names the cache in a task error."""
    classes, labels, dist, task_rec, strat = task_labels(cache, task, owner)
    own = split is None or split == "official"  # the cache's split, made with its seed
    split_seed = cache_seed(cache) if own or seed is None else int(seed)
    spec, rnds = rounds(cache, split, split_seed, strat)
    fold = rnds[0].fold if len(rnds) == 1 else None
    record = {"split": spec, "fold": fold, "seed": split_seed, **task_rec}
    return Resolved(record, rnds, classes, labels, dist, split_seed)


def rounds(cache: Cache, spec: str | None, seed: int, strat: np.ndarray | None = None
           ) -> tuple[str, list[Round]]:
    """(the protocol's name to record, its rounds) for `--split spec` on `cache`. None: the
    cache's own split (each of its folds if it was extracted with kfold:K, the one named fold
    for kfold:K:F). A re-split stratifies on `strat` (default: the cache's labels), the labels
    featx extract stratified on."""
    own = str(cache.attrs.get("split_spec", ""))
    if spec is None:
        fold = cache.fold  # read once: a property that reads /fold from the file
        if fold is not None and has_rounds(own):
            k, _ = parse_kfold(own)
            return own, [Round(fold_view(fold, k, f), f) for f in range(k)]
        return own, [Round(cache.split, parse_kfold(own)[1] if is_kfold(own) else None)]
    check_spec(spec)
    if spec == "official":
        if own in ("official", "csv") or (own and not is_kfold(own) and "/" not in own):
            return own, [Round(cache.split)]
        raise CacheError(f"{cache.path}: --split official: the cache's split is {own!r}, not "
                         f"the dataset's own")
    labels = cache.labels if strat is None else strat
    groups = cache.duplicate_groups
    if is_kfold(spec):
        k, only = parse_kfold(spec)
        fold = kfold_assign(labels, groups, k, seed)
        folds = range(k) if only is None else [only]
        return spec, [Round(fold_view(fold, k, f), f) for f in folds]
    return spec, [Round(stratified_split(labels, groups, spec, seed))]


def task_record(name: str, task_map: dict[str, str] | None) -> dict:
    """How a row or model file names its task: the name, the map and the map's content hash
    (a map file edited under the same name is another task)."""
    return {"task": name, "task_map": task_map or None,
            "task_hash": fingerprint({"map": task_map})[:16] if task_map else None}


def task_labels(cache: Cache, task: str | None, owner: str | None = None
                ) -> tuple[list[str], np.ndarray, np.ndarray | None, dict, np.ndarray]:
    """(classes, labels, label distributions, task record, the labels a re-split stratifies
    on) of `cache` under `task` (None: the task it was extracted with)."""
    classes, labels, dist = list(cache.classes), cache.labels, cache.label_dist
    own = str(cache.attrs.get("task", "emotion") or "emotion")
    own_map = _json_attr(cache, "task_map")
    source = cache.before_task
    strat = source[1] if source is not None else labels
    if task is None or (task == "emotion" and own == "emotion"):
        return classes, labels, dist, task_record(own, own_map), strat
    if source is not None:
        src_classes, src_labels = source
        mapped = class_mapping(src_classes, task, owner)
        if mapped is None:  # the original classes themselves
            return (src_classes, src_labels, None, task_record(task_name(task), None), strat)
        new, index = mapped
        new_labels = map_labels(src_labels, index)
        same = new == classes and np.array_equal(new_labels, labels)
        return (new, new_labels, dist if same else None,
                task_record(task_name(task), {c: new[i] for c, i in zip(src_classes, index)}),
                strat)
    mapped = None if task == "emotion" else _try_mapping(classes, task, own == "emotion", owner)
    if mapped is None:
        raise CacheError(f"--task {task}: {cache.path} was extracted with --task {own} and "
                         f"does not keep its original labels (extracted before featx kept "
                         f"them): leave --task out, or extract it again")
    new, index = mapped
    full = {c: new[i] for c, i in zip(classes, index)}
    if own_map:  # compose: the original classes -> the cache's -> the task's
        full = {c: full[m] for c, m in own_map.items()}
    return (new, map_labels(labels, index),
            map_dist(dist, index, len(new)) if dist is not None else None,
            task_record(task_name(task), full), strat)


def _try_mapping(classes: list[str], task: str, strict: bool, owner: str | None):
    try:
        return class_mapping(classes, task, owner)
    except FeatxError:
        if strict:
            raise
        return None


def _json_attr(cache: Cache, name: str):
    raw = cache.attrs.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


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
