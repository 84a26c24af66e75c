"""A trunk's depth groups, input to output: the stem, then one group per block (transformers) or
stage (CNNs); what follows the last one (a final norm) joins it. Layer-wise learning-rate decay
gives each group its rate; `partial` trains the last quarter of the blocks / stages.

One matcher per (source, family), (source, "*") for the families not named. A matcher maps a
parameter name, relative to the image tower, to STEM, an ordinal tuple (equal ordinals = one
group, in increasing order) or None (joins the last group). Dict matchers are in timm's
group_matcher format ({"stem": regex, "blocks": regex or [(regex, suffix)]}: the numbers a
blocks regex captures give the ordinal; the suffix (99999,) joins the last group):

- CNNs and four-stage models: the stages between the backbone's own taps (featx's registry):
  everything up to the L0 tap is the stem, the modules after tap k-1 up to tap k are stage k;
- timm models: timm's own `group_matcher(coarse=True)` (a group per ViT block, per CNN stage);
- ViTs of torchvision and open_clip: a group per block.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from featx.backbones import Backbone
from featx.backbones.sources import image_tower
from featx.errors import FeatxError

STEM = "stem"
_LAST = (99999,)  # timm's "merge with the previous group"

Matcher = Callable[[str], object]


def _between_taps(tower: nn.Module, bb: Backbone) -> Matcher:
    """Stage k = the modules (in definition order, which is execution order for these models)
    after tap L(k-1)'s subtree up to the end of tap Lk's; stage 0 is the stem."""
    order = [name for name, _ in tower.named_modules()]
    position = {name: i for i, name in enumerate(order)}
    ends = []  # position just past each tap module's subtree
    for lv in ("L0", "L1", "L2", "L3", "L4"):
        tap = bb.taps[lv]
        start = position[tap.module]
        end = start + 1
        while end < len(order) and order[end].startswith(tap.module + "."):
            end += 1
        # a tap on a module's input (ConvNeXt's avgpool) ends before that module
        ends.append(start if tap.input else end)

    def match(name: str):
        module = name.rsplit(".", 1)[0] if "." in name else ""
        while module and module not in position:  # a parameter of a module's own child
            module = module.rsplit(".", 1)[0] if "." in module else ""
        p = position[module]
        for k, end in enumerate(ends):
            if p < end:
                return STEM if k == 0 else (k,)
        return None
    return match


def _timm(tower: nn.Module, bb: Backbone) -> dict | Matcher:
    """timm's own grouping; the stages between the taps for a model that has none."""
    if not hasattr(tower, "group_matcher"):
        return _between_taps(tower, bb)
    return tower.group_matcher(coarse=True)


def _torchvision_vit(tower: nn.Module, bb: Backbone) -> dict:
    return {"stem": r"^(conv_proj|class_token|encoder\.pos_embedding)",
            "blocks": [(r"^encoder\.layers\.encoder_layer_(\d+)\.", None),
                       (r"^encoder\.ln\.", _LAST)]}


def _open_clip_vit(tower: nn.Module, bb: Backbone) -> dict:
    return {"stem": r"^(conv1|class_embedding|positional_embedding|ln_pre|patch_dropout)",
            "blocks": [(r"^transformer\.resblocks\.(\d+)\.", None),
                       (r"^(ln_post|proj|attn_pool)", _LAST)]}


# (source, family) -> (image tower, its registry entry) -> matcher
MATCHERS: dict[tuple[str, str], Callable[[nn.Module, Backbone], dict | Matcher]] = {
    ("torchvision", "vit"): _torchvision_vit,
    ("torchvision", "*"): _between_taps,
    ("timm", "*"): _timm,
    ("open_clip", "clip-VisionTransformer"): _open_clip_vit,
    ("open_clip", "*"): _between_taps,
}


def _compile(matcher: dict) -> Matcher:
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


def matcher_for(tower: nn.Module, bb: Backbone) -> Matcher:
    make = MATCHERS.get((bb.source, bb.family)) or MATCHERS.get((bb.source, "*"))
    if make is None:
        raise FeatxError(f"no depth groups known for {bb.source} {bb.family} backbones")
    m = make(tower, bb)
    return m if callable(m) else _compile(m)


@dataclass(frozen=True)
class DepthGroups:
    groups: tuple[tuple[str, ...], ...]  # parameter names per group, input to output
    has_stem: bool

    @property
    def blocks(self) -> tuple[tuple[str, ...], ...]:
        return self.groups[1:] if self.has_stem else self.groups


def _tower_prefix(model: nn.Module, tower: nn.Module) -> str:
    for name, m in model.named_modules():
        if m is tower:
            return f"{name}." if name else ""
    raise FeatxError("the image tower is not part of the model")


def depth_groups(model: nn.Module, bb: Backbone, names: list[str], prefix: str = ""
                 ) -> DepthGroups:
    """`names` (parameter names of `model`, each starting with `prefix`) in depth groups; names
    outside the image tower are left out."""
    tower = image_tower(bb, model)
    match = matcher_for(tower, bb)
    head = prefix + _tower_prefix(model, tower)
    stem: list[str] = []
    by_ordinal: dict[tuple, list[str]] = {}
    after: list[str] = []
    for full in names:
        if not full.startswith(head):
            continue
        o = match(full[len(head):])
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
