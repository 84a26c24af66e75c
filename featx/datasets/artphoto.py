"""`artphoto`: ArtPhoto (Machajdik & Hanbury 2010), one flat folder whose file names start with
the class (`anger_0249.jpg`, `sad_1093.jpg`)."""

from __future__ import annotations

from pathlib import Path

from featx.datasets.base import MIKELS, Items, ReadOptions, Reader, fail, list_images, mikels_name


def read(path: Path, options: ReadOptions) -> Items:
    names = list_images(path)
    labels = []
    for name in names:
        label = mikels_name(name.split("_")[0]) if "_" in name else None
        if label is None:
            raise fail(path / name, None, "the file name does not start with an emotion "
                       f"(<class>_<n>, class one of {', '.join(MIKELS)})")
        labels.append(label)
    return Items(root=path, paths=names, labels=labels, classes=list(MIKELS))


def detect(path: Path) -> float:
    if not path.is_dir():
        return 0.0
    names = list_images(path)
    if not names:
        return 0.0
    known = sum(1 for n in names if "_" in n and mikels_name(n.split("_")[0]))
    return 1.0 if known == len(names) else (0.5 if known else 0.0)


READER = Reader("artphoto", read, detect, "ArtPhoto: flat folder, <class>_<n>.jpg")
