"""--report: confusion-matrix and per-class recall PNGs, an HTML page with the table."""

import csv
import html

from .classify_helpers import read_json, run

PNG = b"\x89PNG\r\n\x1a\n"


def test_stack_report(balanced, tmp_path):
    rep = tmp_path / "rep"
    run("stack", balanced, "--levels", "L2-L4", "--folds", "3", "--report", rep, "--json",
        tmp_path / "s.json", "--quiet")
    rows = read_json(tmp_path / "s.json")["rows"]
    pngs = sorted(p.name for p in rep.glob("*.png"))
    assert pngs == ["confusion_1.png", "confusion_2.png", "confusion_3.png", "confusion_4.png",
                    "recall.png", "weights.png"]  # the weighted meta's weight per level
    for p in rep.glob("*.png"):
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    page = (rep / "index.html").read_text()
    for r in rows:
        assert html.escape(r["name"]) in page
    assert page.count("<img") == 6 and 'src="recall.png"' in page
    # the best row by test accuracy comes first
    best = max(rows, key=lambda r: r["test"]["accuracy"])
    assert page.index(f"<figcaption>{html.escape(best['name'])}") < page.index("confusion_2.png")
    with open(rep / "table.csv") as f:
        assert [r["name"] for r in csv.DictReader(f)] == [r["name"] for r in rows]
    assert (rep / "table.md").read_text().startswith("| name |")


def test_fit_report_has_one_confusion(balanced, tmp_path):
    rep = tmp_path / "rep"
    run("fit", balanced, "--report", rep, "--quiet")
    assert sorted(p.name for p in rep.glob("*.png")) == ["confusion_1.png", "recall.png"]
