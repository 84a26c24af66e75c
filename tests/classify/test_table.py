"""`classify table`: rows of several --json files (and finetune run folders) in one table."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from .classify_helpers import read_json, run


@pytest.fixture(scope="module")
def docs(balanced, tmp_path_factory):
    d = tmp_path_factory.mktemp("table")
    run("fit", balanced, "--levels", "L4", "--json", d / "fit.json", "--quiet")
    run("fit", balanced, "--levels", "L3", "--split", "80/5/15", "--seed", "3",
        "--json", d / "resplit.json", "--quiet")
    return d


def _run_folder(d, test: dict, lines: list[dict], split: str):
    """A finetune run folder as `finetune run` leaves it (config.json, metrics.jsonl, test.json),
    written from a classify row so that the numbers are real ones."""
    d.mkdir()
    (d / "config.json").write_text(json.dumps({
        "recipe": {"name": "probe", "backbone": "resnet18", "levels": ["L4"],
                   "sampler": "weighted"},
        "split": split, "seed": 0, "counts": {"val": 7}, "data": "/data/x"}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + "{cut")
    (d / "test.json").write_text(json.dumps(test))


@pytest.mark.parametrize("fmt", ["text", "--md", "--csv", "--html"])
def test_rows_of_every_file_in_one_table(docs, tmp_path, fmt):
    fit, resplit = read_json(docs / "fit.json")["rows"], read_json(docs / "resplit.json")["rows"]
    epochs = [{"epoch": 1, "val_accuracy": 0.5, "val_macro_recall": 0.4},
              {"epoch": 2, "val_accuracy": 0.625, "val_macro_recall": 0.6},
              {"epoch": 3, "val_accuracy": 0.7, "val_macro_recall": 0.6}]  # not better: kept 2
    own = fit[0]["protocol"]["split"]  # the cache's own split
    _run_folder(tmp_path / "run", fit[0]["test"], epochs, own)
    args = ["table", docs / "fit.json", docs / "resplit.json", tmp_path / "run"]
    if fmt != "text":
        args.append(fmt)
    res = run(*args)
    out = res.stdout
    expected = [(r, src) for src, rows in (("fit.json", fit), ("resplit.json", resplit),
                                            ("run/test.json", [None])) for r in rows]
    if fmt == "--csv":
        got = list(csv.DictReader(io.StringIO(out)))
        assert len(got) == len(expected)
        for g, (r, src) in zip(got, expected):
            ref = r or {"name": "finetune:probe", "test": fit[0]["test"],
                        "val": {"accuracy": 0.625, "macro_recall": 0.6}}
            assert g["name"] == ref["name"] and g["source"] == src
            assert float(g["test_accuracy"]) == ref["test"]["accuracy"]
            assert float(g["test_accuracy_ci_lo"]) == ref["test"]["accuracy_ci95"][0]
            assert float(g["test_macro_recall_ci_hi"]) == ref["test"]["macro_recall_ci95"][1]
            assert float(g["val_macro_recall"]) == ref["val"]["macro_recall"]
        assert got[0]["protocol"] == f"{own} seed 0 emotion"
        assert got[1]["protocol"] == "80/5/15 seed 3 emotion"
        assert got[2]["protocol"] == got[0]["protocol"] and got[2]["model"] == \
            "probe/resnet18" and got[2]["weighted"] == "True"
    else:
        for r, src in expected:
            name = r["name"] if r else "finetune:probe"
            test = (r or fit[0])["test"]
            line = next(x for x in out.splitlines() if name in x and src in x)
            assert f"{100 * test['accuracy']:.2f}" in line
            lo, hi = test["accuracy_ci95"]
            assert f"{100 * lo:.2f}–{100 * hi:.2f}" in line
        assert "62.50" in out  # the run's val accuracy at its best epoch
    assert "2 protocols" in res.stderr and "seed 3" in res.stderr


def test_finetune_eval_documents_and_errors(docs, tmp_path):
    doc = read_json(docs / "fit.json")
    row = dict(doc["rows"][0], val=None, name="finetune:full")  # eval without val images
    (tmp_path / "eval.json").write_text(json.dumps({"rows": [row]}))
    res = run("table", docs / "fit.json", tmp_path / "eval.json", "--out", tmp_path / "t.md",
              "--md")
    text = (tmp_path / "t.md").read_text()
    assert "finetune:full" in text and "note:" not in res.stderr  # one protocol
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "test.json").write_text(json.dumps(doc["rows"][0]["test"]))
    (tmp_path / "junk.json").write_text("{")
    (tmp_path / "other.json").write_text("[1, 2]")
    for path, says in ((tmp_path / "bare", "no config.json"), (tmp_path / "junk.json",
                                                                "not readable JSON"),
                       (tmp_path / "other.json", "neither"), (tmp_path / "nope.json",
                                                              "no such file")):
        bad = run("table", docs / "fit.json", path, ok=False)
        assert bad.exit_code == 1 and says in bad.output and str(path) in bad.output
        assert "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1


def test_cross_dataset_rows_leave_val_empty(docs):
    """A cross-dataset row's val is the training cache's: the table leaves it empty."""
    from classify.report import csv_table, text_table

    row = read_json(docs / "fit.json")["rows"][0]
    cross = dict(row, name="cross", cross_dataset={"unmatched": {"neutral": 3}})
    got = list(csv.DictReader(io.StringIO(csv_table([row, cross]))))
    assert float(got[0]["val_accuracy"]) == row["val"]["accuracy"]
    assert got[1]["val_accuracy"] == got[1]["val_macro_recall"] == ""
    assert got[1]["unmatched"] == "3 (neutral 3)" and got[0]["unmatched"] == ""
    head, dashes, own, other = text_table([row, cross]).splitlines()
    spans = [m.span() for m in re.finditer(r"-+", dashes)]  # the columns' extents
    cells = {head[a:b].strip(): (own[a:b].strip(), other[a:b].strip()) for a, b in spans}
    assert cells["val acc"] == (f"{100 * row['val']['accuracy']:.2f}", "")
    assert cells["val mrec"] == (f"{100 * row['val']['macro_recall']:.2f}", "")
    assert cells["test acc"][0] == cells["test acc"][1] != ""


def test_kfold_documents_show_their_summaries(balanced, tmp_path):
    run("fit", balanced, "--levels", "L4", "--split", "kfold:3", "--json", tmp_path / "k.json",
        "--quiet")
    rows = read_json(tmp_path / "k.json")["rows"]
    for detail in ([], ["--folds-detail"]):
        got = list(csv.DictReader(io.StringIO(run("table", tmp_path / "k.json", "--csv",
                                                  *detail).stdout)))
        assert [g["name"] for g in got] == [r["name"] for r in rows
                                            if detail or r["fold"] == "all"]
