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
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", (rep / "index.html").read_text())
    assert captions and all("[fold" not in c for c in captions)
    best = max(summaries, key=lambda r: r["test"]["accuracy"])
    assert captions[0] == best["name"].replace(">", "&gt;")
