"""Rows -> a printed table, Markdown, CSV, and a report folder with figures and a page."""

from __future__ import annotations

import csv
import functools
import html
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from classify.atomic import write_atomic, write_text


def _pct(v) -> str:
    return "" if v is None or v != v else f"{100 * v:.2f}"


def _p(v) -> str:
    return "" if v is None else ("<1e-4" if v < 1e-4 else f"{v:.4f}")


def _cache_label(row: dict) -> str:
    # a fused row's cache is "A.h5 + B.h5" (classify.fusion.Fused): each file's stem
    return "+".join(Path(c).stem for c in row.get("cache", "").split(" + "))


def _val(r: dict, metric: str):
    """A val figure; none for a cross-dataset row (its val is the training cache's) or a row
    without val images."""
    v = r.get("val")
    return None if not v or r.get("cross_dataset") else v.get(metric)


COLUMNS = [  # (header, value of a row)
    ("name", lambda r: r["name"]),
    ("val acc", lambda r: _pct(_val(r, "accuracy"))),
    ("val mrec", lambda r: _pct(_val(r, "macro_recall"))),
    ("test acc", lambda r: _pct(r["test"]["accuracy"])),
    ("test mrec", lambda r: _pct(r["test"]["macro_recall"])),
    ("test mF1", lambda r: _pct(r["test"]["macro_f1"])),
    ("acc 95% CI", lambda r: "–".join(_pct(v) for v in r["test"]["accuracy_ci95"])),
    ("mrec 95% CI", lambda r: "–".join(_pct(v) for v in r["test"].get("macro_recall_ci95",
                                                                      []))),
    ("n test", lambda r: str(r["test"]["n"])),
]
MCNEMAR = ("McNemar p vs base", lambda r: _p(r.get("mcnemar_p")))
MREC_P = ("mrec p vs base", lambda r: _p(r.get("macro_recall_p")))
CACHE = ("cache", _cache_label)
SOURCE = ("file", lambda r: str(r.get("source", "")))


def _protocol(r: dict) -> str:
    from classify.table import protocol_text

    return protocol_text(r)


PROTOCOL = ("protocol", _protocol)


def _unmatched(r: dict) -> str:
    """Images of the other set whose class has no match, per class (cross-dataset rows)."""
    u = (r.get("cross_dataset") or {}).get("unmatched")
    if u is None:
        return ""
    return f"{sum(u.values())}" + (f" ({', '.join(f'{c} {n}' for c, n in u.items())})"
                                  if u else "")


UNMATCHED = ("unmatched (other set)", _unmatched)


def _fold_stat(r: dict, metric: str) -> str:
    f = r.get("kfold")
    if not f:
        return ""
    return f"{_pct(f['test']['mean'][metric])}±{_pct(f['test']['std'][metric])}"


FOLDS = [("folds acc mean±std", lambda r: _fold_stat(r, "accuracy")),
         ("folds mrec mean±std", lambda r: _fold_stat(r, "macro_recall"))]


LDL_HEADERS = {"chebyshev": "Cheb↓", "clark": "Clark↓", "canberra": "Canb↓", "kl": "KL↓",
               "cosine": "cos↑", "intersection": "inter↑"}  # classify.ldl.MEASURES


def _ldl(measure: str):
    def cell(r: dict) -> str:
        m = r["test"].get("ldl")
        return "" if not m or m.get(measure) is None else f"{m[measure]:.4f}"
    return cell


LDL = [(f"test {h}", _ldl(m)) for m, h in LDL_HEADERS.items()]
# a distribution row's accuracy is top-1 against each image's most-voted class
ACC_OF = ("acc vs", lambda r: "most-voted" if r["test"].get("ldl") else "label")


def _columns(rows: Sequence[dict]):
    cols = list(COLUMNS)
    if len({r.get("cache") for r in rows}) > 1:
        cols.insert(0, CACHE)
    if len({r.get("source") for r in rows}) > 1:
        cols.insert(0, SOURCE)
    if len({_protocol(r) for r in rows}) > 1:
        cols.append(PROTOCOL)
    if any(r.get("cross_dataset") for r in rows):
        cols.append(UNMATCHED)
    if any(r.get("kfold") for r in rows):
        cols[-1:-1] = FOLDS
    if any(r["test"].get("ldl") for r in rows):
        cols.insert(1, ACC_OF)
        cols += LDL
    if any("mcnemar_p" in r for r in rows):
        cols.append(MCNEMAR)
    if any("macro_recall_p" in r for r in rows):
        cols.append(MREC_P)
    return cols


TEXT_COLUMNS = {"name", "cache", "file", "protocol", "acc vs", "unmatched (other set)"}


def text_table(rows: Sequence[dict]) -> str:
    """An aligned plain-text table for the terminal: words to the left, numbers to the right."""
    cols = _columns(rows)
    cells = [[h for h, _ in cols]] + [[f(r) for _, f in cols] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    left = [h in TEXT_COLUMNS for h, _ in cols]
    lines = ["  ".join(c.ljust(w) if left[i] else c.rjust(w) for i, (c, w) in
                       enumerate(zip(line, widths))) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[dict]) -> str:
    cols = _columns(rows)
    out = ["| " + " | ".join(h for h, _ in cols) + " |",
           "|" + "|".join("---" if h in TEXT_COLUMNS else "---:" for h, _ in cols) + "|"]
    out += ["| " + " | ".join(f(r).replace("|", "\\|") for _, f in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


CSV_FIELDS = ["name", "cache", "levels", "model", "weighted", "val_accuracy", "val_macro_recall",
              "test_accuracy", "test_macro_recall", "test_macro_f1", "test_accuracy_ci_lo",
              "test_accuracy_ci_hi", "test_macro_recall_ci_lo", "test_macro_recall_ci_hi",
              "test_n", "fold", "folds_test_accuracy_mean", "folds_test_accuracy_std",
              "folds_test_macro_recall_mean", "folds_test_macro_recall_std", "mcnemar_p",
              "mcnemar_a_only", "mcnemar_b_only", "macro_recall_p", "source", "protocol",
              "unmatched", "acc_vs", *(f"test_{m}" for m in LDL_HEADERS)]


def csv_table(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        t = r["test"]
        w.writerow({"name": r["name"], "cache": r.get("cache", ""), "levels": "+".join(r["levels"]),
                    "model": r["model"], "weighted": r["weighted"],
                    "val_accuracy": _val(r, "accuracy"),
                    "val_macro_recall": _val(r, "macro_recall"),
                    "test_accuracy": t["accuracy"], "test_macro_recall": t["macro_recall"],
                    "test_macro_f1": t["macro_f1"], "test_accuracy_ci_lo": t["accuracy_ci95"][0],
                    "test_accuracy_ci_hi": t["accuracy_ci95"][1],
                    "test_macro_recall_ci_lo": (t.get("macro_recall_ci95") or ["", ""])[0],
                    "test_macro_recall_ci_hi": (t.get("macro_recall_ci95") or ["", ""])[1],
                    "test_n": t["n"], "fold": r.get("fold", ""),
                    **_fold_fields(r),
                    "macro_recall_p": r.get("macro_recall_p", ""),
                    "mcnemar_p": r.get("mcnemar_p", ""),
                    "mcnemar_a_only": r.get("mcnemar", {}).get("a_only", ""),
                    "mcnemar_b_only": r.get("mcnemar", {}).get("b_only", ""),
                    "source": r.get("source", ""), "protocol": _protocol(r),
                    "unmatched": _unmatched(r), "acc_vs": ACC_OF[1](r),
                    **{f"test_{m}": (t.get("ldl") or {}).get(m, "") for m in LDL_HEADERS}})
    return buf.getvalue()


def _fold_fields(r: dict) -> dict:
    f = r.get("kfold")
    out = {}
    for m in ("accuracy", "macro_recall"):
        out[f"folds_test_{m}_mean"] = f["test"]["mean"][m] if f else ""
        out[f"folds_test_{m}_std"] = f["test"]["std"][m] if f else ""
    return out


def literal_text(fn: Callable) -> Callable:
    """Decorator of a figure function: every text it draws is shown as given. Class names and
    titles are user text, and matplotlib would read "$...$" in them as maths (an error for
    `$\\badcmd$`, italics for "price $5 and $6")."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return fn(*args, **kwargs)
    return wrapper


def html_table(rows: Sequence[dict]) -> str:
    """The table as an HTML <table> element."""
    cols = _columns(rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(f(r))}</td>" for _, f in cols) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(rows: Sequence[dict], title: str = "classify table") -> str:
    """A page holding only the table."""
    return (f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}'
            f"</title><style>{_STYLE}</style></head><body>\n{html_table(rows)}\n"
            f"<p>{html.escape(_LEGEND)}</p>\n</body></html>\n")


_STYLE = ("body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} "
          "td:first-child{text-align:left}")
_LEGEND = ("Accuracy and macro recall in %; the intervals are bootstrap 95% CIs over the test "
           "images.")


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110,
                                               bbox_inches="tight"))
    plt.close(fig)


@literal_text
def confusion_png(path: Path, cm: Sequence[Sequence[int]], classes: Sequence[str],
                  title: str) -> None:
    """Row-normalised confusion matrix with counts."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center",
                    fontsize=7, color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="recall share")
    _save_figure(fig, path)


@literal_text
def recall_png(path: Path, rows: Sequence[dict], classes: Sequence[str]) -> None:
    """Per-class test recall, one bar group per class, one bar per row (at most 8 rows)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(rows)[:8]
    k = len(classes)
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * k), 3.8))
    for i, r in enumerate(rows):
        rec = [r["test"]["per_class_recall"].get(c) or 0.0 for c in classes]
        ax.bar(np.arange(k) + (i - (len(rows) - 1) / 2) * width, rec, width, label=r["name"])
    ax.set_xticks(range(k), classes, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test recall")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save_figure(fig, path)


def is_fold_row(row: dict) -> bool:
    """One fold's row of a k-fold protocol (its summary row has `"fold": "all"`), or one
    trial's of the few-shot protocol (its summary has `"trial": "all"`)."""
    return isinstance(row.get("fold"), int) or isinstance(row.get("trial"), int)


def shown_rows(rows: Sequence[dict], folds_detail: bool = False) -> list[dict]:
    """The rows a table shows: k-fold summaries, each fold's row only with `folds_detail`."""
    return [r for r in rows if folds_detail or not is_fold_row(r)]


def level_weights_lines(rows: Sequence[dict]) -> list[str]:
    """One line per weighted stack: its learned weight of each level (k-fold: mean±std)."""
    out = []
    for r in rows:
        w, sd = r.get("level_weights"), r.get("level_weights_std") or {}
        if w:
            out.append(f"{r['name']}: level weights " + ", ".join(
                f"{lv} {v:.3f}" + (f"±{sd[lv]:.3f}" if lv in sd else "") for lv, v in w.items()))
    return out


def _pick(rows: Sequence[dict], limit: int = 8) -> list[dict]:
    """The rows worth a figure: the best by test accuracy first, k-fold summaries rather than
    single folds."""
    order = sorted(shown_rows(rows), key=lambda r: -(r["test"]["accuracy"] or 0))
    return order[:limit]


def write_report(folder: str | os.PathLike, rows: Sequence[dict], classes: Sequence[str],
                 title: str = "classify report", gallery: Path | None = None,
                 more_galleries: Sequence[tuple[Path, str]] = ()) -> Path:
    """confusion_<i>.png for the best rows, recall.png, table.md, table.csv and index.html
    (linking to `gallery`, an error-analysis page in the same folder, when given)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    picked = _pick(rows)
    images = []
    for i, r in enumerate(picked):
        name = f"confusion_{i + 1}.png"
        confusion_png(folder / name, r["test"]["confusion"], classes,
                      f"{r['name']} (test acc {_pct(r['test']['accuracy'])} %)")
        images.append((name, r["name"]))
    recall_png(folder / "recall.png", picked, classes)
    from classify.figures import extra_figures

    images = extra_figures(folder, rows) + images
    write_text(folder / "table.md", markdown_table(rows))
    write_text(folder / "table.csv", csv_table(rows))
    write_text(folder / "index.html", _page(title, rows, images, gallery, more_galleries))
    return folder / "index.html"


def _page(title: str, rows: Sequence[dict], images: list[tuple[str, str]],
          gallery: Path | None = None, more_galleries: Sequence[tuple[Path, str]] = ()) -> str:
    figs = "".join(f'<figure><img src="{n}" alt="confusion matrix of {html.escape(t)}">'
                   f"<figcaption>{html.escape(t)}</figcaption></figure>" for n, t in images)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE} figure{{display:inline-block;margin:1em}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(_LEGEND)}</p>
{html_table(rows)}
{f'<p><a href="{gallery.name}">Error analysis: confusions with their images</a></p>'
 if gallery else ""}
{"".join(f'<p><a href="{g.name}">{html.escape(label)}</a></p>' for g, label in more_galleries)}
<h2>Per-class test recall</h2><img src="recall.png" alt="per-class recall">
<h2>Confusion matrices (test, best rows)</h2>{figs}
</body></html>
"""
