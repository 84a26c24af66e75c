"""featx extract with a dataset reader: the cache records the format, label distributions,
extra columns, folds and label conflicts, and `featx info` shows them."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np

from featx.cache import Cache

from . import dataset_layouts as lay
from .featx_helpers import FAST, run_featx


def test_extract_emotion6_kfold_with_conflict(tmp_path):
    rows = [(f"{kw}/{i}.jpg", [0.1] * 6 + [0.4]) for kw in ("anger", "joy", "fear")
            for i in range(4)]
    root = lay.emotion6(tmp_path / "Emotion6", rows, real=True)
    # one file also listed under another keyword: identical bytes, two labels
    shutil.copyfile(root / "images" / "anger" / "0.jpg", root / "images" / "joy" / "9.jpg")
    gt = root / "ground_truth.txt"
    gt.write_text(gt.read_text() + "joy/9.jpg\t5\t5\t0.1\t0.1\t0.1\t0.1\t0.1\t0.1\t0.4\n")
    out = tmp_path / "e6.h5"
    loud = [a for a in FAST if a != "--quiet"]
    res = run_featx("extract", root, *loud, "--split", "kfold:3", "--out", out)
    assert res.exit_code == 0, res.output
    assert "1 label conflicts" in res.output and "anger/0.jpg [anger]" in res.output
    assert res.output.splitlines()[0] == f"dataset      emotion6 (detected) from {root}"
    with Cache(out) as c:
        assert c.attrs["dataset_format"] == "emotion6" and c.attrs["split_spec"] == "kfold:3"
        assert c.classes == ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
        assert len(c) == 13 and c.fold is not None and sorted(set(c.fold.tolist())) == [0, 1, 2]
        assert (c.split == 0).all()
        np.testing.assert_allclose(c.label_dist.sum(axis=1), 1, atol=1e-6)
        assert set(c.extra_names) == {"valence", "arousal", "p_neutral"}
        assert c.extra("valence").dtype == np.float64
        assert json.loads(c.attrs["label_conflicts"])[0]["labels"] == ["anger", "joy"]
        groups = c.duplicate_groups
        paths = c.paths
        a, b = paths.index("anger/0.jpg"), paths.index("joy/9.jpg")
        assert groups[a] == groups[b] and c.fold[a] == c.fold[b]
    info = run_featx("info", out).output
    assert "dataset      emotion6" in info and "folds        0:" in info
    assert "label dist   /label_dist (13, 6)" in info and "1 label conflicts" in info
    with Cache(out) as c:
        assert f"features     {c.attrs['feature_fingerprint']} (" in info
    # the policy changes the file list: a different cache, refused at the same --out
    res = run_featx("extract", root, *FAST, "--split", "kfold:3", "--out", out,
                    "--conflicts", "drop")
    assert res.exit_code != 0 and "other settings" in res.output
    res = run_featx("extract", root, *FAST, "--split", "kfold:3", "--conflicts", "drop",
                    "--task", "sentiment", "--out", tmp_path / "x.h5")
    assert res.exit_code != 0
    assert "classes joy, surprise are not in the sentiment map (docs/datasets.md)" in res.output
    mapfile = tmp_path / "e6-sentiment.csv"
    mapfile.write_text("class,sentiment\nanger,negative\ndisgust,negative\nfear,negative\n"
                       "joy,positive\nsadness,negative\nsurprise,positive\n")
    res = run_featx("extract", root, *FAST, "--conflicts", "drop", "--task", str(mapfile),
                    "--out", tmp_path / "s.h5")
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert json.loads(f.attrs["classes"]) == ["negative", "positive"]
        assert f["label_dist"].shape == (11, 2)
        assert "conflicts" not in f.attrs["split_spec"]
