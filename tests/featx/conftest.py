"""Shared fixtures for featx tests: tiny generated image sets and a CLI runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from featx.synthetic import generate_images

# tests run the same code path as users, on small inputs
FAST = ["--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--device", "cpu",
        "--workers", "0", "--quiet"]


@pytest.fixture(scope="session")
def small_set(tmp_path_factory) -> Path:
    """8 classes x 5 JPEGs of 40 px."""
    return generate_images(tmp_path_factory.mktemp("small") / "data", n_per_class=5, size=40)


def run_featx(*args: str) -> "click.testing.Result":
    from featx.cli import main
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get(
        "PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


PYTHON = sys.executable
