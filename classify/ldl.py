"""The six label-distribution-learning measures (SPEC, "Label distributions"), averaged over
images: Chebyshev, Clark, Canberra, KL (lower is better); cosine, intersection (higher is
better)."""

from __future__ import annotations

import numpy as np

EPS = 1e-12
MEASURES = ("chebyshev", "clark", "canberra", "kl", "cosine", "intersection")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # terms with 0/0 count 0
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def ldl_measures(p_true: np.ndarray, q_pred: np.ndarray) -> dict[str, float]:
    """Mean of each measure over the rows of true distributions p and predicted q ([n, C])."""
    p = np.asarray(p_true, dtype=np.float64)
    q = np.asarray(q_pred, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"shapes differ: {p.shape} vs {q.shape}")
    if len(p) == 0:
        return {m: float("nan") for m in MEASURES}
    diff = np.abs(p - q)
    total = p + q
    kl_terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / np.clip(q, EPS, None)), 0.0)
    norms = np.linalg.norm(p, axis=1) * np.linalg.norm(q, axis=1)
    per_row = {
        "chebyshev": diff.max(axis=1),
        "clark": np.sqrt((_ratio(diff, total) ** 2).sum(axis=1)),
        "canberra": _ratio(diff, total).sum(axis=1),
        "kl": kl_terms.sum(axis=1),
        "cosine": _ratio((p * q).sum(axis=1), norms),
        "intersection": np.minimum(p, q).sum(axis=1),
    }
    return {m: float(per_row[m].mean()) for m in MEASURES}
