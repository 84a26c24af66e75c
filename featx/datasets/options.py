"""The data options `featx extract` and `finetune run|eval|cv` share: how DATA is read
(`--format`, `--label`, `--agree`, `--conflicts`) and relabelled (`--task`), as one set of click
options and the one function that turns them into a Collection."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np

from featx.datasets.names import FORMATS
from featx.errors import FeatxError

# the commands' parameter names
KEYS = ("fmt", "conflicts", "label", "agree", "task", "hf_split", "image_column", "label_column",
        "id_column")
DEFAULTS = {"fmt": None, "conflicts": "keep", "label": "keyword", "agree": "5",
            "task": "emotion", "hf_split": None, "image_column": None, "label_column": None,
            "id_column": None}


@dataclass(frozen=True)
class DataOptions:
    """How DATA is read and which task its labels are mapped onto."""

    format: str | None = None  # None: detected from the layout
    conflicts: str = "keep"
    label: str = "keyword"
    agree: int = 5
    task: str | None = None  # emotion (None), sentiment or a map file class,target
    hf_split: str | None = None  # hf: read this split only (default: every split)
    image_column: str | None = None  # hf: the image column (default: detected)
    label_column: str | None = None  # hf: the label column (default: detected)
    id_column: str | None = None  # hf: stored paths from this column (default <split>/<row>)

    @classmethod
    def from_kwargs(cls, kw: dict, pop: bool = True) -> "DataOptions":
        """From a command's parameters (removed from `kw` with `pop`); unset ones: defaults."""
        get = kw.pop if pop else kw.get
        v = {k: get(k, None) for k in KEYS}
        v = {k: DEFAULTS[k] if v[k] is None else v[k] for k in KEYS}
        return cls(format=v["fmt"], conflicts=v["conflicts"], label=v["label"],
                   agree=int(v["agree"]), task=v["task"], hf_split=v["hf_split"],
                   image_column=v["image_column"], label_column=v["label_column"],
                   id_column=v["id_column"])

    def collection(self, data: str | os.PathLike, split: str | None, seed: int):
        """DATA read with its reader, split, relabelled for the task (the split is drawn on the
        dataset's own classes, so every task sees the same images on the same side)."""
        from featx.dataset import load_collection
        from featx.tasks import class_mapping, map_dist, map_labels

        coll = load_collection(data, split, seed, format=self.format, conflicts=self.conflicts,
                               options=self.read_options())
        mapped = class_mapping(coll.classes, self.task)
        if mapped is not None:
            classes, index = mapped
            # kept so that classify re-splits on the labels this split was stratified on
            coll.source_labels, coll.source_classes = coll.labels, list(coll.classes)
            coll.task_map = {c: classes[i] for c, i in zip(coll.classes, index)}
            coll.labels = map_labels(coll.labels, index).astype(np.int16)
            if coll.label_dist is not None:
                coll.label_dist = map_dist(coll.label_dist, index,
                                           len(classes)).astype(np.float32)
            coll.classes = classes
        return coll

    def read_options(self):
        """The readers' options."""
        from featx.datasets.base import ReadOptions

        return ReadOptions(label=self.label, agree=self.agree, hf_split=self.hf_split,
                           image_column=self.image_column, label_column=self.label_column,
                           id_column=self.id_column)

    @classmethod
    def from_record(cls, rec: dict) -> "DataOptions":
        """The options a run recorded (`record`); a map file must still hold what it held."""
        task = rec.get("task", "emotion")
        if isinstance(task, dict):
            if task_record(task["path"], must_exist=False) != task:
                raise FeatxError(f"--task: the run's map file {task['path']} is gone or has "
                                 f"changed since; pass --task MAP")
            task = task["path"]
        known = {k: rec[k] for k in ("conflicts", "label", "hf_split", "image_column",
                                     "label_column", "id_column") if k in rec}
        return cls(format=rec.get("format"), agree=int(rec.get("agree", 5)), task=task, **known)

    def record(self, dataset_format: str) -> dict:
        """What a run records: the format read, the reader options, the task (a map file by
        its content's hash, so an edited file is a different task)."""
        d = asdict(self)
        d["format"] = dataset_format
        d["task"] = task_record(self.task)
        return d


def task_record(task: str | None, must_exist: bool = True) -> str | dict | None:
    """A task's name, or a map file's {"map": name, "path", "sha256": of its content}."""
    from featx.tasks import task_name

    if task in (None, "", "emotion", "sentiment"):
        return task_name(task)
    path = Path(task)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as e:
        if not must_exist:
            return None
        raise FeatxError(f"--task {task}: cannot read ({e.strerror or e})") from None
    return {"map": path.name, "path": str(path.resolve()), "sha256": digest}


def data_options(defaults: bool = True) -> Callable[[Callable], Callable]:
    """The click options --format, --conflicts, --label, --agree, --task and --format hf's
    (parameters: KEYS); without `defaults` an option not given is None."""
    def d(key: str):
        return DEFAULTS[key] if defaults else None

    opts = [
        click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                     help="dataset layout (default: detected; an uncertain detection asks for "
                          "this)"),
        click.option("--conflicts", type=click.Choice(["keep", "drop", "majority"]),
                     default=d("conflicts"), show_default=defaults,
                     help="identical files with different labels"),
        click.option("--label", type=click.Choice(["keyword", "dominant"]), default=d("label"),
                     show_default=defaults, help="emotion6: folder keyword or most-voted emotion"),
        click.option("--agree", type=click.Choice(["5", "4", "3"]), default=d("agree"),
                     show_default=defaults, help="twitter1: the 5/4/3-agree subset"),
        click.option("--task", default=d("task"), show_default=defaults,
                     help="emotion, sentiment (the 8 emotions' positive/negative map) or a "
                          "map file class,sentiment"),
        click.option("--hf-split", default=None,
                     help="--format hf: read this split only (default: all, train/validation/"
                          "test become the split)"),
        click.option("--image-column", default=None, help="--format hf: the image column "
                     "(default: the Image feature / bytes column)"),
        click.option("--label-column", default=None, help="--format hf: the label column "
                     "(default: the ClassLabel / 'label' column)"),
        click.option("--id-column", default=None, help="--format hf: stored paths from this "
                     "column (default: <split>/<row>)"),
    ]

    def decorate(fn: Callable) -> Callable:
        for opt in reversed(opts):
            fn = opt(fn)
        return fn
    return decorate
