"""Predictions over a loader, SPEC's metrics (classify's M), test.json and confusion.png."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from classify.report import literal_text
from featx.errors import FeatxError
from featx.preprocess import normalize as imagenet_normalize
from featx.progress import Progress
from finetune.data import Failed
from finetune.files import atomic_path
from finetune.models import logits_of


@torch.no_grad()
def predict_proba(model: nn.Module, loader, device: torch.device,
                  prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  autocast: Callable | None = None, quiet: bool = True,
                  desc: str = "eval", normalize: Callable | None = None,
                  tta: str = "none") -> tuple[np.ndarray, np.ndarray, list[Failed]]:
    """(true labels, class probabilities [n, C] float32, failed images) over every batch of
    `loader`. `normalize`: uint8 batch -> model input (default ImageNet's); `tta`: "flip"
    averages the class probabilities of each image and its mirror image."""
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
            scores = TTA[tta](model, x)
        scores = scores.float()
        ps.append((torch.softmax(scores, dim=1) if tta in LOGITS else scores).cpu())
        ys.append(batch.labels)
    bar.close()
    model.train(was_training)
    if not ys:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), failed
    return torch.cat(ys).numpy(), torch.cat(ps).numpy(), failed


def _plain(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return logits_of(model(x))


def _probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits_of(model(x)).float(), dim=1)


def _flip(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (_probs(model, x) + _probs(model, torch.flip(x, dims=[3]))) / 2


# --tta name -> (model, input batch) -> class scores (argmax = the prediction): logits for
# those in LOGITS, probabilities for the others
LOGITS = {"none"}
TTA: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "none": _plain,
    "flip": _flip,
}


@literal_text
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
                 quiet: bool = False, tta: str | None = None, given: dict | None = None,
                 split: str | None = None, class_map: str | None = None,
                 report_dir: str | os.PathLike | None = None) -> dict:
    """Re-evaluate a run folder's checkpoint: on the run's own DATA, its val and test images
    (one row); on another dataset, every image whose class matches the run's (a row `RUN ->
    OTHER`, as classify's --eval). `given`: the data options given (featx extract's; None or
    unset = the run's on its own DATA, the defaults on another); `tta`: None = the run's;
    `report_dir`: also classify's report and error-analysis gallery there."""
    from pathlib import Path

    from finetune import checkpoint, distributed, models
    from finetune.config import read_config
    from finetune.recipes import recipe_from_dict

    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    recipe = recipe_from_dict(cfg["recipe"])
    coll, same = _dataset(cfg, recipe, data, {k: v for k, v in (given or {}).items()
                                              if v is not None}, split)
    if class_map and same:
        raise FeatxError(f"--class-map goes with another dataset; {data} holds the run's own "
                         f"images")
    file, key = CHECKPOINTS[which]
    ckpt = checkpoint.load(run_dir / file)
    if ckpt.get(key) is None:
        raise FeatxError(f"{run_dir / file}: holds no {key} weights (was the run started with "
                         f"--ema?)")
    if same:
        idx = {s: coll.indices(s) for s in ("val", "test")}
    else:
        to_train, unmatched, mapping = _matched(cfg["classes"], coll, data, class_map)
        idx = {"test": np.flatnonzero(to_train[coll.labels] >= 0)}
    model, _ = models.build(recipe, len(cfg["classes"]), "none", seed=cfg["seed"])
    model.load_state_dict(ckpt[key])
    dev = distributed.resolve_device(device)
    model.to(dev)
    tta = tta or cfg.get("tta", "none")
    soft = same and cfg.get("target", "label") == "distribution"
    preds = {s: _predictions(model, coll, i, recipe, dev, batch_size, workers, quiet, s, tta,
                             soft) if len(i) else None for s, i in idx.items()}
    where = f"{run_dir / file}" + ("" if key == "model" else f"[{key}]")
    from finetune.rows import cross_result, run_result

    if same:
        if preds["test"] is None:
            raise FeatxError(f"{data}: no test images under the run's split {cfg['split']}")
        res = run_result(cfg, coll.classes, preds["val"], preds["test"], checkpoint=where,
                         tta=tta)
    else:
        test = preds["test"]
        test.true = to_train[test.true]
        res = cross_result(cfg, run_dir, _own_val(run_dir, which), test, data, mapping,
                           unmatched, where)
        res.row["tta"] = tta
    from classify.rows import rows_document

    doc = rows_document([res])
    if report_dir:
        from finetune.report import write_eval_report

        write_eval_report(report_dir, doc["rows"], cfg["classes"], preds["test"], coll,
                          votes=same, quiet=quiet)
    return doc


def _dataset(cfg: dict, recipe, data: str, given: dict, split: str | None):
    """(DATA's collection, whether it is the run's own images: same files, labels and split).
    On the run's own path the run's options are the defaults; elsewhere featx's, except the
    task, which is the run's where it names one."""
    import os

    from featx.datasets.options import DataOptions
    from finetune.config import collection_digest

    run_opts = cfg.get("data_options") or {}
    own_path = os.path.abspath(data) == cfg["data"]
    if own_path:
        # a task given replaces the run's (whose map file need not be there any more)
        base = DataOptions.from_record({**run_opts, **({"task": "emotion"} if "task" in given
                                                       else {})})
        defaults = {"fmt": base.format, "conflicts": base.conflicts, "label": base.label,
                    "agree": str(base.agree), "task": base.task}
    else:
        task = run_opts.get("task", "emotion")
        defaults = {"task": task if isinstance(task, str) else "emotion"}
    opts = DataOptions.from_kwargs({**defaults, **given}, pop=False)
    run_split = recipe.split if cfg["split"] == "csv" else cfg["split"]
    coll = opts.collection(data, split or run_split, cfg["seed"])
    if collection_digest(coll) == cfg["collection"] and coll.classes == cfg["classes"]:
        return coll, True
    if own_path and (not given or split):
        raise FeatxError(f"{data}: its images, labels or split differ from the run's "
                         f"(config.json's collection digest, split {cfg['split']}); was DATA "
                         f"changed since, or is --split not the run's?")
    if split:
        raise FeatxError(f"--split {split}: another dataset is evaluated on every image; "
                         f"--split goes with the run's own DATA")
    return coll, False


def _matched(train: list[str], coll, data: str, class_map: str | None):
    """(index into the run's classes of each of DATA's classes or -1, images left out per
    unmatched class, the class map) for a cross-dataset evaluation."""
    from classify.protocol import class_map_file, match_classes

    mapping = class_map_file(class_map)
    unknown = [a for a in mapping if a not in coll.classes]
    if unknown:
        raise FeatxError(f"--class-map {class_map}: {unknown[0]!r} is not a class of {data} "
                         f"({', '.join(coll.classes)})")
    to_train = match_classes(train, coll.classes, mapping, str(data))
    counts = np.bincount(coll.labels.astype(np.int64), minlength=len(coll.classes))
    unmatched = {c: int(counts[i]) for i, c in enumerate(coll.classes)
                 if to_train[i] < 0 and counts[i]}
    return to_train, unmatched, mapping


def _predictions(model, coll, idx, recipe, dev, batch_size, workers, quiet, split, tta, soft):
    from finetune import models
    from finetune.data import ImageSet, make_loader, normalizer
    from finetune.predictions import collect

    inputs = models.inputs_of(recipe)
    ds = ImageSet(coll, idx, inputs.size, pre=inputs.pre)
    loader = make_loader(ds, batch_size or recipe.batch_size, workers,
                         pin_memory=dev.type == "cuda")
    y, proba, failed = predict_proba(model, loader, dev, quiet=quiet, desc=split,
                                     normalize=normalizer(inputs.mean, inputs.std), tta=tta)
    return collect(coll, idx, y, proba, failed, soft)


def _own_val(run_dir, which: str):
    """The run's val predictions of this checkpoint, where the run wrote them."""
    from finetune.predictions import read_predictions

    path = run_dir / {"best": "predictions.json", "best_ema": "predictions_ema.json"}.get(
        which, "-")
    return read_predictions(path)[1].get("val") if path.is_file() else None
