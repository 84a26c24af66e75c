"""Helpers shared by the finetune tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def subprocess_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


# a resnet18 run small enough for the test suite: 32 px, batch 4, 60/20/20 split
QUICK = ["--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "4",
         "--split", "60/20/20", "--workers", "0", "--quiet"]


def metrics(out: Path) -> list[dict]:
    """The records of `out`/metrics.jsonl, one per epoch."""
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def start_run(args: list[str], images: Path, out: Path, *extra: str) -> subprocess.Popen:
    """`finetune run` with `args` on `images` into `out`, in the background."""
    return subprocess.Popen([PYTHON, "-m", "finetune", "run", *args, "--data", str(images),
                             "--out", str(out), *extra], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def killed_and_reference_runs(args: list[str], images: Path, tmp_path: Path,
                              settle: float = 0.0) -> tuple[Path, Path]:
    """A run of `args` killed (-9) once it logged its first epoch (plus `settle` seconds) and then
    resumed, beside an uninterrupted reference run; returns (reference dir, resumed dir)."""
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "killed"
    reference = start_run(args, images, ref_dir)
    victim = start_run(args, images, run_dir)
    deadline = time.monotonic() + 240
    path = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline and victim.poll() is None:
        if path.exists() and path.read_text().count("\n") >= 1:
            time.sleep(settle)
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    epochs = args[args.index("--epochs") + 1]
    assert 1 <= len(metrics(run_dir)) < int(epochs)
    resumed = start_run(args, images, run_dir, "--resume")
    out, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out
    ref_out, _ = reference.communicate(timeout=240)
    assert reference.returncode == 0, ref_out
    return ref_dir, run_dir
