"""`finetune plan` for the modern recipes on any backbone: what each trains, and the layer-wise
learning rates of `full` (no training)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from finetune import models
from finetune.cli import main
from finetune.plan import stage_plan
from finetune.recipes import MODERN, get_recipe, override

VIT = "timm/vit_tiny_patch16_224"  # 12 blocks
CONVNEXT = "timm/convnext_atto"  # 4 stages


def plan(recipe: str, *args: str) -> dict:
    res = CliRunner().invoke(main, ["plan", recipe, "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def params(recipe: str, backbone: str) -> list[str]:
    model = models.build(override(get_recipe(recipe), backbone=backbone), 8)[0]
    return [n for n, _ in model.named_parameters()]


@pytest.mark.parametrize("backbone", ["resnet18", VIT])
def test_probe_trains_only_the_head(backbone):
    (st,) = plan("probe", "--backbone", backbone)["stages"]
    assert st["trainable"] == ["heads.L4.weight", "heads.L4.bias"]
    dim = {"resnet18": 512, VIT: 192}[backbone]
    assert st["n_trainable"] == dim * 8 + 8
    assert st["optimizer"]["name"] == "adamw"


def test_partial_trains_the_last_stage_of_a_cnn():
    (st,) = plan("partial", "--backbone", "resnet18")["stages"]
    trunk = {n.split(".")[1] for n in st["trainable"] if n.startswith("trunk.")}
    assert trunk == {"layer4"}
    assert [n for n in params("partial", "resnet18")
            if n.startswith(("trunk.layer4.", "heads."))] == st["trainable"]
    (st,) = plan("partial", "--backbone", CONVNEXT)["stages"]
    stages = {re.match(r"trunk\.stages\.(\d)\.", n).group(1) for n in st["trainable"]
              if n.startswith("trunk.stages.")}
    assert stages == {"3"}


def test_partial_trains_the_last_quarter_of_the_blocks_of_a_transformer():
    (st,) = plan("partial", "--backbone", VIT)["stages"]
    blocks = {int(m.group(1)) for n in st["trainable"]
              if (m := re.match(r"trunk\.blocks\.(\d+)\.", n))}
    assert blocks == {9, 10, 11}
    # what follows the last block (the final norm) trains with it; the embeddings do not
    assert {"trunk.norm.weight", "trunk.norm.bias", "heads.L4.weight"} <= set(st["trainable"])
    assert not any(n.startswith(("trunk.patch_embed", "trunk.cls_token", "trunk.pos_embed"))
                   for n in st["trainable"])
    assert [g["lr"] for g in st["param_groups"]] == [1e-4, 1e-3]


def _block_of(name: str) -> str:
    m = re.match(r"trunk\.(blocks\.\d+|layer\d|stages\.\d)\.", name)
    return m.group(1) if m else name


@pytest.mark.parametrize("backbone, n_blocks", [(VIT, 12), ("resnet18", 4), (CONVNEXT, 4)])
def test_full_has_one_group_per_block_with_rates_shrinking_towards_the_input(backbone, n_blocks):
    (st,) = plan("full", "--backbone", backbone, "--lr", "0.001", "--layer-decay", "0.5")["stages"]
    groups = st["param_groups"]
    names = [g["name"] for g in groups]
    assert names == ["stem"] + [f"block {i}" for i in range(1, n_blocks + 1)] + ["head"]
    lrs = [g["lr"] for g in groups]
    assert lrs == pytest.approx([0.001 * 0.5 ** (n_blocks + 1 - d) for d in range(n_blocks + 2)])
    assert all(a < b for a, b in zip(lrs, lrs[1:]))
    assert sum(g["n"] for g in groups) == st["n_trainable"]
    assert st["optimizer"] == {"name": "adamw", "weight_decay": 0.05, "layer_decay": 0.5}
    # the groups, rebuilt from the model: each block's parameters in one group, its own
    rec = override(get_recipe("full"), backbone=backbone, layer_decay=0.5)
    sp = stage_plan(models.build(rec, 8)[0], rec.stages[0])
    block_groups = [{_block_of(n) for n in ns} for _, ns, label in sp.groups
                    if label and label.startswith("block")]
    assert len(block_groups) == n_blocks
    assert all(len({b for b in g if not b.startswith("trunk.")}) == 1 for g in block_groups)


def test_multilevel_two_stages_like_resnet_ensemble():
    s1, s2 = plan("multilevel", "--backbone", "resnet18")["stages"]
    heads = [f"heads.L{i}.{w}" for i in range(5) for w in ("weight", "bias")]
    assert s2["trainable"] == heads + ["combiner.logits"]
    assert "combiner.logits" not in s1["trainable"]
    assert set(heads) <= set(s1["trainable"])
    assert any(n.startswith("trunk.layer1.") for n in s1["trainable"])
    assert [g["lr"] for g in s1["param_groups"]] == [1e-4, 1e-3]
    # AdamW spares the 1-D tensors: the heads' biases (5 x 8) and the combiner's logits (5)
    assert s2["param_groups"] == [{"lr": 1e-3, "n": (64 + 64 + 128 + 256 + 512) * 8 + 40 + 5,
                                   "weight_decay": 0.05, "n_no_decay": 40 + 5}]


def test_list_shows_the_modern_recipes_with_their_defaults():
    res = CliRunner().invoke(main, ["list"])
    assert res.exit_code == 0
    for name in MODERN:
        assert f"\n{name}  (" in res.output
    assert "layer decay 0.75" in res.output and "label smoothing 0.1" in res.output
    assert "warmup_cosine" in res.output
    as_json = json.loads(CliRunner().invoke(main, ["list", "--json"]).output)
    assert as_json["full"]["stages"][0]["optimizer"]["layer_decay"] == 0.75
    assert as_json["probe"]["augment"] == "rrc_flip"


def test_layer_decay_needs_a_modern_recipe():
    res = CliRunner().invoke(main, ["plan", "resnet", "--backbone", "resnet18",
                                    "--layer-decay", "0.5", "--json"])
    assert res.exit_code != 0 and "--layer-decay" in res.output
    assert "Traceback" not in res.output


def test_the_backbones_own_preprocessing():
    vit = models.inputs_of(override(get_recipe("full"), backbone=VIT))
    assert (vit.size, vit.pre.interpolation, vit.mean, vit.pre.crop_pct) == \
        (224, "bicubic", (0.5, 0.5, 0.5), 0.9)
    assert vit.pre.resize_size == 248
    small = models.inputs_of(override(get_recipe("full"), backbone=VIT, image_size=64))
    assert (small.size, small.pre.resize_size) == (64, 71)
    paper = models.inputs_of(get_recipe("resnet"))
    assert paper.pre is None and paper.size == 224
