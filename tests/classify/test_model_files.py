"""Model files hold arrays + JSON: they round-trip every model kind exactly and opening one can
never run code; old joblib files are refused, and only `convert --trust` unpickles."""

import pickle
import zipfile

import joblib
import numpy as np
import pytest

from classify.data import load_levels
from classify.persist import load_model, model_bundle, save_bundle, save_model
from classify.training import run_fit, run_stack
from .classify_helpers import run


@pytest.fixture(scope="module")
def data(balanced):
    return load_levels(balanced, ["L3", "L4"])


def _same_predictions(trained, path, X, atol=0.0):
    save_model(path, trained)
    with zipfile.ZipFile(path) as z:  # arrays and a JSON header, nothing else
        assert all(n.endswith(".npy") for n in z.namelist())
    loaded = load_model(path)["estimator"]
    np.testing.assert_allclose(loaded.predict_proba(X), trained.estimator.predict_proba(X),
                               rtol=0, atol=atol)
    np.testing.assert_array_equal(loaded.predict(X), trained.estimator.predict(X))


@pytest.mark.parametrize("model", ["logreg", "linsvm"])
def test_fit_models_round_trip(balanced, data, tmp_path, model):
    trained = run_fit(balanced, ["L3", "L4"], model, weighted=True, jobs=1, quiet=True,
                      data=data)
    _same_predictions(trained, tmp_path / "m.npz", data["test"].X)


@pytest.mark.parametrize("base,meta", [("linsvm", "weighted"), ("logreg", "logreg")])
def test_stacks_round_trip(balanced, data, tmp_path, base, meta):
    trained = run_stack(balanced, ["L3", "L4"], base, meta, weighted=True, folds=3, jobs=1,
                        quiet=True, data=data)
    _same_predictions(trained, tmp_path / "s.npz", data["test"].X)


def test_lightgbm_round_trips_as_its_model_text(balanced, data, tmp_path):
    """Kept as LightGBM's text, read back as checked arrays and evaluated in numpy
    (classify.trees): LightGBM's own probabilities to the last bits of a double."""
    from lightgbm import LGBMClassifier

    from sklearn.base import clone
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from classify.stacking import LevelStacker, _flatten

    small = LGBMClassifier(n_estimators=8, num_leaves=4, verbose=-1, n_jobs=1)
    trained = run_fit(balanced, ["L3", "L4"], "logreg", jobs=1, quiet=True, data=data)
    tr = data["train"]
    stack = LevelStacker(small, levels=data.slices, folds=2, n_jobs=1).fit(tr.X, tr.y)
    # the meta "lgbm" shape (flatten -> LightGBM), small so that the test stays fast
    stack.meta_ = Pipeline([("flat", FunctionTransformer(_flatten)),
                            ("clf", clone(small))]).fit(stack.oof_proba_, tr.y)
    for est in (clone(small).fit(tr.X, tr.y), stack):
        trained.estimator = est
        _same_predictions(trained, tmp_path / "g.npz", data["test"].X, atol=1e-12)


class _CreatesFile:
    """Unpickling this creates the file at `path`: what a crafted model file can do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_crafted_pickle_never_runs(balanced, tmp_path):
    marker = tmp_path / "pwned"
    for name, dump in (("evil.joblib", lambda p, o: joblib.dump(o, p, compress=3)),
                       ("evil.pkl", lambda p, o: pickle.dump(o, open(p, "wb"))),
                       ("evil.raw", lambda p, o: joblib.dump(o, p))):
        path = tmp_path / name
        dump(path, {"format": "classify-model", "version": 1, "estimator": _CreatesFile(marker)})
        res = run("predict", path, balanced, "--out", tmp_path / "p.csv", ok=False)
        assert res.exit_code == 1, res.output
        assert "classify convert --trust" in res.output and "Traceback" not in res.output
        res = run("convert", path, tmp_path / "new.npz", ok=False)  # no --trust: not opened
        assert res.exit_code == 1 and "--trust" in res.output
        assert not marker.exists()
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "new.npz").exists()


def test_convert_trusted_old_file(balanced, data, tmp_path):
    trained = run_fit(balanced, ["L3", "L4"], "linsvm", jobs=1, quiet=True, data=data)
    old_bundle = {**model_bundle(trained), "version": 1}  # what classify wrote before: joblib
    old = tmp_path / "old.joblib"
    joblib.dump(old_bundle, old, compress=3)
    run("convert", "--trust", old, tmp_path / "new.npz")
    run("predict", tmp_path / "new.npz", balanced, "--out", tmp_path / "p.csv")
    np.testing.assert_array_equal(load_model(tmp_path / "new.npz")["estimator"].predict_proba(
        data["test"].X), trained.estimator.predict_proba(data["test"].X))


def test_unknown_estimator_is_refused_not_pickled(balanced, data, tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    trained = run_fit(balanced, ["L4"], "logreg", jobs=1, quiet=True, data=data)
    bundle = {**model_bundle(trained), "estimator": KNeighborsClassifier().fit(
        data["train"].X, data["train"].y)}
    with pytest.raises(Exception, match="cannot save a model of type KNeighborsClassifier"):
        save_bundle(tmp_path / "k.npz", bundle)
    assert not (tmp_path / "k.npz").exists()
