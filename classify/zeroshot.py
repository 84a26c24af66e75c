"""CLIP zero-shot rows from a cache alone: the normalised `emb` level against the stored class
embeddings (/zeroshot), argmax of logit_scale * cosine. numpy only: no torch."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

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


def _prompt_map(stored: list[str], stored_labels: np.ndarray, classes: list[str],
                labels: np.ndarray, path) -> np.ndarray:
    """Index into the task's `classes` of each prompt class (the cache's own classes), read
    off the images' labels under both; -1 for a prompt class no image has."""
    out = np.full(len(stored), -1, dtype=np.int64)
    for s in range(len(stored)):
        under = np.unique(labels[stored_labels == s])
        if len(under) > 1:
            raise CacheError(f"{path}: its zero-shot prompts are for its classes "
                             f"({', '.join(stored)}); {stored[s]} splits into several classes "
                             f"of the task ({', '.join(classes)}), so zero-shot cannot "
                             f"predict them")
        if len(under):
            out[s] = under[0]
        elif stored[s] in classes:
            out[s] = classes.index(stored[s])
    return out


def _task_proba(logits: np.ndarray, to_task: np.ndarray, n: int) -> np.ndarray:
    """Softmax over the prompt classes, summed into the task's classes."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    out = np.zeros((len(p), n))
    for s, t in enumerate(to_task):
        if t >= 0:
            out[:, t] += p[:, s]
    return out


def zeroshot_results(path: str | os.PathLike, seed: int | None = None,
                     split: str | None = None, task: str | None = None) -> list[Result]:
    """The zero-shot rows of a CLIP cache (val and test, SPEC's row shape) under the protocol
    (classify.protocol.resolve): one row, or under kfold:K each fold's and the summary."""
    from classify.data import iter_rounds
    from classify.protocol import resolve
    from classify.rows import fold_rows
    from featx.splits import has_rounds

    with Cache(path) as c:
        if EMB not in c.levels:
            raise CacheError(f"{path}: zero-shot needs the emb level (extract with a clip/ "
                             f"backbone and --layers including emb)")
        templates, emb, scale = c.zeroshot()
        res = resolve(c, split, task, seed)
        to_task = _prompt_map(list(c.classes), c.labels, res.classes, res.labels, path)
    results, d = [], None
    for d in iter_rounds(path, [EMB], split, task, seed, splits=("val", "test")):
        if emb.shape[1] != d.dims[EMB]:
            raise CacheError(f"{path}: class embeddings are {emb.shape[1]}-d, the emb level "
                             f"{d.dims[EMB]}-d")
        if len(d["test"].y) == 0:
            raise CacheError(f"{path}: no valid test images under the split "
                             f"{d.protocol['split']}: nothing to evaluate (give --split, e.g. "
                             f"--split 80/5/15)")
        preds = {s: _task_proba(zeroshot_logits(d[s].X, emb, scale), to_task,
                                len(d.classes)).argmax(axis=1) for s in ("val", "test")}
        extra = {"fold": d.fold} if d.fold is not None else {}
        results.append(make_result(ROW_NAME, [EMB], "zeroshot", False, d.classes,
                                   (d["val"].y, preds["val"]), (d["test"].y, preds["test"]),
                                   d["test"].paths, seed=res.seed if seed is None else seed,
                                   cache=str(path), protocol=d.protocol,
                                   templates=len(templates), logit_scale=scale, **extra))
    if has_rounds(d.protocol["split"]):
        return fold_rows(results, d.classes, seed=res.seed if seed is None else seed)
    return results


def run_zeroshot(path: str | os.PathLike, seed: int | None = None, split: str | None = None,
                 task: str | None = None) -> Result:
    """The zero-shot row of a CLIP cache: the summary under kfold:K (see zeroshot_results)."""
    return zeroshot_results(path, seed, split, task)[-1]


def zeroshot_rows(caches: Sequence[str], seed: int | None = None, split: str | None = None,
                  task: str | None = None) -> list[Result]:
    """The zero-shot row (the summary under k-fold) of every cache that holds prompts (for
    `classify ablate`)."""
    return [run_zeroshot(c, seed=seed, split=split, task=task) for c in caches
            if has_prompts(c)]
