"""`abstract`: the Abstract paintings set (Machajdik & Hanbury 2010): images beside
`ABSTRACT_groundTruth.csv`, one row per image with its vote counts over the eight Mikels
classes, names in single quotes, old Mac CR line endings. Label = the majority vote (ties
dropped and counted); the votes, normalised, are the label distribution."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from featx.datasets.base import (MIKELS, Items, ReadOptions, Reader, argmax_unique, fail,
                                 mikels_name, read_text, to_float)

FILE = "ABSTRACT_groundTruth.csv"


def _csv_file(path: Path) -> Path:
    return path if path.is_file() else path / FILE


def read(path: Path, options: ReadOptions) -> Items:
    gt = _csv_file(path)
    if not gt.is_file():
        raise fail(gt, None, "not found (the Abstract set has its votes in this file)")
    rows = list(csv.reader(read_text(gt).splitlines(), quotechar="'", skipinitialspace=True))
    if not rows:
        raise fail(gt, 1, "empty file")
    header = [h.strip().strip("'\"") for h in rows[0]]
    names = [mikels_name(h) for h in header[1:]]
    if len(header) < 3 or None in names or sorted(names) != sorted(set(names)):
        raise fail(gt, 1, f"header {','.join(header)!r}: expected the image name and one vote "
                   f"column per Mikels class ({', '.join(MIKELS)})")
    order = [MIKELS.index(n) for n in names]
    paths, labels, dists, votes = [], [], [], []
    ties = zero = 0
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(header):
            raise fail(gt, lineno, f"{len(row)} columns, the header has {len(header)}")
        v = np.zeros(len(MIKELS))
        v[order] = [to_float(gt, lineno, x.strip(), "vote count") for x in row[1:]]
        if (v < 0).any():
            raise fail(gt, lineno, "a vote count is negative")
        if (v != np.round(v)).any():
            raise fail(gt, lineno, "a vote count is not a whole number")
        if v.sum() == 0:
            zero += 1
            continue
        top = argmax_unique(v)
        if top is None:
            ties += 1
            continue
        paths.append(row[0].strip().strip("'\""))
        labels.append(MIKELS[top])
        dists.append(v / v.sum())
        votes.append(int(v.sum()))
    dropped = {k: n for k, n in (("tied majority vote", ties), ("no votes", zero)) if n}
    return Items(root=gt.parent, paths=paths, labels=labels, classes=list(MIKELS),
                 dist=np.array(dists, dtype=np.float32).reshape(-1, len(MIKELS)),
                 extras={"n_votes": votes}, dropped=dropped)


def detect(path: Path) -> float:
    return 1.0 if _csv_file(path).name == FILE and _csv_file(path).is_file() else 0.0


READER = Reader("abstract", read, detect, f"Abstract: {FILE} vote counts beside the images")
