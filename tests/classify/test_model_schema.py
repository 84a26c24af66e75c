"""Model files are data, checked before use: LightGBM trees are parsed into checked arrays and
evaluated in numpy (exactly LightGBM's probabilities), every header field and array is checked
against what the model must be, and each malformed file is a one-line error naming it."""

from __future__ import annotations

import resource
import re
from pathlib import Path

import numpy as np
import pytest

from classify.persist import load_model, save_model
from classify.training import run_fit
from classify.trees import TreesClassifier
from .classify_helpers import run
from .model_fuzz import (HEADER, header_of, load_npy, npy, npy_header, read_members,
                         with_header, write_members)


@pytest.fixture(scope="module")
def data(balanced):
    from classify.data import load_levels

    return load_levels(balanced, ["L3", "L4"])


def _lgbm(**kw):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=12, num_leaves=6, min_child_samples=5, verbose=-1,
                          n_jobs=1, **kw)


@pytest.mark.parametrize("k", [2, 3, 8])
@pytest.mark.parametrize("missing", ["nan", "zero", "none"])
def test_numpy_trees_give_lightgbms_probabilities(k, missing):
    rng = np.random.default_rng(k)
    X = rng.normal(size=(500, 10)).astype(np.float32)
    y = rng.integers(0, k, 500)
    X[:, 0] += y
    X[y == 1, 3] = 0.0  # zeros that mean something: zero_as_missing sends them one way
    X[rng.random(X.shape) < 0.08] = np.nan
    opts = {"nan": {}, "zero": {"zero_as_missing": True}, "none": {"use_missing": False}}
    est = _lgbm(**opts[missing]).fit(X, y)
    Xt = rng.normal(size=(400, 10)).astype(np.float32)
    Xt[rng.random(Xt.shape) < 0.1] = np.nan
    Xt[:60, 3] = 0.0
    ours = TreesClassifier.from_text(est.booster_.model_to_string(), est.classes_, 10)
    np.testing.assert_allclose(ours.predict_proba(Xt), est.predict_proba(Xt), rtol=0,
                               atol=1e-12)
    np.testing.assert_array_equal(ours.predict(Xt), est.predict(Xt))


def test_featx_lgbm_kind_round_trips(balanced, data, tmp_path):
    from classify.models import make_model

    tr, te = data["train"], data["test"]
    trained = run_fit(balanced, ["L3", "L4"], "logreg", jobs=1, quiet=True, data=data)
    trained.estimator = make_model("lgbm", threads=1, n_estimators=20).fit(tr.X, tr.y)
    save_model(tmp_path / "g.npz", trained)
    loaded = load_model(tmp_path / "g.npz")["estimator"]
    assert type(loaded) is TreesClassifier
    np.testing.assert_allclose(loaded.predict_proba(te.X), trained.estimator.predict_proba(te.X),
                               rtol=0, atol=1e-12)


def test_categorical_trees_are_refused():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 6, 400), rng.normal(size=400)]).astype(float)
    y = (X[:, 0] % 2).astype(int)
    est = _lgbm().fit(X, y, categorical_feature=[0])
    with pytest.raises(Exception, match="categorical splits are not supported"):
        TreesClassifier.from_text(est.booster_.model_to_string(), est.classes_, 2)


@pytest.fixture(scope="module")
def files(balanced, data, tmp_path_factory):
    """A logreg model file and a LightGBM one, fitted on `balanced`."""
    folder = tmp_path_factory.mktemp("schema")
    trained = run_fit(balanced, ["L3", "L4"], "logreg", jobs=1, quiet=True, data=data)
    save_model(folder / "logreg.npz", trained)
    trained.estimator = _lgbm().fit(data["train"].X, data["train"].y)
    save_model(folder / "lgbm.npz", trained)
    return {k: (folder / f"{k}.npz").read_bytes() for k in ("logreg", "lgbm")}


def _one_line_error(path: Path, cache, tmp_path) -> str:
    res = run("predict", path, cache, "--out", tmp_path / "p.csv", "--quiet", ok=False)
    assert res.exit_code == 1, res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output
    assert str(path) in res.output
    assert not (tmp_path / "p.csv").exists()
    return res.output


def _edit_text(members: dict, edit) -> dict:
    key = "est/model_text.npy"
    text = load_npy(members[key]).tobytes().decode()
    return {**members, key: npy(np.frombuffer(edit(text).encode(), np.uint8))}


def _first(pattern: str, repl: str):
    return lambda t: re.sub(pattern, repl, t, count=1, flags=re.M)


# the craftings reported: each made LightGBM write outside its arrays (SIGSEGV / SIGABRT)
TEXT_EDITS = {
    "split_feature": (_first(r"^split_feature=\d+", "split_feature=240000000"),
                      "split_feature is outside"),
    "left_child": (_first(r"^left_child=-?\d+", "left_child=100000"), "out of range"),
    "leaf": (_first(r"^right_child=-?\d+", "right_child=-2000000"), "out of range"),
    "num_class": (lambda t: re.sub(r"^tree_sizes=.*\n", "", t.replace("num_class=8",
                                                                     "num_class=3"),
                                   flags=re.M), "num_class=3"),
    "trees cut": (lambda t: t[:len(t) // 2], "no 'end of trees'"),
    "nan leaf": (_first(r"^leaf_value=\S+", "leaf_value=nan"), "not a number|not finite"),
    "decision": (_first(r"^decision_type=\d+", "decision_type=14"), "decision_type"),
    "categorical": (_first(r"^decision_type=\d+", "decision_type=1"), "categorical"),
}


@pytest.mark.parametrize("edit", sorted(TEXT_EDITS))
def test_crafted_lightgbm_text_is_a_one_line_error(files, balanced, tmp_path, edit):
    fn, message = TEXT_EDITS[edit]
    path = tmp_path / "m.npz"
    path.write_bytes(write_members(_edit_text(read_members(files["lgbm"]), fn)))
    assert re.search(message, _one_line_error(path, balanced, tmp_path))


def _header_edit(fn):
    def edit(members):
        h = header_of(members)
        fn(h)
        return with_header(members, h)
    return edit


def _logreg_node(h):
    return h["estimator"]["steps"][1][1]


def _member(name, value):
    return lambda members: {**members, name: value}


# what a malformed file may hold -> the one-line error it gets
SCHEMA_EDITS = {
    "unknown parameter": (_header_edit(lambda h: _logreg_node(h)["params"].update(bogus=1)),
                          "unknown parameter 'bogus' for LogisticRegression"),
    "bad parameter": (_header_edit(lambda h: _logreg_node(h)["params"].update(C=-1)),
                      "'C' parameter"),
    "shadowing predict_proba": (_header_edit(lambda h: _logreg_node(h)["attrs"].update(
        predict_proba="est/clf/coef_")), "attrs must be exactly"),
    "missing array": (lambda m: {k: v for k, v in m.items() if k != "est/clf/coef_.npy"},
                      "'est/clf/coef_' is not in the file"),
    "no estimator": (_header_edit(lambda h: h.pop("estimator")), "no 'estimator'"),
    "no fingerprint": (_header_edit(lambda h: h.pop("feature_fingerprint")),
                       "no 'feature_fingerprint'"),
    "estimator a string": (_header_edit(lambda h: h.update(estimator="pipeline")),
                           "'estimator' is not valid"),
    "unknown type": (_header_edit(lambda h: _logreg_node(h).update(type="os.system")),
                     "unknown estimator type 'os.system'"),
    "shape 1e12": (_member("est/clf/coef_.npy", npy_header((10**12,), "<f8")),
                   r"has shape \(1000000000000,\)"),
    "object dtype": (_member("est/clf/coef_.npy", npy(np.array([None, {}], dtype=object))),
                     "dtype |O"),
    "fewer classes": (_header_edit(lambda h: h.update(classes=h["classes"][:3])),
                      "do not match the model's 3 classes"),
    "more classes": (_header_edit(lambda h: h.update(classes=h["classes"] + ["extra"])),
                     "do not match the header's 9 classes"),
    "dims": (_header_edit(lambda h: h["dims"].update(L4=h["dims"]["L4"] + 1)),
             "expected"),
    "deep json": (lambda m: {**m, HEADER + ".npy": npy(np.frombuffer(b"[" * 100000, np.uint8))},
                  "not valid JSON"),
    "version": (_header_edit(lambda h: h.update(version="2")), "version 2 is not supported"),
    "extra dims": (_header_edit(lambda h: h["dims"].update(L0=8)),
                   "dims are not one per level"),
    "seen rows gone": (lambda m: {k: v for k, v in m.items() if k != "seen_rows.npy"},
                       "record of the model's training rows is damaged"),
    "seen rows huge": (_member("seen_rows.npy", npy_header((10**12,), "<u8")),
                       "record of the model's training rows is damaged"),
}


@pytest.mark.parametrize("edit", sorted(SCHEMA_EDITS))
def test_malformed_model_file_is_a_one_line_error(files, balanced, tmp_path, edit):
    fn, message = SCHEMA_EDITS[edit]
    path = tmp_path / "m.npz"
    path.write_bytes(write_members(fn(read_members(files["logreg"]))))
    assert re.search(message, _one_line_error(path, balanced, tmp_path))


def test_unreferenced_member_is_never_decompressed(files, balanced, tmp_path):
    size = 384 << 20
    path = tmp_path / "m.npz"
    path.write_bytes(write_members(read_members(files["logreg"]), {"zeros.npy": (size, b"\0")},
                                   level=9))
    assert path.stat().st_size < 1 << 20  # a small file ...
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bundle = load_model(path)  # ... that opens without reading its 384 MB member
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    assert grown < 64 << 20
    assert bundle["estimator"].predict_proba(np.zeros((2, 44))).shape == (2, 8)
