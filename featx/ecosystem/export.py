"""`featx export`: a cache -> one table for pandas/polars/notebooks, one row per image.

Parquet: columns path, label (class name), label_index, split, [fold], valid, error, one
fixed-size list column of float32 per level, [label_dist], then the cache's extra columns; the
cache's settings in the schema metadata under `featx`. npz: the same as arrays (one [n, D] array
per level), readable with `np.load(..., allow_pickle=False)`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from featx.cache import Cache
from featx.ecosystem.extras import need
from featx.errors import FeatxError
from featx.levels import parse_levels
from featx.parts import atomic_write

FORMATS = ("parquet", "npz")
ROW_GROUP = 4096  # rows read from the cache and written per Parquet row group
CORE = ("path", "label", "label_index", "split", "fold", "valid", "error", "label_dist")
# the Arrow type of each core column (pyarrow's names, looked up when it is imported)
CORE_TYPES = {"path": "string", "label": "string", "label_index": "int16", "split": "string",
              "fold": "int8", "valid": "bool_", "error": "string"}


def default_out(cache: Path, to: str) -> Path:
    return cache.with_suffix(f".{to}")


def _columns(c: Cache) -> dict[str, np.ndarray | list]:
    """Every per-image column but the features, whole (small next to them)."""
    cols: dict[str, np.ndarray | list] = {
        "path": c.paths, "label": [c.classes[y] for y in c.labels],
        "label_index": c.labels.astype(np.int16),
        "split": [c.split_names[s] for s in c.split]}
    if c.fold is not None:
        cols["fold"] = c.fold.astype(np.int8)
    cols["valid"] = c.valid
    cols["error"] = c.errors
    for name in c.extra_names:
        cols[name if name not in CORE and name not in c.levels else f"extra_{name}"] = \
            c.extra(name)
    return cols


def _metadata(c: Cache, levels: Sequence[str]) -> dict:
    keep = ("backbone", "weights", "pool", "image_size", "dtype", "split_spec", "seed",
            "fingerprint", "feature_fingerprint", "dataset_format")
    return {"classes": c.classes, "levels": list(levels),
            "dims": {lv: c.dims[lv] for lv in levels},
            **{k: c.attrs[k] for k in keep if k in c.attrs}}


def export(cache: str | os.PathLike, to: str, levels: str | Sequence[str] | None = None,
           out: str | os.PathLike | None = None,
           progress: Callable[[int], None] | None = None) -> Path:
    """Write CACHE as Parquet or npz (atomically); returns the path written."""
    if to not in FORMATS:
        raise FeatxError(f"--to {to!r}: choose {' or '.join(FORMATS)}")
    cache = Path(cache)
    with Cache(cache) as c:
        chosen = c.levels if levels is None else (
            parse_levels(levels) if isinstance(levels, str) else parse_levels(",".join(levels)))
        c.check_levels(chosen)
        out = Path(out) if out else default_out(cache, to)
        if out.resolve() == cache.resolve():
            raise FeatxError(f"--out {out}: that is the cache itself")
        out.parent.mkdir(parents=True, exist_ok=True)
        write = _parquet if to == "parquet" else _npz
        atomic_write(out, lambda f: write(f, c, chosen, progress or (lambda n: None)))
    return out


def _npz(f, c: Cache, levels: Sequence[str], progress) -> None:
    arrays = {k: np.asarray(v) if not isinstance(v, list) else np.array(v, dtype=str)
              for k, v in _columns(c).items()}
    arrays["classes"] = np.array(c.classes, dtype=str)
    if c.label_dist is not None:
        arrays["label_dist"] = c.label_dist.astype(np.float32)
    for lv in levels:
        arrays[lv] = c.features([lv])
    arrays["featx"] = np.array(json.dumps(_metadata(c, levels)))
    np.savez(f, **arrays)
    progress(len(c))


def _parquet(f, c: Cache, levels: Sequence[str], progress) -> None:
    pa = need("pyarrow")
    pq = need("pyarrow.parquet")
    cols = _columns(c)
    dist = c.label_dist
    fields = [pa.field(k, getattr(pa, CORE_TYPES[k])()) for k in cols if k in CORE]
    fields += [pa.field(lv, pa.list_(pa.float32(), c.dims[lv])) for lv in levels]
    if dist is not None:
        fields.append(pa.field("label_dist", pa.list_(pa.float32(), dist.shape[1])))
    fields += [pa.field(k, pa.float64() if isinstance(v, np.ndarray) else pa.string())
               for k, v in cols.items() if k not in CORE]
    schema = pa.schema(fields, metadata={"featx": json.dumps(_metadata(c, levels))})
    with pq.ParquetWriter(f, schema) as w:
        for start in range(0, len(c), ROW_GROUP):
            rows = slice(start, min(len(c), start + ROW_GROUP))
            data = {k: v[rows] for k, v in cols.items()}
            for lv in levels:
                data[lv] = _fixed(pa, c.f["features"][lv][rows].astype(np.float32))
            if dist is not None:
                data["label_dist"] = _fixed(pa, dist[rows].astype(np.float32))
            w.write_table(pa.table({fd.name: data[fd.name] for fd in schema}, schema=schema))
            progress(rows.stop - rows.start)


def _fixed(pa, x: np.ndarray):
    """[n, D] -> a FixedSizeList<float32>[D] array without copying row by row."""
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
