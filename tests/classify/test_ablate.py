"""classify ablate: the table, its files, row caching, McNemar against the baseline."""

import csv
import json

import numpy as np
import pytest

from classify import models
from classify.ablate import RowSpec, default_grid, grid_specs, quick_grid
from classify.metrics import mcnemar
from .classify_helpers import read_json, run


def _grid(path, rows):
    path.write_text(json.dumps(rows))
    return path


def test_rerun_with_one_more_row_computes_one_row(balanced, tmp_path):
    out = tmp_path / "abl"
    two = [{"levels": "L4", "model": "logreg"}, {"levels": "L3,L4", "model": "logreg"}]
    res = run("ablate", balanced, "--grid", _grid(tmp_path / "g2.json", two), "--out", out,
              "--jobs", "1", "--quiet")
    assert "2 rows computed, 0 reused" in res.output
    three = two + [{"levels": "L2-L4", "model": "logreg", "meta": "weighted"}]
    res = run("ablate", balanced, "--grid", _grid(tmp_path / "g3.json", three), "--out", out,
              "--jobs", "1", "--quiet", "--json", tmp_path / "a.json")
    assert "1 rows computed, 2 reused" in res.output
    assert len(list((out / "rows").glob("*.json"))) == 3
    doc = read_json(tmp_path / "a.json")
    assert doc == read_json(out / "ablation.json")
    rows = doc["rows"]
    assert [r["name"] for r in rows] == ["L4 logreg", "L3+L4 logreg",
                                         "stack L2-L4 logreg>weighted"]
    assert rows[0]["mcnemar_p"] == 1.0 and rows[0]["mcnemar"]["a_only"] == 0
    for r in rows:
        assert {"name", "levels", "model", "weighted", "val", "test"} <= set(r)
        assert 0.0 <= r["mcnemar_p"] <= 1.0
        assert r["mcnemar"]["n_paired"] == r["test"]["n"]
    # the stack is much better than L4 alone on this signal: a clear McNemar difference
    assert rows[2]["mcnemar_p"] < 0.01 and rows[2]["mcnemar"]["a_only"] > rows[2]["mcnemar"]["b_only"]
    md = (out / "ablation.md").read_text()
    assert md.count("\n") == 2 + len(rows) and "McNemar" in md
    with open(out / "ablation.csv") as f:
        table = list(csv.DictReader(f))
    assert [t["name"] for t in table] == [r["name"] for r in rows]
    assert float(table[2]["test_accuracy"]) == pytest.approx(rows[2]["test"]["accuracy"])


def test_a_changed_model_default_is_not_served_from_the_row_cache(monkeypatch):
    spec = RowSpec("c.h5", ("L4",), "lgbm")
    before = spec.key("fp", 0)
    assert spec.key("fp", 0) == before and spec.key("fp", 1) != before
    kind = models.MODELS["lgbm"]
    slower = lambda **kw: kind.build(**kw).set_params(learning_rate=0.05)  # noqa: E731
    monkeypatch.setitem(models.MODELS, "lgbm", models.ModelKind(
        kind.name, slower, kind.grid, kind.about, kind.staged, kind.cost))
    assert spec.key("fp", 0) != before
    assert RowSpec("c.h5", ("L4",), "logreg").key("fp", 0) != before


def test_quick_grid_over_two_caches_in_parallel(balanced, imbalanced, tmp_path):
    out = tmp_path / "abl"
    res = run("ablate", balanced, imbalanced, "--grid", "quick", "--out", out, "--jobs", "2",
              "--quiet")
    rows = read_json(out / "ablation.json")["rows"]
    assert len(rows) == 2 * len(quick_grid(["L0", "L1", "L2", "L3", "L4"]))
    assert {r["cache"] for r in rows} == {str(balanced), str(imbalanced)}
    # rows of the other cache share no test image with the baseline: no paired test
    other = [r for r in rows if r["cache"] == str(imbalanced)]
    assert all(r["mcnemar_p"] is None or r["mcnemar"]["n_paired"] < r["test"]["n"] for r in other)
    assert "imbalanced" in res.output  # the cache column appears with several caches


def test_default_grid_answers_the_papers_questions(balanced, tmp_path):
    levels = ["L0", "L1", "L2", "L3", "L4"]
    shapes = default_grid(levels)
    assert {s[0] for s in shapes if len(s[0]) == 1 and s[1] == "logreg"} == {(x,) for x in levels}
    assert (("L3", "L4"), "logreg", False, None) in shapes  # L4 vs L3+L4
    assert (tuple(levels), "logreg", False, None) in shapes  # all concatenated
    assert (tuple(levels), "logreg", False, "weighted") in shapes  # stacked
    assert (("L4",), "logreg", True, None) in shapes  # weighted vs not
    assert (("L4",), "lgbm", False, None) in shapes  # logreg vs LightGBM
    specs, base = grid_specs([str(balanced)], "default")
    assert base.levels == ("L4",) and base.model == "logreg" and base in specs
    assert len(set(specs)) == len(specs)
    res = run("ablate", balanced, "--out", tmp_path / "abl", "--jobs", "2", "--quiet")
    rows = read_json(tmp_path / "abl" / "ablation.json")["rows"]
    assert [r["name"] for r in rows] == [s.name for s in specs]
    assert f"{len(specs)} rows computed, 0 reused" in res.output
    by_name = {r["name"]: r for r in rows}
    # on this signal the stack beats L4 alone, and the weighted L4 row is really weighted
    assert (by_name["stack L0-L4 logreg>weighted"]["test"]["accuracy"]
            > by_name["L4 logreg"]["test"]["accuracy"])
    assert by_name["L4 logreg weighted"]["weighted"] is True


def test_mcnemar_exact_values():
    a = np.array([True] * 10 + [False] * 5)
    b = np.array([False] * 10 + [False] * 5)
    m = mcnemar(a, b)
    assert (m["a_only"], m["b_only"]) == (10, 0)
    assert m["p_value"] == pytest.approx(2 * 0.5 ** 10)
    assert mcnemar(a, a)["p_value"] == 1.0
    c = np.array([True, False] * 20)
    d = np.array([False, True] * 20)
    assert mcnemar(c, d)["p_value"] == pytest.approx(1.0)


def _relabel_first(f):
    labels = f["labels"][:]
    labels[0] = (labels[0] + 1) % 8
    f["labels"][:] = labels


def _rename_class(f):
    classes = json.loads(f.attrs["classes"])
    classes[2] = "wonder"
    f.attrs["classes"] = json.dumps(classes)


def _seven_classes(f):
    f.attrs["classes"] = json.dumps(json.loads(f.attrs["classes"])[:7])


@pytest.mark.parametrize("edit,message", [
    (_relabel_first, "label the same image differently (awe/img_000000.jpg: awe vs contentment)"),
    (_rename_class, "class 2 is 'awe' in"),
    (_seven_classes, "8 classes in"),
])
def test_caches_that_disagree_on_labels_are_refused(balanced, tmp_path, edit, message):
    from .classify_helpers import copy_cache

    other = copy_cache(balanced, tmp_path / "other.h5", edit)
    res = run("ablate", balanced, other, "--grid", "quick", "--out", tmp_path / "abl",
              "--quiet", ok=False)
    assert res.exit_code == 1 and message in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "abl" / "rows").exists()
