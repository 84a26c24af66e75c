"""`twitter1`: Twitter I (You et al. 2015): images (in `images/` or the root) and one list per
agreement level, `five_agree.txt`, `four_agree.txt`, `three_agree.txt` (at the root or in
`ground_truth/`), each line `<image> <label>`, label 1/positive or 0/negative. `--agree 5|4|3`
picks the subset (images on which at least that many of five workers agreed)."""

from __future__ import annotations

import re
from pathlib import Path

from featx.datasets.base import Items, ReadOptions, Reader, fail, read_text

LEVELS = {5: "five", 4: "four", 3: "three"}
CLASSES = ["negative", "positive"]
_LABELS = {"1": "positive", "positive": "positive", "pos": "positive",
           "0": "negative", "negative": "negative", "neg": "negative", "-1": "negative"}


def _lists(root: Path) -> dict[int, Path]:
    found = {}
    for folder in (root, root / "ground_truth", root / "groundtruth"):
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            m = re.fullmatch(r"(five|four|three|5|4|3)[_-]?agree\w*\.txt", f.name.lower())
            if m:
                word = m.group(1)
                level = int(word) if word.isdigit() else {"five": 5, "four": 4, "three": 3}[word]
                found.setdefault(level, f)
    return found


def _read_list(f: Path) -> dict[str, str]:
    out = {}
    for lineno, line in enumerate(read_text(f).splitlines(), start=1):
        if not line.strip():
            continue
        parts = re.split(r"[\s,]+", line.strip())
        if len(parts) != 2:
            raise fail(f, lineno, f"{line.strip()[:60]!r}: expected '<image> <label>'")
        label = _LABELS.get(parts[1].lower())
        if label is None:
            raise fail(f, lineno, f"label {parts[1]!r}: use 1/positive or 0/negative")
        out[parts[0]] = label
    return out


def read(path: Path, options: ReadOptions) -> Items:
    if options.agree not in LEVELS:
        raise fail("--agree", None, f"{options.agree}: use 5, 4 or 3")
    root = path if path.is_dir() else path.parent
    lists = _lists(root)
    if options.agree not in lists:
        raise fail(root, None, f"no {LEVELS[options.agree]}_agree.txt list here (found: "
                   f"{', '.join(p.name for p in lists.values()) or 'none'})")
    chosen = _read_list(lists[options.agree])
    agree = {}
    for level in sorted(lists):  # the strongest agreement that lists the image
        for name in _read_list(lists[level]) if level != options.agree else chosen:
            agree[name] = level
    images = root / "images" if (root / "images").is_dir() else root
    names = sorted(chosen)
    return Items(root=images, paths=names, labels=[chosen[n] for n in names],
                 classes=list(CLASSES), extras={"agree": [agree[n] for n in names]},
                 notes=[f"subset: {options.agree}-agree"])


def detect(path: Path) -> float:
    root = path if path.is_dir() else path.parent
    return 1.0 if _lists(root) else 0.0


READER = Reader("twitter1", read, detect, "Twitter I: five/four/three_agree.txt lists")
