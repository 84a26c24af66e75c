"""Every featx level of a backbone against an independent reference from the model's own code.

The reference never reads featx's tap decisions about layout or prefix tokens: token levels are
compared with timm's `forward_intermediates` (which strips the prefix tokens itself) or with
timm's / open_clip's own pooled features (`forward_head(pre_logits=True)`, `encode_image`); maps
with a plain forward hook on the tapped module, laid out by timm's feature_info channel counts;
token levels neither covers (hooks) drop the model's own `num_prefix_tokens`.
Used by the CI sample (tests/featx/test_taps_conformance.py) and the catalogue sweep
(benchmarks/taps_sweep.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from featx.errors import FeatxError


@dataclass
class Verdict:
    """exact | refused | wrong | skipped, with the reason and what was compared."""

    name: str
    status: str
    reason: str = ""
    size: int = 0
    checked: dict[str, float] = field(default_factory=dict)  # "L2/gap" -> max relative diff


def _hooked(model: nn.Module, x: Tensor, modules: list[str]) -> dict[str, Tensor]:
    """Outputs of the named modules in one plain forward (a tuple's first element)."""
    got: dict[str, Tensor] = {}
    hs = []
    for m in dict.fromkeys(modules):
        def hook(mod, a, o, m=m):
            got.setdefault(m, o[0] if isinstance(o, (tuple, list)) else o)
        hs.append(model.get_submodule(m).register_forward_hook(hook) if m else None)
    try:
        y = model(x)
    finally:
        for h in hs:
            if h is not None:
                h.remove()
    if "" in modules:
        got[""] = y
    return got


def _map_mean(x: Tensor, channels: int | None, nhwc: bool) -> Tensor:
    if channels and x.shape[1] != x.shape[-1]:
        nhwc = x.shape[-1] == channels
    return x.float().mean((1, 2) if nhwc else (2, 3))


def _timm_refs(model: nn.Module, bb, x: Tensor) -> dict[str, dict[str, Tensor]]:
    """{level: {pool: reference}} for a timm model (or an open_clip timm tower's trunk)."""
    info = {f["module"]: (i, int(f["num_chs"])) for i, f in enumerate(model.feature_info)}
    nhwc = str(getattr(model, "output_fmt", "NCHW")) == "NHWC"
    strip = "trunk." if bb.source == "open_clip" else ""
    levels = [lv for lv in bb.taps if lv != "emb"]
    mods = {lv: bb.taps[lv].module.removeprefix(strip) for lv in levels}
    raw = _hooked(model, x, list(mods.values()))
    refs: dict[str, dict[str, Tensor]] = {}
    feats = model.forward_features(x)
    pre = None
    try:
        pre = model.forward_head(feats, pre_logits=True)
    except Exception:  # noqa: BLE001 -- a head that cannot give pre-logits: no such reference
        pre = None
    pool = str(getattr(model, "global_pool", ""))
    for lv in levels:
        m, t = mods[lv], raw[mods[lv]]
        if lv == "L4" and isinstance(pre, Tensor) and pre.ndim == 2 and (
                t.ndim != 4 or bb.taps[lv].kind == "vector"):
            # the model's own pooled features: avg = mean of the patch tokens, token = class
            if pool == "token" and getattr(model, "head_dist", None) is not None:
                # distilled: the pre-logits are the mean of the class and distillation tokens,
                # their layout checked against the tap before its class token is the reference
                if t.ndim == 3 and _close((t[:, 0] + t[:, 1]) / 2, pre) <= 1e-5:
                    refs[lv] = {"cls": t[:, 0].float()}
                    n = getattr(model, "num_prefix_tokens", None)
                    if isinstance(n, int) and t.shape[1] > n:
                        refs[lv]["gap"] = t[:, n:].float().mean(1)
                    continue
            elif pool in ("avg", "token"):
                refs[lv] = {"gap" if pool == "avg" else "cls": pre}
                continue
        if t.ndim == 4:
            refs[lv] = {"gap": _map_mean(t, info.get(m, (0, None))[1], nhwc)}
            continue
        if t.ndim == 3 and m in info and hasattr(model, "forward_intermediates"):
            inter = model.forward_intermediates(x, indices=[info[m][0]],
                                                intermediates_only=True)[0]
            if inter.ndim == 4:  # timm's own grid of the patch tokens, prefix tokens stripped
                refs[lv] = {"gap": _map_mean(inter, info[m][1], False)}
                n_prefix = t.shape[1] - inter.shape[2] * inter.shape[3]
                if n_prefix > 0 and bb.has_cls_token:
                    refs[lv]["cls"] = t[:, 0].float()
                continue
        n = getattr(model, "num_prefix_tokens", None)
        if t.ndim == 3 and isinstance(n, int):  # the model's own count of its prefix tokens
            refs[lv] = {"gap": t[:, n:].float().mean(1)}
            if n > 0 and bb.has_cls_token:
                refs[lv]["cls"] = t[:, 0].float()
            continue
        refs[lv] = {}  # nothing independent to compare with
    return refs


def _clip_refs(model: nn.Module, bb, x: Tensor) -> dict[str, dict[str, Tensor]]:
    """open_clip towers: ViT blocks against `forward_intermediates`, ln_post against the
    embedding (`L4 cls @ proj`), ModifiedResNet maps by hooks, `emb` against encode_image."""
    visual = model.visual
    emb = model.encode_image(x, normalize=False).float()  # CoCa's default normalises
    refs: dict[str, dict[str, Tensor]] = {"emb": {"gap": emb}}
    kind = type(visual).__name__
    if kind == "TimmModel":
        return {**_timm_refs(visual.trunk, bb, x), **refs}
    levels = [lv for lv in bb.taps if lv != "emb"]
    if kind == "ModifiedResNet":
        raw = _hooked(visual, x, [bb.taps[lv].module for lv in levels])
        refs.update({lv: {"gap": raw[bb.taps[lv].module].float().mean((2, 3))} for lv in levels})
        return refs
    in_blocks = [lv for lv in levels if bb.taps[lv].module.startswith("transformer.resblocks.")]
    blocks = [int(bb.taps[lv].module.rsplit(".", 1)[1]) for lv in in_blocks]
    out = visual.forward_intermediates(x, indices=blocks, output_fmt="NCHW",
                                       intermediates_only=True, output_extra_tokens=True)
    for lv, grid, extra in zip(in_blocks, out["image_intermediates"],
                               out.get("image_intermediates_prefix") or [None] * len(blocks)):
        refs[lv] = {"gap": grid.float().mean((2, 3))}
        if extra is not None and extra.shape[1] > 0:
            refs[lv]["cls"] = extra[:, 0].float()
    if bb.taps["L4"].module == "ln_post" and getattr(visual, "proj", None) is not None:
        refs["L4"] = {"cls@proj": emb}
    return refs
    blocks = [int(bb.taps[lv].module.rsplit(".", 1)[1]) for lv in levels[:4]]
    out = visual.forward_intermediates(x, indices=blocks, output_fmt="NCHW",
                                       intermediates_only=True, output_extra_tokens=True)
    for lv, grid, extra in zip(levels, out["image_intermediates"],
                               out.get("image_intermediates_prefix") or [None] * 4):
        refs[lv] = {"gap": grid.float().mean((2, 3))}
        if extra is not None and extra.shape[1] > 0:
            refs[lv]["cls"] = extra[:, 0].float()
    if bb.taps["L4"].module == "ln_post" and getattr(visual, "proj", None) is not None:
        refs["L4"] = {"cls@proj": model.encode_image(x, normalize=False).float()}
    else:
        refs["L4"] = {}
    return refs


def _featx(model: nn.Module, bb, x: Tensor, pool: str) -> dict[str, Tensor]:
    from featx.extractor import MultiLevelExtractor

    levels = [lv for lv in bb.taps if pool in (bb.taps[lv].pools() or (pool,))]
    return MultiLevelExtractor(model, bb, levels, pool)(x) if levels else {}


def _close(a: Tensor, b: Tensor) -> float:
    """Max abs difference relative to the reference's scale (random weights grow activations)."""
    if a.shape != b.shape:
        return float("inf")
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-6))


def compare(model: nn.Module, bb, size: int, tol: float = 1e-4, seed: int = 0) -> Verdict:
    """Every level featx states, with each pool the reference has, against the reference."""
    torch.manual_seed(seed)
    x = torch.randn(2, 3, size, size)
    v = Verdict(bb.name, "exact", size=size)
    with torch.no_grad():
        refs = _clip_refs(model, bb, x) if bb.source == "open_clip" else _timm_refs(model, bb, x)
        for pool in ("gap", "cls"):
            got = _featx(model, bb, x, pool)
            for lv, y in got.items():
                if pool in refs.get(lv, {}):
                    v.checked[f"{lv}/{pool}"] = _close(y, refs[lv][pool])
        if "cls@proj" in refs.get("L4", {}) and "cls" in (bb.taps["L4"].pools() or ()):
            y = _featx(model, bb, x, "cls")["L4"] @ model.visual.proj.float()
            v.checked["L4/cls@proj"] = _close(y, refs["L4"]["cls@proj"])
    bad = {k: d for k, d in v.checked.items() if not d <= tol}
    unchecked = [lv for lv in bb.taps if not any(k.startswith(lv + "/") for k in v.checked)]
    if bad:
        v.status, v.reason = "wrong", ", ".join(f"{k} {d:.2g}" for k, d in bad.items())
    elif unchecked:
        v.reason = f"no independent reference for {', '.join(unchecked)}"
    return v


def check(name: str, sizes: tuple[int, ...] = (32, 64, 96, 128, 224), tol: float = 1e-4
          ) -> Verdict:
    """Resolve `name` (refused: FeatxError), build it with random weights at the smallest size
    in `sizes` its forward accepts (skipped: none), compare every level."""
    from featx.backbones import get_backbone
    from featx.weights import build_model

    try:
        bb = get_backbone(name)
    except FeatxError as e:
        return Verdict(name, "refused", str(e))
    native = bb.default_preprocess.input_size
    sizes = tuple(s for s in sizes if s < native) + (native,)
    last = ""
    for size in sizes:
        try:
            model = build_model(bb, "none", seed=0, progress=False, image_size=size)[0].eval()
            with torch.no_grad():
                (model.visual if bb.source == "open_clip" else model)(torch.zeros(1, 3, size, size))
        except Exception as e:  # noqa: BLE001 -- this size (or the build) is not accepted
            last = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            continue
        try:
            return compare(model, bb, size, tol)
        except FeatxError as e:
            return Verdict(name, "refused", str(e), size=size)
    return Verdict(name, "skipped", f"no input size in {sizes} builds and runs ({last})"[:300])
