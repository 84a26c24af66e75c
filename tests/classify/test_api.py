"""classify.load_model(PATH).predict_proba(X) on featx.load's features: the same numbers as
`classify predict`, the test accuracy the fit reported."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

import classify
import featx
from featx.errors import FeatxError

from .classify_helpers import read_json, run


def test_load_model_predict_proba_matches_the_cli(balanced, tmp_path):
    model, preds = tmp_path / "m.npz", tmp_path / "p.csv"
    run("fit", balanced, "--levels", "L3,L4", "--out", model, "--json", tmp_path / "r.json",
        "--quiet")
    run("predict", model, balanced, "--out", preds, "--quiet")
    m = classify.load_model(model)
    assert m.levels == ["L3", "L4"] and list(m.classes_) == featx.classes(balanced)
    X, y, paths = featx.load(balanced, levels=m.levels, split="test")
    proba = m.predict_proba(X)
    with open(preds) as f:
        by_path = {r["path"]: r for r in csv.DictReader(f)}
    want = np.array([[float(by_path[p][f"p_{c}"]) for c in m.classes_] for p in paths])
    np.testing.assert_allclose(proba, want, atol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    row = read_json(tmp_path / "r.json")["rows"][0]
    assert accuracy_score(m.classes_[y], m.predict(X)) == pytest.approx(row["test"]["accuracy"])
    with pytest.raises(FeatxError, match=r"levels L3,L4"):
        m.predict_proba(featx.load(balanced, levels="L4")[0])
