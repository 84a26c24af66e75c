"""Model surgery per recipe: new classifier, layer4 dropout, per-level ensemble, skip connections.

Every builder keeps the backbone's parameter names (conv1.*, layer4.*, features.*), so the
recipes' name patterns and `--weights PATH` state_dicts apply unchanged. Models return logits,
except the ensemble, which returns {"logits": log of the combined probabilities, "heads": [...]}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from featx.backbones import get_backbone, stages
from featx.errors import FeatxError
from featx.levels import LEVELS
from featx.weights import build_model
from finetune.recipes import Recipe


def logits_of(out: Tensor | dict) -> Tensor:
    """The prediction scores of any model's output."""
    return out["logits"] if isinstance(out, dict) else out


class DropoutBottleneck(Bottleneck):
    """torchvision's Bottleneck with Dropout2d between the 3x3 conv (conv2/bn2/relu) and conv3."""

    dropout: nn.Module

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.dropout(out)))
        return self.relu(out + identity)


class DropoutBasicBlock(BasicBlock):
    """BasicBlock (resnet18/34) with Dropout2d between its first and its last 3x3 conv."""

    dropout: nn.Module

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(self.dropout(out)))
        return self.relu(out + identity)


_DROPOUT_BLOCKS = {Bottleneck: DropoutBottleneck, BasicBlock: DropoutBasicBlock}


class Combiner(nn.Module):
    """A learned weighted average: softmax-normalised weights over its inputs."""

    def __init__(self, n: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n))

    def weights(self) -> Tensor:
        return torch.softmax(self.logits.float(), dim=0)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        w = self.weights().to(inputs[0].dtype)
        return sum(wi * x for wi, x in zip(w, inputs))


class _ResNetTrunk(nn.Module):
    """The ResNet's stem and layer1..4 under their original names, run stage by stage."""

    _TRUNK = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")

    def __init__(self, resnet: nn.Module):
        super().__init__()
        for name in self._TRUNK:
            setattr(self, name, getattr(resnet, name))
        # plain tuple: the stage wrappers share the modules registered above
        self._stages = tuple(m for _, m in stages(self, "resnet"))


class EnsembleNet(_ResNetTrunk):
    """One head per level L0..L4 (global average pool -> linear) and a combiner of their
    softmax outputs."""

    def __init__(self, resnet: nn.Module, channels: tuple[int, ...], n_classes: int):
        super().__init__(resnet)
        self.heads = nn.ModuleDict({lv: nn.Linear(c, n_classes) for lv, c in zip(LEVELS, channels)})
        self.combiner = Combiner(len(LEVELS))

    def forward(self, x: Tensor) -> dict:
        heads = []
        for lv, stage in zip(LEVELS, self._stages):
            x = stage(x)
            heads.append(self.heads[lv](torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))
        probs = self.combiner([torch.softmax(z.float(), dim=1) for z in heads])
        return {"logits": torch.log(probs.clamp_min(1e-12)), "heads": heads}


# stride that brings L0..L2 to L3's resolution (layer2 and layer3 each halve it)
_SKIP_STRIDES = {"L0": 4, "L1": 4, "L2": 2}


class SkipNet(_ResNetTrunk):
    """L0..L2 projected to L3's shape (1x1 conv with stride + batch norm), averaged with L3 by a
    learned weighted average, then layer4, global average pool, fc."""

    def __init__(self, resnet: nn.Module, channels: tuple[int, ...], n_classes: int):
        super().__init__(resnet)
        c3 = channels[LEVELS.index("L3")]
        self.skip = nn.ModuleDict({
            lv: nn.Sequential(nn.Conv2d(channels[LEVELS.index(lv)], c3, 1, stride=s, bias=False),
                              nn.BatchNorm2d(c3))
            for lv, s in _SKIP_STRIDES.items()})
        self.combiner = Combiner(len(_SKIP_STRIDES) + 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[LEVELS.index("L4")], n_classes)

    def forward(self, x: Tensor) -> Tensor:
        taps = []
        for stage in self._stages[:4]:
            x = stage(x)
            taps.append(x)
        inputs = [self.skip[lv](t) for lv, t in zip(_SKIP_STRIDES, taps)] + [taps[-1]]
        x = self._stages[4](self.combiner(inputs))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _classifier(model: nn.Module, recipe: Recipe, channels: tuple[int, ...],
                n_classes: int) -> nn.Module:
    model.fc = nn.Linear(model.fc.in_features, n_classes)
    return model


def _l4_dropout(model: nn.Module, recipe: Recipe, channels: tuple[int, ...],
                n_classes: int) -> nn.Module:
    model = _classifier(model, recipe, channels, n_classes)
    for block in model.layer4:
        block.__class__ = _DROPOUT_BLOCKS[type(block)]
        block.dropout = nn.Dropout2d(recipe.dropout)
    return model


def _ensemble(model: nn.Module, recipe: Recipe, channels: tuple[int, ...],
              n_classes: int) -> nn.Module:
    return EnsembleNet(model, channels, n_classes)


def _skip(model: nn.Module, recipe: Recipe, channels: tuple[int, ...], n_classes: int) -> nn.Module:
    return SkipNet(model, channels, n_classes)


def _vgg_gap(model: nn.Module, recipe: Recipe, channels: tuple[int, ...],
             n_classes: int) -> nn.Module:
    # VGG without its three FC layers: global average pool -> dropout -> one linear layer
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(nn.Dropout(recipe.dropout),
                                     nn.Linear(channels[LEVELS.index("L4")], n_classes))
    return model


@dataclass(frozen=True)
class ModelKind:
    family: str  # the backbone family it needs
    surgery: Callable[[nn.Module, Recipe, tuple[int, ...], int], nn.Module]


MODELS: dict[str, ModelKind] = {
    "classifier": ModelKind("resnet", _classifier),
    "l4_dropout": ModelKind("resnet", _l4_dropout),
    "ensemble": ModelKind("resnet", _ensemble),
    "skip": ModelKind("resnet", _skip),
    "vgg_gap": ModelKind("vgg", _vgg_gap),
}


def build(recipe: Recipe, n_classes: int, weights: str = "none", seed: int = 0,
          progress: bool = True) -> tuple[nn.Module, str]:
    """The recipe's model on its backbone with `weights`, and the weights identity to record.
    New layers are initialised from `seed`, so two builds give the same model."""
    kind = MODELS[recipe.model]
    backbone = get_backbone(recipe.backbone)
    if backbone.family != kind.family:
        raise FeatxError(f"--backbone {recipe.backbone} is a {backbone.family} model; recipe "
                         f"{recipe.name} needs a {kind.family} backbone")
    model, identity = build_model(backbone, weights, seed=seed, progress=progress)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        model = kind.surgery(model, recipe, backbone.channels, n_classes)
    return model, identity
