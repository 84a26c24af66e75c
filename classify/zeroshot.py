"""CLIP zero-shot rows from a cache alone: the normalised `emb` level against the stored class
embeddings (/zeroshot), argmax of logit_scale * cosine. numpy only: no torch."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from classify.data import load_levels
from classify.rows import Result, make_result
from featx.cache import Cache, CacheError
from featx.levels import EMB

ROW_NAME = "emb zeroshot"


def has_prompts(path: str | os.PathLike) -> bool:
    with Cache(path) as c:
        return c.has_zeroshot and EMB in c.levels


def _unit_rows(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def zeroshot_logits(X: np.ndarray, class_embeddings: np.ndarray, logit_scale: float) -> np.ndarray:
    """[n, C] logits: logit_scale * cos(image embedding, class embedding)."""
    return logit_scale * _unit_rows(X.astype(np.float32)) @ _unit_rows(class_embeddings).T


def run_zeroshot(path: str | os.PathLike, seed: int = 0) -> Result:
    """The zero-shot row of a CLIP cache (val and test, SPEC's row shape)."""
    with Cache(path) as c:
        if EMB not in c.levels:
            raise CacheError(f"{path}: zero-shot needs the emb level (extract with a clip/ "
                             f"backbone and --layers including emb)")
        templates, emb, scale = c.zeroshot()
    data = load_levels(path, [EMB], splits=("val", "test"))
    if emb.shape[1] != data.dims[EMB]:
        raise CacheError(f"{path}: class embeddings are {emb.shape[1]}-d, the emb level "
                         f"{data.dims[EMB]}-d")
    preds = {s: zeroshot_logits(data[s].X, emb, scale).argmax(axis=1) for s in ("val", "test")}
    return make_result(ROW_NAME, [EMB], "zeroshot", False, data.classes,
                       (data["val"].y, preds["val"]), (data["test"].y, preds["test"]),
                       data["test"].paths, seed=seed, cache=str(path),
                       templates=len(templates), logit_scale=scale)


def zeroshot_rows(caches: Sequence[str], seed: int = 0) -> list[Result]:
    """A zero-shot row for every cache that holds prompts (for `classify ablate`)."""
    return [run_zeroshot(c, seed=seed) for c in caches if has_prompts(c)]
