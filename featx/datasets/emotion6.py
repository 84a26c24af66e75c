"""`emotion6`: Emotion6 (Peng et al. 2015): `ground_truth.txt`, tab-separated, a header, then per
image its path under `images/`, valence, arousal and the probabilities of anger, disgust, fear,
joy, sadness, surprise, neutral. Label: the folder keyword (`--label keyword`, six classes) or
the most-voted emotion (`--label dominant`, seven with neutral; ties dropped and counted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featx.datasets.base import (Items, ReadOptions, Reader, argmax_unique, check_distribution,
                                 fail, read_text, to_float)

FILE = "ground_truth.txt"
EMOTIONS = ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
KEYWORDS = EMOTIONS[:6]


def _gt_file(path: Path) -> Path:
    return path if path.is_file() else path / FILE


def read(path: Path, options: ReadOptions) -> Items:
    if options.label not in ("keyword", "dominant"):
        raise fail("--label", None, f"{options.label!r}: use keyword or dominant")
    gt = _gt_file(path)
    if not gt.is_file():
        raise fail(gt, None, "not found (Emotion6 keeps its annotations in this file)")
    base = gt.parent
    root = base / "images" if (base / "images").is_dir() else base
    lines = read_text(gt).splitlines()
    paths, labels, probs, valence, arousal = [], [], [], [], []
    ties = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or (lineno == 1 and _is_header(line)):
            continue
        cols = line.rstrip("\n").split("\t")
        if len(cols) != 10:
            raise fail(gt, lineno, f"{len(cols)} tab-separated columns, expected 10 (path, "
                       f"valence, arousal, {', '.join(EMOTIONS)})")
        rel = cols[0].strip().replace("\\", "/")
        p = [to_float(gt, lineno, c.strip(), f"prob. {e}") for c, e in zip(cols[3:], EMOTIONS)]
        check_distribution(gt, lineno, p)
        if options.label == "keyword":
            kw = rel.split("/")[0].lower() if "/" in rel else ""
            if kw not in KEYWORDS:
                raise fail(gt, lineno, f"path {rel!r} is not under one of the keyword folders "
                           f"{', '.join(KEYWORDS)}")
            label = kw
        else:
            top = argmax_unique(np.array(p))
            if top is None:
                ties += 1
                continue
            label = EMOTIONS[top]
        paths.append(rel)
        labels.append(label)
        probs.append(p)
        valence.append(to_float(gt, lineno, cols[1].strip(), "valence"))
        arousal.append(to_float(gt, lineno, cols[2].strip(), "arousal"))
    P = np.array(probs, dtype=np.float64).reshape(-1, len(EMOTIONS))
    extras = {"valence": valence, "arousal": arousal}
    if options.label == "keyword":
        classes = list(KEYWORDS)
        extras["p_neutral"] = P[:, 6].tolist()  # kept: the six-class distribution drops it
        mass = P[:, :6].sum(axis=1, keepdims=True)
        dist = np.where(mass > 0, P[:, :6] / np.where(mass > 0, mass, 1), 1 / 6)
    else:
        classes, dist = list(EMOTIONS), P / P.sum(axis=1, keepdims=True)
    return Items(root=root, paths=paths, labels=labels, classes=classes,
                 dist=dist.astype(np.float32), extras=extras,
                 dropped={"tied most-voted emotion": ties} if ties else {},
                 notes=[f"labels: {options.label}"])


def _is_header(line: str) -> bool:
    first = line.split("\t")[-1].strip()
    try:
        float(first)
        return False
    except ValueError:
        return True


def detect(path: Path) -> float:
    return 1.0 if _gt_file(path).name == FILE and _gt_file(path).is_file() else 0.0


READER = Reader("emotion6", read, detect, f"Emotion6: {FILE} (tab-separated) and images/")
