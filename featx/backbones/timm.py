"""timm backbones: `timm/<model>[.<pretrained tag>]`, any model timm knows.

The taps come from the model itself, read on the meta device: transformers (every feature_info
entry a block at one stride) give blocks ceil(k*D/5) and the output of `forward_features` (after
the final norm); CNNs with five feature_info entries give them (L4: `forward_features`' output,
the map before the head's pooling); four-stage models give the stem and the four stages.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from featx.backbones.registry import Backbone, Preprocess, Tap, preprocess_from, register_prefix
from featx.backbones.sources import Source, hub_checkpoint, register_source
from featx.backbones.taps import block_indices, trace_dims, trace_modules
from featx.errors import FeatxError
from featx.levels import LEVELS


def _output_module(model: nn.Module, seen: list) -> tuple[str, int]:
    """The module whose output is `forward_features`' result, and that result's rank (`seen`:
    the trace of forward_features)."""
    *mods, (_, shape, rid) = seen
    names = [n for n, _, i in mods if i == rid and n]
    if not names:
        raise FeatxError(f"{type(model).__name__}: forward_features ends outside a module; "
                         f"featx cannot tap its last level")
    return names[-1], len(shape)


def _stem(model: nn.Module, first_stage: str, seen: list) -> str:
    """The top-level module that runs right before the one holding the first stage."""
    tops: list[str] = []
    for name, _, _ in seen:
        if name and "." not in name and name not in tops:
            tops.append(name)
    parent = first_stage.split(".")[0]
    if parent not in tops or tops.index(parent) == 0:
        raise FeatxError(f"{type(model).__name__}: no stem module before {first_stage}")
    return tops[tops.index(parent) - 1]


def model_taps(model: nn.Module, image_size: int, prefix: str = "") -> tuple[dict[str, Tap], str]:
    """{level: Tap} of a (meta-device) timm model, module paths under `prefix`; and its kind
    ('tokens', 'cnn' or 'four-stage')."""
    info = [f["module"] for f in model.feature_info]
    reductions = [f["reduction"] for f in model.feature_info]
    seen = trace_modules(model, image_size, call=lambda m, x: m.forward_features(x))
    last, rank = _output_module(model, seen)
    fmt = "nhwc" if str(getattr(model, "output_fmt", "NCHW")) == "NHWC" else "map"
    if rank == 3:
        kind = "tokens"
        idx = block_indices(len(info))
        taps = [Tap(info[i], "tokens") for i in idx] + [Tap(last, "tokens")]
    elif len(info) == 5:
        kind = "cnn"
        taps = [Tap(m, fmt) for m in info[:4]] + [Tap(last, fmt)]
    elif len(info) == 4:
        kind = "four-stage"
        taps = [Tap(_stem(model, info[0], seen), fmt)] + [Tap(m, fmt) for m in info[:3]] \
            + [Tap(last, fmt)]
    else:
        raise FeatxError(f"{type(model).__name__}: {len(info)} feature levels (reductions "
                         f"{reductions}); featx taps models with 4 stages, 5 reductions or "
                         f"transformer blocks")
    taps = [Tap(prefix + t.module if t.module else prefix.rstrip("."), t.kind) for t in taps]
    return dict(zip(LEVELS, taps)), kind


# timm's crop_mode -> featx's resize_mode (timm.data.transforms_imagenet_eval)
CROP_MODES = {"center": "shortest", "squash": "squash", "border": "longest"}


def pretrained_preprocess(cfg: dict, name: str = "") -> Preprocess:
    """timm's eval transform of a pretrained config (resolve_data_config + create_transform):
    resize floor(size / crop_pct) by its crop_mode, centre crop, mean/std."""
    from timm.data import resolve_data_config
    from timm.data.constants import DEFAULT_CROP_PCT

    data = resolve_data_config(pretrained_cfg=cfg)
    _, h, w = data["input_size"]
    mode = data["crop_mode"] or "center"
    why = (f"its input is {h}x{w}, featx extracts square inputs" if h != w
           else f"crop_mode {mode!r}" if mode not in CROP_MODES
           else "crop_border_pixels" if cfg.get("crop_border_pixels") else "")
    if why:
        raise FeatxError(f"--backbone timm/{name or cfg.get('architecture', '?')}: featx cannot "
                         f"reproduce timm's preprocessing ({why})")
    mean = tuple(float(m) for m in data["mean"])
    return preprocess_from(int(h), float(data["crop_pct"] or DEFAULT_CROP_PCT),
                           interpolation=str(data["interpolation"]), mean=mean,
                           std=tuple(float(s) for s in data["std"]), resize_mode=CROP_MODES[mode],
                           fill=tuple(round(255 * m) for m in mean) if mode == "border"
                           else (0, 0, 0))


def _meta_model(name: str) -> nn.Module:
    import timm

    arch = name.split(".", 1)[0]
    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch[:12]}*")[:5]
        raise FeatxError(f"unknown --backbone timm/{name}: timm has no model {arch!r}"
                         + (f" (similar: {', '.join(close)})" if close else ""))
    try:
        with torch.device("meta"):
            return timm.create_model(name, pretrained=False)
    except (RuntimeError, ValueError, KeyError) as e:
        raise FeatxError(f"--backbone timm/{name}: {e}") from None


def resolve(name: str) -> Backbone:
    model = _meta_model(name)
    cfg = dict(model.pretrained_cfg)
    pp = pretrained_preprocess(cfg, name)
    taps, kind = model_taps(model, pp.input_size)
    tokens = kind == "tokens"
    return Backbone(
        name=f"timm/{name}", family=type(model).__module__.rsplit(".", 1)[-1], source="timm",
        taps=taps, dims=trace_dims(model, taps, pp.input_size), default_preprocess=pp,
        num_prefix_tokens=int(getattr(model, "num_prefix_tokens", 0)) if tokens else 0,
        has_cls_token=tokens and bool(getattr(model, "has_class_token",
                                              getattr(model, "cls_token", None) is not None)),
        ref=name, weights_from=_where(cfg),
        extra={"kind": kind, "pretrained_cfg": cfg,
               "fixed_size": bool(cfg.get("fixed_input_size", False))})


def _where(cfg: dict) -> str:
    if cfg.get("hf_hub_id"):
        return f"https://huggingface.co/{cfg['hf_hub_id']}"
    return str(cfg.get("url") or "")


def cached_file(cfg: dict, names: tuple[str, ...]) -> str | None:
    """The weights file of a pretrained config already in the HF hub or torch hub cache."""
    repo = cfg.get("hf_hub_id") or cfg.get("hf_hub")
    if repo:
        from huggingface_hub import try_to_load_from_cache

        repo = repo.rstrip("/")
        for fn in ([cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else []) + list(names):
            p = try_to_load_from_cache(repo, fn)
            if isinstance(p, str) and os.path.isfile(p):
                return p
    url = cfg.get("url")
    if url:
        p = hub_checkpoint(url)
        if p.is_file():
            return str(p)
    return None


_FILES = ("model.safetensors", "pytorch_model.bin")


def _size_kw(bb: Backbone, image_size: int | None) -> dict:
    """create_model's img_size for a fixed-size model at another size (timm resamples position
    embeddings when loading)."""
    if image_size and image_size != bb.default_preprocess.input_size and bb.extra["fixed_size"]:
        return {"img_size": image_size}
    return {}


def _build(bb: Backbone, pretrained: bool, image_size: int | None, progress: bool) -> nn.Module:
    import timm

    kw = _size_kw(bb, image_size)
    if pretrained:
        path = cached_file(bb.extra["pretrained_cfg"], _FILES)
        if path:  # straight from the file: no network call at all
            kw["pretrained_cfg_overlay"] = {"file": path}
        return timm.create_model(bb.ref, pretrained=True, **kw)
    return timm.create_model(bb.ref, pretrained=False, **kw)


def _from_file(bb: Backbone, path: str, image_size: int | None) -> nn.Module:
    """timm's own loading of a state_dict file (weights_only / safetensors), which resamples
    position embeddings when the input size is not the checkpoint's."""
    import timm

    return timm.create_model(bb.ref, pretrained=True, pretrained_cfg_overlay={"file": path},
                             **_size_kw(bb, image_size))


register_source(Source(
    name="timm", build=_build, from_file=_from_file,
    cached=lambda bb: cached_file(bb.extra["pretrained_cfg"], _FILES) is not None,
    identity=lambda bb: f"timm:{bb.ref}:{bb.weights_from}",
    host=lambda bb: bb.weights_from or "https://huggingface.co"))
register_prefix("timm/", resolve)
