"""The row rule: a number is about rows its model never trained or selected on. A model file
records the identities (hashes of the relative paths) of its train+val rows; an evaluation
scores only rows outside them, or refuses in one line."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from featx.cache import fingerprint
from featx.errors import FeatxError
from featx.pathnames import to_stored

SEEN_MEMBER = "seen_rows"  # the model file's array of train+val row identities


def row_ids(paths: Sequence[str]) -> np.ndarray:
    """uint64 identity per relative path (the cache's stored form; 8 bytes of BLAKE2b)."""
    return np.array([int.from_bytes(hashlib.blake2b(to_stored(p).replace("\\", "/")
                                                    .encode("utf-8", "surrogatepass"),
                                                    digest_size=8).digest(), "little")
                     for p in paths], dtype=np.uint64)


def rows_fingerprint(paths: Sequence[str]) -> str:
    """Which rows a number is about, as 16 hex digits (order and repeats do not matter)."""
    return fingerprint({"rows": np.unique(row_ids(paths)).tolist()})[:16]


def seen_record(paths: Sequence[str]) -> tuple[dict, np.ndarray]:
    """(what the model header says about its train+val rows, their sorted identities)."""
    ids = np.unique(row_ids(paths))
    return {"n": int(len(ids)), "fingerprint": fingerprint({"rows": ids.tolist()}),
            "member": SEEN_MEMBER}, ids


def seen_mask(bundle: dict, paths: Sequence[str]) -> np.ndarray:
    """Which of `paths` were the model's train or val rows (refused if it does not say)."""
    ids = bundle.get(SEEN_MEMBER)
    if ids is None:
        raise FeatxError("the model file does not record the rows it was trained and selected "
                         "on (saved before classify recorded them), so no number on a cache or "
                         "labelled folder can be shown to exclude them: save the model again "
                         "with classify fit/stack --out")
    return np.isin(row_ids(paths), np.asarray(ids, dtype=np.uint64))


@dataclass
class TaskView:
    """The model's classes and the task map it was trained under (original class -> class)."""

    classes: list[str]
    task_map: dict[str, str]

    @classmethod
    def of(cls, bundle: dict) -> "TaskView":
        proto = bundle.get("protocol") or bundle.get("recipe", {}).get("protocol") or {}
        return cls(list(bundle["classes"]), dict(proto.get("task_map") or {}))

    def true_class(self, name: str | None) -> str | None:
        """A label of another cache or folder as one of the model's classes (None: none)."""
        if name is None:
            return None
        name = name.lower()
        if name in self.classes:
            return name
        return self.task_map.get(name)

    def true_classes(self, names: Sequence[str | None],
                     fallback: Sequence[str | None] | None = None) -> list[str | None]:
        """`names` mapped; where one is unknown, the `fallback` name (a cache's original
        class, before its own --task map) mapped instead."""
        out = [self.true_class(n) for n in names]
        if fallback is not None:
            out = [o if o is not None else self.true_class(f) for o, f in zip(out, fallback)]
        return out
