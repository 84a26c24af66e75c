"""Inputs at their edges: CR-only CSV manifests, vote counts that are not whole numbers,
file-link loops, a --weights file for another model, control characters in file names."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from featx.cache import Cache
from featx.datasets import abstract, csvfile
from featx.datasets.base import ReadOptions
from featx.errors import FeatxError
from featx.weights import key_mismatch
from .featx_helpers import FAST, run_featx


def _images(folder: Path, names: list[str]) -> None:
    rng = np.random.default_rng(0)
    for n in names:
        (folder / n).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / n)


@pytest.mark.parametrize("newline", ["\r", "\r\n"])
def test_csv_line_ends_read_like_lf(tmp_path, newline):
    rows = ["path,label,split,note", "a/1.jpg,awe,train,x", '"b/2.jpg",fear,test,"y z"',
            "b/3.jpg,fear,val,w"]
    (tmp_path / "lf.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "cr.csv").write_bytes((newline.join(rows) + newline).encode())
    lf, cr = (csvfile.read(tmp_path / f"{n}.csv", ReadOptions()) for n in ("lf", "cr"))
    assert (cr.paths, cr.labels, cr.split, cr.extras) == (lf.paths, lf.labels, lf.split,
                                                          lf.extras)
    assert cr.paths == ["a/1.jpg", "b/2.jpg", "b/3.jpg"]


def test_unreadable_csv_is_one_line(tmp_path):
    (tmp_path / "m.csv").write_bytes(b'path,label\na/1.jpg,"' + b"x" * 200_000 + b'"\n')
    with pytest.raises(FeatxError, match=r"m\.csv: not a readable CSV"):
        csvfile.read(tmp_path / "m.csv", ReadOptions())


def test_abstract_vote_counts_must_be_whole(tmp_path):
    head = "'ImageName', 'Amusement', 'Anger', 'Awe', 'Content', 'Disgust', 'Excitement', " \
           "'Fear', 'Sad'"
    good = "'abstr_01.jpg', 1, 0, 3, 0, 0, 0, 0, 0"
    (tmp_path / abstract.FILE).write_bytes(f"{head}\r{good}\r".encode())
    items = abstract.read(tmp_path, ReadOptions())
    assert items.labels == ["awe"] and items.extras["n_votes"] == [4]
    (tmp_path / abstract.FILE).write_bytes(f"{head}\r{good}\r'abstr_02.jpg', 1.5, 0, 3, 0, 0, "
                                           f"0, 0, 0\r".encode())
    with pytest.raises(FeatxError, match=f"{abstract.FILE}:3: a vote count is not a whole "
                                         f"number"):
        abstract.read(tmp_path, ReadOptions())


def test_link_loops_and_control_characters(tmp_path):
    data = tmp_path / "data"
    _images(data, ["awe/1.jpg", "awe/2.jpg", "fear/1.jpg", "fear/2.jpg"])
    (data / "fear" / "bad\nname.jpg").write_bytes(b"not an image")
    os.symlink("self.jpg", data / "awe" / "self.jpg")  # a link to itself
    os.symlink("pong.jpg", data / "awe" / "ping.jpg")  # two links to each other
    os.symlink("ping.jpg", data / "awe" / "pong.jpg")
    res = run_featx("extract", data, *FAST[:-1], "--out", tmp_path / "c.h5")
    assert res.exit_code == 0, res.output
    with Cache(tmp_path / "c.h5") as c:
        assert sorted(c.paths) == ["awe/1.jpg", "awe/2.jpg", "fear/1.jpg", "fear/2.jpg",
                                   "fear/bad\nname.jpg"]
        skipped = dict(c.skipped)
    assert skipped == {f"awe/{n}.jpg": "link loop" for n in ("self", "ping", "pong")}
    # the failed image is one line of the output, its newline shown as \x0a
    info = run_featx("info", tmp_path / "c.h5").output
    for out in (res.output, info):
        assert "fear/bad\\x0aname.jpg: not an image" in out
        assert not any(line.startswith("name.jpg") for line in out.splitlines())


def test_weights_for_another_model_is_a_short_line(tmp_path):
    from torchvision.models import resnet18

    expected = resnet18().state_dict()
    sd = {k: v for k, v in list(expected.items())[10:]}
    sd["fc.weight"] = torch.zeros(3, 512)
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "w.pt")
    _images(tmp_path / "data", ["awe/1.jpg", "fear/1.jpg"])
    args = list(FAST)
    args[args.index("--weights") + 1] = str(tmp_path / "w.pt")
    res = run_featx("extract", tmp_path / "data", *args, "--out", tmp_path / "c.h5")
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert len(res.output) < 500
    names = list(expected)[:3]
    assert (f"10 missing keys: {', '.join(names)}, ... 7 more; 1 unexpected keys: "
            f"extra.weight; 1 shape mismatches: fc.weight (3, 512) vs (1000, 512)") in res.output
    assert key_mismatch(expected, expected) == ""
