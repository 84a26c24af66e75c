"""timm backbones: `timm/<model>[.<pretrained tag>]`, any model timm knows.

The taps come from the model itself, read on the meta device: transformers (every feature_info
entry a block at one stride) give blocks ceil(k*D/5) and the output of `forward_features` (after
the final norm; after the head's `fc_norm` where it holds the final norm); CNNs with five
feature_info entries give their first four and `forward_features`' output (the map before the
head's pooling); models with four or three stages give the stem, the first three stages and the
output. One traced forward then decides each tap's layout (map, NHWC map or tokens) and how many
prefix tokens it really holds; what cannot be tapped this way is refused in one line.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from featx.backbones.registry import Backbone, Preprocess, Tap, preprocess_from, register_prefix
from featx.backbones.sources import Source, hub_checkpoint, register_source
from featx.backbones.taps import (block_indices, settle_tokens, shape_tap, shared_outputs,
                                  trace, trace_dims, trace_modules)
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
    """The top-level module that finishes last before the first stage starts (`seen`: the
    trace, in the order modules return; a stage container may never be called itself)."""
    parent = first_stage.split(".")[0]
    start = next((i for i, (n, _, _) in enumerate(seen)
                  if n == first_stage or n.startswith(first_stage + ".")), None)
    tops = [n for n, _, _ in seen[:start] if n and "." not in n and n != parent]
    if start is None or not tops:
        raise FeatxError(f"no stem module before {first_stage}")
    return tops[-1]


def _extra_tokens(model: nn.Module) -> int:
    """How many prefix tokens the model can put ahead of its patch tokens."""
    n = getattr(model, "num_prefix_tokens", None)
    if isinstance(n, int):
        return n
    return sum(int(p.shape[1]) for p in (getattr(model, a, None) for a in
                                         ("cls_token", "dist_token", "reg_token"))
               if isinstance(p, torch.Tensor) and p.ndim == 3)


def _class_token(model: nn.Module) -> bool:
    return bool(getattr(model, "has_class_token", getattr(model, "cls_token", None) is not None))


def _modules(info: list[str], reductions: list[int], last: str, seen: list, model: nn.Module
             ) -> tuple[list[str], list[int]]:
    """The five tapped modules and their strides: transformers (every feature at one stride) the
    blocks ceil(k*D/5) and the output; hierarchical models with 5 features their first four
    and the output (with more, the last four before the output), with 3 or 4 the stem, the
    first three and the output."""
    if len(set(reductions)) == 1 and len(info) >= 4:
        idx = block_indices(len(info))
        return [info[i] for i in idx] + [last], [reductions[i] for i in idx] + [reductions[-1]]
    if len(info) == 5:
        return info[:4] + [last], reductions[:4] + [reductions[-1]]
    if len(info) > 5 and len(set(reductions)) == len(info):  # VGG, DLA (a stride-1 first)
        return info[-5:-1] + [last], reductions[-5:-1] + [reductions[-1]]
    if len(info) in (3, 4):
        return ([_stem(model, info[0], seen)] + info[:3] + [last],
                [reductions[0]] + reductions[:3] + [reductions[-1]])
    raise FeatxError(f"{len(info)} feature levels (strides {reductions}); featx taps "
                     f"transformers with 4+ blocks and models with 3 to 5 stages")


def _map_kind(x: torch.Tensor, channels: int | None, model: nn.Module) -> str:
    """'map' ([B, C, H, W]) or 'nhwc', from where the known channel count sits."""
    if channels and x.shape[1] != x.shape[-1]:
        return "map" if x.shape[1] == channels else "nhwc"
    return "nhwc" if str(getattr(model, "output_fmt", "NCHW")) == "NHWC" else "map"


def _fc_norm(model: nn.Module, taps: dict[str, Tap]) -> None:
    """L4 after the real final norm: where the head normalises the pooled tokens (`fc_norm`,
    timm's gap ViTs, BEiT, EVA), L4 is that pooled, normalised vector."""
    fc = getattr(model, "fc_norm", None)
    if not isinstance(fc, nn.Module) or isinstance(fc, nn.Identity) or not taps["L4"].is_tokens:
        return
    pooled = {"avg": "gap", "token": "cls", "max": "gmp"}.get(str(getattr(model, "global_pool", "")))
    if pooled is None:
        raise FeatxError(f"its head normalises after a {getattr(model, 'global_pool', '?')!r} "
                         f"pool that featx does not reproduce")
    taps["L4"] = Tap("fc_norm", "vector", pooled=pooled)


def _legacy(info: list[str], last: str, rank: int, seen: list, model: nn.Module, fmt: str
            ) -> list[tuple] | None:
    """The taps featx's first rules gave (module, kind, prefix, class token) -- to tell which
    models' taps changed (their caches get a new fingerprint)."""
    if rank == 3:
        n, cls = int(getattr(model, "num_prefix_tokens", 0) or 0), _class_token(model)
        return [(m, "tokens", n, cls and n > 0) for m in
                [info[i] for i in block_indices(len(info))] + [last]]
    if len(info) == 5:
        return [(m, fmt, 0, False) for m in info[:4] + [last]]
    if len(info) == 4:
        return [(m, fmt, 0, False) for m in [_stem(model, info[0], seen)] + info[:3] + [last]]
    return None


def model_taps(model: nn.Module, image_size: int, prefix: str = ""
               ) -> tuple[dict[str, Tap], str, str]:
    """{level: Tap} of a (meta-device) timm model, module paths under `prefix`, decided from one
    traced forward: per tap map or tokens, and how many prefix tokens it really holds; its kind
    ('tokens', 'cnn' or 'stages'); and its taps revision ('' where featx's first rules agree)."""
    from dataclasses import replace

    info = [f["module"] for f in model.feature_info]
    reductions = [int(f["reduction"]) for f in model.feature_info]
    channels = dict(zip(info, (int(f["num_chs"]) for f in model.feature_info)))
    names = dict(model.named_modules())
    absent = [m for m in info if m not in names]
    if absent:
        raise FeatxError(f"timm's feature list names {absent[0]!r}, a module the model does "
                         f"not have (a timm inconsistency); featx cannot tap it")
    seen = trace_modules(model, image_size, call=lambda m, x: m.forward_features(x))
    last, rank = _output_module(model, seen)
    fmt = "nhwc" if str(getattr(model, "output_fmt", "NCHW")) == "NHWC" else "map"
    mods, strides = _modules(info, reductions, last, seen, model)
    out, raw = trace(model, {lv: Tap(m) for lv, m in zip(LEVELS, mods)}, image_size)
    shared = shared_outputs(raw)
    if shared:
        a, b = shared[0]
        raise FeatxError(f"{a} and {b} would be the same tensor ({mods[LEVELS.index(a)]}, "
                         f"{mods[LEVELS.index(b)]}: {len(info)} stages and no final norm); featx "
                         f"taps five distinct depths")
    taps = {}
    for lv, m in zip(LEVELS, mods):
        x = out[lv]
        kind = "tokens" if x.ndim == 3 else _map_kind(x, channels.get(m), model)
        taps[lv] = Tap(m, kind)
    shaped = {lv: shape_tap(raw[lv], t) for lv, t in taps.items()}
    taps = settle_tokens(taps, shaped, image_size, dict(zip(LEVELS, strides)),
                         _extra_tokens(model), _class_token(model))
    odd = [lv for lv, t in taps.items() if t.kind not in ("map", "nhwc", "tokens")]
    if odd:
        raise FeatxError(f"{odd[0]} is a {shaped[odd[0]].ndim}-d tensor, neither a map nor tokens")
    _fc_norm(model, taps)
    old = _legacy(info, last, rank, seen, model, fmt)
    new = [(t.module, t.kind, t.prefix, t.cls) for t in taps.values()]
    rev = "" if old == new else "taps-2"
    taps = {lv: replace(t, module=prefix + t.module) for lv, t in taps.items()}
    kinds = {t.kind for t in taps.values()}
    kind = "tokens" if kinds <= {"tokens", "vector"} else (
        "cnn" if len(info) == 5 and len(set(reductions)) > 1 else "stages")
    return taps, kind, rev


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
        with torch.device("meta"):  # eval: a train-mode norm refuses the 1-image trace
            return timm.create_model(name, pretrained=False).eval()
    except (RuntimeError, ValueError, KeyError) as e:
        raise FeatxError(f"--backbone timm/{name}: {e}") from None


def resolve(name: str) -> Backbone:
    model = _meta_model(name)
    cfg = dict(model.pretrained_cfg)
    pp = pretrained_preprocess(cfg, name)
    try:
        taps, kind, rev = model_taps(model, pp.input_size)
    except FeatxError as e:
        raise FeatxError(f"--backbone timm/{name}: featx cannot tap {type(model).__name__}: {e} "
                         f"(`featx backbones --timm PATTERN` lists other models)") from None
    return Backbone(
        name=f"timm/{name}", family=type(model).__module__.rsplit(".", 1)[-1], source="timm",
        taps=taps, dims=trace_dims(model, taps, pp.input_size), default_preprocess=pp,
        num_prefix_tokens=_extra_tokens(model), has_cls_token=_class_token(model),
        ref=name, weights_from=_where(cfg), taps_rev=rev,
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
