"""Real photos (skimage's samples, saved as JPEG and PNG) for the preprocessing tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """{'chelsea.jpg': path, ...}: astronaut 512x512, chelsea 451x300, coffee 600x400, rocket
    427x640, each as JPEG and PNG."""
    pytest.importorskip("skimage", reason="scikit-image (the dev extra) gives the real photos")
    from featx.pixels.conformance import photos as save_photos

    return {p.name: p for p in save_photos(tmp_path_factory.mktemp("photos"))}
