"""The pooled multi-level forward: one pass through the backbone, each tap pooled on the device."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from featx.backbones import Backbone, stages, tapped
from featx.errors import FeatxError
from featx.levels import LEVELS, sort_levels
from featx.pooling import ALL_POOLS, get_pool, get_token_pool, pooled_dim, token_pooled_dim


def level_pool(backbone: Backbone, level: str, pool: str) -> Callable[[Tensor], Tensor]:
    """The pooling of one level: map pools for maps, token pools for tokens (over the prefix
    tokens that tap really holds), none for vectors. A pool that cannot apply is an error."""
    tap = backbone.taps[level]
    if pool not in ALL_POOLS:
        raise FeatxError(f"unknown --pool {pool!r}: choose one of {', '.join(ALL_POOLS)}")
    fits = tap.pools()
    if fits is not None and pool not in fits:
        raise FeatxError(f"--pool {pool}: {backbone.name}'s {level} is {_what(tap)}; it takes "
                         f"{', '.join(fits)}")
    if tap.kind == "vector":
        return lambda x: x.float()
    if tap.is_tokens:
        return get_token_pool(pool, tap.prefix, tap.cls)
    return get_pool(pool)


def _what(tap) -> str:
    if tap.kind == "vector":
        return f"the model's own {tap.pooled}-pooled, normalised vector (its head's fc_norm)"
    if tap.is_tokens:
        if not tap.patches:
            return "its class token(s) only"
        return "a token sequence without a class token" if not tap.cls else "a token sequence"
    return "a feature map"


def resolve_pool(backbone: Backbone, levels: Sequence[str], pool: str | None) -> str:
    """`pool`, or the default that applies at every asked level; checked at each level before
    any image is read."""
    if pool is None:
        pool = backbone.pool_for(levels)
        if pool is None:
            shown = "; ".join(f"{lv} {_what(backbone.taps[lv])}" for lv in levels
                              if lv in backbone.taps)
            raise FeatxError(f"{backbone.name}: no --pool applies at every asked level ({shown});"
                             f" ask fewer --layers, or pass --pool for them")
    check_pool(backbone, levels, pool)
    return pool


class MultiLevelExtractor(nn.Module):
    """Runs the backbone up to the deepest asked level and returns {level: pooled float32 [B, D]}
    for the asked ones; full feature maps never leave the forward.

    `backbone` is a registry entry (any source), or -- the older form -- a family name of the
    papers' ResNet/VGG ("resnet", "vgg"), cut into stage modules."""

    def __init__(self, model: nn.Module, backbone: Backbone | str, levels: Sequence[str],
                 pool: str = "gap"):
        super().__init__()
        self.pool_name = pool
        if isinstance(backbone, str):
            self.levels = [lv for lv in LEVELS if lv in set(levels)]
            deepest = LEVELS.index(self.levels[-1])
            named = stages(model, backbone)[: deepest + 1]
            self.names = [lv for lv, _ in named]
            self.stages = nn.ModuleList(m for _, m in named)
            self.pool = get_pool(pool)
            self.taps = None
            return
        self.levels = sort_levels(levels)
        self.taps = tapped(model, backbone, self.levels)
        self.pools = {lv: level_pool(backbone, lv, pool) for lv in self.levels}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if self.taps is not None:
            return {lv: self.pools[lv](t).float() for lv, t in self.taps(x).items()}
        out = {}
        for name, stage in zip(self.names, self.stages):
            x = stage(x)
            if name in self.levels:
                out[name] = self.pool(x).float()
        return out


def pooled_dims(channels: Sequence[int] | Backbone, levels: Sequence[str],
                pool: str) -> dict[str, int]:
    """Pooled dim per asked level, from a backbone entry (or the L0..L4 channel table of a map
    backbone); independent of the image size."""
    if not isinstance(channels, Backbone):
        return {lv: pooled_dim(pool, channels[LEVELS.index(lv)])
                for lv in LEVELS if lv in set(levels)}
    bb = channels
    out = {}
    for lv in sort_levels(levels):
        d = bb.dims[lv]
        out[lv] = d if bb.taps[lv].kind == "vector" else (
            token_pooled_dim(pool, d) if bb.is_tokens(lv) else pooled_dim(pool, d))
    return out


def check_pool(backbone: Backbone, levels: Sequence[str], pool: str) -> None:
    """Fail early when a level is not the backbone's or the pool does not fit a level."""
    missing = [lv for lv in levels if lv not in backbone.taps]
    if missing:
        raise FeatxError(f"--layers: {backbone.name} has no level {', '.join(missing)} (it has "
                         f"{', '.join(backbone.taps)})")
    for lv in levels:
        level_pool(backbone, lv, pool)
