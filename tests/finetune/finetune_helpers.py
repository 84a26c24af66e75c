"""Helpers shared by the finetune tests."""

from __future__ import annotations

import os
import sys
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
