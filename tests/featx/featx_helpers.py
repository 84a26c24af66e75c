"""Helpers shared by the featx tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (torchrun's workers live in their own sessions)."""
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            for child in map(int, f.read().split()):
                out += [child] + descendants(child)
    return out


def kill_run_after(cmd: list[str], parts: Path, n_chunks: int) -> int:
    """Start `cmd`, SIGKILL it and every process below it once `parts` holds `n_chunks` chunk
    files; returns how many there were once the dust settled."""
    p = subprocess.Popen(cmd, env=subprocess_env(), start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while len(list(parts.glob("chunk-*.npz"))) < n_chunks and time.monotonic() < deadline:
            assert p.poll() is None, "the run finished before it could be killed"
            time.sleep(0.005)
        for pid in [p.pid] + descendants(p.pid):
            os.kill(pid, signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
    time.sleep(0.5)
    return len(list(parts.glob("chunk-*.npz")))
