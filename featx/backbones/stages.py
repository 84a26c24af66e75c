"""The papers' ResNet / VGG cut into five stage modules (finetune's recipes build on them):
running them in order reproduces the trunk; stage k's output is level Lk."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from featx.levels import LEVELS


def _resnet_stages(model: nn.Module) -> list[nn.Module]:
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    return [stem, model.layer1, model.layer2, model.layer3, model.layer4]


def _vgg_stages(model: nn.Module) -> list[nn.Module]:
    stages, current = [], []
    for layer in model.features:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            stages.append(nn.Sequential(*current))
            current = []
    return stages


# family -> function cutting a model into its L0..L4 stages (modules shared with the model)
STAGES: dict[str, Callable[[nn.Module], list[nn.Module]]] = {
    "resnet": _resnet_stages,
    "vgg": _vgg_stages,
}


def stages(model: nn.Module, family: str) -> list[tuple[str, nn.Module]]:
    """[(level, module)] for L0..L4; running them in order reproduces the model's trunk."""
    mods = STAGES[family](model)
    assert len(mods) == len(LEVELS), f"{family}: expected {len(LEVELS)} stages, got {len(mods)}"
    return list(zip(LEVELS, mods))
