"""A checkpoint's predictions on one split (image paths, labels, class probabilities, and the
true label distributions under `--target distribution`), their metrics (classify's M, with the
six LDL measures beside it as `classify fit --target distribution` writes them), and
predictions.json, from which k-fold summaries and rows are computed again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classify.ldl import ldl_measures
from classify.metrics import evaluate
from featx.dataset import Collection
from featx.errors import FeatxError

TARGETS = ("label", "distribution")


@dataclass
class Predictions:
    paths: list[str]
    true: np.ndarray  # int64 labels (under a distribution target: the most-voted class)
    proba: np.ndarray  # float64 [n, C]
    dist: np.ndarray | None = None  # float64 [n, C] true distributions (distribution target)

    @property
    def pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1) if len(self.proba) else np.zeros(0, dtype=np.int64)

    def metrics(self, classes: list[str], seed: int = 0) -> dict:
        m = evaluate(self.true, self.pred, classes, seed=seed)
        if self.dist is not None:
            m["ldl"] = ldl_measures(self.dist, self.proba)
        return m

    def to_json(self) -> dict:
        d = {"paths": self.paths, "true": self.true.tolist(), "proba": self.proba.tolist()}
        if self.dist is not None:
            d["dist"] = self.dist.tolist()
        return d

    @classmethod
    def from_json(cls, d: dict, n_classes: int) -> "Predictions":
        shape = (-1, n_classes)
        return cls(list(d["paths"]), np.asarray(d["true"], dtype=np.int64),
                   np.asarray(d["proba"], dtype=np.float64).reshape(shape),
                   None if d.get("dist") is None else
                   np.asarray(d["dist"], dtype=np.float64).reshape(shape))


def collect(coll: Collection, indices: np.ndarray, labels: np.ndarray, proba: np.ndarray,
            failed: list, soft: bool) -> Predictions:
    """Predictions over `indices` of `coll` from `predict_proba`'s output (the images that
    could not be decoded are left out); `soft`: with the true distributions, the labels being
    their most-voted class."""
    gone = {f.path for f in failed}
    kept = np.asarray([i for i in np.asarray(indices).tolist() if coll.paths[i] not in gone],
                      dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float32).astype(np.float64)  # what JSON holds exactly
    if not len(kept):
        proba = np.zeros((0, len(coll.classes)))
    dist = coll.label_dist[kept].astype(np.float64) if soft else None
    true = dist.argmax(axis=1) if soft else np.asarray(labels, dtype=np.int64)
    return Predictions([coll.paths[i] for i in kept], true, proba, dist)


def check_target(target: str, coll: Collection, data: str) -> None:
    """A one-line refusal of a target the dataset cannot give."""
    if target not in TARGETS:
        raise FeatxError(f"--target {target!r}: use label or distribution")
    if target == "distribution" and coll.label_dist is None:
        raise FeatxError(f"{data}: no label distributions ({coll.dataset_format}): --target "
                         f"distribution needs a dataset that has them (Emotion6, Abstract, a "
                         f"CSV with p_<class> columns)")


def write_predictions(path: Path, classes: list[str], splits: dict[str, Predictions]) -> None:
    from finetune.files import atomic_path

    doc = {"classes": classes, **{s: p.to_json() for s, p in splits.items()}}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")


def read_predictions(path: Path) -> tuple[list[str], dict[str, Predictions]]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        classes = list(doc["classes"])
        return classes, {s: Predictions.from_json(doc[s], len(classes))
                         for s in ("val", "test") if s in doc}
    except FileNotFoundError:
        raise FeatxError(f"{path}: not found (a run that has not finished, or one from before "
                         f"predictions were written)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FeatxError(f"{path}: unreadable ({e})") from None
