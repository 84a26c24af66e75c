"""`fi`: FI (You et al. 2016) as distributed, one folder per Mikels emotion."""

from __future__ import annotations

from pathlib import Path

from featx.datasets.base import MIKELS, Items, ReadOptions, Reader, fail, mikels_name


def read(path: Path, options: ReadOptions) -> Items:
    from featx.dataset import walk_folder

    scan = walk_folder(path)
    items = scan.items
    labels = []
    for rel, c in items:
        name = mikels_name(c)
        if name is None:
            raise fail(path / rel.split("/")[0], None,
                       f"folder {rel.split('/')[0]!r} is not one of FI's eight emotions "
                       f"({', '.join(MIKELS)})")
        labels.append(name)
    return Items(root=path, paths=[p for p, _ in items], labels=labels, classes=list(MIKELS),
                 scan=scan)


def detect(path: Path) -> float:
    if not path.is_dir():
        return 0.0
    subs = {p.name.lower() for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    # all eight Mikels folders: FI's layout (read alike as a class-folder tree)
    return 0.6 if {mikels_name(s) for s in subs} == set(MIKELS) else 0.0


READER = Reader("fi", read, detect, "FI: one folder per Mikels emotion")
