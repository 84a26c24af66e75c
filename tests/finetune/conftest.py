"""Shared fixtures: tiny generated image sets, and one torch thread (the CI box has two cores
shared with other test processes; spinning OpenMP threads make small models 10x slower)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from featx.synthetic import generate_images


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> Path:
    """8 classes x 10 images of 36 px."""
    return generate_images(tmp_path_factory.mktemp("images"), n_per_class=10, size=36, seed=0)
