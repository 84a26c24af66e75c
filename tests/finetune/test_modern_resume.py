"""kill -9 in the middle of a `full` run with EMA, then --resume: the weights, their moving
average, the metrics and the test results equal an uninterrupted run's."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import torch

from .finetune_helpers import PYTHON, QUICK, subprocess_env
from .test_resume import metrics

# AdamW with layer-wise groups, warm-up + cosine stepped per step, label smoothing, EMA
ARGS = ["full", "--epochs", "3", "--steps-per-epoch", "8", "--lr", "0.002", "--ema", "0.9",
        "--checkpoint-every", "3", *QUICK]


def start(images, out, *extra) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "finetune", "run", *ARGS, "--data", str(images),
                             "--out", str(out), *extra], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killed_full_run_with_ema_resumes_to_the_same_weights(images, tmp_path):
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "killed"
    reference = start(images, ref_dir)
    victim = start(images, run_dir)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        path = run_dir / "metrics.jsonl"
        if path.exists() and path.read_text().count("\n") >= 1:
            time.sleep(0.3)  # into the second epoch: past a mid-epoch checkpoint, or near one
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert 1 <= len(metrics(run_dir)) < 3
    resumed = start(images, run_dir, "--resume")
    out, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out
    ref_out, _ = reference.communicate(timeout=240)
    assert reference.returncode == 0, ref_out

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
