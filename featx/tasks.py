"""Tasks: the emotion classes as they are, or mapped onto fewer classes (sentiment: SPEC's map
of the eight Mikels emotions, or a map file `class,sentiment` for other label sets)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from featx.errors import FeatxError

SENTIMENT = {"amusement": "positive", "awe": "positive", "contentment": "positive",
             "excitement": "positive", "anger": "negative", "disgust": "negative",
             "fear": "negative", "sadness": "negative",
             # sets that are already sentiment (Twitter I/II) map onto themselves
             "positive": "positive", "negative": "negative"}
TASKS = ("emotion", "sentiment")


def read_map_file(path: Path) -> dict[str, str]:
    """`class,target` lines (a header line is allowed) -> {class: target}."""
    from featx.datasets.base import read_text

    text = read_text(Path(path), strict=True)  # one-line errors: unreadable, not UTF-8
    out: dict[str, str] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise FeatxError(f"{path}:{lineno}: expected 'class,target' ({len(row)} columns)")
        a, b = row[0].strip().lower(), row[1].strip().lower()
        if lineno == 1 and (a, b) in (("class", "sentiment"), ("class", "target"),
                                      ("from", "to")):
            continue
        if not a or not b:
            raise FeatxError(f"{path}:{lineno}: empty class or target")
        out[a] = b
    if not out:
        raise FeatxError(f"{path}: the map file lists no class")
    return out


def class_mapping(classes: Sequence[str], task: str | None,
                  owner: str | None = None) -> tuple[list[str], np.ndarray] | None:
    """(new classes, index of each old class in them) for `task`, None for the identity.
    `task`: emotion (identity), sentiment, or a map file path; `owner` names whose classes
    they are in an error (e.g. the --eval cache)."""
    if task in (None, "", "emotion"):
        return None
    if task == "sentiment":
        mapping, source = SENTIMENT, "the sentiment map (docs/datasets.md)"
    elif Path(task).is_file():
        mapping, source = read_map_file(Path(task)), str(task)
    else:
        raise FeatxError(f"--task {task!r}: use emotion, sentiment or a map file "
                         f"(class,sentiment per line)")
    missing = [c for c in classes if c not in mapping]
    if missing:
        many = len(missing) > 1
        raise FeatxError(f"--task {task}: class{'es' if many else ''} {', '.join(missing)} "
                         + (f"of {owner} " if owner else "")
                         + f"{'are' if many else 'is'} not in {source}; "
                         f"give a map file (class,sentiment per line) with --task FILE")
    new = sorted({mapping[c] for c in classes})
    return new, np.array([new.index(mapping[c]) for c in classes], dtype=np.int64)


def map_labels(labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    return index[np.asarray(labels, dtype=np.int64)]


def map_dist(dist: np.ndarray, index: np.ndarray, n_new: int) -> np.ndarray:
    """Sum the probability of the old classes that map to each new one."""
    out = np.zeros((len(dist), n_new), dtype=np.float64)
    for old, new in enumerate(index):
        out[:, new] += dist[:, old]
    return out


def task_name(task: str | None) -> str:
    if task in (None, "", "emotion"):
        return "emotion"
    return task if task == "sentiment" else f"map:{Path(task).name}"
