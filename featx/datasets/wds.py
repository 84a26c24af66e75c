"""`webdataset`: WebDataset tar shards -- DATA/*.tar, one .tar, or a brace pattern
`DATA/shards-{0000..0099}.tar` -- holding `<key>.jpg|png|webp|...` with `<key>.cls` (a class
index into DATA/classes.txt) or `<key>.json` (a `label` field: a class name, or an index with
classes.txt). Shards are read in order with tarfile, member headers only: images stay inside and
DataLoader workers read their bytes at their offsets. Stored paths: `<shard>/<key>`."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from featx.datasets.base import Items, ReadOptions, Reader, fail, read_text
from featx.datasets.members import TarMember
from featx.errors import FeatxError
from featx.pathnames import show

CLASSES_FILE = "classes.txt"


def is_pattern(path: Path | str) -> bool:
    return "{" in str(path) and "}" in str(path)


def shards(path: Path) -> list[Path]:
    """The shard files, in order."""
    if is_pattern(path):
        from featx.ecosystem.extras import need

        names = list(need("braceexpand").braceexpand(str(path)))
        missing = [n for n in names if not Path(n).is_file()]
        if missing:
            raise FeatxError(f"{show(missing[0])}: no such shard ({len(missing)} of "
                             f"{len(names)} in the pattern are missing)")
        return [Path(n) for n in names]
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.tar") if p.is_file() and not p.name.startswith("."))


def _key(name: str) -> tuple[str, str]:
    """WebDataset's convention: the key is the name up to the first dot of its last part."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), (ext.lower() if dot else "")


def _label(raw: bytes, ext: str, classes: list[str] | None) -> str:
    """A .cls or .json payload -> a class name; a ValueError says why not."""
    if ext == "cls":
        value: object = raw.decode("utf-8").strip()
    else:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("label") in (None, ""):
            raise ValueError("no label field")
        value = doc["label"]
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        if ext == "cls":
            raise ValueError(f"class index {value!r} is not a number")
        return value.strip().lower()
    index = int(value)
    if classes is None:
        raise ValueError(f"class index {index} but no {CLASSES_FILE} beside the shards")
    if not 0 <= index < len(classes):
        raise ValueError(f"class index {index} is not in {CLASSES_FILE} (0..{len(classes) - 1})")
    return classes[index]


def _read_shard(shard: Path, name: str, classes: list[str] | None, items: Items) -> None:
    """The shard's samples, in the order they lie, into `items` (unusable ones into its scan)."""
    from featx.dataset import is_image

    samples: dict[str, dict] = {}
    try:
        with tarfile.open(shard, "r:") as tf:
            for m in tf:
                if not m.isfile() or m.name.startswith(".") or "/." in m.name:
                    continue
                key, ext = _key(m.name)
                s = samples.setdefault(key, {})
                if is_image(f"x.{ext}") and "image" not in s:
                    s["image"] = TarMember(str(shard.resolve()), m.offset_data, m.size)
                elif ext in ("cls", "json") and "label" not in s:
                    try:
                        s["label"] = _label(tf.extractfile(m).read(), ext, classes)
                    except (ValueError, UnicodeDecodeError) as e:
                        s["bad"] = f"unusable .{ext} ({e})"
    except tarfile.CompressionError:
        raise fail(shard, None, "a compressed tar: shards must be plain .tar to be read in "
                                "place") from None
    except (tarfile.ReadError, EOFError, OSError) as e:
        if not samples:
            raise fail(shard, None, f"not a readable tar file ({e})") from None
        items.scan.skipped.append((name, f"tar unreadable after {len(samples)} samples ({e})"))
    for key, s in samples.items():
        stored = f"{name}/{key}"
        if "image" not in s:
            items.scan.skipped.append((stored, "no image member (.jpg/.png/.webp...)"))
        elif "label" not in s:
            items.scan.skipped.append((stored, s.get("bad", "no label (.cls or .json)")))
        else:
            items.paths.append(stored)
            items.labels.append(s["label"])
            items.members.append(s["image"])


def read(path: Path, options: ReadOptions) -> Items:
    from featx.dataset import FolderScan

    files = shards(path)
    if not files:
        raise fail(path, None, "no .tar shards here")
    root = files[0].parent
    listed = root / CLASSES_FILE
    classes = None
    if listed.is_file():
        classes = [c.strip().lower() for c in read_text(listed, strict=True).splitlines()
                   if c.strip()]
        if len(set(classes)) != len(classes):
            raise fail(listed, None, "a class is listed twice")
    items = Items(root=root, paths=[], labels=[], classes=classes, members=[],
                  scan=FolderScan())
    for f in files:
        name = f.relative_to(root).as_posix() if f.parent == root else f.as_posix()
        _read_shard(f, name, classes, items)
    about = {"shards": len(files), "first": files[0].name,
             "classes_file": CLASSES_FILE if classes else None}
    items.source = "webdataset " + json.dumps(about)
    return items


def detect(path: Path) -> float:
    if is_pattern(path) and path.name.endswith(".tar"):
        return 1.0
    if path.is_file():
        return 1.0 if path.suffix.lower() == ".tar" else 0.0
    return 1.0 if path.is_dir() and next(path.glob("*.tar"), None) is not None else 0.0


READER = Reader("webdataset", read, detect, "WebDataset tar shards: <key>.jpg + <key>.cls "
                                            "(classes.txt) or <key>.json")
