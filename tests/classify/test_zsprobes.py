"""Zero-shot-informed probes on a CLIP-like cache (an emb level near class vectors, prompts that
are noisy copies of them): alpha = 1 of zs-ensemble is the zero-shot row exactly, alpha = 0
the linear probe; Tip-Adapter's cache term is its formula; rows, model files, predict, ablate
and --shots as for every model; caches without prompts refused."""

import csv
import json

import h5py
import numpy as np
import pytest

from .classify_helpers import add_prompts, copy_cache, read_json, run
from classify.data import load_levels
from classify.models import make_model
from classify.synthetic import write_synthetic_cache
from classify.zeroshot import run_zeroshot
from classify.zsprobes import ENSEMBLE_ALPHAS, TIP_ALPHAS, TipAdapter, ZeroShotEnsemble

DIM = 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """480 images of 8 classes: emb = class vector + noise; prompts = class vectors + noise, so
    that zero-shot is good but not perfect and a probe can do better."""
    path = write_synthetic_cache(tmp_path_factory.mktemp("zsp") / "clip.h5", n=480,
                                 dims={"L4": 8}, invalid=3)
    rng = np.random.default_rng(1)
    with h5py.File(path, "a") as f:
        y = f["labels"][:].astype(int)
        vecs = rng.normal(size=(8, DIM))
        emb = vecs[y] + 1.3 * rng.normal(size=(len(y), DIM))
        emb[~f["valid"][:]] = 0
        add_prompts(f, emb, vecs + 0.6 * rng.normal(size=vecs.shape), 30.0)
    return path


def _prompts(path):
    with h5py.File(path, "r") as f:
        return f["zeroshot"]["class_embeddings"][:], float(f["zeroshot"].attrs["logit_scale"])


@pytest.mark.parametrize("C", [0.01, 1.0])
def test_ensemble_ends_are_the_zeroshot_row_and_the_probe(clip, C):
    d = load_levels(clip, ["emb"])
    emb, scale = _prompts(clip)
    tr, te = d["train"], d["test"]
    zs = run_zeroshot(clip)
    for alpha, want in ((1.0, zs.test_pred),
                        (0.0, make_model("logreg", clf__C=C).fit(tr.X, tr.y).predict(te.X))):
        est = ZeroShotEnsemble(emb, scale, alpha=alpha, C=C).fit(tr.X, tr.y)
        np.testing.assert_array_equal(est.predict(te.X), want)
    tip = TipAdapter(emb, scale, alpha=0.0).fit(tr.X, tr.y)
    np.testing.assert_array_equal(tip.predict(te.X), zs.test_pred)
    assert 0.3 < zs.row["test"]["accuracy"] < 0.95  # neither side trivially right


@pytest.mark.parametrize("beta", [1.0, 5.5])
def test_tip_adapter_cache_term_is_its_formula(clip, beta):
    d = load_levels(clip, ["emb"])
    emb, scale = _prompts(clip)
    tr, te = d["train"], d["test"]
    est = TipAdapter(emb, scale, alpha=0.5, beta=beta).fit(tr.X, tr.y)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    cos = unit(te.X.astype(np.float64)) @ unit(tr.X.astype(np.float64)).T
    A = np.exp(-beta * (1 - cos))
    want = np.stack([A[:, tr.y == c].mean(axis=1) for c in range(8)], axis=1)
    np.testing.assert_allclose(est.cache_term(te.X, beta), want, rtol=1e-4)
    zs = scale * unit(te.X.astype(np.float64)) @ unit(emb.astype(np.float64)).T
    np.testing.assert_allclose(est.decision_function(te.X), zs + 0.5 * scale * want, rtol=1e-4)


@pytest.mark.parametrize("model", ["zs-ensemble", "tip-adapter"])
def test_fit_rows_model_file_and_predict(clip, tmp_path, model):
    out = tmp_path / "m.npz"
    run("fit", clip, "--model", model, "--quiet", "--out", out, "--json", tmp_path / "f.json")
    row = read_json(tmp_path / "f.json")["rows"][0]
    assert row["name"] == f"emb {model}" and row["levels"] == ["emb"]
    grid = ENSEMBLE_ALPHAS if model == "zs-ensemble" else TIP_ALPHAS
    assert row["params"]["alpha"] in grid and 0.0 in grid
    zs = run_zeroshot(clip).row
    assert row["val"]["accuracy"] >= zs["val"]["accuracy"]  # alpha=1 / 0 was a candidate
    raw = np.load(out, allow_pickle=False)  # opens without pickle
    header = json.loads(raw["__header__"].tobytes())
    scores = header["recipe"]["selection"]["scores"]
    assert max(s for _, s in scores) == pytest.approx(row["val"]["accuracy"])
    run("predict", out, clip, "--out", tmp_path / "p.csv")
    with open(tmp_path / "p.csv") as f:
        got = {r["path"]: r["predicted"] for r in csv.DictReader(f) if r["split"] == "test"
               and not r["error"]}
    d = load_levels(clip, ["emb"])
    from classify.persist import load_model

    est = load_model(out)["estimator"]
    assert [got[p] for p in d["test"].paths] == [d.classes[c] for c in est.predict(d["test"].X)]
    acc = np.mean(est.predict(d["test"].X) == d["test"].y)
    assert row["test"]["accuracy"] == pytest.approx(acc)


def test_shots_ablate_and_refusals(clip, tmp_path):
    run("fit", clip, "--model", "tip-adapter", "--shots", "2,8", "--trials", "2", "--quiet",
        "--json", tmp_path / "s.json")
    summaries = [r for r in read_json(tmp_path / "s.json")["rows"] if r["trial"] == "all"]
    assert [r["shots"] for r in summaries] == [2, 8]
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"levels": "emb", "model": m}
                                for m in ("logreg", "zs-ensemble", "tip-adapter")]))
    run("ablate", clip, "--grid", grid, "--out", tmp_path / "abl", "--quiet", "--jobs", "1",
        "--json", tmp_path / "a.json")
    names = {r["name"] for r in read_json(tmp_path / "a.json")["rows"]}
    assert {"emb zs-ensemble", "emb tip-adapter", "emb zeroshot"} <= names
    plain = copy_cache(clip, tmp_path / "plain.h5", lambda f: f.__delitem__("zeroshot"))
    for args, message in (((plain, "--model", "zs-ensemble"), "needs a CLIP cache with "
                                                              "/zeroshot"),
                          ((clip, "--model", "tip-adapter", "--levels", "L4"), "--levels emb"),
                          ((clip, "--model", "zs-ensemble", "--cv", "3"), "no --cv")):
        res = run("fit", *args, ok=False)
        assert res.exit_code != 0 and message in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    res = run("stack", clip, "--levels", "L4,emb", "--base", "zs-ensemble", ok=False)
    assert res.exit_code != 0 and "not a per-level base model" in res.output
