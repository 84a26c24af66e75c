"""Synthetic caches in SPEC's format with a known signal, shared by the classify tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from classify.synthetic import FI_SHARES, write_distribution_cache, write_synthetic_cache
from .classify_helpers import SMALL_DIMS


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("caches")


@pytest.fixture(scope="session")
def balanced(cache_dir) -> Path:
    """8 balanced classes, 640 rows, complementary levels, 4 undecodable rows."""
    return Path(write_synthetic_cache(cache_dir / "balanced.h5", n=640, dims=SMALL_DIMS,
                                      invalid=4))


@pytest.fixture(scope="session")
def imbalanced(cache_dir) -> Path:
    """FI's class shares (fear 4.4 %, anger 5.4 %), 2000 rows, a weaker signal along feature
    axes (trees see it too); the rarest classes are told apart by L1 and L2."""
    return Path(write_synthetic_cache(cache_dir / "imbalanced.h5", n=2000, dims=SMALL_DIMS,
                                      shares=FI_SHARES, strong=0.35, faint=0.2, seed=3,
                                      tag="imbalanced", rotate=False))



@pytest.fixture(scope="session")
def ldl_cache(cache_dir) -> Path:
    """8 classes with label distributions (20 votes an image) that depend on the features;
    beside it nodist.h5, a cache without /label_dist."""
    write_synthetic_cache(cache_dir / "nodist.h5", n=200, dims={"L4": 8})
    return Path(write_distribution_cache(cache_dir / "ldl.h5", n=800, votes=20,
                                         temperature=1.5))
