"""The few-shot protocol: K training images a class per trial (seeded, stratified, one per group
of identical files, from the training side only, under k-fold from each round's training
folds); trial rows and one summary row per K whose interval is scipy's t-interval."""

import numpy as np
import pytest
from scipy import stats

from .classify_helpers import read_json, run
from classify.data import iter_rounds
from classify.fewshot import draw_shots, t_interval, with_train
from featx.errors import FeatxError

CLASSES = [f"c{i}" for i in range(4)]


@pytest.mark.parametrize("k", [1, 3, 6])
@pytest.mark.parametrize("fold", [None, 2])
def test_draws_k_distinct_images_a_class_reproducibly(k, fold):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=200)
    groups = np.arange(200)
    groups[1::2] = groups[0::2]  # pairs of identical files
    draw = lambda t: draw_shots(y, groups, k, CLASSES, seed=0, trial=t, fold=fold)  # noqa
    idx = draw(0)
    assert np.bincount(y[idx], minlength=4).tolist() == [k] * 4
    assert len(set(groups[idx])) == len(idx)  # never two copies of one file
    np.testing.assert_array_equal(idx, draw(0))
    assert any(not np.array_equal(draw(0), draw(t)) for t in (1, 2, 3))


def test_other_seeds_and_folds_draw_otherwise_and_too_few_is_named():
    y = np.repeat(np.arange(4), 30)
    groups = np.arange(120)
    draws = {(s, f): tuple(draw_shots(y, groups, 4, CLASSES, s, 0, f))
             for s in (0, 1) for f in (None, 0, 1)}
    assert len(set(draws.values())) == len(draws)
    groups[:30] = 7  # class c0: thirty copies of one file
    with pytest.raises(FeatxError, match="class c0 has 1 distinct training images, fewer than "
                                         "--shots 2"):
        draw_shots(y, groups, 2, CLASSES, 0, 0, None, "x.h5")


@pytest.mark.parametrize("split", [None, "kfold:3"])
def test_drawn_images_come_from_the_training_side(balanced, split):
    for d in iter_rounds(balanced, ["L4"], split=split):
        groups = np.arange(len(d["train"].y))
        idx = draw_shots(d["train"].y, groups, 5, d.classes, 0, 0, d.fold)
        sub = with_train(d, idx)
        assert not set(sub["train"].rows) & (set(d["val"].rows) | set(d["test"].rows))
        assert set(sub["train"].rows) <= set(d["train"].rows)
        np.testing.assert_array_equal(sub["train"].X, d["train"].X[idx])
        assert sub["test"] is d["test"] and sub["val"] is d["val"]


def test_fit_rows_summaries_and_t_intervals(balanced, tmp_path):
    res = run("fit", balanced, "--levels", "L3,L4", "--shots", "2,8", "--trials", "3", "--quiet",
              "--json", tmp_path / "f.json", "--report", tmp_path / "rep")
    rows = read_json(tmp_path / "f.json")["rows"]
    assert [(r["shots"], r["trial"]) for r in rows] == [
        (2, 0), (2, 1), (2, 2), (2, "all"), (8, 0), (8, 1), (8, 2), (8, "all")]
    assert "trial 1]" not in res.output and "L3+L4 logreg [8-shot]" in res.output
    for summary in (rows[3], rows[7]):
        trials = [r for r in rows if r["shots"] == summary["shots"] and r["trial"] != "all"]
        assert len({tuple(map(tuple, r["test"]["confusion"])) for r in trials}) > 1
        for s in ("val", "test"):
            for m in ("accuracy", "macro_recall", "macro_f1"):
                v = [r[s][m] for r in trials]
                assert summary[s][m] == pytest.approx(np.mean(v))
                fs = summary["fewshot"][s]
                assert fs["std"][m] == pytest.approx(np.std(v, ddof=1))
                lo, hi = stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
                assert fs["ci95"][m] == pytest.approx([lo, hi])
        assert summary["fewshot"]["k"] == summary["shots"] and summary["fewshot"]["trials"] == 3
        # each trial trains on K images a class: its confusion's val rows are unchanged
        assert all(r["val"]["n"] == trials[0]["val"]["n"] for r in trials)
    assert (tmp_path / "rep" / "fewshot.png").stat().st_size > 1000


def test_t_interval_needs_two_values():
    assert t_interval([0.5]) is None
    assert t_interval([0.4, 0.6]) == pytest.approx(list(stats.t.interval(
        0.95, 1, loc=0.5, scale=stats.sem([0.4, 0.6]))))


def test_stack_and_ablate_under_kfold_and_errors(imbalanced, balanced, tmp_path):
    rows_of = lambda p: read_json(p)["rows"]  # noqa: E731
    run("stack", balanced, "--levels", "L3,L4", "--shots", "4", "--trials", "2",
        "--split", "kfold:3", "--quiet", "--json", tmp_path / "s.json")
    rows = rows_of(tmp_path / "s.json")
    stack = [r for r in rows if r["model"].startswith("stack")]
    # per trial: three fold rows and the pooled one; then the K's summary
    assert [(r.get("fold"), r["trial"]) for r in stack] == [
        (0, 0), (1, 0), (2, 0), ("all", 0), (0, 1), (1, 1), (2, 1), ("all", 1),
        ("all", "all")]
    pooled = [r for r in stack if r["fold"] == "all" and r["trial"] != "all"]
    assert stack[-1]["test"]["accuracy"] == pytest.approx(
        np.mean([r["test"]["accuracy"] for r in pooled]))
    assert sum(r["test"]["n"] for r in stack if r["trial"] == 0 and r["fold"] != "all") == \
        pooled[0]["test"]["n"]  # each image tested once a trial
    run("ablate", balanced, "--grid", "quick", "--shots", "2,4", "--trials", "2", "--out",
        tmp_path / "abl", "--quiet", "--jobs", "1", "--json", tmp_path / "a.json")
    summaries = [r for r in rows_of(tmp_path / "a.json") if r.get("trial") == "all"]
    assert sorted({r["shots"] for r in summaries}) == [2, 4]
    assert all(r["mcnemar"]["baseline"] == f"L4 logreg [{r['shots']}-shot]"
               and r["mcnemar"]["n_paired"] == 2 * r["test"]["n"] for r in summaries)
    for args, message in (
            (("fit", imbalanced, "--shots", "60"), "class fear has"),
            (("fit", balanced, "--shots", "0"), "--shots '0'"),
            (("fit", balanced, "--shots", "2", "--out", tmp_path / "m.npz"), "--out with"),
            (("stack", balanced, "--levels", "L3,L4", "--shots", "1"), "--shots 1 with stack")):
        res = run(*args, ok=False)
        assert res.exit_code != 0 and message in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
