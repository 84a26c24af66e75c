"""Helpers of the classify tests: the CLI runner, cache copies with edits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
from click.testing import CliRunner

from classify.synthetic import FI_SHARES

SMALL_DIMS = {"L0": 8, "L1": 12, "L2": 16, "L3": 20, "L4": 24}


def run(*args, ok: bool = True):
    """Invoke the classify CLI in-process; by default insist it succeeded."""
    from classify.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def copy_cache(src, dst, edit=None) -> Path:
    """Copy a cache and change it in place with edit(h5py.File)."""
    shutil.copy(src, dst)
    if edit:
        with h5py.File(dst, "a") as f:
            edit(f)
    return Path(dst)


def minority(classes, shares=FI_SHARES, k: int = 2) -> list[str]:
    return [classes[i] for i in np.argsort(shares)[:k]]


def add_prompts(f, emb: np.ndarray, class_embeddings: np.ndarray, scale: float) -> None:
    """Give an open cache (h5py.File) an emb level and CLIP-like zero-shot prompts."""
    f["features"].create_dataset("emb", data=emb.astype(np.float32))
    g = f.create_group("zeroshot")
    g.create_dataset("templates", data=np.array(["a photo of {}."], dtype=object),
                     dtype=h5py.string_dtype())
    g.create_dataset("class_embeddings", data=class_embeddings.astype(np.float32))
    g.attrs["logit_scale"] = scale
