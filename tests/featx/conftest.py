"""Shared fixtures for featx tests: tiny generated image sets."""


from __future__ import annotations

from pathlib import Path

import pytest

from featx.synthetic import generate_images


@pytest.fixture(scope="session")
def small_set(tmp_path_factory) -> Path:
    """8 classes x 5 JPEGs of 40 px."""
    return generate_images(tmp_path_factory.mktemp("small") / "data", n_per_class=5, size=40)
