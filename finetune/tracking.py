"""`finetune run --track tensorboard[:DIR]|mlflow[:URI]`: per-step training loss and learning
rate, per-epoch val metrics (and the EMA weights'), the final test metrics and files, on rank 0.
Every curve's x axis is the optimiser step counted from the start of the run (stages after one
another; epoch metrics at the step that ends the epoch), so a resumed run continues the same
curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from featx.ecosystem.tracking import (MlflowRun, TensorBoardRun, mlflow_uri, parse_track,
                                      read_state, write_state)

FLUSH_EVERY = 20  # per-step losses stay on the device until then (one sync for 20 steps)
# metrics.jsonl's keys -> the tracked names
EPOCH_KEYS = {"train_loss": "epoch/train_loss", "val_accuracy": "val/accuracy",
              "val_macro_recall": "val/macro_recall", "val_ema_accuracy": "val_ema/accuracy",
              "val_ema_macro_recall": "val_ema/macro_recall", "images_per_s": "epoch/images_per_s"}
TEST_KEYS = ("accuracy", "macro_recall", "macro_f1")


def open_run(spec: str, out: Path, resume_step: int | None):
    """The TensorBoard or MLflow run of one --track; `resume_step`: the global step a resumed
    run takes up at (None: a new run)."""
    kind, where = parse_track(spec)
    if kind == "tensorboard":
        return TensorBoardRun(where or out, purge_step=resume_step)
    state = read_state(out) if resume_step is not None else {}
    uri, _ = mlflow_uri(where)
    run_id = state.get("mlflow_run_id") if state.get("mlflow_uri") == uri else None
    run = MlflowRun(where, "finetune", out.name, run_id,
                    tags={"featx.run_folder": str(out.resolve())})
    write_state(out, {"mlflow_uri": uri, "mlflow_run_id": run.run_id})
    return run


class RunTracker:
    """Every --track of a run; the training loop calls step, epoch, test and close."""

    def __init__(self, specs: Sequence[str], out: Path, config: dict, resume_step: int | None):
        self.runs = [open_run(s, out, resume_step) for s in specs]
        for r in self.runs:
            r.params(config)
        self.pending: list[tuple[int, object, list[float]]] = []

    def _scalars(self, values: dict, step: int) -> None:
        for r in self.runs:
            r.scalars(values, step)

    def step(self, step: int, loss, lrs: Sequence[float]) -> None:
        """One optimiser step's loss (a device tensor: read at the next flush) and group lrs."""
        self.pending.append((step, loss, list(lrs)))
        if len(self.pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Every pending step to every run, written through (called at each checkpoint)."""
        rows = []
        for step, loss, lrs in self.pending:
            values = {"train/loss": float(loss), "train/lr": lrs[0]}
            values.update({f"train/lr_group{i}": lr for i, lr in enumerate(lrs) if i})
            rows.append((values, step))
        for r in self.runs:
            r.steps(rows)
        self.pending = []

    def epoch(self, step: int, rec: dict) -> None:
        """An epoch's metrics.jsonl record, at the step that ends it."""
        self.flush()
        self._scalars({name: rec.get(k) for k, name in EPOCH_KEYS.items()}, step)

    def test(self, test: dict, suffix: str, step: int, files: Sequence[Path]) -> None:
        self._scalars({f"test{suffix}/{k}": test.get(k) for k in TEST_KEYS}, step)
        for r in self.runs:
            r.files(files)

    def close(self, ok: bool) -> None:
        self.flush()
        for r in self.runs:
            r.close(ok)
