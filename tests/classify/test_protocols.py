"""Protocols on cached features: re-splitting without re-extraction, k-fold rows with mean and
standard deviation, cross-dataset evaluation, the sentiment task."""

from __future__ import annotations

import json

import numpy as np
import pytest

from classify.synthetic import FI_CLASSES, write_synthetic_cache
from featx.cache import Cache
from featx.splits import stratified_split

from .classify_helpers import copy_cache, read_json, run

ONE_LEVEL = {"L3": 12, "L4": 16}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two caches of one 'dataset' (same class means, same feature settings) and a third made
    with other feature settings."""
    d = tmp_path_factory.mktemp("pair")
    a = write_synthetic_cache(d / "train.h5", n=480, dims={"L4": 16}, tag="same")
    b = write_synthetic_cache(d / "other.h5", n=240, dims={"L4": 16}, tag="same",
                              prefix="other_")
    c = write_synthetic_cache(d / "alien.h5", n=240, dims={"L4": 16}, tag="alien")
    return a, b, c


def test_kfold_fit_rows_cover_every_image_once(balanced, tmp_path):
    out = tmp_path / "k.json"
    res = run("fit", balanced, "--levels", "L3,L4", "--split", "kfold:4", "--json", out,
              "--quiet")
    rows = read_json(out)["rows"]
    assert [r["fold"] for r in rows] == [0, 1, 2, 3, "all"]
    assert [r["name"] for r in rows[:4]] == [f"L3+L4 logreg [fold {i}]" for i in range(4)]
    summary = rows[-1]
    with Cache(balanced) as c:
        n_valid = int(c.valid.sum())
    assert sum(r["test"]["n"] for r in rows[:4]) == n_valid == summary["test"]["n"]
    accs = [r["test"]["accuracy"] for r in rows[:4]]
    k = summary["kfold"]
    assert k["k"] == 4
    assert k["test"]["mean"]["accuracy"] == pytest.approx(np.mean(accs))
    assert k["test"]["std"]["accuracy"] == pytest.approx(np.std(accs, ddof=1))
    assert summary["protocol"] == {"split": "kfold:4", "fold": None, "seed": 0,
                                   "task": "emotion", "task_map": None, "task_hash": None}
    assert summary["test"]["accuracy"] > 0.4  # chance: 0.125
    assert "folds acc mean±std" in res.output
    refused = run("fit", balanced, "--split", "kfold:4", "--out", tmp_path / "m.joblib",
                  ok=False)
    assert refused.exit_code != 0 and "one model per fold" in refused.output


def test_resplit_without_reextracting(balanced, tmp_path):
    out = tmp_path / "r.json"
    run("fit", balanced, "--split", "80/5/15", "--seed", "2", "--json", out, "--quiet")
    row = read_json(out)["rows"][0]
    assert row["protocol"]["split"] == "80/5/15" and row["protocol"]["seed"] == 2
    with Cache(balanced) as c:
        expected = stratified_split(c.labels, np.arange(len(c)), "80/5/15", 2)
        assert row["test"]["n"] == int(((expected == 2) & c.valid).sum())
        assert c.attrs["split_spec"] == "60/20/20"  # the cache itself is untouched
    bad = run("fit", balanced, "--split", "official", ok=False)
    assert bad.exit_code != 0 and "--split official" in bad.output


def test_stack_and_ablate_kfold(balanced, tmp_path):
    out = tmp_path / "s.json"
    run("stack", balanced, "--levels", "L3,L4", "--split", "kfold:3", "--json", out, "--quiet")
    rows = read_json(out)["rows"]
    assert [r["name"] for r in rows if r["fold"] == "all"] == [
        "L3 logreg (untuned)", "L4 logreg (untuned)", "stack L3+L4 logreg>weighted"]
    assert len(rows) == 3 * 4
    abl = tmp_path / "abl"
    res = run("ablate", balanced, "--grid", "quick", "--split", "kfold:3", "--out", abl,
              "--json", tmp_path / "a.json", "--quiet", "--jobs", "1")
    doc = read_json(tmp_path / "a.json")["rows"]
    summaries = [r for r in doc if r["fold"] == "all"]
    assert len(summaries) == 4 and len(doc) == 4 * 4
    for r in summaries:
        assert r["kfold"]["k"] == 3 and "mcnemar_p" in r and "macro_recall_p" in r
        assert r["macro_recall_vs_base"]["n_paired"] == r["test"]["n"]
    assert summaries[0]["macro_recall_p"] == 1.0  # the baseline against itself
    assert "[fold" not in res.output.split("rows computed")[0]  # the table: summaries only
    assert "mrec p vs base" in res.output
    again = run("ablate", balanced, "--grid", "quick", "--split", "kfold:3", "--out", abl,
                "--quiet", "--jobs", "1")
    assert "0 rows computed, 4 reused" in again.output
    other = run("ablate", balanced, "--grid", "quick", "--out", abl, "--quiet", "--jobs", "1")
    assert "4 rows computed" in other.output  # another protocol: other stored rows


def test_cross_dataset(pair, tmp_path):
    a, b, c = pair
    out = tmp_path / "x.json"
    run("fit", a, "--eval", b, "--json", out, "--quiet")
    base, cross = read_json(out)["rows"]
    assert cross["name"] == "L4 logreg -> other" and cross["eval_cache"] == str(b)
    assert cross["test"]["n"] == 240 and cross["test"]["accuracy"] > 0.6
    assert cross["cross_dataset"]["excluded_seen"] == 0
    # the row rule: the training cache's own images are scored only where they were test
    run("fit", a, "--eval", a, "--json", out, "--quiet")
    base, self_eval = read_json(out)["rows"]
    with Cache(a) as ca:
        seen, n_valid = int(((ca.split != 2) & ca.valid).sum()), int(ca.valid.sum())
    assert self_eval["cross_dataset"]["excluded_seen"] == seen
    assert self_eval["test"]["n"] == base["test"]["n"] == n_valid - seen
    refused = run("fit", a, "--eval", c, "--quiet", ok=False)
    assert refused.exit_code != 0 and "other settings" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    # the other set names two classes differently: matched through --class-map
    renamed = [{"anger": "angry", "fear": "scared"}.get(x, x) for x in FI_CLASSES]
    b2 = copy_cache(b, tmp_path / "renamed.h5",
                    lambda f: f.attrs.__setitem__("classes", json.dumps(renamed)))
    run("fit", a, "--eval", b2, "--json", out, "--quiet")
    cross = read_json(out)["rows"][1]
    assert cross["test"]["n"] < 240 and cross["cross_dataset"]["unmatched"].keys() == {
        "angry", "scared"}
    cmap = tmp_path / "map.csv"
    cmap.write_text("angry,anger\nscared,fear\n")
    run("fit", a, "--eval", b2, "--class-map", cmap, "--json", out, "--quiet")
    cross = read_json(out)["rows"][1]
    assert cross["test"]["n"] == 240 and cross["test"]["accuracy"] > 0.6


def test_sentiment_task(pair, tmp_path):
    a, b, _ = pair
    out = tmp_path / "s.json"
    run("fit", a, "--task", "sentiment", "--eval", b, "--json", out, "--quiet")
    base, cross = read_json(out)["rows"]
    for r in (base, cross):
        assert list(r["test"]["per_class_recall"]) == ["negative", "positive"]
        assert r["protocol"]["task"] == "sentiment"
        assert np.array(r["test"]["confusion"]).shape == (2, 2)
        assert r["test"]["accuracy"] > 0.75
    mapfile = tmp_path / "three.csv"
    mapfile.write_text("class,sentiment\n" + "".join(
        f"{c},{'calm' if c in ('awe', 'contentment') else 'other'}\n" for c in FI_CLASSES))
    run("fit", a, "--task", mapfile, "--json", out, "--quiet")
    assert list(read_json(out)["rows"][0]["test"]["per_class_recall"]) == ["calm", "other"]
    bad = run("fit", a, "--task", "valence", ok=False)
    assert bad.exit_code != 0 and "--task 'valence'" in bad.output


def test_cache_extracted_with_kfold_uses_its_folds(balanced, tmp_path):
    with Cache(balanced) as c:
        labels = c.labels
    fold = (np.arange(len(labels)) * 7 + labels) % 3  # any assignment: the cache's own

    def to_kfold(f):
        f.create_dataset("fold", data=fold.astype(np.int8))
        f["split"][:] = 0
        f.attrs["split_spec"] = "kfold:3"

    k = copy_cache(balanced, tmp_path / "k.h5", to_kfold)
    out = tmp_path / "k.json"
    run("fit", k, "--json", out, "--quiet")
    rows = read_json(out)["rows"]
    assert rows[-1]["protocol"]["split"] == "kfold:3" and len(rows) == 4
    assert [r["fold"] for r in rows] == [0, 1, 2, "all"]
    refused = run("fit", k, "--out", tmp_path / "m.model", ok=False)
    assert refused.exit_code != 0 and "one model per fold" in refused.output
    with Cache(k) as c:
        valid = c.valid
    for f in range(3):
        assert rows[f]["test"]["n"] == int(((fold == f) & valid).sum())
