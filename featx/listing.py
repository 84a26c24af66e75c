"""`featx backbones`: what `--backbone` takes, with family, level dims, input size, where the
pretrained weights come from and whether they are on disk here."""

from __future__ import annotations

from collections.abc import Sequence

# a few timm / open_clip names researchers start from (any timm model and open_clip tag works)
EXAMPLES: tuple[str, ...] = (
    "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
    "timm/vit_base_patch14_dinov2.lvd142m",
    "timm/vit_base_patch14_reg4_dinov2.lvd142m",
    "timm/vit_large_patch14_dinov2.lvd142m",
    "timm/convnext_base.fb_in22k_ft_in1k",
    "timm/convnext_tiny.in12k_ft_in1k",
    "timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k",
    "timm/efficientnet_b3.ra2_in1k",
    "timm/eva02_base_patch14_224.mim_in22k",
    "clip/ViT-B-32:openai",
    "clip/ViT-B-16:openai",
    "clip/ViT-L-14:openai",
    "clip/ViT-B-16:laion2b_s34b_b88k",
    "clip/RN50:openai",
)


def describe(name: str) -> dict:
    """One backbone as a JSON-able row."""
    from featx.backbones import get_backbone
    from featx.weights import imagenet_cached

    bb = get_backbone(name)
    pp = bb.default_preprocess
    try:
        cached = imagenet_cached(bb)
    except Exception:  # a hub cache that cannot be read: say no
        cached = False
    return {"name": bb.name, "family": bb.family, "source": bb.source,
            "dims": dict(bb.dims), "tokens": sorted(bb.token_levels),
            "taps": {lv: f"{t.module or '(output)'}: {t.describe()}" for lv, t in bb.taps.items()},
            "default_pool": bb.pool_for(bb.levels) or "(none for all levels)",
            "input_size": pp.input_size,
            "preprocess": pp.describe(), "weights_from": bb.weights_from or "(none)",
            "cached": cached}


def rows(names: Sequence[str] | None = None, progress=None) -> list[dict]:
    if not names:  # the default listing: stored rows, no model built, no torch imported
        from featx.backbones.known import rows as stored

        known = stored()
        if known is not None:
            return known
    from featx.backbones import list_backbones

    names = list(names) if names else list_backbones() + list(EXAMPLES)
    out = []
    for n in names:
        out.append(describe(n))
        if progress:
            progress(n)
    return out


def table(items: Sequence[dict]) -> str:
    head = ["name", "family", "levels (dims)", "input", "weights from", "cached"]
    body = [[r["name"], r["family"],
             " ".join(str(d) for d in r["dims"].values()) + _tokens(r),
             str(r["input_size"]), r["weights_from"], "yes" if r["cached"] else "no"]
            for r in items]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip() for x in [head] + body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _tokens(row: dict) -> str:
    """' (tokens)' where every level before `emb` is a token sequence, ' (tokens: L4)' where
    some are."""
    levels = [lv for lv in row["dims"] if lv != "emb"]
    tokens = [lv for lv in row["tokens"] if lv in levels]
    if not tokens:
        return ""
    return " (tokens)" if len(tokens) == len(levels) else f" (tokens: {','.join(tokens)})"
