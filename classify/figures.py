"""Report figures of particular rows: the weighted stack's weight per (cache, level), and
few-shot accuracy / macro recall against the number of shots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classify.report import literal_text


@literal_text
def weights_png(path: Path, rows: Sequence[dict]) -> None:
    """One bar group per weighted stack row: its meta's weight of each (cache, level)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from classify.report import _save_figure

    rows = [r for r in rows if r.get("level_weights")][:6]
    blocks = list(dict.fromkeys(b for r in rows for b in r["level_weights"]))
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(blocks) + 2), 3.6))
    for i, r in enumerate(rows):
        x = np.arange(len(blocks)) + (i - (len(rows) - 1) / 2) * width
        sd = r.get("level_weights_std")  # a k-fold summary: the folds' spread
        ax.bar(x, [r["level_weights"].get(b, 0.0) for b in blocks], width, label=r["name"],
               yerr=[sd.get(b, 0.0) for b in blocks] if sd else None, capsize=3)
    ax.set_xticks(range(len(blocks)), blocks, rotation=30, ha="right")
    ax.set_ylabel("meta weight")
    ax.set_title("weighted stack: learned weight per (cache, level)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save_figure(fig, path)


@literal_text
def fewshot_png(path: Path, rows: Sequence[dict]) -> None:
    """Test accuracy and macro recall (mean over trials, t-interval) against K, one line per
    row kind."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from classify.report import _save_figure

    kinds: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("fewshot"):
            kinds.setdefault(r.get("fewshot_kind", r["name"]), []).append(r)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    for ax, metric, label in zip(axes, ("accuracy", "macro_recall"),
                                 ("test accuracy", "test macro recall")):
        for kind, rs in kinds.items():
            rs = sorted(rs, key=lambda r: r["fewshot"]["k"])
            k = np.array([r["fewshot"]["k"] for r in rs])
            mean = np.array([r["fewshot"]["test"]["mean"][metric] for r in rs])
            ci = [r["fewshot"]["test"]["ci95"][metric] or [m, m] for r, m in zip(rs, mean)]
            err = np.abs(np.array(ci).T - mean)
            ax.errorbar(k, mean, yerr=err, marker="o", capsize=3, label=kind)
        ax.set_xscale("log", base=2)
        ks = sorted({r["fewshot"]["k"] for rs in kinds.values() for r in rs})
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("training images per class (K)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("few-shot: mean over trials, 95% t-interval", fontsize=9)
    _save_figure(fig, path)


FIGURES = (  # (file, caption, which rows, writer)
    ("weights.png", "Weighted stack: learned weight per (cache, level)",
     lambda r: bool(r.get("level_weights")), weights_png),
    ("fewshot.png", "Few-shot: test accuracy and macro recall against K",
     lambda r: bool(r.get("fewshot")), fewshot_png),
)


def extra_figures(folder: Path, rows: Sequence[dict]) -> list[tuple[str, str]]:
    """Write the figures that `rows` call for into `folder`; (file name, caption) of each."""
    out = []
    for name, caption, wanted, write in FIGURES:
        if any(wanted(r) for r in rows):
            write(folder / name, rows)
            out.append((name, caption))
    return out
