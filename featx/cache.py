"""The HDF5 feature cache, format version 1 (SPEC, "The cache file"): reader, writer, fingerprint.

Pure h5py/numpy: `classify` reads caches on machines without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from featx.errors import FeatxError
from featx.levels import ALL_LEVELS
from featx.pathnames import from_stored, os_bytes, to_stored
from featx.splits import SPLIT_NAMES

FORMAT = "featx-cache"
VERSION = 1
_STR = h5py.string_dtype(encoding="utf-8")


class CacheError(FeatxError):
    """A cache that cannot be used as asked: wrong format, incomplete, missing level."""


def fingerprint(fields: Mapping[str, object]) -> str:
    """sha256 over a canonical JSON of everything that changes the numbers."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def strings(ds: h5py.Dataset) -> list[str]:
    """A text dataset as str (h5py gives bytes or str depending on how it was written)."""
    return [v.decode() if isinstance(v, bytes) else v for v in ds[:]]


def list_fingerprint(paths: Sequence[str], labels: np.ndarray, split: np.ndarray) -> str:
    """Hash of the file list, labels and split: the part of the fingerprint that is about data."""
    h = hashlib.sha256()
    for p, y, s in zip(paths, np.asarray(labels).tolist(), np.asarray(split).tolist()):
        h.update(os_bytes(p) + f"\0{y}\0{s}\n".encode())
    return h.hexdigest()


@dataclass
class CacheMeta:
    """Root attributes of a cache."""

    backbone: str
    weights: str
    image_size: int
    pool: str
    dtype: str  # "float16" | "float32"
    classes: list[str]
    split_spec: str
    seed: int
    fingerprint: str
    extra: dict | None = None  # further attrs (e.g. layers, preprocessing), stored as given

    def attrs(self) -> dict:
        a = {
            "format": FORMAT, "version": VERSION, "backbone": self.backbone,
            "weights": self.weights, "image_size": int(self.image_size), "pool": self.pool,
            "dtype": self.dtype, "classes": json.dumps(self.classes),
            "split_names": json.dumps(list(SPLIT_NAMES)), "split_spec": self.split_spec,
            "seed": int(self.seed), "fingerprint": self.fingerprint,
        }
        for k, v in (self.extra or {}).items():
            a[k] = v if isinstance(v, (int, float, str, bool)) else json.dumps(v)
        return a


class CacheWriter:
    """Writes a cache to a temporary file beside `path`; `commit()` marks it complete and moves it
    into place with os.replace, so a reader never sees a half-written file at `path`."""

    def __init__(self, path: str | os.PathLike, meta: CacheMeta, paths: Sequence[str],
                 labels: np.ndarray, split: np.ndarray, dims: Mapping[str, int]):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        n = len(paths)
        dtype = np.dtype(meta.dtype)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.f = h5py.File(self.tmp, "w")
        except OSError as e:
            raise CacheError(f"{self.path}: cannot write here ({e.strerror or e})") from None
        try:
            for k, v in meta.attrs().items():
                self.f.attrs[k] = v
            self.f.attrs["complete"] = False
            self.f.attrs["path_escapes"] = 1  # featx.pathnames: names that are not UTF-8
            g = self.f.create_group("features")
            chunk_rows = max(1, min(n, 1024))
            for level, d in dims.items():
                g.create_dataset(level, shape=(n, int(d)), dtype=dtype,
                                 chunks=(chunk_rows, int(d)) if n else None, fillvalue=0)
            self.f.create_dataset("labels", data=np.asarray(labels, dtype=np.int16))
            self.f.create_dataset("split", data=np.asarray(split, dtype=np.uint8))
            self.f.create_dataset("paths", data=np.array([to_stored(p) for p in paths],
                                                         dtype=object), dtype=_STR)
            self.f.create_dataset("valid", shape=(n,), dtype=bool, fillvalue=False)
            self.f.create_dataset("errors", shape=(n,), dtype=_STR, fillvalue="")
        except BaseException:
            self.abort()
            raise

    def write_rows(self, start: int, features: Mapping[str, np.ndarray], valid: np.ndarray,
                   errors: Sequence[str]) -> None:
        stop = start + len(valid)
        for level, x in features.items():
            self.f["features"][level][start:stop] = x
        self.f["valid"][start:stop] = np.asarray(valid, dtype=bool)
        if any(errors):
            self.f["errors"][start:stop] = np.array([to_stored(e) for e in errors], dtype=object)

    def write_zeroshot(self, templates: Sequence[str], class_embeddings: np.ndarray,
                       logit_scale: float) -> None:
        """CLIP's zero-shot prompts: /zeroshot/templates, /zeroshot/class_embeddings and the
        attribute logit_scale (on /zeroshot and the root)."""
        g = self.f.create_group("zeroshot")
        g.create_dataset("templates", data=np.array(list(templates), dtype=object), dtype=_STR)
        g.create_dataset("class_embeddings", data=np.asarray(class_embeddings, dtype=np.float32))
        g.attrs["logit_scale"] = float(logit_scale)
        self.f.attrs["logit_scale"] = float(logit_scale)

    def write_optional(self, label_dist: np.ndarray | None = None,
                       extras: Mapping[str, Sequence] | None = None,
                       fold: np.ndarray | None = None,
                       source_labels: np.ndarray | None = None) -> None:
        """SPEC's optional datasets: /label_dist, /extra/<name>, /fold, /source_labels."""
        if source_labels is not None:
            self.f.create_dataset("source_labels", data=np.asarray(source_labels,
                                                                   dtype=np.int16))
        if label_dist is not None:
            self.f.create_dataset("label_dist", data=np.asarray(label_dist, dtype=np.float32))
        if fold is not None:
            self.f.create_dataset("fold", data=np.asarray(fold, dtype=np.int8))
        if extras:
            g = self.f.create_group("extra")
            for name, values in extras.items():
                values = list(values)
                if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                       for v in values):
                    g.create_dataset(name, data=np.asarray(values, dtype=np.float64))
                else:
                    g.create_dataset(name, data=np.array([str(v) for v in values],
                                                         dtype=object), dtype=_STR)

    def set_attrs(self, **attrs: object) -> None:
        """Root attributes known only once the rows are written (e.g. the failure count)."""
        for k, v in attrs.items():
            self.f.attrs[k] = v if isinstance(v, (int, float, str, bool)) else json.dumps(v)

    def add_strings(self, name: str, values: Sequence[str]) -> None:
        """An extra [n] dataset of text (e.g. skipped/path), names made storable."""
        self.f.create_dataset(name, data=np.array([to_stored(v) for v in values], dtype=object),
                              dtype=_STR)

    def commit(self) -> Path:
        try:
            self.f.attrs["complete"] = True
            self.f.flush()
            self.f.close()
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.abort()
            raise CacheError(f"{self.path}: could not finish writing the cache "
                             f"({e.strerror or e}); any earlier file there is untouched") from None
        return self.path

    def abort(self) -> None:
        try:
            self.f.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "CacheWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


class Cache:
    """Read access to a feature cache. Validates the format on open; arrays are read lazily."""

    def __init__(self, path: str | os.PathLike, require_complete: bool = True):
        self.path = Path(path)
        if not self.path.is_file():
            raise CacheError(f"{self.path}: no such cache file")
        try:
            self.f = h5py.File(self.path, "r")
        except OSError:
            raise CacheError(f"{self.path}: not a readable HDF5 file") from None
        a = self.f.attrs
        fmt, version = a.get("format"), a.get("version")  # attrs read None once closed
        if fmt != FORMAT:
            self.close()
            raise CacheError(f"{self.path}: not a featx cache (format attribute is "
                             f"{fmt!r})")
        if int(version if version is not None else -1) != VERSION:
            self.close()
            raise CacheError(f"{self.path}: cache format version {version} is not "
                             f"supported (this featx reads version {VERSION})")
        if require_complete and not bool(a.get("complete", False)):
            self.close()
            raise CacheError(f"{self.path}: the cache is incomplete (extraction did not finish); "
                             f"run featx extract again to resume it")
        self.attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in a.items()}
        self.classes: list[str] = json.loads(a["classes"])
        self.split_names: list[str] = json.loads(a["split_names"])
        self.levels: list[str] = [lv for lv in ALL_LEVELS if lv in self.f["features"]]
        self.dims: dict[str, int] = {lv: int(self.f["features"][lv].shape[1]) for lv in self.levels}
        self.fingerprint: str = str(a["fingerprint"])

    def __len__(self) -> int:
        return int(self.f["labels"].shape[0])

    @property
    def labels(self) -> np.ndarray:
        return self.f["labels"][:].astype(np.int64)

    @property
    def split(self) -> np.ndarray:
        return self.f["split"][:]

    @property
    def valid(self) -> np.ndarray:
        return self.f["valid"][:]

    @property
    def paths(self) -> list[str]:
        return strings(self.f["paths"])

    @property
    def fold(self) -> np.ndarray | None:
        """The fold per image under kfold:K, or None."""
        return self.f["fold"][:].astype(np.int64) if "fold" in self.f else None

    @property
    def before_task(self) -> tuple[list[str], np.ndarray] | None:
        """(classes, labels) before the --task map of extraction (what its split was stratified
        on), or None where the cache was extracted without one (or before featx kept them)."""
        if "source_labels" not in self.f or "source_classes" not in self.attrs:
            return None
        return json.loads(self.attrs["source_classes"]), self.f["source_labels"][:].astype(
            np.int64)

    @property
    def label_dist(self) -> np.ndarray | None:
        return self.f["label_dist"][:].astype(np.float64) if "label_dist" in self.f else None

    @property
    def extra_names(self) -> list[str]:
        return list(self.f["extra"]) if "extra" in self.f else []

    def extra(self, name: str) -> np.ndarray | list[str]:
        ds = self.f["extra"][name]
        if ds.dtype.kind in "fiu":
            return ds[:]
        return strings(ds)

    @property
    def duplicate_groups(self) -> np.ndarray:
        """Group id per row (identical files share one), from the duplicate_groups attr."""
        groups = np.arange(len(self), dtype=np.int64)
        listed = self.attrs.get("duplicate_groups")
        if listed:
            where = {p: i for i, p in enumerate(self.paths)}
            for members in json.loads(listed):
                idx = [where[p] for p in members if p in where]
                groups[idx] = min(idx) if idx else 0
        return groups

    @property
    def fs_paths(self) -> list[str]:
        """The paths as the file system names them (for open()); `paths` are for showing."""
        if not self.attrs.get("path_escapes"):
            return self.paths
        return [from_stored(p) for p in self.paths]

    @property
    def errors(self) -> list[str]:
        return strings(self.f["errors"])

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(path, reason) of each entry the scan recorded in /skipped (none: empty)."""
        if "skipped" not in self.f:
            return []
        return list(zip(strings(self.f["skipped/path"]), strings(self.f["skipped/reason"])))

    @property
    def has_zeroshot(self) -> bool:
        return "zeroshot" in self.f and "class_embeddings" in self.f["zeroshot"]

    def zeroshot(self) -> tuple[list[str], np.ndarray, float]:
        """(templates, class embeddings [C, D] float32, logit scale) of a CLIP cache."""
        if not self.has_zeroshot:
            raise CacheError(f"{self.path}: no zero-shot prompts (the cache was not extracted "
                             f"with a clip/ backbone)")
        g = self.f["zeroshot"]
        templates = strings(g["templates"])
        emb = g["class_embeddings"][:].astype(np.float32)
        scale = float(g.attrs.get("logit_scale", self.f.attrs.get("logit_scale", 100.0)))
        if emb.shape[0] != len(self.classes):
            raise CacheError(f"{self.path}: /zeroshot/class_embeddings has {emb.shape[0]} rows "
                             f"for {len(self.classes)} classes")
        return templates, emb, scale

    def check_levels(self, levels: Sequence[str]) -> None:
        missing = [lv for lv in levels if lv not in self.levels]
        if missing:
            raise CacheError(f"{self.path}: level {', '.join(missing)} is not in this cache "
                             f"(it has {', '.join(self.levels) or 'none'})")

    def features(self, levels: Sequence[str], rows: np.ndarray | None = None,
                 dtype: np.dtype | type = np.float32) -> np.ndarray:
        """The listed levels' features side by side, [n, sum(dims)], for `rows` (default all)."""
        self.check_levels(levels)
        blocks = []
        for lv in levels:
            ds = self.f["features"][lv]
            x = ds[:] if rows is None else ds[:][rows]
            blocks.append(x.astype(dtype, copy=False))
        return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]

    def split_indices(self, name: str, valid_only: bool = True) -> np.ndarray:
        mask = self.split == self.split_names.index(name)
        if valid_only:
            mask &= self.valid
        return np.flatnonzero(mask)

    def close(self) -> None:
        try:
            self.f.close()
        except Exception:
            pass

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
