"""Model surgery per recipe: new classifier, layer4 dropout, per-level ensemble, skip connections;
for the modern recipes, any backbone's trunk with a head per tap (HeadNet).

Every builder keeps the backbone's parameter names (conv1.*, layer4.*, features.*), so the
recipes' name patterns and `--weights PATH` state_dicts apply unchanged. Models return logits,
except the ensemble, which returns {"logits": log of the combined probabilities, "heads": [...]}.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from featx.backbones import Backbone, Preprocess, get_backbone, stages, tapped
from featx.errors import FeatxError
from featx.levels import LEVELS
from featx.pooling import gap, get_token_pool
from featx.preprocess import IMAGENET_MEAN, IMAGENET_STD
from featx.weights import build_model
from finetune.depth import DepthGroups, depth_groups
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


def pool_tap(t: Tensor, class_token: bool, prefix_tokens: int) -> Tensor:
    """[B, C, H, W] map -> global average; [B, N, C] tokens -> the class token, or the mean of
    the patch tokens (class and register tokens excluded); [B, D] as it is."""
    if t.ndim == 4:
        return gap(t)
    if t.ndim == 3:  # featx extract's default token pool
        return get_token_pool("cls" if class_token else "gap", prefix_tokens, class_token)(t)
    return t


class HeadNet(nn.Module):
    """Any backbone's trunk (`trunk.*`, its own parameter names inside) with a linear head per
    tap (`heads.<level>`). One level: its logits. Several: {"logits": log of a learned weighted
    average of the heads' softmax outputs (`combiner`), "heads": [logits per level]}.

    A trunk none of whose parameters train runs in eval mode (batch-norm statistics, dropout)
    and without gradients: a probe costs one forward of the trunk per image."""

    def __init__(self, trunk: nn.Module, bb: Backbone, levels: tuple[str, ...], n_classes: int):
        super().__init__()
        self.trunk = trunk
        taps = tapped(trunk, bb, levels)
        own = {id(p) for p in trunk.parameters()}
        if any(id(p) not in own for p in taps.parameters()):
            raise FeatxError(f"{bb.name}: its tap module holds parameters outside the model")
        self._taps = (taps,)  # hooks on the trunk's own modules; not registered twice
        self.bb = bb
        self.levels = tuple(levels)
        self.heads = nn.ModuleDict({lv: nn.Linear(bb.dims[lv], n_classes) for lv in levels})
        self.combiner = Combiner(len(levels)) if len(levels) > 1 else None
        self.unused: frozenset[str] = frozenset()  # trunk parameters the taps never use

    def trunk_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.trunk.parameters())

    def train(self, mode: bool = True) -> "HeadNet":
        super().train(mode)
        if mode and self.trunk_frozen():
            self.trunk.eval()
        return self

    def features(self, x: Tensor) -> dict[str, Tensor]:
        """{level: pooled tap}; the trunk without gradients where none of it trains."""
        with torch.no_grad() if self.trunk_frozen() else nullcontext():
            taps = self._taps[0](x)
        return {lv: pool_tap(taps[lv], self.bb.taps[lv].cls, self.bb.taps[lv].prefix)
                for lv in self.levels}

    def forward(self, x: Tensor) -> Tensor | dict:
        feats = self.features(x)
        heads = [self.heads[lv](feats[lv]) for lv in self.levels]
        if self.combiner is None:
            return heads[0]
        probs = self.combiner([torch.softmax(z.float(), dim=1) for z in heads])
        return {"logits": torch.log(probs.clamp_min(1e-12)), "heads": heads}

    def depth_groups(self, names: list[str]) -> DepthGroups:
        """`names`' trunk parameters in depth groups (finetune.depth)."""
        return depth_groups(self.trunk, self.bb, [n for n in names if n.startswith("trunk.")],
                            prefix="trunk.")


def unused_parameters(model: HeadNet, image_size: int) -> frozenset[str]:
    """Trunk parameters that get no gradient from the taps (its own classifier, a text tower,
    blocks after the deepest tap): one forward and backward of a blank image finds them."""
    was = model.training
    model.eval()
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(True)
        p.grad = None
    with torch.enable_grad():
        taps = model._taps[0](torch.zeros(1, 3, image_size, image_size))
        sum(t.float().sum() for t in taps.values()).backward()
    unused = frozenset(f"trunk.{n}" for n, p in model.trunk.named_parameters() if p.grad is None)
    for n, p in model.named_parameters():
        p.grad = None
        p.requires_grad_(flags[n])
    model.train(was)
    return unused


def build_headnet(recipe: Recipe, n_classes: int, weights: str = "none", seed: int = 0,
                  progress: bool = True) -> tuple[nn.Module, str]:
    """The modern recipes' model: `recipe.backbone`'s trunk with `weights` and its heads."""
    bb = get_backbone(recipe.backbone)
    missing = [lv for lv in recipe.levels if lv not in bb.dims]
    if missing:
        raise FeatxError(f"--backbone {recipe.backbone} has no tap {', '.join(missing)} "
                         f"(its taps: {', '.join(bb.dims)})")
    trunk, identity = build_model(bb, weights, seed=seed, progress=progress,
                                  image_size=recipe.image_size or None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        model = HeadNet(trunk, bb, recipe.levels, n_classes)
    model.unused = unused_parameters(model, preprocess_of(recipe).input_size)
    return model, identity


def preprocess_of(recipe: Recipe) -> Preprocess:
    """The recipe's preprocessing on its backbone: the backbone's own at the recipe's size."""
    return get_backbone(recipe.backbone).preprocess(recipe.image_size or None)


@dataclass(frozen=True)
class Inputs:
    """What a recipe's model is fed: crop size, preprocessing, normalisation."""

    size: int
    pre: Preprocess | None  # None: the papers' resize + centre crop at `size`
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def inputs_of(recipe: Recipe) -> Inputs:
    """The modern recipes: the backbone's own preprocessing (at --image-size if given); the
    papers': shorter side to image_size, centre crop, ImageNet normalisation."""
    if recipe.model in ANY_BACKBONE:
        pre = preprocess_of(recipe)
        return Inputs(pre.input_size, pre, pre.mean, pre.std)
    return Inputs(recipe.image_size, None, IMAGENET_MEAN, IMAGENET_STD)


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

# the modern recipes' models: any backbone (finetune.backbone resolves it)
ANY_BACKBONE: dict[str, Callable[..., tuple[nn.Module, str]]] = {
    "head": build_headnet,
    "multilevel": build_headnet,
}


def build(recipe: Recipe, n_classes: int, weights: str = "none", seed: int = 0,
          progress: bool = True) -> tuple[nn.Module, str]:
    """The recipe's model on its backbone with `weights`, and the weights identity to record.
    New layers are initialised from `seed`, so two builds give the same model."""
    if recipe.model in ANY_BACKBONE:
        return ANY_BACKBONE[recipe.model](recipe, n_classes, weights, seed=seed, progress=progress)
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

