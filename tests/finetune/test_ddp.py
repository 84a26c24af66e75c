"""Two DDP processes on the CPU (gloo): after training, both ranks hold the same weights."""

from __future__ import annotations

import json
import subprocess

import torch
from .finetune_helpers import PYTHON, QUICK, subprocess_env

from finetune import models
from finetune.recipes import get_recipe, override
from finetune.train import state_digest


def test_two_ranks_hold_the_same_weights(images, tmp_path):
    out = tmp_path / "ddp"
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "finetune", "run", "resnet", "--data", str(images), "--out", str(out),
           "--epochs", "1", "--steps-per-epoch", "3", "--lr", "0.01", *QUICK]
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    d0, d1 = line["rank_digests"]
    assert d0 == d1
    last = torch.load(out / "last.pt", weights_only=True)["model"]
    assert state_digest(last) == d0
    rec = override(get_recipe("resnet"), backbone="resnet18")
    init = models.build(rec, 8, "none", seed=0)[0].state_dict()
    assert state_digest(init) != d0  # it did train
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world_size"] == 2
    assert (out / "test.json").exists()
