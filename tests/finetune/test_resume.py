"""kill -9 in the middle of training, then --resume: the result equals an uninterrupted run's."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import torch
from .finetune_helpers import PYTHON, QUICK, subprocess_env

# resnet_l4_dropout: momentum, dropout (torch RNG), weighted sampling and augmentation all matter
ARGS = ["resnet_l4_dropout", "--epochs", "3", "--lr", "0.01", "--checkpoint-every", "5", *QUICK]


def start(images: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "finetune", "run", *ARGS, "--data", str(images),
                             "--out", str(out), *extra], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_killed_run_resumes_to_the_same_weights(images, tmp_path):
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "killed"
    reference = start(images, ref_dir)
    victim = start(images, run_dir)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        lines = (run_dir / "metrics.jsonl").read_text() if (run_dir / "metrics.jsonl").exists() \
            else ""
        if lines.count("\n") >= 1:
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    done = len(metrics(run_dir))
    assert 1 <= done < 3
    resumed = start(images, run_dir, "--resume")
    out, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out
    ref_out, _ = reference.communicate(timeout=240)
    assert reference.returncode == 0, ref_out

    a = torch.load(ref_dir / "last.pt", weights_only=True)
    b = torch.load(run_dir / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # the same epochs, losses and validation figures, each epoch logged once
    keys = ("stage", "epoch", "train_loss", "val_accuracy", "val_macro_recall")
    assert [[r[k] for k in keys] for r in metrics(run_dir)] == \
        [[r[k] for k in keys] for r in metrics(ref_dir)]
    assert (run_dir / "test.json").read_text() == (ref_dir / "test.json").read_text()
