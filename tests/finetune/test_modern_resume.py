"""kill -9 in the middle of a `full` run with EMA, then --resume: the weights, their moving
average, the metrics and the test results equal an uninterrupted run's."""

from __future__ import annotations

import json

import torch

from .finetune_helpers import QUICK, killed_and_reference_runs, metrics

# AdamW with layer-wise groups, warm-up + cosine stepped per step, label smoothing, EMA
ARGS = ["full", "--epochs", "3", "--steps-per-epoch", "8", "--lr", "0.002", "--ema", "0.9",
        "--checkpoint-every", "3", *QUICK]


def test_killed_full_run_with_ema_resumes_to_the_same_weights(images, tmp_path):
    # 0.3 s into the second epoch: past a mid-epoch checkpoint, or near one
    ref_dir, run_dir = killed_and_reference_runs(ARGS, images, tmp_path, settle=0.3)

    a = torch.load(ref_dir / "last.pt", weights_only=True)
    b = torch.load(run_dir / "last.pt", weights_only=True)
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    keys = ("stage", "epoch", "train_loss", "val_accuracy", "val_macro_recall",
            "val_ema_accuracy", "val_ema_macro_recall", "lr")
    assert [[r[k] for k in keys] for r in metrics(run_dir)] == \
        [[r[k] for k in keys] for r in metrics(ref_dir)]
    for name in ("test.json", "test_ema.json"):
        assert (run_dir / name).read_text() == (ref_dir / name).read_text()
    assert json.loads((run_dir / "config.json").read_text())["ema"] == 0.9
