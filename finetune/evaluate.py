"""Predictions over a loader, SPEC's metrics (classify's M), test.json and confusion.png."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from classify.metrics import evaluate
from featx.errors import FeatxError
from featx.preprocess import normalize as imagenet_normalize
from featx.progress import Progress
from finetune.data import Failed
from finetune.files import atomic_path
from finetune.models import logits_of


@torch.no_grad()
def predict(model: nn.Module, loader, device: torch.device,
            prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
            autocast: Callable | None = None, quiet: bool = True,
            desc: str = "eval", normalize: Callable | None = None,
            tta: str = "none") -> tuple[np.ndarray, np.ndarray, list[Failed]]:
    """(true labels, predicted labels, failed images) over every batch of `loader`. `normalize`:
    uint8 batch -> model input (default ImageNet's); `tta`: "flip" averages the class
    probabilities of each image and its mirror image."""
    if tta not in TTA:
        raise FeatxError(f"unknown --tta {tta!r}: choose one of {', '.join(TTA)}")
    normalize = normalize or imagenet_normalize
    was_training = model.training
    model.eval()
    ys, ps, failed = [], [], []
    bar = Progress(len(loader.dataset), desc, "img", quiet=quiet, leave=False)
    for batch in loader:
        failed += batch.failed
        bar.update(len(batch) + len(batch.failed))
        if not len(batch):
            continue
        x = normalize(batch.images.to(device, non_blocking=True))
        x = prepare(x) if prepare else x
        with autocast() if autocast else nullcontext():
            probs = TTA[tta](model, x)
        ps.append(probs.argmax(dim=1).cpu())
        ys.append(batch.labels)
    bar.close()
    model.train(was_training)
    cat = (lambda t: torch.cat(t).numpy()) if ys else (lambda t: np.zeros(0, dtype=np.int64))
    return cat(ys), cat(ps), failed


def _plain(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return logits_of(model(x))


def _probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits_of(model(x)).float(), dim=1)


def _flip(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (_probs(model, x) + _probs(model, torch.flip(x, dims=[3]))) / 2


# --tta name -> (model, input batch) -> class scores (argmax = the prediction)
TTA: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "none": _plain,
    "flip": _flip,
}


def metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], seed: int = 0) -> dict:
    return evaluate(y_true, y_pred, classes, seed=seed)


def plot_confusion(cm: list[list[int]], classes: list[str], path: str | os.PathLike,
                   title: str) -> None:
    """Row-normalised confusion matrix with the counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * k, 0.8 + 0.7 * k))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if frac[i, j] > 0.5 else "black")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


# --checkpoint name -> (file in the run folder, key of its weights)
CHECKPOINTS = {"best": ("best.pt", "model"), "last": ("last.pt", "model"),
               "best_ema": ("best_ema.pt", "model"), "last_ema": ("last.pt", "ema")}


def evaluate_run(run_dir: str | os.PathLike, data: str, which: str = "best",
                 device: str = "auto", workers: int = 0, batch_size: int | None = None,
                 quiet: bool = False, tta: str | None = None) -> dict:
    """Re-evaluate a run folder's checkpoint on val and test: classify's row shape. `tta`:
    None = the run's own."""
    from pathlib import Path

    from classify.table import finetune_row
    from featx.dataset import load_collection
    from finetune import checkpoint, distributed, models
    from finetune.config import read_config
    from finetune.data import ImageSet, make_loader, normalizer
    from finetune.recipes import recipe_from_dict

    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    recipe = recipe_from_dict(cfg["recipe"])
    coll = load_collection(data, recipe.split if cfg["split"] == "csv" else cfg["split"],
                           cfg["seed"])
    if coll.classes != cfg["classes"]:
        raise FeatxError(f"{data}: classes {coll.classes} differ from the run's {cfg['classes']}")
    file, key = CHECKPOINTS[which]
    ckpt = checkpoint.load(run_dir / file)
    if ckpt.get(key) is None:
        raise FeatxError(f"{run_dir / file}: holds no {key} weights (was the run started with "
                         f"--ema?)")
    model, _ = models.build(recipe, len(coll.classes), "none", seed=cfg["seed"])
    model.load_state_dict(ckpt[key])
    dev = distributed.resolve_device(device)
    model.to(dev)
    tta = tta or cfg.get("tta", "none")
    inputs = models.inputs_of(recipe)
    row = {**finetune_row(cfg),
           "checkpoint": f"{run_dir / file}" + ("" if key == "model" else f"[{key}]"),
           "tta": tta}
    for split in ("val", "test"):
        idx = coll.indices(split)
        ds = ImageSet(coll, idx, inputs.size, pre=inputs.pre)
        loader = make_loader(ds, batch_size or recipe.batch_size, workers,
                             pin_memory=dev.type == "cuda")
        y, p, failed = predict(model, loader, dev, quiet=quiet, desc=split,
                               normalize=normalizer(inputs.mean, inputs.std), tta=tta)
        row[split] = metrics(y, p, coll.classes, seed=cfg["seed"]) if len(idx) else None
    return {"rows": [row]}
