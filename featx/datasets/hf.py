"""`hf`: a local Hugging Face dataset -- a `save_to_disk` folder (a DatasetDict or one Dataset) or
a folder of Parquet files (`<split>-*.parquet`, `<split>.parquet`, `<split>/*.parquet`, also
under `data/`). Images stay inside the Arrow/Parquet files: rows are read by DataLoader workers
(featx.datasets.members), nothing is unpacked. The image column (an `Image` feature, or bytes)
and the label column (a `ClassLabel`, whose names are the classes, or text) are detected, or
named with --image-column/--label-column; `p_<class>` columns are a label distribution and other
plain columns are kept as extras, as for a CSV. Stored paths: `<split>/<row>` (zero-padded so
they sort in row order) or the values of --id-column."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featx.datasets.base import Items, ReadOptions, Reader, check_distribution, fail
from featx.datasets.members import ArrowRow, ArrowTable
from featx.ecosystem.extras import need
from featx.errors import FeatxError
from featx.pathnames import show

# split names as published -> featx's
SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "val", "valid": "val",
                 "val": "val", "dev": "val", "test": "test", "testing": "test"}
LABEL_NAMES = ("label", "labels", "emotion", "class", "category")


@dataclass
class _Split:
    name: str
    tables: list[tuple[ArrowTable, int]]  # the files holding its rows, with their row counts
    features: object  # datasets.Features
    columns: dict[str, list]  # every column but the image one, as Python values
    sizes: list[int]  # image bytes per row


def _is_disk(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _parquet_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*.parquet") if not any(
        part.startswith(".") for part in p.relative_to(path).parts))


def _split_of(path: Path, root: Path) -> str:
    """HF's file naming: `train-00000-of-00002.parquet`, `test.parquet`, `train/0000.parquet`."""
    stem = path.name.removesuffix(".parquet").split("-")[0].lower()
    if stem in SPLIT_ALIASES:
        return stem
    parent = path.parent.name.lower()
    return parent if parent in SPLIT_ALIASES and path.parent != root else "data"


def _image_sizes(column) -> list[int]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_struct(column.type):
        column = pc.struct_field(column, "bytes")
    return [-1 if v is None else int(v) for v in pc.binary_length(column).to_pylist()]


def _read_disk(path: Path, wanted: str | None, options: ReadOptions) -> list[_Split]:
    datasets = need("datasets")
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types for a damaged folder
        raise fail(path, None, f"not a readable save_to_disk dataset ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''})") from None
    named = dict(ds) if isinstance(ds, datasets.DatasetDict) else {ds.split or "data": ds}
    out = []
    for name, d in _chosen(path, named, wanted).items():
        folder = path / name if isinstance(ds, datasets.DatasetDict) else path
        if d._indices is not None:  # save_to_disk writes flattened tables; be sure
            raise fail(folder, None, "the dataset has an indices mapping; save it with "
                                     "flatten_indices() first")
        table = d.data.table
        image = _image_column(folder, d.features, options)
        out.append(_Split(str(name), [(ArrowTable("arrow", str(folder), image), len(d))],
                          d.features, table.drop_columns([image]).to_pydict(),
                          _image_sizes(table.column(image))))
    return out


def _read_parquet(path: Path, wanted: str | None, options: ReadOptions) -> list[_Split]:
    datasets = need("datasets")
    pq = need("pyarrow.parquet")
    files: dict[str, list[Path]] = {}
    for f in _parquet_files(path):
        files.setdefault(_split_of(f, path), []).append(f)
    out = []
    for name, fs in _chosen(path, files, wanted).items():
        tables, columns, sizes, features = [], {}, [], None
        for f in fs:
            try:
                pf = pq.ParquetFile(f)
                feats = datasets.Features.from_arrow_schema(pf.schema_arrow)
            except Exception as e:
                raise fail(f, None, f"not a readable Parquet file ({type(e).__name__}: {e})") \
                    from None
            if features is not None and feats != features:
                raise fail(f, None, f"its columns differ from {show(fs[0])}'s (split {name})")
            features = feats
            image = _image_column(f, feats, options)
            rest = [c for c in pf.schema_arrow.names if c != image]
            for c, v in pf.read(columns=rest).to_pydict().items():
                columns.setdefault(c, []).extend(v)
            for g in range(pf.metadata.num_row_groups):  # bounded memory: a group at a time
                sizes += _image_sizes(pf.read_row_group(g, columns=[image]).column(image))
            tables.append((ArrowTable("parquet", str(f), image), pf.metadata.num_rows))
        out.append(_Split(name, tables, features, columns, sizes))
    return out


def _chosen(path: Path, named: dict, wanted: str | None) -> dict:
    if not named:
        raise fail(path, None, "no dataset splits found")
    if wanted is None:
        return named
    if wanted not in named:
        raise FeatxError(f"--hf-split {wanted!r}: {show(path)} has {', '.join(map(str, named))}")
    return {wanted: named[wanted]}


def _named(flag: str, name: str, where: Path, columns) -> str:
    if name not in columns:
        raise FeatxError(f"{flag} {name!r}: {show(where)} has columns {', '.join(columns)}")
    return name


def _image_column(where: Path, features, options: ReadOptions) -> str:
    from datasets import Image, Value

    if options.image_column:
        return _named("--image-column", options.image_column, where, features)
    found = [c for c, f in features.items() if isinstance(f, Image)] or \
            [c for c, f in features.items() if isinstance(f, Value) and f.dtype in
             ("binary", "large_binary")]
    if len(found) != 1:
        what = "no image column" if not found else f"image columns {', '.join(found)}"
        raise FeatxError(f"{show(where)}: {what} (an Image feature or bytes); pass "
                         f"--image-column")
    return found[0]


def _label_column(where: Path, features, options: ReadOptions) -> str:
    from datasets import ClassLabel

    if options.label_column:
        return _named("--label-column", options.label_column, where, features)
    found = [c for c, f in features.items() if isinstance(f, ClassLabel)] or \
            [c for c in features if c.lower() in LABEL_NAMES]
    if len(found) != 1:
        what = "no label column" if not found else f"label columns {', '.join(found)}"
        raise FeatxError(f"{show(where)}: {what} (a ClassLabel or one named "
                         f"{'/'.join(LABEL_NAMES)}); pass --label-column")
    return found[0]


def _names(feature, values: list) -> list[str | None]:
    """Label cells -> class names (None: no label)."""
    from datasets import ClassLabel

    if isinstance(feature, ClassLabel):
        return [None if v is None or v < 0 else feature.names[v].strip().lower() for v in values]
    return [None if v is None or str(v).strip() == "" else str(v).strip().lower()
            for v in values]


def read(path: Path, options: ReadOptions) -> Items:
    from featx.dataset import FolderScan

    need("datasets")
    from datasets import ClassLabel, Value

    disk = _is_disk(path)
    splits = (_read_disk if disk else _read_parquet)(path, options.hf_split, options)
    label = _label_column(path, splits[0].features, options)
    if options.id_column:
        _named("--id-column", options.id_column, path, splits[0].columns)
    label_feature = splits[0].features[label]
    dist_cols = [c for c in splits[0].columns if c.lower().startswith("p_") and len(c) > 2]
    extra_cols = [c for c, f in splits[0].features.items()
                  if isinstance(f, Value) and c in splits[0].columns
                  and c not in (label, options.id_column) and c not in dist_cols
                  and f.dtype not in ("binary", "large_binary")]
    official = options.hf_split is None and all(s.name.lower() in SPLIT_ALIASES for s in splits)
    paths, labels, split, members, dist = [], [], [], [], []
    extras: dict[str, list] = {c: [] for c in extra_cols}
    scan = FolderScan()
    for s in splits:
        if set(s.columns) != set(splits[0].columns):
            raise fail(path, None, f"split {s.name} has other columns than {splits[0].name}")
        n = len(s.sizes)
        width = len(str(max(n - 1, 0)))
        ids = s.columns[options.id_column] if options.id_column else \
            [f"{s.name}/{i:0{width}d}" for i in range(n)]
        rows = [(t, r) for t, count in s.tables for r in range(count)]
        for i, name in enumerate(_names(s.features[label], s.columns[label])):
            stored = str(ids[i])
            if name is None:
                scan.skipped.append((stored, f"no label (column {label!r} is empty)"))
                continue
            paths.append(stored)
            labels.append(name)
            split.append(SPLIT_ALIASES.get(s.name.lower(), ""))
            members.append(ArrowRow(rows[i][0], rows[i][1], s.sizes[i]))
            if dist_cols:
                p = [float(s.columns[c][i]) for c in dist_cols]
                check_distribution(path, stored, p, tol=1e-3)
                dist.append(p)
            for c in extra_cols:
                extras[c].append(s.columns[c][i])
    classes = None
    if isinstance(label_feature, ClassLabel):
        classes = [n.strip().lower() for n in label_feature.names]
    D = None
    if dist_cols:
        classes = sorted({c[2:].lower() for c in dist_cols} | set(classes or labels))
        D = np.zeros((len(paths), len(classes)), dtype=np.float32)
        D[:, [classes.index(c[2:].lower()) for c in dist_cols]] = np.array(dist, np.float32)
    image = splits[0].tables[0][0].column
    about = {"format": "save_to_disk" if disk else "parquet",
             "splits": {s.name: len(s.sizes) for s in splits},
             "image_column": image, "label_column": label,
             "label_type": type(label_feature).__name__}
    return Items(root=path, paths=paths, labels=labels, classes=classes,
                 split=split if official else None, dist=D,
                 extras={c: _typed(v) for c, v in extras.items()}, members=members,
                 scan=scan, source="hf " + json.dumps(about))


def _typed(values: list) -> list:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values]
    return ["" if v is None else str(v) for v in values]


def detect(path: Path) -> float:
    """Certain for a save_to_disk folder, or Parquet files at the top, under data/ or in split
    folders (no deeper look: detection runs on every layout, e.g. 100k-image class trees)."""
    if not path.is_dir():
        return 0.0
    if _is_disk(path):
        return 1.0
    places = [path, path / "data"] + [path / s for s in SPLIT_ALIASES]
    return 1.0 if any(next(p.glob("*.parquet"), None) for p in places if p.is_dir()) else 0.0


READER = Reader("hf", read, detect, "a local Hugging Face dataset: a save_to_disk folder or "
                                    "Parquet files, images inside")
