"""curves.png beside a run's metrics.jsonl: train loss, and val accuracy and macro recall per
epoch (the EMA weights' beside them, dashed), epochs numbered across stages."""

from __future__ import annotations

import os
from pathlib import Path

CURVES = "curves.png"
VAL = (("val_accuracy", "val accuracy"), ("val_macro_recall", "val macro recall"))


def write_curves(run_dir: str | os.PathLike) -> Path | None:
    """Draw curves.png from metrics.jsonl; None when there is no epoch yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from classify.table import read_jsonl
    from finetune.files import atomic_path

    recs = read_jsonl(Path(run_dir) / "metrics.jsonl")
    if not recs:
        return None
    x = list(range(1, len(recs) + 1))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(x, [_num(r.get("train_loss")) for r in recs], marker="o", ms=3,
              label="train loss")
    left.set_ylabel("train loss")
    for (key, label), colour in zip(VAL, ("C0", "C1")):
        right.plot(x, [_pct(r.get(key)) for r in recs], marker="o", ms=3, color=colour,
                   label=label)
        ema = f"val_ema_{key[4:]}"
        if any(r.get(ema) is not None for r in recs):
            right.plot(x, [_pct(r.get(ema)) for r in recs], ls="--", color=colour,
                       label=f"{label} (EMA)")
    right.set_ylabel("%")
    for ax in (left, right):
        ax.set_xlabel("epoch (all stages)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        for i in range(1, len(recs)):  # stage boundaries
            if recs[i].get("stage_index") != recs[i - 1].get("stage_index"):
                ax.axvline(i + 0.5, color="grey", lw=0.8, ls=":")
    fig.suptitle(f"{Path(run_dir).name}: per epoch", fontsize=9)
    fig.tight_layout()
    path = Path(run_dir) / CURVES
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def _num(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def _pct(v: float | None) -> float:
    return 100 * _num(v)
