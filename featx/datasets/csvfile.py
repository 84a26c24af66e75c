"""`csv`: a manifest with a header and columns `path,label` and optionally `split`
(train/val/test), `p_<class>` (a label distribution, one column per class, rows summing to 1)
and any other columns (kept as extras: numbers where every value is one, else text). Paths are
relative to the CSV's folder."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from featx.datasets.base import Items, ReadOptions, Reader, check_distribution, fail, read_text
from featx.splits import SPLIT_NAMES


def read(path: Path, options: ReadOptions) -> Items:
    try:
        return _read(path)
    except csv.Error as e:  # e.g. a stray carriage return inside an unquoted field
        raise fail(path, None, f"not a readable CSV ({e})") from None


def _read(path: Path) -> Items:
    # newline=None: CR, CRLF and LF line ends alike (old Mac spreadsheets write CR only)
    reader = csv.reader(io.StringIO(read_text(path, strict=True), newline=None))
    header = [c.strip().lower() for c in next(reader, [])]
    if "path" not in header or "label" not in header:
        raise fail(path, 1, "the CSV needs a header with columns path,label[,split]")
    col = {c: i for i, c in enumerate(header)}
    dist_cols = [c for c in header if c.startswith("p_") and len(c) > 2]
    extra_cols = [c for c in header if c and c not in ("path", "label", "split")
                  and c not in dist_cols]
    paths, labels, splits, dist = [], [], [], []
    extras: dict[str, list[str]] = {c: [] for c in extra_cols}
    for lineno, row in enumerate(reader, start=2):
        if not any(v.strip() for v in row):
            continue
        if len(row) != len(header):
            raise fail(path, lineno, f"{len(row)} columns, the header has {len(header)}")
        get = {c: row[i].strip() for c, i in col.items()}
        if not get["path"] or not get["label"]:
            raise fail(path, lineno, "empty path or label")
        paths.append(Path(get["path"]).as_posix())
        labels.append(get["label"].lower())
        if "split" in col:
            s = get["split"].lower()
            if s not in SPLIT_NAMES:
                raise fail(path, lineno, f"split {get['split']!r} is not one of "
                           f"{'/'.join(SPLIT_NAMES)}")
            splits.append(s)
        if dist_cols:
            try:
                p = [float(get[c]) for c in dist_cols]
            except ValueError:
                raise fail(path, lineno, "a p_<class> value is not a number") from None
            check_distribution(path, lineno, p, tol=1e-3)
            dist.append(p)
        for c in extra_cols:
            extras[c].append(get[c])
    classes = None
    D = None
    if dist_cols:
        classes = sorted({c[2:] for c in dist_cols} | set(labels))
        D = np.zeros((len(paths), len(classes)), dtype=np.float32)
        D[:, [classes.index(c[2:]) for c in dist_cols]] = np.array(dist, dtype=np.float32)
    return Items(root=path.parent, paths=paths, labels=labels, classes=classes,
                 split=splits if "split" in col else None, dist=D,
                 extras={c: _typed(v) for c, v in extras.items()})


def _typed(values: list[str]) -> list:
    try:
        return [float(v) for v in values]
    except ValueError:
        return values


def detect(path: Path) -> float:
    from featx.datasets.abstract import FILE

    return 1.0 if path.is_file() and path.suffix.lower() == ".csv" and path.name != FILE else 0.0


READER = Reader("csv", read, detect, "CSV manifest: path,label[,split][,p_<class>...][,extra...]")
