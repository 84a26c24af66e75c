"""A trunk's depth groups, input to output: the stem, then one group per block (transformers) or
stage (CNNs); what follows the last block (a final norm, a last 1x1 conv) joins it. Layer-wise
learning-rate decay gives each group its rate; `partial` trains the last quarter of the blocks.

One matcher per (source, family), in timm's group_matcher format ({"stem": regex, "blocks":
regex or [(regex, suffix)]}: the numbers a blocks regex captures order the blocks; the suffix
(99999,) and names no regex matches join the last block), or a function name -> STEM, an
ordinal tuple, or None (joins the last block). timm models bring their own matcher
(`group_matcher(coarse=True)`: a block per ViT block, a stage per CNN stage).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from featx.errors import FeatxError

STEM = "stem"
_LAST = (99999,)  # timm's "merge with the previous group"


def _resnet(model: nn.Module) -> dict:
    return {"stem": r"^(conv1|bn1)\.", "blocks": r"^layer(\d+)\."}


def _features_children(model: nn.Module) -> Callable[[str], object]:
    """Models whose trunk is a `features` Sequential (VGG, MobileNet, EfficientNet, ConvNeXt,
    Swin, DenseNet, RegNet's trunk_output...): features.0 is the stem, each later child a group."""
    def match(name: str):
        m = re.match(r"^features\.(\d+)\.", name)
        if not m:
            return None
        return STEM if m.group(1) == "0" else (int(m.group(1)),)
    return match


def _vgg(model: nn.Module) -> Callable[[str], object]:
    """VGG: a group per conv block (the layers up to each max-pool), the first one the stem."""
    block, blocks = 0, {}
    for i, layer in enumerate(model.features):
        blocks[str(i)] = block
        block += isinstance(layer, nn.MaxPool2d)

    def match(name: str):
        m = re.match(r"^features\.(\d+)\.", name)
        if not m:
            return None
        b = blocks[m.group(1)]
        return STEM if b == 0 else (b,)
    return match


def _torchvision_vit(model: nn.Module) -> dict:
    return {"stem": r"^(conv_proj|class_token|encoder\.pos_embedding)",
            "blocks": [(r"^encoder\.layers\.encoder_layer_(\d+)\.", None),
                       (r"^encoder\.ln\.", _LAST)]}


def _open_clip(model: nn.Module) -> dict:
    # the image tower, alone or inside the CLIP model; ViT and ModifiedResNet towers
    v = r"^(?:visual\.)?"
    return {"stem": v + r"(conv1|conv2|conv3|bn1|bn2|bn3|class_embedding|positional_embedding"
                        r"|ln_pre|patch_embed)",
            "blocks": [(v + r"transformer\.resblocks\.(\d+)\.", None),
                       (v + r"layer(\d+)\.", None), (v + r"(ln_post|proj|attnpool)", _LAST)]}


def _timm(model: nn.Module) -> dict | Callable:
    return model.group_matcher(coarse=True)


# (source, family) -> model -> matcher; (source, "*") serves the families not named
MATCHERS: dict[tuple[str, str], Callable[[nn.Module], dict | Callable]] = {
    ("torchvision", "resnet"): _resnet,
    ("torchvision", "vgg"): _vgg,
    ("torchvision", "vit"): _torchvision_vit,
    ("torchvision", "*"): _features_children,
    ("timm", "*"): _timm,
    ("open_clip", "*"): _open_clip,
}


def _compile(matcher: dict) -> Callable[[str], object]:
    stem = re.compile(matcher["stem"]) if matcher.get("stem") else None
    blocks = matcher.get("blocks", [])
    if isinstance(blocks, str):
        blocks = [(blocks, None)]
    blocks = [(re.compile(r), tuple(suffix) if suffix else ()) for r, suffix in blocks]

    def match(name: str):
        if stem is not None and stem.match(name):
            return STEM
        for regex, suffix in blocks:
            m = regex.match(name)
            if m:
                if suffix == _LAST:
                    return None
                return tuple(float(g) for g in m.groups() if g is not None) + suffix
        return None
    return match


@dataclass(frozen=True)
class DepthGroups:
    groups: tuple[tuple[str, ...], ...]  # parameter names per group, input to output
    has_stem: bool

    @property
    def blocks(self) -> tuple[tuple[str, ...], ...]:
        return self.groups[1:] if self.has_stem else self.groups


def matcher_for(model: nn.Module, source: str, family: str) -> Callable[[str], object]:
    make = MATCHERS.get((source, family)) or MATCHERS.get((source, "*"))
    if make is None:
        raise FeatxError(f"no depth groups known for {source} {family} backbones")
    m = make(model)
    return m if callable(m) else _compile(m)


def depth_groups(model: nn.Module, source: str, family: str, names: list[str],
                 prefix: str = "") -> DepthGroups:
    """`names` (parameter names of `model`, each with `prefix`) in depth groups."""
    match = matcher_for(model, source, family)
    stem: list[str] = []
    by_ordinal: dict[tuple, list[str]] = {}
    after: list[str] = []
    for full in names:
        o = match(full[len(prefix):])
        if o == STEM:
            stem.append(full)
        elif o is None:
            after.append(full)
        else:
            by_ordinal.setdefault(o, []).append(full)
    blocks = [by_ordinal[o] for o in sorted(by_ordinal)]
    if after:
        if blocks:
            blocks[-1] += after
        else:
            blocks.append(after)
    groups = ([stem] if stem else []) + blocks
    return DepthGroups(tuple(tuple(g) for g in groups), has_stem=bool(stem))
