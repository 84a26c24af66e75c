"""Backbone registry: one small function per torchvision model, and the L0..L4 stages per family.

Every backbone is cut into five stages whose outputs are SPEC's taps:
ResNet L0 = stem after max-pool, L1..L4 = layer1..layer4; VGG L0..L4 = the five conv blocks, each
ending in its max-pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torchvision.models as tvm
from torch import nn

from featx.errors import FeatxError
from featx.levels import LEVELS


@dataclass(frozen=True)
class Backbone:
    name: str
    family: str
    build: Callable[..., nn.Module]  # the torchvision constructor, called with weights=...
    weights: type  # the torchvision weights enum (its DEFAULT is the ImageNet weights)
    channels: tuple[int, ...]  # channel count at L0..L4


_REGISTRY: dict[str, Callable[[], Backbone]] = {}


def register(fn: Callable[[], Backbone]) -> Callable[[], Backbone]:
    _REGISTRY[fn.__name__] = fn
    return fn


_BASIC = (64, 64, 128, 256, 512)
_BOTTLENECK = (64, 256, 512, 1024, 2048)
_VGG = (64, 128, 256, 512, 512)


@register
def resnet18() -> Backbone:
    return Backbone("resnet18", "resnet", tvm.resnet18, tvm.ResNet18_Weights, _BASIC)


@register
def resnet34() -> Backbone:
    return Backbone("resnet34", "resnet", tvm.resnet34, tvm.ResNet34_Weights, _BASIC)


@register
def resnet50() -> Backbone:
    return Backbone("resnet50", "resnet", tvm.resnet50, tvm.ResNet50_Weights, _BOTTLENECK)


@register
def resnet101() -> Backbone:
    return Backbone("resnet101", "resnet", tvm.resnet101, tvm.ResNet101_Weights, _BOTTLENECK)


@register
def resnet152() -> Backbone:
    return Backbone("resnet152", "resnet", tvm.resnet152, tvm.ResNet152_Weights, _BOTTLENECK)


@register
def vgg16() -> Backbone:
    return Backbone("vgg16", "vgg", tvm.vgg16, tvm.VGG16_Weights, _VGG)


@register
def vgg19() -> Backbone:
    return Backbone("vgg19", "vgg", tvm.vgg19, tvm.VGG19_Weights, _VGG)


def list_backbones() -> list[str]:
    return sorted(_REGISTRY)


def get_backbone(name: str) -> Backbone:
    if name not in _REGISTRY:
        raise FeatxError(f"unknown --backbone {name!r}: choose one of {', '.join(list_backbones())}")
    return _REGISTRY[name]()


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
