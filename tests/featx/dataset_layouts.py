"""Small generated copies of the published dataset layouts (for the reader tests). Images are
placeholder bytes unless `real=True` (then tiny JPEGs): readers never decode them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MIKELS = ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness"]


def write_image(path: Path, real: bool = False, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if real:
        from PIL import Image

        rng = np.random.default_rng(seed)
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path, "JPEG")
    else:
        path.write_bytes(f"placeholder {path.name} {seed}".encode())


def emoset(root: Path, per_split: dict[str, dict[str, int]], four_items: bool = True,
           drop_annotation: str | None = None) -> Path:
    """EmoSet-118K: {split}.json lists + image/<emotion>/x.jpg + annotation/<emotion>/x.json."""
    k = 0
    for split, counts in per_split.items():
        entries = []
        for emotion, n in counts.items():
            for _ in range(n):
                stem = f"{emotion}_{k:05d}"
                img, ann = f"image/{emotion}/{stem}.jpg", f"annotation/{emotion}/{stem}.json"
                write_image(root / img, seed=k)
                if stem != drop_annotation:
                    (root / ann).parent.mkdir(parents=True, exist_ok=True)
                    (root / ann).write_text(json.dumps({
                        "image_id": stem, "emotion": emotion, "brightness": 0.1 * (k % 10),
                        "colorfulness": 0.5, "scene": f"scene{k % 3}",
                        "object": ["person", "tree"], "facial_expression": "happy"}))
                entries.append([emotion, stem, img, ann] if four_items else [emotion, img, ann])
                k += 1
        (root / f"{split}.json").write_text(json.dumps(entries))
    return root


EMOTION6_HEADER = ("[image_filename]\t[valence]\t[arousal]\t[prob. anger]\t[prob. disgust]\t"
                   "[prob. fear]\t[prob. joy]\t[prob. sadness]\t[prob. surprise]\t"
                   "[prob. neutral]")


def emotion6(root: Path, rows: list[tuple[str, list[float]]], real: bool = False) -> Path:
    """Emotion6: ground_truth.txt (tab-separated) + images/<keyword>/<n>.jpg. rows: (rel path,
    the 7 probabilities)."""
    lines = [EMOTION6_HEADER]
    for i, (rel, probs) in enumerate(rows):
        write_image(root / "images" / rel, real=real, seed=i)
        lines.append("\t".join([rel, f"{3 + i % 5:.1f}", f"{2 + i % 4:.1f}"]
                               + [f"{p:g}" for p in probs]))
    (root / "ground_truth.txt").write_text("\n".join(lines) + "\n")
    return root


def abstract(root: Path, rows: list[tuple[str, list[int]]]) -> Path:
    """Abstract: ABSTRACT_groundTruth.csv with quoted names and CR line endings, images beside."""
    head = "'imageName','Amusement','Anger','Awe','Content','Disgust','Excitement','Fear','Sad'"
    lines = [head]
    for i, (name, votes) in enumerate(rows):
        write_image(root / name, seed=i)
        lines.append(f"'{name}'," + ",".join(map(str, votes)))
    root.mkdir(parents=True, exist_ok=True)
    (root / "ABSTRACT_groundTruth.csv").write_bytes(("\r".join(lines) + "\r").encode())
    return root


def artphoto(root: Path, counts: dict[str, int]) -> Path:
    """ArtPhoto: one flat folder, <prefix>_<n>.jpg, plus the ReadMe that ships with it."""
    k = 0
    for prefix, n in counts.items():
        for _ in range(n):
            write_image(root / f"{prefix}_{k:04d}.jpg", seed=k)
            k += 1
    (root / "ReadMe.rtf").write_text("{\\rtf1 ArtPhoto}")
    return root


def twitter1(root: Path, labels: dict[str, int], agree: dict[str, int]) -> Path:
    """Twitter I: images/ + ground_truth/{five,four,three}_agree.txt; `agree[name]` = how many
    of the five workers agreed (3..5); the k-agree list holds every image with >= k."""
    for i, name in enumerate(labels):
        write_image(root / "images" / name, seed=i)
    (root / "ground_truth").mkdir(parents=True, exist_ok=True)
    for k, word in ((5, "five"), (4, "four"), (3, "three")):
        lines = [f"{n} {labels[n]}" for n in labels if agree[n] >= k]
        (root / "ground_truth" / f"{word}_agree.txt").write_text("\n".join(lines) + "\n")
    return root
