"""`finetune plan`'s trainable sets and learning rates on the papers' backbones (no training)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from finetune import models
from finetune.cli import main
from finetune.recipes import RECIPES, get_recipe


def plan(recipe: str, *args: str) -> dict:
    res = CliRunner().invoke(main, ["plan", recipe, "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def numel(model: nn.Module, names: list[str]) -> int:
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in names)


@pytest.fixture(scope="module")
def resnet101() -> nn.Module:
    return models.build(get_recipe("resnet"), 8)[0]


def test_plan_shape_matches_spec():
    p = plan("resnet_fc")
    assert set(p) == {"recipe", "backbone", "stages"}
    assert (p["recipe"], p["backbone"]) == ("resnet_fc", "resnet101")
    (st,) = p["stages"]
    assert set(st) == {"name", "epochs", "trainable", "n_trainable", "param_groups", "optimizer"}
    assert st["trainable"] == ["fc.weight", "fc.bias"]
    assert st["n_trainable"] == 2048 * 8 + 8
    # SGD (the paper's recipe) decays every parameter
    assert st["param_groups"] == [{"lr": 1e-4, "n": 2048 * 8 + 8, "weight_decay": 1e-4,
                                   "n_no_decay": 0}]
    assert st["epochs"] == 50
    assert st["optimizer"] == {"name": "sgd", "momentum": 0.9, "nesterov": True,
                               "weight_decay": 1e-4}


def test_resnet_recipes_train_what_the_paper_says(resnet101):
    all_names = [n for n, _ in resnet101.named_parameters()]
    expect = {
        "resnet_fc": [n for n in all_names if n.startswith("fc.")],
        "resnet_l4": [n for n in all_names if n.startswith(("layer4.", "fc."))],
        "resnet": all_names,
        "resnet_l4_dropout": [n for n in all_names if n.startswith(("layer4.", "fc."))],
    }
    for name, names in expect.items():
        (st,) = plan(name)["stages"]
        assert st["trainable"] == names, name
        assert st["n_trainable"] == numel(resnet101, names)
        assert [g["lr"] for g in st["param_groups"]] == [1e-4]


def test_resnet_skip_trains_skip_convs_combiner_layer4_fc():
    model = models.build(get_recipe("resnet_skip"), 8)[0]
    (st,) = plan("resnet_skip")["stages"]
    prefixes = {n.split(".")[0] for n in st["trainable"]}
    assert prefixes == {"skip", "combiner", "layer4", "fc"}
    assert {n.split(".")[1] for n in st["trainable"] if n.startswith("skip.")} == {"L0", "L1", "L2"}
    frozen = [n for n, _ in model.named_parameters() if n not in st["trainable"]]
    assert frozen and all(n.startswith(("conv1.", "bn1.", "layer1.", "layer2.", "layer3."))
                          for n in frozen)
    # the skip convs bring L0..L2 to L3's shape: 1024 channels, strides 4, 4, 2
    convs = {lv: model.skip[lv][0] for lv in ("L0", "L1", "L2")}
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs.values()] == [
        (64, 1024, (4, 4)), (256, 1024, (4, 4)), (512, 1024, (2, 2))]


def test_resnet_ensemble_two_stages_heads_and_combiner_lrs():
    s1, s2 = plan("resnet_ensemble")["stages"]
    assert s2["trainable"] == [f"heads.L{i}.{w}" for i in range(5) for w in ("weight", "bias")] + [
        "combiner.logits"]
    assert s2["param_groups"] == [{"lr": 1e-3, "n": (64 + 256 + 512 + 1024 + 2048 + 5) * 8 + 5,
                                   "weight_decay": 1e-4, "n_no_decay": 0}]
    assert "combiner.logits" not in s1["trainable"]
    assert any(n.startswith("layer1.") for n in s1["trainable"])
    assert [g["lr"] for g in s1["param_groups"]] == [1e-4, 1e-3]
    assert s1["param_groups"][1]["n"] == (64 + 256 + 512 + 1024 + 2048) * 8 + 5 * 8


def test_vgg19_unfreezes_the_last_convs_stage_by_stage():
    p = plan("vgg19_unfreeze")
    assert p["backbone"] == "vgg19"
    assert [s["epochs"] for s in p["stages"]] == [10] * 6
    assert [s["optimizer"]["name"] for s in p["stages"]] == ["adam"] * 6
    assert [s["param_groups"][0]["lr"] for s in p["stages"]] == [1e-4, 1e-5, 1e-5, 1e-6, 1e-6, 1e-6]
    conv_layers = [28, 30, 32, 34]  # features.N of VGG19's last four conv layers, last first
    for k, st in enumerate(p["stages"][:5]):
        convs = sorted({int(re.match(r"features\.(\d+)\.", n).group(1))
                        for n in st["trainable"] if n.startswith("features.")})
        assert convs == sorted(conv_layers[4 - k:]), k
        assert "classifier.1.weight" in st["trainable"]
    model = models.build(get_recipe("vgg19_unfreeze"), 8)[0]
    assert p["stages"][-1]["trainable"] == [n for n, _ in model.named_parameters()]
    assert p["stages"][-1]["n_trainable"] == 20024384 + 512 * 8 + 8
    assert isinstance(model.classifier[0], nn.Dropout) and model.classifier[0].p == 0.5


def test_l4_dropout_sits_between_conv2_and_conv3_of_every_layer4_block(resnet101):
    model = models.build(get_recipe("resnet_l4_dropout"), 8)[0]
    calls: list[str] = []
    for i, block in enumerate(model.layer4):
        assert isinstance(block.dropout, nn.Dropout2d) and block.dropout.p == 0.5
        for part in ("conv2", "dropout", "conv3"):
            getattr(block, part).register_forward_hook(
                lambda m, a, o, tag=f"{i}.{part}": calls.append(tag))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    assert calls == [f"{i}.{p}" for i in range(3) for p in ("conv2", "dropout", "conv3")]
    assert not any(isinstance(m, nn.Dropout2d) for m in resnet101.modules())
    # the parameter names are resnet101's: a plain state_dict loads into it
    model.load_state_dict(resnet101.state_dict())


def test_overrides_apply_to_the_plan():
    p = plan("resnet_ensemble", "--lr", "0.01", "--head-lr", "0.1", "--stage-epochs", "3,2",
             "--backbone", "resnet18", "--optimizer", "adam")
    assert p["backbone"] == "resnet18"
    assert [s["epochs"] for s in p["stages"]] == [3, 2]
    assert [g["lr"] for g in p["stages"][0]["param_groups"]] == [0.01, 0.1]
    assert p["stages"][1]["optimizer"]["name"] == "adam"
    # --lr alone leaves the heads at their own rate, as --help says
    p = plan("resnet_ensemble", "--lr", "0.01", "--backbone", "resnet18")
    assert [g["lr"] for g in p["stages"][0]["param_groups"]] == [0.01, 1e-3]
    text = " ".join(CliRunner().invoke(main, ["run", "--help"]).output.split())
    assert "keeps its own rate (the papers' fixed 1e-3, not scaled with --lr): set it with " \
           "--head-lr" in text


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown recipe 'nope'"),
    (["resnet", "--backbone", "vgg19"], "needs a resnet backbone"),
    (["vgg19_unfreeze", "--backbone", "resnet50"], "needs a vgg backbone"),
    (["resnet", "--backbone", "alexnet"], "unknown --backbone 'alexnet'"),
    (["resnet_ensemble", "--stage-epochs", "1,2,3"], "--stage-epochs"),
])
def test_plan_bad_input_is_one_line(args, message):
    res = CliRunner().invoke(main, ["plan", *args, "--json"])
    assert res.exit_code != 0
    assert message in res.output and "Traceback" not in res.output


def test_list_names_every_recipe():
    res = CliRunner().invoke(main, ["list"])
    assert res.exit_code == 0
    for name in RECIPES:
        assert name in res.output
    assert "nesterov" in res.output
    as_json = json.loads(CliRunner().invoke(main, ["list", "--json"]).output)
    assert as_json["vgg19_unfreeze"]["split"] == "90/5/5"


def test_recipes_survive_the_config_json_round_trip():
    from finetune.recipes import recipe_from_dict, recipe_to_dict

    for rec in RECIPES.values():
        assert recipe_from_dict(json.loads(json.dumps(recipe_to_dict(rec)))) == rec
