"""`folder`: DATA/<class>/.../<image>, class = the first folder name, lower-cased."""

from __future__ import annotations

from pathlib import Path

from featx.datasets.base import Items, ReadOptions, Reader


def read(path: Path, options: ReadOptions) -> Items:
    from featx.dataset import walk_folder

    scan = walk_folder(path)
    items = scan.items
    return Items(root=path, paths=[p for p, _ in items], labels=[c for _, c in items],
                 scan=scan)


def detect(path: Path) -> float:
    if not path.is_dir():
        return 0.0
    return 0.5 if any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()) else 0.0


READER = Reader("folder", read, detect, "class folders DATA/<class>/.../<image>")
