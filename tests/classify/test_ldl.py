"""Label-distribution measures against hand-computed values; soft-label training beats
hard-label training on KL; the macro-recall interval and the paired bootstrap test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from classify.ldl import ldl_measures
from classify.metrics import (bootstrap_macro_recall_ci, macro_recall,
                              paired_bootstrap_macro_recall)
from classify.soft import SoftLabelLogReg

from .classify_helpers import read_json, run


def test_ldl_measures_by_hand():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    q = np.array([[0.25, 0.5, 0.25], [0.5, 0.5, 0.0]])
    m = ldl_measures(p, q)
    # row 1: |p-q| = (.25, 0, .25), p+q = (.75, 1, .25); row 2: |p-q| = (.5, .5, 0),
    # p+q = (1.5, .5, 0) -- the last term is 0/0 and counts 0
    cheb = (0.25 + 0.5) / 2
    canb = ((0.25 / 0.75 + 0 + 1) + (0.5 / 1.5 + 1 + 0)) / 2
    clark = (math.sqrt((1 / 3) ** 2 + 1) + math.sqrt((1 / 3) ** 2 + 1)) / 2
    kl = (0.5 * math.log(0.5 / 0.25) + 0 + 1.0 * math.log(1.0 / 0.5)) / 2
    cos1 = (0.125 + 0.25) / (math.sqrt(0.5) * math.sqrt(0.375))
    cos2 = 0.5 / (1.0 * math.sqrt(0.5))
    inter = ((0.25 + 0.5 + 0) + (0.5 + 0 + 0)) / 2
    assert m["chebyshev"] == pytest.approx(cheb)
    assert m["canberra"] == pytest.approx(canb)
    assert m["clark"] == pytest.approx(clark)
    assert m["kl"] == pytest.approx(kl)
    assert m["cosine"] == pytest.approx((cos1 + cos2) / 2)
    assert m["intersection"] == pytest.approx(inter)
    same = ldl_measures(p, p)
    assert same["kl"] == 0 and same["chebyshev"] == 0 and same["intersection"] == 1
    # a zero predicted probability where p > 0: q is clipped at 1e-12 inside the log
    assert ldl_measures(np.array([[1.0, 0]]), np.array([[0.0, 1.0]]))["kl"] == \
        pytest.approx(math.log(1e12))


def test_soft_labels_beat_hard_labels_on_kl():
    rng = np.random.default_rng(0)
    n, d, k = 900, 10, 4
    X = rng.standard_normal((n, d))
    logits = X @ (rng.standard_normal((d, k)) * 0.6)
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    tr, te = slice(0, 600), slice(600, None)
    soft = SoftLabelLogReg(C=1.0).fit(X[tr], P[tr])
    hard = SoftLabelLogReg(C=1.0).fit(X[tr], P[tr].argmax(axis=1))
    kl_soft = ldl_measures(P[te], soft.predict_proba(X[te]))["kl"]
    kl_hard = ldl_measures(P[te], hard.predict_proba(X[te]))["kl"]
    assert kl_soft < 0.7 * kl_hard
    # fitted state is plain arrays (a no-pickle model file can hold it)
    assert all(isinstance(getattr(soft, a), np.ndarray)
               for a in ("coef_", "intercept_", "mean_", "scale_"))
    assert soft.coef_.shape == (k, d)


def test_fit_target_distribution_reports_ldl(tmp_path, ldl_cache):
    out = tmp_path / "d.json"
    run("fit", ldl_cache, "--levels", "L3,L4", "--target", "distribution", "--json", out,
        "--quiet")
    row = read_json(out)["rows"][0]
    assert row["model"] == "softlr" and row["target"] == "distribution"
    assert set(row["test"]["ldl"]) == {"chebyshev", "clark", "canberra", "kl", "cosine",
                                       "intersection"}
    assert row["test"]["accuracy"] > 0.5  # top-1 of the most-voted class, 8 classes
    hard = tmp_path / "h.json"
    run("fit", ldl_cache, "--levels", "L3,L4", "--json", hard, "--quiet")
    assert row["test"]["accuracy"] >= read_json(hard)["rows"][0]["test"]["accuracy"] - 0.05
    k = tmp_path / "k.json"
    run("fit", ldl_cache, "--levels", "L4", "--target", "distribution", "--split", "kfold:3",
        "--json", k, "--quiet")
    rows = read_json(k)["rows"]
    per_fold = [(r["test"]["n"], r["test"]["ldl"]["kl"]) for r in rows[:3]]
    assert rows[-1]["test"]["ldl"]["kl"] == pytest.approx(
        sum(n * v for n, v in per_fold) / sum(n for n, _ in per_fold))
    bad = run("fit", ldl_cache.parent / "nodist.h5", "--target", "distribution", ok=False)
    assert bad.exit_code != 0 and "no label distributions" in bad.output


def test_macro_recall_interval_and_paired_test():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 1500)
    good = np.where(rng.random(1500) < 0.8, y, (y + 1) % 5)
    bad = np.where(rng.random(1500) < 0.6, y, (y + 1) % 5)
    lo, hi = bootstrap_macro_recall_ci(y, good, 5)
    assert lo < 0.8 < hi and hi - lo < 0.06
    t = paired_bootstrap_macro_recall(y, good, bad, 5)
    assert t["diff"] == pytest.approx(0.2, abs=0.04) and t["p_value"] < 0.01
    assert t["ci95"][0] > 0
    twin = np.where(rng.random(1500) < 0.8, y, (y + 1) % 5)  # equally good, other errors
    t = paired_bootstrap_macro_recall(y, good, twin, 5)
    assert t["p_value"] > 0.05 and t["ci95"][0] < 0 < t["ci95"][1]
    assert paired_bootstrap_macro_recall(y, good, good, 5)["p_value"] == 1.0
    # a class predicted but absent from the truth counts as 0, as in macro_recall
    odd = np.where(y == 4, 0, y)
    wild = np.where(rng.random(1500) < 0.1, 4, odd)
    t = paired_bootstrap_macro_recall(odd, odd, wild, 5)
    assert t["diff"] == pytest.approx(macro_recall(odd, odd) - macro_recall(odd, wild))


def test_distribution_model_file_predicts_like_the_fitted_model(tmp_path, ldl_cache):
    from classify.data import load_levels
    from classify.persist import load_model

    model = tmp_path / "soft.model"
    run("fit", ldl_cache, "--levels", "L4", "--target", "distribution", "--out", model,
        "--quiet")
    bundle = load_model(model)
    est = bundle["estimator"]
    assert type(est) is SoftLabelLogReg
    X = load_levels(ldl_cache, ["L4"])["test"].X
    # refit with the chosen C: the saved arrays give the same probabilities
    ref = SoftLabelLogReg(**est.get_params())
    d = load_levels(ldl_cache, ["L4"])
    ref.fit(d["train"].X, d["train"].dist)
    assert np.allclose(est.predict_proba(X), ref.predict_proba(X), atol=1e-8)
