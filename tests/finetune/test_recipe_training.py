"""Each recipe trains a few steps on tiny images: what it trains changes, what it freezes (and
the statistics of frozen batch norms) does not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from finetune import distributed
from finetune.config import RunConfig
from finetune.recipes import get_recipe, override
from finetune.train import Trainer

# lrs raised so that two steps visibly move every trainable tensor
FAST_LR = {"sgd": 0.05, "adam": 1e-3}


def make_trainer(recipe: str, backbone: str, images: Path, out: Path) -> Trainer:
    rec = get_recipe(recipe)
    rec = override(rec, backbone=backbone, epochs=1, image_size=32, batch_size=4,
                   split="60/20/20", lr=FAST_LR[rec.stages[0].optimizer.name],
                   head_lr=FAST_LR[rec.stages[0].optimizer.name])
    cfg = RunConfig(recipe=rec, data=str(images), out=out, weights="none", workers=0,
                    quiet=True, steps_per_epoch=2)
    return Trainer(cfg, distributed.Context(0, 1, 0, torch.device("cpu")))


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def check_stage(trainer: Trainer, si: int) -> set[str]:
    """Run stage si alone; assert trainable tensors changed and everything else did not.
    Returns the names of the trainable parameters."""
    model = trainer.model
    before = snapshot(model)
    trainer.run_stage(si)
    after = model.state_dict()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    params = {n for n, _ in model.named_parameters()}
    assert trainable
    for n in params:
        changed = not torch.equal(before[n], after[n])
        assert changed == (n in trainable), f"stage {si}: {n} changed={changed}"
    # batch-norm statistics move exactly where the batch norm trains
    bn_trains = {name for name, m in model.named_modules()
                 if isinstance(m, torch.nn.BatchNorm2d) and m.weight.requires_grad}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            moved = not torch.equal(before[f"{name}.running_mean"], m.running_mean)
            counted = not torch.equal(before[f"{name}.num_batches_tracked"],
                                      m.num_batches_tracked)
            assert moved == counted == (name in bn_trains), f"stage {si}: {name} stats"
    return trainable


@pytest.mark.parametrize("recipe, prefixes", [
    ("resnet_fc", {"fc"}),
    ("resnet_l4", {"layer4", "fc"}),
    ("resnet", {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"}),
    ("resnet_l4_dropout", {"layer4", "fc"}),
    ("resnet_skip", {"skip", "combiner", "layer4", "fc"}),
])
def test_single_stage_recipes(recipe, prefixes, images, tmp_path):
    trainer = make_trainer(recipe, "resnet18", images, tmp_path)
    trainer.start()
    trainable = check_stage(trainer, 0)
    assert {n.split(".")[0] for n in trainable} == prefixes


def test_ensemble_stage1_backbone_and_heads_stage2_heads_and_combiner(images, tmp_path):
    trainer = make_trainer("resnet_ensemble", "resnet18", images, tmp_path)
    trainer.start()
    s1 = check_stage(trainer, 0)
    assert {n.split(".")[0] for n in s1} == {"conv1", "bn1", "layer1", "layer2", "layer3",
                                            "layer4", "heads"}
    s2 = check_stage(trainer, 1)
    assert {n.split(".")[0] for n in s2} == {"heads", "combiner"}
    w = trainer.model.combiner.weights()
    assert torch.isclose(w.sum(), torch.tensor(1.0)) and not torch.allclose(w, w[0])


def test_vgg19_iterative_unfreezing(images, tmp_path):
    trainer = make_trainer("vgg19_unfreeze", "vgg19", images, tmp_path)
    trainer.start()
    convs = [n for n, m in trainer.model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    for k in range(6):
        trainable = check_stage(trainer, k)
        conv_trained = [c for c in convs if f"{c}.weight" in trainable]
        assert conv_trained == (convs[len(convs) - k:] if k < 5 else convs), k
        assert "classifier.1.weight" in trainable
