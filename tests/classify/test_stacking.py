"""LevelStacker is a real scikit-learn estimator, and stacking beats each level alone."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (check_estimators_unfitted, check_get_params_invariance,
                                            check_no_attributes_set_in_init,
                                            check_parameters_default_constructible,
                                            check_set_params)

from classify.data import load_levels
from classify.stacking import LevelStacker, WeightedAverage
from .classify_helpers import read_json, run


@pytest.fixture(scope="module")
def data(balanced):
    return load_levels(balanced, ["L0", "L1", "L2", "L3", "L4"])


def test_stack_beats_best_single_level(balanced, tmp_path):
    out = tmp_path / "stack.json"
    res = run("stack", balanced, "--levels", "L0-L4", "--json", out, "--quiet")
    rows = read_json(out)["rows"]
    assert [r["levels"] for r in rows] == [["L0"], ["L1"], ["L2"], ["L3"], ["L4"],
                                           ["L0", "L1", "L2", "L3", "L4"]]
    assert all(r["model"] == "logreg" for r in rows[:5])
    stacked, best = rows[-1], max(rows[:5], key=lambda r: r["test"]["accuracy"])
    assert stacked["test"]["accuracy"] > best["test"]["accuracy"] + 0.1
    assert stacked["test"]["macro_recall"] > best["test"]["macro_recall"] + 0.1
    w = stacked["level_weights"]
    assert set(w) == {"L0", "L1", "L2", "L3", "L4"}
    assert min(w.values()) >= 0 and sum(w.values()) == pytest.approx(1.0)
    assert "stack L0-L4 logreg>weighted" in res.output


@pytest.mark.parametrize("meta", ["logreg", "lgbm"])
def test_other_meta_models_stack_too(balanced, tmp_path, meta):
    out = tmp_path / "stack.json"
    run("stack", balanced, "--levels", "L2-L4", "--meta", meta, "--folds", "3", "--json", out,
        "--quiet")
    rows = read_json(out)["rows"]
    assert len(rows) == 4 and rows[-1]["model"] == f"stack:logreg>{meta}"
    assert rows[-1]["test"]["accuracy"] > max(r["test"]["accuracy"] for r in rows[:3])


def test_clone_params_and_pipeline(data):
    tr, te = data["train"], data["test"]
    base = Pipeline([("s", StandardScaler()), ("m", LogisticRegression(C=0.1))])
    st = LevelStacker(base, levels=data.slices, meta="weighted", folds=3, seed=1)
    params = st.get_params()
    assert params["folds"] == 3 and params["levels"] == data.slices
    assert params["base__m__C"] == 0.1  # nested parameters, as sklearn expects
    twin = clone(st).set_params(base__m__C=1.0, folds=4)
    assert twin.get_params()["base__m__C"] == 1.0 and st.get_params()["base__m__C"] == 0.1
    assert not hasattr(twin, "bases_")
    pipe = Pipeline([("stack", twin)]).fit(tr.X, tr.y)
    proba = pipe.predict_proba(te.X)
    assert proba.shape == (len(te.y), 8)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert pipe.score(te.X, te.y) > 0.6
    # seeded: the same fit twice gives the same model
    again = clone(twin).fit(tr.X, tr.y)
    np.testing.assert_allclose(again.predict_proba(te.X), proba, rtol=1e-5)
    assert len(twin.bases_) == 5 and twin.oof_proba_.shape == (len(tr.y), 5, 8)


def test_oof_probabilities_are_out_of_fold(data):
    """An in-sample probability would be more confident on train than held-out ones."""
    tr = data["train"]
    st = LevelStacker(levels=data.slices[-1:], folds=5).fit(tr.X, tr.y)
    oof_true = st.oof_proba_[np.arange(len(tr.y)), 0, tr.y].mean()
    insample_true = st.level_proba(tr.X)[np.arange(len(tr.y)), 0, tr.y].mean()
    assert oof_true < insample_true


@pytest.mark.parametrize("check", [check_get_params_invariance, check_set_params,
                                   check_no_attributes_set_in_init,
                                   check_parameters_default_constructible,
                                   check_estimators_unfitted])
def test_sklearn_estimator_checks(check):
    check("LevelStacker", LevelStacker(folds=2))


def test_weighted_average_finds_the_informative_level():
    rng = np.random.default_rng(0)
    n, k = 600, 4
    y = rng.integers(0, k, n)
    good = np.full((n, k), 0.1)
    good[np.arange(n), y] = 0.7  # right 70 % of the mass
    noise = rng.dirichlet(np.ones(k), n)
    meta = WeightedAverage().fit(np.stack([noise, good], axis=1), y)
    assert meta.weights_[1] > 0.9 and meta.weights_.sum() == pytest.approx(1.0)
    p = meta.predict_proba(np.stack([noise, good], axis=1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_too_few_rows_per_class_for_folds_is_a_clear_error():
    from featx.errors import FeatxError

    X = np.random.default_rng(0).standard_normal((12, 4))
    y = np.array([0] * 10 + [1] * 2)
    with pytest.raises(FeatxError, match="rarest class has 2"):
        LevelStacker(folds=3).fit(X, y)
