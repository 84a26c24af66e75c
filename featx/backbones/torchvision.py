"""torchvision backbones: one entry per model (name -> family), a table of taps per family.

Taps (SPEC): CNNs with five reductions give the last output at stride 2, 4, 8, 16, 32, L4 being
the map entering the classifier's pooling; four-stage models (ConvNeXt, Swin) give the stem and the
four stages; ViT gives blocks ceil(k*D/5) and the final norm.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torchvision.models as tvm
from torch import nn

from featx.backbones.registry import Backbone, Preprocess, Tap, register
from featx.backbones.sources import Source, hub_checkpoint, register_source
from featx.backbones.taps import block_indices, trace_dims
from featx.errors import FeatxError
from featx.levels import LEVELS

Taps = dict[str, Tap]


def _levels(taps: list[Tap]) -> Taps:
    return dict(zip(LEVELS, taps))


def _resnet(model: nn.Module) -> Taps:
    return _levels([Tap("maxpool")] + [Tap(f"layer{i}") for i in range(1, 5)])


def _vgg(model: nn.Module) -> Taps:
    pools = [i for i, m in enumerate(model.features) if isinstance(m, nn.MaxPool2d)]
    return _levels([Tap(f"features.{i}") for i in pools])


def _children_strides(model: nn.Module, names: list[str], kind: str = "map") -> list[int]:
    """Output stride after each named module, run in order on a meta input of 224 px."""
    x = torch.empty(1, 3, 224, 224, device=next(model.parameters()).device)
    strides = []
    for name in names:
        x = model.get_submodule(name)(x)
        h = x.shape[1] if kind == "nhwc" else x.shape[2]
        strides.append(224 // h)
    return strides


def _last_per_stride(names: list[str], strides: list[int]) -> list[str]:
    last: dict[int, str] = {}
    for name, s in zip(names, strides):
        last[s] = name
    return [last[s] for s in sorted(last)]


def _by_stride(container: str, post_l4: str | None = None) -> Callable[[nn.Module], Taps]:
    """CNNs whose trunk is a Sequential `container`: the last child at each of the 5 strides."""
    def taps(model: nn.Module) -> Taps:
        names = [f"{container}.{n}" for n, _ in model.get_submodule(container).named_children()]
        picked = _last_per_stride(names, _children_strides(model, names))
        if len(picked) != 5:
            raise FeatxError(f"expected 5 strides in {container}, found {len(picked)}")
        out = [Tap(n) for n in picked]
        out[-1] = Tap(picked[-1], post=post_l4)
        return _levels(out)
    return taps


def _regnet(model: nn.Module) -> Taps:
    return _levels([Tap("stem")] + [Tap(f"trunk_output.block{i}") for i in range(1, 5)])


def _four_stage(kind: str, l4: Tap) -> Callable[[nn.Module], Taps]:
    """ConvNeXt / Swin: features = [stem, stage1, down, stage2, down, stage3, down, stage4]."""
    def taps(model: nn.Module) -> Taps:
        return _levels([Tap("features.0", kind)] + [Tap(f"features.{i}", kind) for i in (1, 3, 5)]
                       + [l4])
    return taps


def _vit(model: nn.Module) -> Taps:
    idx = block_indices(len(model.encoder.layers))
    # the class token first, then the patch tokens (torchvision's VisionTransformer)
    return _levels([Tap(f"encoder.layers.encoder_layer_{i}", "tokens", prefix=1, cls=True)
                    for i in idx] + [Tap("encoder.ln", "tokens", prefix=1, cls=True)])


# family -> function(meta model) -> {level: Tap}
FAMILY_TAPS: dict[str, Callable[[nn.Module], Taps]] = {
    "resnet": _resnet,
    "vgg": _vgg,
    "mobilenet": _by_stride("features"),
    "efficientnet": _by_stride("features"),
    "densenet": _by_stride("features", post_l4="relu"),  # torchvision applies F.relu after it
    "regnet": _regnet,
    "convnext": _four_stage("map", Tap("avgpool", input=True)),
    "swin": _four_stage("nhwc", Tap("avgpool", input=True)),  # after the final norm, permuted
    "vit": _vit,
}

# bare name -> family (torchvision.models.get_model / get_model_weights know the rest)
MODELS: dict[str, str] = {
    **{f"resnet{d}": "resnet" for d in (18, 34, 50, 101, 152)},
    "vgg16": "vgg", "vgg19": "vgg",
    "mobilenet_v2": "mobilenet", "mobilenet_v3_large": "mobilenet",
    **{f"efficientnet_b{i}": "efficientnet" for i in range(5)},
    "efficientnet_v2_s": "efficientnet",
    **{f"regnet_y_{s}": "regnet" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf")},
    "densenet121": "densenet",
    "convnext_tiny": "convnext", "convnext_small": "convnext", "convnext_base": "convnext",
    "vit_b_16": "vit",
    "swin_t": "swin", "swin_s": "swin", "swin_b": "swin",
}
# SPEC fixes the first seven's preprocessing: shorter side to the image size, centre crop
SPEC_PREPROCESS = {f"resnet{d}" for d in (18, 34, 50, 101, 152)} | {"vgg16", "vgg19"}
FIXED_SIZE = {"vit"}  # families whose weights fix the input size


def weights_preprocess(name: str, weights=None) -> Preprocess:
    """The eval transform of `name`'s weights (torchvision's weights.transforms()); SPEC's for
    the papers' ResNet/VGG."""
    if name in SPEC_PREPROCESS:
        return Preprocess(224, 224)
    t = (weights or tvm.get_model_weights(name)).DEFAULT.transforms()
    crop, resize = int(t.crop_size[0]), int(t.resize_size[0])
    # ratio: --image-size S resizes to floor(S * resize / crop) exactly (no rounded crop_pct)
    return Preprocess(crop, resize, interpolation=t.interpolation.value,
                      mean=tuple(t.mean), std=tuple(t.std), crop_pct=crop / resize,
                      ratio=(resize, crop))


def _entry(name: str) -> Backbone:
    family = MODELS[name]
    weights = tvm.get_model_weights(name)
    try:
        with torch.device("meta"):
            meta = tvm.get_model(name, weights=None)
    except NotImplementedError:  # RegNet computes its widths with tensors: build it on the CPU
        meta = tvm.get_model(name, weights=None).to("meta")
    taps = FAMILY_TAPS[family](meta)
    pp = weights_preprocess(name, weights)
    dims = trace_dims(meta, taps, pp.input_size)
    return Backbone(name=name, family=family, source="torchvision", taps=taps, dims=dims,
                    default_preprocess=pp, num_prefix_tokens=1 if family == "vit" else 0,
                    has_cls_token=family == "vit", ref=weights, weights_from=weights.DEFAULT.url,
                    extra={"fixed_size": family in FIXED_SIZE})


for _name in MODELS:
    register(functools.partial(_entry, _name), name=_name)


def _build(bb: Backbone, pretrained: bool, image_size: int | None, progress: bool) -> nn.Module:
    kw = {}
    native = bb.default_preprocess.input_size
    if bb.extra.get("fixed_size") and image_size and image_size != native:
        if pretrained:
            raise FeatxError(f"{bb.name}'s ImageNet weights are for {native} px: use "
                             f"--image-size {native}, or timm/{bb.name.replace('_b_', '_base_patch')}"
                             f"_224 (timm resamples position embeddings)")
        kw["image_size"] = image_size
    return tvm.get_model(bb.name, weights=bb.ref.DEFAULT if pretrained else None,
                         progress=progress, **kw)


def _cached(bb: Backbone) -> bool:
    return hub_checkpoint(bb.ref.DEFAULT.url).is_file()


register_source(Source(name="torchvision", build=_build, cached=_cached,
                       identity=lambda bb: f"imagenet:{bb.ref.DEFAULT}",
                       host=lambda bb: bb.weights_from))
