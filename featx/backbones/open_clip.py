"""open_clip image towers: `clip/<arch>:<pretrained tag>` (e.g. clip/ViT-L-14:openai).

The built model is the whole CLIP (its text tower gives the zero-shot class embeddings); levels
are read from `model.visual`. Taps: ViT towers as transformers (blocks ceil(k*D/5), L4 after
ln_post), ModifiedResNet (RN50...) as a five-reduction CNN, timm towers by timm's rules; every
tower adds `emb`, the projected image embedding (`encode_image`, not normalised).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch
from torch import nn

from featx.backbones.registry import Backbone, Preprocess, Tap, register_prefix
from featx.backbones.sources import Source, register_source
from featx.backbones.taps import block_indices, settle_tokens, trace, trace_dims
from featx.errors import FeatxError
from featx.levels import LEVELS

_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


@contextlib.contextmanager
def _quiet():
    """open_clip logs a warning for every model built without weights."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _vit(visual: nn.Module, size: int) -> tuple[dict[str, Tap], str]:
    blocks = visual.transformer.resblocks
    kind = "tokens" if getattr(visual.transformer, "batch_first", True) else "lnd"
    taps = [Tap(f"transformer.resblocks.{i}", kind) for i in block_indices(len(blocks))]
    if visual.attn_pool is None and not getattr(visual, "final_ln_after_pool", False):
        taps.append(Tap("ln_post", "tokens"))  # ln_post over all tokens: the final norm
    else:
        taps.append(Tap(f"transformer.resblocks.{len(blocks) - 1}", kind))
    taps = dict(zip(LEVELS, taps))
    patch = visual.conv1.stride[0]
    out, _ = trace(visual, taps, size)
    cls = getattr(visual, "class_embedding", None) is not None
    most = int(cls) + int(getattr(visual, "num_registers", 0) or 0)
    return settle_tokens(taps, out, size, dict.fromkeys(taps, patch), most, cls), ""


def _modified_resnet(visual: nn.Module, size: int) -> tuple[dict[str, Tap], str]:
    return dict(zip(LEVELS, [Tap("act3")] + [Tap(f"layer{i}") for i in range(1, 5)])), ""


def _timm_tower(visual: nn.Module, size: int) -> tuple[dict[str, Tap], str]:
    from featx.backbones.timm import model_taps

    taps, _, rev = model_taps(visual.trunk, size, prefix="trunk.")
    return taps, rev


# image tower class -> its taps (and their revision, '' where featx's first rules agree)
TOWER_TAPS: dict[str, Callable[[nn.Module, int], tuple[dict[str, Tap], str]]] = {
    "VisionTransformer": _vit,
    "ModifiedResNet": _modified_resnet,
    "TimmModel": _timm_tower,
}


def _split(name: str) -> tuple[str, str]:
    import open_clip

    arch, _, tag = name.partition(":")
    if arch not in open_clip.list_models():
        raise FeatxError(f"unknown --backbone clip/{name}: open_clip has no architecture "
                         f"{arch!r} (e.g. ViT-B-32, ViT-B-16, ViT-L-14, RN50)")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag and tag not in tags:  # no tag at all: the architecture, for --weights none|PATH
        raise FeatxError(f"--backbone clip/{name}: unknown pretrained tag {tag!r} "
                         f"({', '.join(tags) or 'none known'})")
    return arch, tag


def _kwargs(arch: str, tag: str) -> dict:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag) if tag else {}
    return {"force_quick_gelu": bool(cfg.get("quick_gelu", False))}


def pretrained_preprocess(arch: str, tag: str, size: int | tuple | None = None) -> Preprocess:
    """open_clip's `preprocess` for arch:tag as create_model sets it (its PreprocessCfg defaults,
    the tag's pretrained config over them, the image tower's size; default: the architecture's
    configured size)."""
    import open_clip
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    pp = merge_preprocess_dict(PreprocessCfg(), open_clip.get_pretrained_cfg(arch, tag)
                               if tag else {})
    if size is None:
        size = open_clip.get_model_config(arch)["vision_cfg"]["image_size"]
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h != w:
        raise FeatxError(f"--backbone clip/{arch}:{tag}: its input is {h}x{w}, featx extracts "
                         f"square inputs")
    # open_clip.transform.image_transform: 'bilinear', else bicubic (also for 'random')
    interpolation = "bilinear" if pp["interpolation"] == "bilinear" else "bicubic"
    mean, std = (tuple(float(v) for v in (x if isinstance(x, (tuple, list)) else (x,) * 3))
                 for x in (pp["mean"], pp["std"]))
    return Preprocess(int(h), int(h), interpolation=interpolation, mean=mean, std=std,
                      crop_pct=1.0, resize_mode=pp["resize_mode"],
                      fill=(int(pp["fill_color"]),) * 3)


def resolve(name: str) -> Backbone:
    import open_clip

    arch, tag = _split(name)
    cfg = open_clip.get_pretrained_cfg(arch, tag) if tag else {}
    try:
        with _quiet(), torch.device("meta"):
            model = open_clip.create_model(arch, pretrained=None, device="meta",
                                           **_kwargs(arch, tag)).eval()
    except (ImportError, RuntimeError) as e:  # e.g. "Please pip install transformers"
        raise FeatxError(f"--backbone clip/{name}: open_clip cannot build it here "
                         f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                         f"e.g. clip/ViT-B-32:openai builds with what is installed") from None
    visual = model.visual
    kind = type(visual).__name__
    if kind not in TOWER_TAPS:
        raise FeatxError(f"--backbone clip/{name}: featx cannot tap a {kind} image tower "
                         f"(it taps {', '.join(TOWER_TAPS)})")
    pp = pretrained_preprocess(arch, tag, open_clip.get_model_preprocess_cfg(model)["size"])
    try:
        taps, rev = TOWER_TAPS[kind](visual, pp.input_size)
    except FeatxError as e:
        raise FeatxError(f"--backbone clip/{name}: featx cannot tap its {kind} tower: {e}") \
            from None
    taps["emb"] = Tap("", "vector")
    tokens = [t for t in taps.values() if t.is_tokens]
    return Backbone(name=f"clip/{name}", family=f"clip-{kind}", source="open_clip", taps=taps,
                    dims=trace_dims(visual, taps, pp.input_size), default_preprocess=pp,
                    num_prefix_tokens=max((t.prefix for t in tokens), default=0),
                    has_cls_token=any(t.cls for t in tokens), taps_rev=rev,
                    ref=(arch, tag), weights_from=_where(cfg),
                    extra={"pretrained_cfg": {**cfg, "hf_hub_id": cfg.get("hf_hub")}})


def _where(cfg: dict) -> str:
    if cfg.get("hf_hub"):
        return f"https://huggingface.co/{cfg['hf_hub'].rstrip('/')}"
    return str(cfg.get("url") or "")


def _cached(bb: Backbone) -> str | None:
    from featx.backbones.timm import cached_file

    return cached_file(bb.extra["pretrained_cfg"], _FILES)


def _size_kw(bb: Backbone, image_size: int | None) -> dict:
    """create_model's force_image_size at another input size (position embeddings resampled on
    load)."""
    if image_size and image_size != bb.default_preprocess.input_size:
        return {"force_image_size": image_size}
    return {}


def _build(bb: Backbone, pretrained: bool, image_size: int | None, progress: bool) -> nn.Module:
    import open_clip

    arch, tag = bb.ref
    kw = {**_kwargs(arch, tag), **_size_kw(bb, image_size)}
    if not pretrained:
        with _quiet():
            return open_clip.create_model(arch, pretrained=None, **kw)
    # a file already in the cache is loaded directly, without asking the hub
    return open_clip.create_model(arch, pretrained=_cached(bb) or tag, **kw)


def _from_file(bb: Backbone, path: str, image_size: int | None) -> nn.Module:
    """open_clip's own loading of a checkpoint file (weights_only / safetensors; position
    embeddings resized to the input size)."""
    import open_clip

    arch, tag = bb.ref
    kw = _kwargs(arch, tag) if tag else {}
    return open_clip.create_model(arch, pretrained=path, **kw, **_size_kw(bb, image_size))


register_source(Source(
    name="open_clip", build=_build, from_file=_from_file, cached=lambda bb: _cached(bb) is not None,
    identity=lambda bb: f"open_clip:{bb.ref[0]}:{bb.ref[1]}:{bb.weights_from}",
    host=lambda bb: bb.weights_from,
    tower=lambda model: model.visual))
register_prefix("clip/", resolve)
