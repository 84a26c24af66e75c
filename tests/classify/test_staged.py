"""Staged selection of boosting rounds: one fit with the most rounds scores every shorter
candidate, and the chosen model predicts exactly like a fit with the chosen rounds."""

import joblib
import numpy as np
import pytest
from sklearn.model_selection import ParameterGrid, StratifiedKFold

from classify.data import load_levels
from classify.models import make_model, model_kind
from classify.select import _score, select_and_fit, selection_metric


@pytest.fixture(scope="module")
def l4(imbalanced):
    return load_levels(imbalanced, ["L3", "L4"])


@pytest.mark.parametrize("weighted", [False, True])
def test_first_k_rounds_of_a_longer_fit_equal_a_k_round_fit(l4, weighted):
    # the default lgbm bags rows (subsample 0.8 every round) and samples columns per tree:
    # round i's random draws do not depend on how many rounds follow
    params = make_model("lgbm").get_params()
    assert params["subsample"] < 1 and params["subsample_freq"] == 1
    assert params["colsample_bytree"] < 1
    X, y, Xv = l4["train"].X, l4["train"].y, l4["val"].X
    long = make_model("lgbm", weighted=weighted, n_estimators=40).fit(X, y)
    short = make_model("lgbm", weighted=weighted, n_estimators=15).fit(X, y)
    assert np.array_equal(long.predict_proba(Xv, num_iteration=15), short.predict_proba(Xv))
    assert not np.array_equal(long.predict_proba(Xv), short.predict_proba(Xv))


def test_truncated_fit_is_a_plain_k_round_estimator(l4, tmp_path):
    from lightgbm import LGBMClassifier

    X, y, Xv = l4["train"].X, l4["train"].y, l4["val"].X
    short = make_model("lgbm", n_estimators=15).fit(X, y)
    cut = model_kind("lgbm").staged.truncate(make_model("lgbm", n_estimators=40).fit(X, y), 15)
    assert type(cut) is LGBMClassifier
    assert cut.get_params()["n_estimators"] == 15 and cut.n_iter_ == 15
    joblib.dump(cut, tmp_path / "cut.joblib")
    loaded = joblib.load(tmp_path / "cut.joblib")
    for est in (cut, loaded):
        assert np.array_equal(est.predict_proba(Xv), short.predict_proba(Xv))
        assert np.array_equal(est.predict(Xv), short.predict(Xv))


def _separate(X, y, Xv, yv, weighted, cv):
    """Every grid point fitted on its own, as select_and_fit did before staging."""
    metric = selection_metric(weighted)
    grid = list(ParameterGrid(model_kind("lgbm").grid))
    if cv:
        folds = list(StratifiedKFold(cv, shuffle=True, random_state=0).split(X, y))
    scores = []
    for p in grid:
        if cv:
            s = [_score(y[te], make_model("lgbm", weighted, **p).fit(X[tr], y[tr]).predict(X[te]),
                        metric) for tr, te in folds]
        else:
            s = [_score(yv, make_model("lgbm", weighted, **p).fit(X, y).predict(Xv), metric)]
        scores.append((p, float(np.mean(s))))
    return scores


@pytest.mark.parametrize("weighted,cv", [(False, None), (True, None), (True, 3)])
def test_staged_selection_equals_separate_fits(l4, weighted, cv):
    tr, va = l4["train"], l4["val"]
    grid = model_kind("lgbm").grid
    staged_param = model_kind("lgbm").staged.param
    sel = select_and_fit("lgbm", tr.X, tr.y, None if cv else va.X, None if cv else va.y,
                         weighted=weighted, cv=cv, jobs=1, quiet=True)
    separate = _separate(tr.X, tr.y, va.X, va.y, weighted, cv)
    assert sel.scores == separate  # same candidates, same scores, bit for bit
    assert sel.params == max(separate, key=lambda ps: ps[1])[0]
    # one fit per value of the other parameters (per fold), plus the final fit under --cv
    shared = len(ParameterGrid({k: v for k, v in grid.items() if k != staged_param}))
    assert sel.fits == (shared * cv + 1 if cv else shared)
    # the chosen model predicts like a separate fit of the chosen parameters on all of train
    ref = make_model("lgbm", weighted, **sel.params).fit(tr.X, tr.y)
    assert sel.estimator.get_params()[staged_param] == sel.params[staged_param]
    assert np.array_equal(sel.estimator.predict_proba(l4["test"].X),
                          ref.predict_proba(l4["test"].X))
