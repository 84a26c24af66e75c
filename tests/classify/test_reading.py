"""Results that read right at a glance: k-fold summaries alike in every command's table and
report, the LDL measures as columns, names that say what differs, the stack's level weights."""

from __future__ import annotations

import re

import pytest

from .classify_helpers import read_json, run

KFOLD = {"fit": ["--levels", "L4"], "stack": ["--levels", "L3,L4", "--folds", "2"],
         "ablate": ["--grid", "quick", "--jobs", "1"]}


def _table_names(output: str, names: list[str]) -> list[str]:
    """The row names printed in a table, in their order (longest match first)."""
    lines = output.split("rows computed")[0].splitlines()
    found = []
    for line in lines[2:]:
        hits = [n for n in names if line.startswith(n + "  ") or line.rstrip() == n
                or f"  {n}  " in line]
        if hits:
            found.append(max(hits, key=len))
    return found


@pytest.mark.parametrize("detail", [False, True], ids=["summaries", "folds-detail"])
@pytest.mark.parametrize("command", list(KFOLD))
def test_kfold_tables_show_summaries_alike(balanced, tmp_path, command, detail):
    out, rep = tmp_path / "r.json", tmp_path / "rep"
    args = [command, balanced, *KFOLD[command], "--split", "kfold:3", "--json", out,
            "--report", rep, "--quiet"]
    if command == "ablate":
        args += ["--out", tmp_path / "abl"]
    res = run(*args, *(["--folds-detail"] if detail else []))
    rows = read_json(out)["rows"]
    folds = [r for r in rows if isinstance(r["fold"], int)]
    summaries = [r for r in rows if r["fold"] == "all"]
    assert len(folds) == 3 * len(summaries) and summaries  # the JSON: every row
    expect = [r["name"] for r in rows if detail or r["fold"] == "all"]
    assert _table_names(res.stdout, [r["name"] for r in rows]) == expect
    md = (rep / "table.md").read_text()
    assert all(f"| {n} |" in md for n in expect)
    assert detail == any("[fold" in line for line in md.splitlines())
    # the report's best rows: summaries, never a single fold
    from classify.figures import FIGURES

    captions = [c for c in re.findall(r"<figcaption>(.*?)</figcaption>",
                                      (rep / "index.html").read_text())
                if c not in {f[1] for f in FIGURES}]  # the confusion matrices'
    assert captions and all("[fold" not in c for c in captions)
    best = max(summaries, key=lambda r: r["test"]["accuracy"])
    assert captions[0] == best["name"].replace(">", "&gt;")


def test_distribution_rows_show_the_six_measures_and_name_their_accuracy(ldl_cache, tmp_path):
    import csv
    import io

    from classify.ldl import MEASURES
    from classify.report import csv_table

    out, hard = tmp_path / "d.json", tmp_path / "h.json"
    res = run("fit", ldl_cache, "--levels", "L4", "--target", "distribution", "--json", out,
              "--quiet")
    run("fit", ldl_cache, "--levels", "L4", "--json", hard, "--quiet")
    row = read_json(out)["rows"][0]
    head, dashes, line = res.stdout.splitlines()[:3]
    spans = [m.span() for m in re.finditer(r"-+", dashes)]
    cells = {head[a:b].strip(): line[a:b].strip() for a, b in spans}
    assert cells["acc vs"] == "most-voted"
    shown = {h: v for h, v in cells.items() if h.startswith("test ") and h[-1] in "↑↓"}
    assert len(shown) == 6
    for m, (h, v) in zip(MEASURES, shown.items()):
        assert v == f"{row['test']['ldl'][m]:.4f}", h
    both = list(csv.DictReader(io.StringIO(csv_table([row, read_json(hard)["rows"][0]]))))
    assert [b["acc_vs"] for b in both] == ["most-voted", "label"]
    assert [float(both[0][f"test_{m}"]) for m in MEASURES] == [row["test"]["ldl"][m]
                                                               for m in MEASURES]
    assert both[1]["test_kl"] == ""


def test_stack_names_its_untuned_levels_and_shows_its_weights(balanced, tmp_path):
    import numpy as np

    from classify.data import load_levels
    from classify.models import make_model

    st, ft, rep = tmp_path / "s.json", tmp_path / "f.json", tmp_path / "rep"
    res = run("stack", balanced, "--levels", "L3,L4", "--weighted", "--folds", "2", "--json", st,
              "--report", rep, "--quiet")
    run("fit", balanced, "--levels", "L4", "--weighted", "--json", ft, "--quiet")
    rows, fit = read_json(st)["rows"], read_json(ft)["rows"][0]
    level = next(r for r in rows if r["levels"] == ["L4"])
    assert fit["name"] == "L4 logreg weighted" and fit["selected_by"] == "val"
    assert level["name"] == "L4 logreg weighted (untuned)" != fit["name"]
    assert level["selected_by"] == "none (defaults)"
    # the untuned row is the model with its default hyperparameters, fitted on train
    d = load_levels(balanced, ["L4"])
    ref = make_model("logreg", weighted=True).fit(d["train"].X, d["train"].y)
    acc = float(np.mean(ref.predict(d["test"].X) == d["test"].y))
    assert level["test"]["accuracy"] == pytest.approx(acc)
    stack = rows[-1]
    w = stack["level_weights"]
    assert f"{stack['name']}: level weights L3 {w['L3']:.3f}, L4 {w['L4']:.3f}" in res.stdout
    assert (rep / "weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="weights.png"' in (rep / "index.html").read_text()
    k = tmp_path / "k.json"
    res = run("stack", balanced, "--levels", "L3,L4", "--folds", "2", "--split", "kfold:3",
              "--json", k, "--quiet")
    rows = read_json(k)["rows"]
    folds = [r["level_weights"] for r in rows if r["name"].startswith("stack ") and
             isinstance(r["fold"], int)]
    summary = rows[-1]
    assert len(folds) == 3 and summary["fold"] == "all"
    for lv in ("L3", "L4"):
        assert summary["level_weights"][lv] == pytest.approx(np.mean([f[lv] for f in folds]))
        assert summary["level_weights_std"][lv] == pytest.approx(
            np.std([f[lv] for f in folds], ddof=1))
    assert (f"L3 {summary['level_weights']['L3']:.3f}±{summary['level_weights_std']['L3']:.3f}"
            in res.stdout)


def test_map_file_error_names_the_cache_whose_classes_are_missing(tmp_path):
    import json

    from classify.synthetic import FI_CLASSES, write_synthetic_cache
    from .classify_helpers import copy_cache

    a = write_synthetic_cache(tmp_path / "train.h5", n=160, dims={"L4": 8}, tag="same")
    b = write_synthetic_cache(tmp_path / "other.h5", n=80, dims={"L4": 8}, tag="same")
    renamed = [{"anger": "angry", "fear": "scared"}.get(x, x) for x in FI_CLASSES]
    b2 = copy_cache(b, tmp_path / "renamed.h5",
                    lambda f: f.attrs.__setitem__("classes", json.dumps(renamed)))
    mapfile = tmp_path / "map.csv"
    negative = ("anger", "disgust", "fear", "sadness")
    mapfile.write_text("".join(f"{c},{'neg' if c in negative else 'pos'}\n" for c in FI_CLASSES))
    run("fit", a, "--task", mapfile, "--eval", b, "--quiet")  # both covered: fine
    bad = run("fit", a, "--task", mapfile, "--eval", b2, "--quiet", ok=False)
    assert bad.exit_code == 1 and len(bad.output.strip().splitlines()) == 1
    assert f"classes angry, scared of the --eval cache {b2} are not in {mapfile}" in bad.output
    bad = run("fit", b2, "--task", mapfile, "--quiet", ok=False)
    assert f"classes angry, scared of the training cache {b2} are not in" in bad.output
