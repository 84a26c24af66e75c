"""AdamW's weight decay spares what timm, DeiT and MAE spare -- biases, norm weights and the
model's no_weight_decay() tensors (cls_token, pos_embed) -- and `finetune plan` shows it."""

from __future__ import annotations

import pytest
from timm.optim import param_groups_weight_decay

from finetune import models
from finetune.optim import build_optimizer
from finetune.plan import recipe_plan, stage_plan
from finetune.recipes import get_recipe, override

VIT = "timm/vit_tiny_patch16_224"


@pytest.mark.parametrize("backbone", [VIT, "timm/convnext_atto", "resnet18"])
def test_adamw_decay_matches_timms_groups(backbone):
    rec = override(get_recipe("full"), backbone=backbone, layer_decay=0.7)
    model = models.build(rec, 8, "none", progress=False)[0]
    stage = rec.stages[0]
    sp = stage_plan(model, stage)
    opt = build_optimizer(model, sp.groups, stage.optimizer)
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    # layer-wise learning rates are untouched by the split
    for lr, names, _ in sp.groups:
        params = dict(model.named_parameters())
        assert {lr_of[id(params[n])] for n in names} == {lr}
    # the reference: timm's own grouping of the trunk, with its no_weight_decay() list
    trunk = model.trunk
    nwd = trunk.no_weight_decay() if hasattr(trunk, "no_weight_decay") else ()
    ref = {id(p): g["weight_decay"]
           for g in param_groups_weight_decay(trunk, 0.05, no_weight_decay_list=nwd)
           for p in g["params"]}
    trained = {id(p) for n, p in model.named_parameters() if n in set(sp.trainable)}
    checked = [i for i in ref if i in trained]
    assert len(checked) > 20
    assert all(decay_of[i] == ref[i] for i in checked)
    if backbone == VIT:
        assert decay_of[id(trunk.cls_token)] == decay_of[id(trunk.pos_embed)] == 0.0
        assert decay_of[id(trunk.blocks[0].attn.qkv.weight)] == 0.05
    # the plan shows each group's weight decay and the scalars it spares
    st = recipe_plan(model, rec)["stages"][0]
    spared = sum(p.numel() for g in opt.param_groups if g["weight_decay"] == 0
                 for p in g["params"])
    assert sum(g["n_no_decay"] for g in st["param_groups"]) == spared > 0
    assert {g["weight_decay"] for g in st["param_groups"]} == {0.05}


def test_sgd_recipes_decay_every_parameter():
    rec = get_recipe("resnet_fc")
    model = models.build(rec, 8, "none", progress=False)[0]
    stage = rec.stages[0]
    opt = build_optimizer(model, stage_plan(model, stage).groups, stage.optimizer)
    assert {g["weight_decay"] for g in opt.param_groups} == {stage.optimizer.weight_decay}
