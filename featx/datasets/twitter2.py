"""`twitter2`: Twitter II (Katsurai & Satoh 2016): the images in two class folders, `positive/`
and `negative/` (any case, any depth below)."""

from __future__ import annotations

from pathlib import Path

from featx.datasets.base import Items, ReadOptions, Reader, fail

CLASSES = ["negative", "positive"]


def read(path: Path, options: ReadOptions) -> Items:
    from featx.dataset import walk_folder

    scan = walk_folder(path)
    items = scan.items
    for rel, c in items:
        if c not in CLASSES:
            raise fail(path / rel.split("/")[0], None,
                       "Twitter II has only positive/ and negative/ folders")
    return Items(root=path, paths=[p for p, _ in items], labels=[c for _, c in items],
                 classes=list(CLASSES),
                 scan=scan)


def detect(path: Path) -> float:
    if not path.is_dir():
        return 0.0
    subs = {p.name.lower() for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return 1.0 if subs == set(CLASSES) else 0.0


READER = Reader("twitter2", read, detect, "Twitter II: positive/ and negative/ folders")
