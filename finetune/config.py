"""A run's settings, what is written to config.json, and the check that --resume continues the
same run."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from featx.dataset import Collection
from featx.datasets.options import DataOptions
from featx.errors import FeatxError
from featx.preprocess import PREPROCESSING
from finetune.recipes import Recipe, recipe_to_dict


@dataclass
class RunConfig:
    recipe: Recipe  # with the command line's overrides applied
    data: str
    out: Path
    weights: str = "imagenet"
    seed: int = 0
    device: str = "auto"
    workers: int | None = 0  # None: featx.loader.default_workers for the device
    quiet: bool = False
    resume: bool = False
    steps_per_epoch: int | None = None  # cap on optimiser steps per epoch (quick runs)
    checkpoint_every: int = 0  # also write last.pt every N steps (0: at epoch ends only)
    amp: str = "auto"  # auto: bf16 (or fp16 + grad scaling) on CUDA, off elsewhere
    ema: float | None = None  # decay of the weights' exponential moving average (None: off)
    tta: str = "none"  # test-time augmentation at evaluation: none | flip
    options: DataOptions = DataOptions()  # how DATA is read, and the task (featx extract's)
    target: str = "label"  # label | distribution (the dataset's label distributions, KL loss)
    track: list[str] | None = None  # tensorboard[:DIR], mlflow[:URI] (finetune.tracking)


def collection_digest(c: Collection) -> str:
    """Identifies the file list, labels and split."""
    h = hashlib.sha256()
    for p, y, s in zip(c.paths, c.labels.tolist(), c.split.tolist()):
        h.update(f"{p}\t{y}\t{s}\n".encode())
    return h.hexdigest()[:16]


def config_json(cfg: RunConfig, coll: Collection, weights_identity: str, world_size: int) -> dict:
    counts = {name: int(len(coll.indices(name))) for name in ("train", "val", "test")}
    return {
        "recipe": recipe_to_dict(cfg.recipe),
        "data": os.path.abspath(cfg.data),
        "classes": coll.classes,
        "split": coll.split_spec,
        "data_options": cfg.options.record(coll.dataset_format),
        "target": cfg.target,
        "seed": cfg.seed,
        "counts": counts,
        "collection": collection_digest(coll),
        "weights": cfg.weights,
        "weights_identity": weights_identity,
        "preprocessing": _preprocessing(cfg.recipe),
        "world_size": world_size,
        "steps_per_epoch": cfg.steps_per_epoch,
        "checkpoint_every": cfg.checkpoint_every,
        "amp": cfg.amp,
        "ema": cfg.ema,
        "tta": cfg.tta,
    }


def _preprocessing(recipe: Recipe) -> str | dict:
    """featx's preprocessing id for the paper recipes; the backbone's own for the modern ones."""
    from finetune.models import inputs_of

    pre = inputs_of(recipe).pre
    return PREPROCESSING if pre is None else {"augment": recipe.augment, **dataclasses.asdict(pre)}


# what must be equal for --resume to continue the same run
_RESUME_KEYS = ("recipe", "classes", "split", "data_options", "target", "seed", "collection",
                "weights_identity", "world_size", "steps_per_epoch", "ema")


def check_resumable(saved: dict, now: dict, out: Path) -> None:
    # compare after a JSON round trip (tuples vs lists); a map file by its content, not where
    # it lies
    now = _comparable(json.loads(json.dumps(now)))
    saved = _comparable(_from_before_options(saved, now))
    diff = [k for k in _RESUME_KEYS if saved.get(k) != now.get(k)]
    if diff:
        raise FeatxError(f"{out}: --resume with different settings ({', '.join(diff)}) than the "
                         f"run in that folder; use the same ones, or another --out")


def _from_before_options(saved: dict, now: dict) -> dict:
    """A run folder from before the data options and targets: it read DATA with featx's
    defaults (the format detected) for labels, which `now` must then be too."""
    if "data_options" in saved:
        return saved
    defaults = DataOptions().record(now["data_options"]["format"])
    return {**saved, "data_options": defaults, "target": saved.get("target", "label")}


def _comparable(cfg: dict) -> dict:
    task = (cfg.get("data_options") or {}).get("task")
    if not isinstance(task, dict):
        return cfg
    task = {k: v for k, v in task.items() if k != "path"}
    return {**cfg, "data_options": {**cfg["data_options"], "task": task}}


def read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FeatxError(f"{run_dir}: not a finetune run folder (no config.json)") from None
    except (OSError, ValueError) as e:
        raise FeatxError(f"{path}: unreadable ({e})") from None
