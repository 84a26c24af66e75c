"""What a dataset reader returns, and the helpers the readers share."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featx.errors import FeatxError

MIKELS = ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness"]
# spellings the published files use for the Mikels classes
ALIASES = {"content": "contentment", "sad": "sadness", "amused": "amusement",
           "angry": "anger", "excited": "excitement", "disgusted": "disgust"}


@dataclass
class ReadOptions:
    """Reader options from the command line (each reader uses those it knows)."""

    label: str = "keyword"  # emotion6: keyword (folder) or dominant (most-voted emotion)
    agree: int = 5  # twitter1: the 5-, 4- or 3-agree subset
    hf_split: str | None = None  # hf: read this split only (default: every split)
    image_column: str | None = None  # hf: the image column (default: detected)
    label_column: str | None = None  # hf: the label column (default: detected)
    id_column: str | None = None  # hf: stored paths from this column (default <split>/<row>)


@dataclass
class Items:
    """A dataset as a reader found it: image paths relative to `root`, a class name per image,
    and whatever else the dataset has."""

    root: Path
    paths: list[str]
    labels: list[str]
    classes: list[str] | None = None  # fixed class list; None: the sorted labels
    split: list[str] | None = None  # the dataset's official split, per image
    dist: np.ndarray | None = None  # [N, len(classes)] label distribution, rows sum to 1
    extras: dict[str, list] = field(default_factory=dict)  # name -> one value per image
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> images left out
    notes: list[str] = field(default_factory=list)
    scan: object | None = None  # a folder layout's featx.dataset.FolderScan (unused entries, links)
    # images read from inside files (featx.datasets.members), one per path; None: files on disk
    members: list | None = None
    source: str = ""  # where the images were read from, for `featx info`


@dataclass(frozen=True)
class Reader:
    """One `--format`: `read(path, options) -> Items`; `detect(path)` -> 1.0 certain, 0.5
    possible, 0.0 not this format."""

    name: str
    read: Callable[[Path, ReadOptions], Items]
    detect: Callable[[Path], float]
    about: str


def fail(path: os.PathLike | str, line: int | str | None, msg: str) -> FeatxError:
    """A one-line error naming the file (and line or entry)."""
    from featx.pathnames import show

    where = f"{show(path)}:{line}" if line is not None else show(path)
    return FeatxError(f"{where}: {msg}")


def mikels_name(name: str) -> str | None:
    """A published spelling of a Mikels class -> its name, or None."""
    n = name.strip().strip("'\"").lower()
    n = ALIASES.get(n, n)
    return n if n in MIKELS else None


def read_text(path: Path, strict: bool = False) -> str:
    """A text file as str whatever its line endings (old Mac CR too); UTF-8, else (the old
    published annotation files) Latin-1 -- or, `strict`, a one-line error."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise fail(path, None, f"cannot read ({e.strerror or e})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if strict:
            raise fail(path, None, f"not UTF-8 text (byte {e.start}); save it as UTF-8") \
                from None
        return raw.decode("latin-1")


def to_float(path: Path, line: int, value: str, what: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise fail(path, line, f"{what} {value!r} is not a number") from None
    if not np.isfinite(v):
        raise fail(path, line, f"{what} {value!r} is not a finite number")
    return v


def check_distribution(path: Path, line: int, probs: list[float], tol: float = 0.02) -> None:
    if not all(np.isfinite(p) for p in probs):
        raise fail(path, line, "a probability is not a finite number")
    if any(p < 0 for p in probs):
        raise fail(path, line, "a probability is negative")
    total = sum(probs)
    if abs(total - 1.0) > tol:
        raise fail(path, line, f"probabilities sum to {total:.4g}, not 1")


def argmax_unique(values: np.ndarray) -> int | None:
    """Index of the largest value, None on a tie for the largest."""
    top = np.flatnonzero(values == values.max())
    return int(top[0]) if len(top) == 1 else None


def list_images(folder: Path) -> list[str]:
    """File names of the images directly in `folder`, sorted."""
    from featx.dataset import is_image

    return sorted(e.name for e in os.scandir(folder)
                  if e.is_file() and is_image(e.name) and not e.name.startswith("."))
