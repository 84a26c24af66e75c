"""Helpers shared by the featx tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from click.testing import CliRunner, Result

# tests run the same code path as users, on small inputs
FAST = ["--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--device", "cpu",
        "--workers", "0", "--quiet"]
PYTHON = sys.executable


def run_featx(*args: str) -> Result:
    from featx.cli import main
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get(
        "PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env
