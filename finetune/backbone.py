"""What the modern recipes need of a backbone, behind one small adapter over featx's registry:
resolve a `--backbone` name, check and build it with `--weights`, its preprocessing, and a module
returning its raw taps {level: [B, C, H, W] map or [B, N, C] tokens} with autograd.

Until featx's registry covers every source (issue 9), `timm/<model>` names are served here from
timm directly (`_timm_*`); everything else goes through featx.backbones / featx.weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from featx.errors import FeatxError
from featx.levels import LEVELS
from featx.preprocess import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class Preprocess:
    """The backbone's own evaluation preprocessing (resize shorter side, centre crop, normalise)."""

    input_size: int
    resize_size: int
    interpolation: str  # "bilinear" | "bicubic" | ...
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float

    def at(self, image_size: int | None) -> "Preprocess":
        """The same preprocessing at another input size (the crop fraction kept)."""
        if not image_size or image_size == self.input_size:
            return self
        return dataclasses.replace(self, input_size=image_size,
                                   resize_size=int(math.floor(image_size / self.crop_pct)))


@dataclass(frozen=True)
class Trunk:
    """A resolved backbone: where it comes from and what its taps look like."""

    name: str
    source: str  # "torchvision" | "timm" | "open_clip"
    family: str
    dims: dict[str, int]  # level -> channels of its raw tap
    class_token: bool  # token taps: pool the class token (else the mean of the patch tokens)
    prefix_tokens: int  # class + register tokens at the start of a token sequence
    preprocess: Preprocess
    entry: object = None  # featx's registry entry (None for the timm fallback)


_TV_PREPROCESS = Preprocess(224, 224, "bilinear", IMAGENET_MEAN, IMAGENET_STD, 1.0)


# -- timm fallback ---------------------------------------------------------------------------

_HINT = ("use --weights PATH with a state_dict file you have, or --weights none for random "
         "initialisation")


def _timm_create(model_name: str, pretrained: bool = False) -> nn.Module:
    import timm

    try:
        return timm.create_model(model_name, pretrained=pretrained, num_classes=0)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise FeatxError(f"unknown --backbone timm/{model_name}: not a timm model") from None
        raise


def _timm_resolve(name: str) -> Trunk:
    model = _timm_create(name.removeprefix("timm/"))
    cfg = model.pretrained_cfg
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    crop = float(cfg.get("crop_pct", 0.875))
    pre = Preprocess(size, int(math.floor(size / crop)), cfg.get("interpolation", "bicubic"),
                     tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD)),
                     crop)
    return Trunk(name, "timm", type(model).__name__.lower(), {"L4": model.num_features},
                 class_token=bool(getattr(model, "has_class_token", False)),
                 prefix_tokens=int(getattr(model, "num_prefix_tokens", 0)), preprocess=pre)


def _timm_check(trunk: Trunk, weights: str) -> None:
    from featx.weights import _reachable, _weights_file

    if weights == "imagenet":
        if not _reachable("https://huggingface.co"):
            raise FeatxError(f"cannot download ImageNet weights for {trunk.name} from "
                             f"https://huggingface.co (no network?): {_HINT}")
    elif weights != "none":
        _weights_file(weights)


def _timm_build(trunk: Trunk, weights: str, seed: int) -> tuple[nn.Module, str]:
    from featx.weights import _file_sha256, _weights_file, load_state_dict_file

    model_name = trunk.name.removeprefix("timm/")
    if weights == "imagenet":
        _timm_check(trunk, weights)
        try:
            return _timm_create(model_name, pretrained=True), f"imagenet:{trunk.name}"
        except Exception as e:
            raise FeatxError(f"could not load ImageNet weights for {trunk.name} ({e}): {_HINT}") \
                from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _timm_create(model_name)
    if weights == "none":
        return model, f"none:seed={seed}"
    path = _weights_file(weights)
    sd = load_state_dict_file(path)
    sd = {k: v for k, v in sd.items() if k in model.state_dict()}  # its own classifier dropped
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        lines = str(e).strip().splitlines()
        raise FeatxError(f"{path}: does not fit {trunk.name} "
                         f"({lines[1].strip() if len(lines) > 1 else lines[0]})") from None
    return model, f"file:{path.name}:sha256={_file_sha256(path)}"


class _TimmDeepest(nn.Module):
    """timm fallback taps: L4 only (forward_features: last map, or tokens after the final norm)."""

    def __init__(self, model: nn.Module, levels: Sequence[str]):
        super().__init__()
        if list(levels) != ["L4"]:
            raise FeatxError("multi-level taps of timm backbones need featx's backbone registry "
                             "(issue 9); use a torchvision ResNet/VGG for now")
        self.model = model

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"L4": self.model.forward_features(x)}


# -- torchvision (featx's registry) ------------------------------------------------------------

class _StageTaps(nn.Module):
    """featx's L0..L4 stages run in order, stopping after the deepest level asked for."""

    def __init__(self, model: nn.Module, family: str, levels: Sequence[str]):
        super().__init__()
        from featx.backbones import stages

        self.model = model
        self.levels = list(levels)
        self._stages = tuple(stages(model, family))
        self._last = max(LEVELS.index(lv) for lv in levels)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = {}
        for lv, stage in self._stages[: self._last + 1]:
            x = stage(x)
            if lv in self.levels:
                out[lv] = x
        return out


def resolve(name: str) -> Trunk:
    """The backbone `name` (`--backbone`), or a one-line error naming it."""
    if name.startswith("timm/"):
        return _timm_resolve(name)
    from featx.backbones import get_backbone

    bb = get_backbone(name)
    return Trunk(name, "torchvision", bb.family, dict(zip(LEVELS, bb.channels)),
                 class_token=False, prefix_tokens=0, preprocess=_TV_PREPROCESS, entry=bb)


def check_weights(trunk: Trunk, weights: str) -> None:
    """featx extract's check: fail at once when the weights cannot be had (same message)."""
    if trunk.entry is None:
        return _timm_check(trunk, weights)
    from featx.weights import check_weights as featx_check

    featx_check(trunk.entry, weights)


def build(trunk: Trunk, weights: str, seed: int = 0, progress: bool = True
          ) -> tuple[nn.Module, str]:
    """The backbone with `weights` and the weights identity featx records."""
    if trunk.entry is None:
        return _timm_build(trunk, weights, seed)
    from featx.weights import build_model

    return build_model(trunk.entry, weights, seed=seed, progress=progress)


def tapped(model: nn.Module, trunk: Trunk, levels: Sequence[str]) -> nn.Module:
    """A module sharing `model`'s parameters that returns {level: raw tap} for `levels`."""
    if trunk.entry is None:
        return _TimmDeepest(model, levels)
    return _StageTaps(model, trunk.family, levels)
