"""`emoset`: EmoSet-118K (Yang et al. 2023) with its official split: `train.json`, `val.json`,
`test.json`, each a list of `[emotion, image_id, image_path, annotation_path]` (paths relative
to the root; a three-item form without the id is read too), and one annotation JSON per image
whose attributes (brightness, colorfulness, scene, object, facial_expression, human_action) are
kept as extra columns."""

from __future__ import annotations

import json
import os
from pathlib import Path

from featx.datasets.base import MIKELS, Items, ReadOptions, Reader, fail, mikels_name
from featx.splits import SPLIT_NAMES

ATTRIBUTES = ("brightness", "colorfulness", "scene", "object", "facial_expression",
              "human_action")
NUMERIC = ("brightness", "colorfulness")


def _root(path: Path) -> Path:
    return path.parent if path.is_file() else path


def _entries(path: Path, split: str) -> list[tuple[str, str, str | None]]:
    f = path / f"{split}.json"
    try:
        data = json.loads(f.read_bytes())
    except OSError as e:
        raise fail(f, None, f"cannot read ({e.strerror or e}); EmoSet has train.json, val.json "
                   f"and test.json") from None
    except ValueError as e:
        raise fail(f, getattr(e, "lineno", None), f"not valid JSON ({e})") from None
    if not isinstance(data, list):
        raise fail(f, None, "expected a JSON list of [emotion, image_id, image_path, "
                   "annotation_path] entries")
    out = []
    for i, e in enumerate(data):
        if isinstance(e, dict):
            e = [e.get("emotion"), e.get("image_id"), e.get("image_path") or e.get("image"),
                 e.get("annotation_path") or e.get("annotation")]
        if not isinstance(e, list) or len(e) not in (3, 4) or not all(
                isinstance(x, str) for x in e if x is not None) or e[0] is None:
            raise fail(f, f"entry {i}", f"{str(e)[:80]}: expected [emotion, image_id, "
                       f"image_path, annotation_path]")
        label = mikels_name(e[0])
        if label is None:
            raise fail(f, f"entry {i}", f"emotion {e[0]!r} is not one of {', '.join(MIKELS)}")
        image, annotation = (e[2], e[3]) if len(e) == 4 else (e[1], e[2])
        if not image:
            raise fail(f, f"entry {i}", "no image path")
        out.append((label, image.replace("\\", "/"), annotation))
    return out


def _annotation(root: str, rel: str | None) -> dict | None:
    if not rel:
        return None
    try:
        with open(os.path.join(root, rel), "rb") as fh:
            d = json.loads(fh.read())
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None


def read(path: Path, options: ReadOptions) -> Items:
    root = _root(path)
    paths, labels, split, ann_paths = [], [], [], []
    for s in SPLIT_NAMES:
        for label, image, ann in _entries(root, s):
            paths.append(image)
            labels.append(label)
            split.append(s)
            ann_paths.append(ann)
    base = str(root)  # os.path.join on str: a third of the time of Path joins here
    anns = [_annotation(base, a) for a in ann_paths]
    extras: dict[str, list] = {}
    for name in ATTRIBUTES:
        col = []
        for a in anns:
            v = a.get(name) if a else None
            if name in NUMERIC:
                try:
                    col.append(float(v) if v is not None else float("nan"))
                except (TypeError, ValueError):
                    col.append(float("nan"))
            elif isinstance(v, list):
                col.append("|".join(map(str, v)))
            else:
                col.append("" if v is None else str(v))
        extras[name] = col
    missing = sum(1 for a, p in zip(anns, ann_paths) if a is None and p)
    notes = [f"{missing} annotation files missing or unreadable (their attributes are empty)"] \
        if missing else []
    return Items(root=root, paths=paths, labels=labels, classes=list(MIKELS), split=split,
                 extras=extras, notes=notes)


def detect(path: Path) -> float:
    root = _root(path)
    return 1.0 if all((root / f"{s}.json").is_file() for s in ("train", "test")) else 0.0


READER = Reader("emoset", read, detect, "EmoSet-118K: train/val/test.json + annotation/")
