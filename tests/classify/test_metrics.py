"""Macro averages as scikit-learn computes them (the numbers papers publish)."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score

from classify.metrics import evaluate, macro_recall

CLASSES = [f"c{i}" for i in range(5)]


def test_class_absent_from_test_but_predicted_counts_as_zero():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 3, 1, 1, 2, 0])  # class 3 predicted once, never true
    m = evaluate(y_true, y_pred, CLASSES)
    f1 = f1_score(y_true, y_pred, average="macro", zero_division=0)
    rec = recall_score(y_true, y_pred, average="macro", zero_division=0)
    assert m["macro_f1"] == pytest.approx(f1)
    assert m["macro_recall"] == pytest.approx(rec) == pytest.approx((0.5 + 1 + 0.5 + 0) / 4)
    assert macro_recall(y_true, y_pred) == pytest.approx(rec)
    assert m["per_class_recall"]["c3"] is None and m["per_class_recall"]["c4"] is None


@pytest.mark.parametrize("seed", range(20))
def test_random_splits_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    present = rng.choice(5, size=int(rng.integers(1, 6)), replace=False)
    y_true = rng.choice(present, size=n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, 5, size=n))
    m = evaluate(y_true, y_pred, CLASSES)
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro",
                                                   zero_division=0))
    rec = recall_score(y_true, y_pred, average="macro", zero_division=0)
    assert m["macro_recall"] == pytest.approx(rec)
    assert macro_recall(y_true, y_pred) == pytest.approx(rec)


def test_macro_recall_interval_counts_predicted_absent_classes_as_zero():
    # every image is class 0; half are predicted as class 1, which no image has: scikit-learn's
    # macro recall is (0.5 + 0) / 2, and so is every bootstrap replicate's
    y_true = np.zeros(200, dtype=int)
    y_pred = np.tile([0, 1], 100)
    assert recall_score(y_true, y_pred, average="macro", zero_division=0) == pytest.approx(0.25)
    lo, hi = evaluate(y_true, y_pred, CLASSES)["macro_recall_ci95"]
    assert 0.15 < lo <= 0.25 <= hi < 0.35
