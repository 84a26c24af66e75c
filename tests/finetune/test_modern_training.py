"""The modern recipes train for real: frozen tensors and frozen batch-norm statistics stay put,
the probe's trunk runs without gradients, EMA follows its formula, flip TTA is mirror-invariant,
warm-up + cosine steps per optimiser step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from finetune import distributed
from finetune.cli import main
from finetune.config import RunConfig
from finetune.ema import EMA
from finetune.evaluate import TTA
from finetune.optim import build_scheduler
from finetune.recipes import get_recipe, override
from finetune.train import Trainer

from .finetune_helpers import QUICK
from .test_recipe_training import check_stage


def make_trainer(recipe: str, images: Path, out: Path, backbone: str = "resnet18",
                 **cfg) -> Trainer:
    rec = override(get_recipe(recipe), backbone=backbone, epochs=1, image_size=32, batch_size=4,
                   split="60/20/20", lr=1e-3, head_lr=1e-2, warmup_epochs=0.0)
    cfg = RunConfig(recipe=rec, data=str(images), out=out, weights="none", workers=0,
                    quiet=True, steps_per_epoch=2, **cfg)
    return Trainer(cfg, distributed.Context(0, 1, 0, torch.device("cpu")))


@pytest.mark.parametrize("recipe, prefixes", [
    ("probe", {"heads"}),
    ("partial", {"trunk.layer4", "heads"}),
    ("full", {"trunk.conv1", "trunk.bn1", "trunk.layer1", "trunk.layer2", "trunk.layer3",
              "trunk.layer4", "heads"}),
])
def test_frozen_tensors_and_batchnorm_statistics_do_not_move(recipe, prefixes, images, tmp_path):
    trainer = make_trainer(recipe, images, tmp_path)
    trainer.start()
    trainable = check_stage(trainer, 0)  # every trainable tensor moved, nothing else did
    assert {n.split(".")[0] if n.startswith("heads") else ".".join(n.split(".")[:2])
            for n in trainable} == prefixes


def test_multilevel_stages(images, tmp_path):
    trainer = make_trainer("multilevel", images, tmp_path)
    trainer.start()
    s1 = check_stage(trainer, 0)
    assert "combiner.logits" not in s1 and "trunk.layer1.0.conv1.weight" in s1
    s2 = check_stage(trainer, 1)
    assert {n.split(".")[0] for n in s2} == {"heads", "combiner"}


def test_probe_runs_the_trunk_without_gradients_in_eval_mode(images, tmp_path):
    trainer = make_trainer("probe", images, tmp_path)
    trainer.start()
    model = trainer.model
    from finetune import freeze
    from finetune.plan import stage_plan

    freeze.apply(model, stage_plan(model, trainer.recipe.stages[0]).trainable)
    freeze.train_mode(model)
    assert model.training and not model.trunk.training
    x = torch.randn(2, 3, 32, 32)
    assert not model.features(x)["L4"].requires_grad  # no graph through the trunk
    assert model(x).requires_grad  # the head's


def test_ema_follows_its_formula_and_copies_counters():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ema = EMA(model, 0.9)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(8, 3))  # moves the running statistics and the counter
    ema.update(model)
    raw = model.state_dict()
    for k, v in ema.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.9 * before[k] + 0.1 * raw[k]), k
        else:
            assert torch.equal(v, raw[k]), k
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_flip_tta_is_mirror_invariant(images, tmp_path):
    trainer = make_trainer("full", images, tmp_path)
    model = trainer.model.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        plain, mirrored = TTA["none"](model, x), TTA["none"](model, x.flip(3))
        flip, flip_mirrored = TTA["flip"](model, x), TTA["flip"](model, x.flip(3))
    assert not torch.allclose(plain.softmax(1), mirrored.softmax(1), atol=1e-4)
    assert torch.allclose(flip, flip_mirrored, atol=1e-6)
    assert torch.allclose(flip.sum(1), torch.ones(4))


def test_warmup_then_cosine_per_step():
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler("warmup_cosine", opt, epochs=3, steps=4, warmup_epochs=1)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a > b for a, b in zip(lrs[3:], lrs[4:]))
    assert lrs[-1] < 0.05


def test_run_folder_with_ema_and_tta(images, tmp_path):
    out = tmp_path / "full"
    res = CliRunner().invoke(main, ["run", "full", "--data", str(images), "--out", str(out),
                                    "--epochs", "2", "--steps-per-epoch", "3", "--ema", "0.5",
                                    "--tta", "flip", *QUICK])
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "metrics.jsonl", "best.pt", "last.pt", "test.json", "confusion.png",
            "best_ema.pt", "test_ema.json", "confusion_ema.png"} <= names
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["ema"], cfg["tta"]) == (0.5, "flip")
    assert cfg["preprocessing"]["augment"] == "rrc_flip"
    assert cfg["preprocessing"]["input_size"] == 32
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["val_ema_macro_recall"] <= 1 for r in lines)
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["ema"].keys() == last["model"].keys()
    assert any(not torch.equal(last["ema"][k], last["model"][k]) for k in last["model"])
    # eval reproduces test_ema.json from best_ema.pt with the run's TTA
    res = CliRunner().invoke(main, ["eval", str(out), "--data", str(images), "--checkpoint",
                                    "best_ema", "--json", str(tmp_path / "e.json"), "--quiet"])
    assert res.exit_code == 0, res.output
    row = json.loads((tmp_path / "e.json").read_text())["rows"][0]
    assert row["tta"] == "flip"
    assert row["test"] == json.loads((out / "test_ema.json").read_text())
