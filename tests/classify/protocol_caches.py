"""Tiny caches made by the real `featx extract` (random-weight resnet18, 32 px noise images),
one per split form x task, and the rows each protocol must use, computed independently of
classify from the images' original labels (featx.splits on the known class of each file)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from click.testing import CliRunner

from featx.splits import fold_view, kfold_assign, parse_kfold, stratified_split
from featx.tasks import SENTIMENT

CLASSES = ["amusement", "anger", "awe", "fear"]  # sorted: label index = position
PER_CLASS = 12
SEED = 3  # the caches' split seed; classify must use it unless --seed replaces it
MAP = {"amusement": "pleasant", "awe": "pleasant", "anger": "unpleasant", "fear": "unpleasant"}
SPLITS = {"ratio": "60/20/20", "kfold": "kfold:3", "kfold_fold": "kfold:3:1", "csv": None}
TASKS = ("emotion", "sentiment", "map")
EXTRACT = ["--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--device",
           "cpu", "--workers", "0", "--quiet", "--layers", "L3,L4"]


@dataclass
class Made:
    """One extracted cache and what the test knows about its images."""

    path: Path
    split_form: str
    task: str
    paths: list[str]  # the cache's row order
    original: np.ndarray  # original class index per row
    csv_split: np.ndarray | None  # the CSV's own split per row (split form "csv")


def write_images(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in CLASSES:
        for i in range(PER_CLASS):
            p = root / c / f"{i:02d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(p)
    return root


def write_manifest(root: Path) -> Path:
    """A CSV of the same images with its own split column (every 5th test, next val)."""
    lines = ["path,label,split"]
    for c in CLASSES:
        for i in range(PER_CLASS):
            s = "test" if i % 5 == 0 else "val" if i % 5 == 1 else "train"
            lines.append(f"{c}/{i:02d}.png,{c},{s}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def task_option(task: str, folder: Path) -> str:
    if task != "map":
        return task
    f = folder / "valence.csv"
    if not f.exists():
        f.write_text("class,target\n" + "".join(f"{a},{b}\n" for a, b in MAP.items()))
    return str(f)


def extract(folder: Path, split_form: str, task: str) -> Made:
    from featx.cli import main

    images = folder / "images"
    if not images.exists():
        write_images(images)
        write_manifest(images)
    data = images / "manifest.csv" if split_form == "csv" else images
    out = folder / f"{split_form}-{task}.h5"
    args = ["extract", str(data), *EXTRACT, "--seed", str(SEED), "--out", str(out),
            "--task", task_option(task, folder)]
    if SPLITS[split_form]:
        args += ["--split", SPLITS[split_form]]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    with h5py.File(out, "r") as f:
        paths = [p.decode() if isinstance(p, bytes) else p for p in f["paths"][:]]
    original = np.array([CLASSES.index(p.split("/")[0]) for p in paths])
    csv_split = None
    if split_form == "csv":
        csv_split = np.array([0 if int(p.split("/")[1][:2]) % 5 > 1 else
                              1 if int(p.split("/")[1][:2]) % 5 == 1 else 2 for p in paths])
    return Made(out, split_form, task, paths, original, csv_split)


def with_prompts(made: Made, dst: Path) -> Path:
    """A CLIP-like copy: an emb level (the first 16 L4 dims) and prompt embeddings of the
    cache's own classes (the mean emb of each class: a zero-shot row of known behaviour)."""
    import shutil

    shutil.copy(made.path, dst)
    with h5py.File(dst, "a") as f:
        emb = f["features"]["L4"][:, :16].astype(np.float32)
        labels = f["labels"][:].astype(int)
        k = len(json.loads(f.attrs["classes"]))
        f["features"].create_dataset("emb", data=emb)
        g = f.create_group("zeroshot")
        g.create_dataset("templates", data=np.array(["a photo of {}."], dtype=object),
                         dtype=h5py.string_dtype())
        g.create_dataset("class_embeddings", data=np.stack(
            [emb[labels == c].mean(axis=0) for c in range(k)]).astype(np.float32))
        g.attrs["logit_scale"] = 10.0
    return dst


def task_of(name: str, folder: Path) -> tuple[list[str], dict[str, str] | None]:
    """(classes, original class -> class) of a task; None for emotion."""
    if name == "emotion":
        return list(CLASSES), None
    table = SENTIMENT if name == "sentiment" else MAP
    mapping = {c: table[c] for c in CLASSES}
    return sorted(set(mapping.values())), mapping


def expected_rounds(made: Made, split: str | None, seed: int) -> list[tuple[np.ndarray, int | None]]:
    """(split per row, fold) of each round the protocol must use: the cache's own split
    (`split` None) or a re-split stratified on the ORIGINAL labels, as featx extract does."""
    spec = split if split is not None else (SPLITS[made.split_form] or "csv")
    if spec in ("csv", "official"):
        return [(made.csv_split, None)]
    groups = np.arange(len(made.paths))
    if spec.startswith("kfold:"):
        k, only = parse_kfold(spec)
        fold = kfold_assign(made.original, groups, k, seed)
        return [(fold_view(fold, k, f), f) for f in (range(k) if only is None else [only])]
    return [(stratified_split(made.original, groups, spec, seed), None)]
