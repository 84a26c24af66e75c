"""Synthetic feature caches in SPEC's format with a known signal (tests, benchmarks, demos).

Each level sees every class only faintly, except a few classes it encodes strongly, and the
levels see different classes: the levels carry complementary information, so a stack of
per-level models beats the best single level.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from featx.cache import CacheMeta, CacheWriter, fingerprint, list_fingerprint
from featx.splits import stratified_split

FI_CLASSES = ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear",
              "sadness"]
# FI's class shares (You et al. 2016: 23,308 images; fear 4.4 %, anger 5.4 %)
FI_SHARES = [0.192, 0.054, 0.131, 0.225, 0.064, 0.115, 0.044, 0.175]
RESNET101_DIMS = {"L0": 64, "L1": 256, "L2": 512, "L3": 1024, "L4": 2048}


def synthetic_labels(n: int, shares: Sequence[float], seed: int = 0) -> np.ndarray:
    """n labels with the given class shares (exact counts, shuffled)."""
    shares = np.asarray(shares, dtype=np.float64) / np.sum(shares)
    counts = np.floor(shares * n).astype(int)
    counts[np.argsort(-(shares * n - counts))[: n - counts.sum()]] += 1
    labels = np.repeat(np.arange(len(shares)), counts)
    return np.random.default_rng(seed).permutation(labels).astype(np.int16)


def write_synthetic_cache(path: str | os.PathLike, n: int = 800,
                          dims: Mapping[str, int] | None = None,
                          classes: Sequence[str] = FI_CLASSES,
                          shares: Sequence[float] | None = None, dtype: str = "float16",
                          split_spec: str = "60/20/20", seed: int = 0, strong: float = 1.2,
                          faint: float = 0.25, rank: int = 8, rotate: bool = True,
                          invalid: int = 0,
                          tag: str = "synthetic", feature_fingerprint: str | None = None,
                          feature_seed: int | None = None, prefix: str = "") -> str:
    """Write a complete cache of n rows; returns its path.

    Level l encodes classes c with c % n_levels == l (and the next one) with `strong` mean shift,
    the others with `faint` shift, in a random `rank`-dimensional subspace plus unit noise
    (`rotate=False`: along the first `rank` feature axes, a signal that trees split on easily).
    `invalid` rows are marked undecodable (zero features, an error text). `tag` changes the
    fingerprints, e.g. to tell two caches of the same size apart; `feature_fingerprint` forces
    that attribute (to forge mismatches in tests); `feature_seed` draws other features for the
    same images, labels and split (caches of several backbones); `prefix` starts every relative
    path (another set's images have other names).
    """
    dims = dict(dims or {"L0": 16, "L1": 24, "L2": 32, "L3": 48, "L4": 64})
    k = len(classes)
    shares = list(shares) if shares is not None else [1.0] * k
    rng = np.random.default_rng(seed if feature_seed is None else feature_seed)
    labels = synthetic_labels(n, shares, seed)
    paths = [f"{prefix}{classes[y]}/img_{i:06d}.jpg" for i, y in enumerate(labels)]
    split = stratified_split(labels, np.arange(n), split_spec, seed)
    valid = np.ones(n, dtype=bool)
    errors = [""] * n
    for i in rng.choice(n, size=invalid, replace=False) if invalid else []:
        valid[i] = False
        errors[i] = "cannot identify image file"
    levels = list(dims)
    extra = {"layers": levels, "preprocessing": "synthetic", "weights_source": "none",
             "feature_fingerprint": feature_fingerprint or fingerprint(
                 {"tag": tag, "dims": dims, "dtype": dtype, "seed": seed,
                  **({"feature_seed": feature_seed} if feature_seed is not None else {})})}
    meta = CacheMeta(backbone="synthetic", weights="none", image_size=0, pool="gap", dtype=dtype,
                     classes=list(classes), split_spec=split_spec, seed=seed,
                     fingerprint=fingerprint({"features": extra["feature_fingerprint"],
                                              "list": list_fingerprint(paths, labels, split)}),
                     extra=extra)
    writer = CacheWriter(path, meta, paths, labels, split, dims)
    with writer:
        for li, (lv, d) in enumerate(dims.items()):
            strength = np.full(k, faint)
            for c in range(k):
                if c % len(levels) == li or (c + 1) % len(levels) == li:
                    strength[c] = strong
            r = min(rank, d)
            basis = (np.linalg.qr(rng.standard_normal((d, r)))[0].T if rotate
                     else np.eye(r, d))  # [r, d], orthonormal rows
            means = rng.standard_normal((k, r)) * strength[:, None]
            for start in range(0, n, 8192):
                y = labels[start:start + 8192]
                x = rng.standard_normal((len(y), d), dtype=np.float32)
                x += (means[y] @ basis).astype(np.float32)
                x[~valid[start:start + 8192]] = 0
                writer.write_rows(start, {lv: x}, valid[start:start + 8192],
                                  errors[start:start + 8192])
        writer.commit()
    return str(path)


def write_distribution_cache(path: str | os.PathLike, n: int = 600, dims: Mapping[str, int]
                             | None = None, classes: Sequence[str] = FI_CLASSES,
                             seed: int = 0, temperature: float = 1.0, votes: int = 0,
                             split_spec: str = "60/20/20", tag: str = "ldl") -> str:
    """A complete cache with /label_dist: each image's distribution is a softmax of a linear
    function of its features (divided by `temperature`); with `votes` > 0 it is the share of
    that many votes drawn from it (as in Emotion6 / Abstract). Labels are the most-voted class.
    Returns its path."""
    dims = dict(dims or {"L3": 16, "L4": 24})
    k = len(classes)
    rng = np.random.default_rng(seed)
    feats = {lv: rng.standard_normal((n, d)).astype(np.float32) for lv, d in dims.items()}
    X = np.concatenate(list(feats.values()), axis=1).astype(np.float64)
    W = rng.standard_normal((X.shape[1], k)) / np.sqrt(X.shape[1]) * 2.0
    logits = X @ W / temperature
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    if votes:
        P = np.stack([rng.multinomial(votes, p) for p in P]).astype(np.float64) / votes
    labels = P.argmax(axis=1).astype(np.int16)
    paths = [f"img_{i:06d}.jpg" for i in range(n)]
    split = stratified_split(labels, np.arange(n), split_spec, seed)
    extra = {"layers": list(dims), "preprocessing": "synthetic", "weights_source": "none",
             "feature_fingerprint": fingerprint({"tag": tag, "dims": dims, "seed": seed}),
             "dataset_format": "csv"}
    meta = CacheMeta(backbone="synthetic", weights="none", image_size=0, pool="gap",
                     dtype="float32", classes=list(classes), split_spec=split_spec, seed=seed,
                     fingerprint=fingerprint({"features": extra["feature_fingerprint"],
                                              "list": list_fingerprint(paths, labels, split)}),
                     extra=extra)
    writer = CacheWriter(path, meta, paths, labels, split, dims)
    with writer:
        writer.write_rows(0, feats, np.ones(n, dtype=bool), [""] * n)
        writer.write_optional(label_dist=P.astype(np.float32))
        writer.commit()
    return str(path)
