"""Evaluation metrics shared by classify and finetune (SPEC's `M`), and paired tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def bootstrap_accuracy_ci(correct: np.ndarray, n_boot: int = 1000, seed: int = 0,
                          level: float = 0.95) -> list[float]:
    """Percentile bootstrap interval for the mean of a 0/1 vector."""
    correct = np.asarray(correct, dtype=np.float64)
    n = len(correct)
    if n == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    # a replicate's mean only depends on how many of its n draws are correct: Binomial(n, p_hat)
    means = rng.binomial(n, correct.mean(), size=n_boot) / n
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)]


def macro_recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes in y_true or y_pred (scikit-learn's macro recall)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.union1d(y_true, y_pred)
    if not len(labels):
        return float("nan")
    return float(np.mean([np.mean(y_pred[y_true == c] == c) if (y_true == c).any() else 0.0
                          for c in labels]))


def evaluate(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str],
             seed: int = 0) -> dict:
    """SPEC's M: accuracy, macro recall, macro F1, per-class recall, confusion, accuracy CI, n."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = len(classes)
    cm = confusion(y_true, y_pred, k)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(np.float64)
    present = support > 0
    # the macro averages run over every class in y_true or y_pred, as scikit-learn's default
    # labels do: a class absent from the split but predicted adds a zero
    counted = present | (predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=present)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k),
                   where=(precision + recall) > 0)
    n = int(len(y_true))
    correct = y_true == y_pred
    return {
        "accuracy": float(correct.mean()) if n else float("nan"),
        "macro_recall": float(recall[counted].mean()) if n else float("nan"),
        "macro_f1": float(f1[counted].mean()) if n else float("nan"),
        "per_class_recall": {c: (float(recall[i]) if present[i] else None)
                             for i, c in enumerate(classes)},
        "confusion": cm.tolist(),
        "accuracy_ci95": bootstrap_accuracy_ci(correct, seed=seed),
        "macro_recall_ci95": bootstrap_macro_recall_ci(y_true, y_pred, k, seed=seed),
        "n": n,
    }


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact (binomial) McNemar test on paired 0/1 outcomes: {b01, b10, p_value}."""
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    n01 = int((a & ~b).sum())  # a right, b wrong
    n10 = int((~a & b).sum())
    p = 1.0 if n01 + n10 == 0 else float(binomtest(n01, n01 + n10, 0.5).pvalue)
    return {"a_only": n01, "b_only": n10, "p_value": p}


def _macro_recall_replicates(y_true: np.ndarray, preds: list[np.ndarray], n_classes: int,
                             n_boot: int, seed: int) -> list[np.ndarray]:
    """Macro recall of each prediction vector on `n_boot` bootstrap resamples of the images (the
    same resamples for every vector, so differences are paired). As `macro_recall`, the mean
    runs over the classes in the resample's true labels or in that vector's predictions."""
    n = len(y_true)
    rng = np.random.default_rng(seed)
    out = [np.empty(n_boot) for _ in preds]
    oks = [(y_true == p).astype(np.float64) for p in preds]
    chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))
        cell = (np.arange(m)[:, None] * n_classes + y_true[idx]).ravel()
        support = np.bincount(cell, minlength=m * n_classes).reshape(m, n_classes)
        present = support > 0
        for p, ok, dst in zip(preds, oks, out):
            hits = np.bincount(cell, weights=ok[idx].ravel(),
                               minlength=m * n_classes).reshape(m, n_classes)
            rec = np.divide(hits, support, out=np.zeros_like(hits), where=present)
            # as macro_recall: a class predicted but absent from the replicate counts as 0
            predicted = np.bincount((np.arange(m)[:, None] * n_classes + p[idx]).ravel(),
                                    minlength=m * n_classes).reshape(m, n_classes) > 0
            dst[start:start + m] = rec.sum(axis=1) / np.maximum((present | predicted).sum(axis=1),
                                                                1)
    return out


def bootstrap_macro_recall_ci(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int,
                              n_boot: int = 1000, seed: int = 0,
                              level: float = 0.95) -> list[float]:
    """Percentile bootstrap interval of macro recall (images resampled with replacement)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    if len(y_true) == 0:
        return [float("nan"), float("nan")]
    (reps,) = _macro_recall_replicates(y_true, [np.asarray(y_pred, dtype=np.int64)], n_classes,
                                       n_boot, seed)
    lo, hi = np.quantile(reps, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)]


def paired_bootstrap_macro_recall(y_true: Sequence[int], pred_a: Sequence[int],
                                  pred_b: Sequence[int], n_classes: int, n_boot: int = 2000,
                                  seed: int = 0) -> dict:
    """Two-sided paired bootstrap test of macro recall(a) - macro recall(b) on the same images:
    {diff, ci95, p_value}; p is the share of resampled differences, centred on the observed
    one, at least as far from zero as the observed difference."""
    y_true = np.asarray(y_true, dtype=np.int64)
    a, b = np.asarray(pred_a, dtype=np.int64), np.asarray(pred_b, dtype=np.int64)
    if len(y_true) == 0:
        return {"diff": float("nan"), "ci95": [float("nan")] * 2, "p_value": None}
    ra, rb = _macro_recall_replicates(y_true, [a, b], n_classes, n_boot, seed)
    obs = macro_recall(y_true, a) - macro_recall(y_true, b)
    d = ra - rb
    p = float(np.mean(np.abs(d - obs) >= abs(obs) - 1e-12)) if obs != 0 else 1.0
    lo, hi = np.quantile(d, [0.025, 0.975])
    return {"diff": float(obs), "ci95": [float(lo), float(hi)], "p_value": p}
