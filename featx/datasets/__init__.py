"""Dataset readers, one module per `--format`, and the detection that picks one from the layout.

Each reader turns a dataset as published into `Items` (paths, a class per image, and where the
dataset has them: an official split, label distributions, extra per-image columns)."""

from __future__ import annotations

from pathlib import Path

from featx.datasets import (abstract, artphoto, csvfile, emoset, emotion6, fi, folder, hf,
                            twitter1, twitter2, wds)
from featx.datasets.base import Items, ReadOptions, Reader
from featx.errors import FeatxError

READERS: dict[str, Reader] = {m.READER.name: m.READER for m in (
    folder, csvfile, fi, emoset, emotion6, artphoto, abstract, twitter1, twitter2, hf, wds)}
FORMATS = tuple(READERS)  # the same names as featx.datasets.names, which the CLI imports


def detect_format(path: Path) -> str:
    """The one format that is certain for `path` (or the only possible one); otherwise a
    one-line error that lists the candidates and asks for --format."""
    scores = {name: r.detect(path) for name, r in READERS.items()}
    certain = [n for n, s in scores.items() if s >= 1.0]
    if len(certain) == 1:
        return certain[0]
    possible = [n for n, s in scores.items() if s > 0]
    if not certain and possible == ["folder"]:
        return "folder"
    if not certain and set(possible) == {"folder", "fi"}:
        return "fi"  # FI's folders are a class-folder tree: both read it alike
    if not possible:
        raise FeatxError(f"{path}: no known dataset layout here (class folders, a CSV, or "
                         f"{', '.join(f for f in FORMATS if f not in ('folder', 'csv'))}); "
                         f"pass --format")
    cands = certain or possible
    raise FeatxError(f"{path}: the layout could be {' or '.join(cands)}; the detection is not "
                     f"certain: pass --format {cands[0]} (or another)")


def read_dataset(path: Path, fmt: str | None, options: ReadOptions | None = None
                 ) -> tuple[str, Items]:
    """(format, items) of the dataset at `path`."""
    fmt = fmt or detect_format(path)
    if fmt not in READERS:
        raise FeatxError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return fmt, READERS[fmt].read(path, options or ReadOptions())


__all__ = ["FORMATS", "READERS", "Items", "ReadOptions", "detect_format", "read_dataset"]
