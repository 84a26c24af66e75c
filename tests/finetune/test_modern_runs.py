"""The modern recipes end to end: `full` learns from random weights on the demo images, `probe`
runs on real ImageNet weights and real photos, `--weights` fails offline as featx extract does,
DDP keeps the ranks equal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from featx.cli import main as featx_main
from featx.synthetic import generate_images
from finetune.cli import main
from finetune.train import state_digest

from .finetune_helpers import PYTHON, QUICK, subprocess_env

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MOBILENET = SHARED / "weights" / "mobilenet_v2-imagenet.pth"


def test_full_learns_from_random_weights_on_the_demo_images(tmp_path):
    data = generate_images(tmp_path / "images", n_per_class=20, size=48, seed=0)
    out = tmp_path / "full"
    res = CliRunner().invoke(main, [
        "run", "full", "--data", str(data), "--backbone", "timm/resnet10t", "--weights", "none",
        "--image-size", "48", "--batch-size", "16", "--epochs", "5", "--lr", "0.002",
        "--split", "60/20/20", "--workers", "0", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    test = json.loads((out / "test.json").read_text())
    assert test["n"] == 32
    assert test["accuracy"] > 0.6, test["accuracy"]  # chance: 1/8
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["weights_identity"] == "none:seed=0"
    assert cfg["preprocessing"]["interpolation"] == "bicubic"  # timm's own for resnet10t
    lrs = [json.loads(x)["lr"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    # stem, 4 stages, head: one parameter group each, split into decayed and undecayed
    # (1-D parameters) halves that share the group's rate
    assert len(lrs[0]) == 12 and lrs[0][::2] == lrs[0][1::2]
    assert all(a < b for a, b in zip(lrs[0][::2], lrs[0][2::2]))


def _photos(folder: Path, per_class: int = 8) -> Path:
    """scikit-image's bundled photos, each class a photo seen through different crops/flips."""
    from skimage import data as skdata

    rng = np.random.default_rng(0)
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        img = Image.fromarray(getattr(skdata, name)())
        w, h = img.size
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            s = rng.uniform(0.6, 0.9)
            cw, ch = int(w * s), int(h * s)
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = img.crop((x, y, x + cw, y + ch))
            if i % 2:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            crop.save(folder / name / f"{i}.jpg", quality=90)
    return folder


@pytest.mark.skipif(not MOBILENET.is_file(), reason=f"{MOBILENET} absent (../shared not here)")
def test_probe_on_real_imagenet_weights_and_real_photos(tmp_path):
    data = _photos(tmp_path / "photos")
    out = tmp_path / "probe"
    res = CliRunner().invoke(main, [
        "run", "probe", "--data", str(data), "--backbone", "mobilenet_v2", "--weights",
        str(MOBILENET), "--batch-size", "8", "--epochs", "8", "--lr", "0.01",
        "--split", "50/25/25", "--workers", "0", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    test = json.loads((out / "test.json").read_text())
    assert test["accuracy"] >= 0.75, test  # real ImageNet features tell these photos apart
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["weights_identity"].startswith("file:mobilenet_v2-imagenet.pth:sha256=db754d4d")
    assert cfg["preprocessing"]["input_size"] == 224
    # the trunk, batch-norm buffers included, is exactly the file's
    file_sd = torch.load(MOBILENET, weights_only=True)
    best = torch.load(out / "best.pt", weights_only=True)["model"]
    for k, v in file_sd.items():
        if not k.startswith("classifier."):
            assert torch.equal(best[f"trunk.{k}"], v), k


def test_weights_imagenet_offline_fails_as_featx_extract_does(images, tmp_path):
    args = ["--backbone", "timm/resnet10t", "--weights", "imagenet"]
    ours = CliRunner().invoke(main, ["run", "probe", "--data", str(images),
                                     "--out", str(tmp_path / "r"), *args])
    theirs = CliRunner().invoke(featx_main, ["extract", str(images),
                                             "--out", str(tmp_path / "c.h5"), *args])
    if ours.exit_code == 0:
        pytest.skip("the weights are reachable here")
    assert ours.exit_code != 0 and theirs.exit_code != 0
    line = ours.output.strip().splitlines()[-1]
    assert "--weights PATH" in line and "--weights none" in line
    assert line == theirs.output.strip().splitlines()[-1]
    assert not (tmp_path / "r" / "config.json").exists()


def test_two_ranks_hold_the_same_weights_for_partial_with_ema(images, tmp_path):
    out = tmp_path / "ddp"
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "finetune", "run", "partial", "--data", str(images), "--out", str(out),
           "--epochs", "1", "--steps-per-epoch", "3", "--lr", "0.01", "--ema", "0.5", *QUICK]
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    d0, d1 = line["rank_digests"]
    assert d0 == d1
    last = torch.load(out / "last.pt", weights_only=True)
    assert state_digest(last["model"]) == d0
    assert (out / "test.json").exists() and (out / "test_ema.json").exists()
