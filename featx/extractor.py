"""The pooled multi-level forward: one pass through the stages, each tap pooled on the device."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from featx.backbones import stages
from featx.levels import LEVELS
from featx.pooling import get_pool, pooled_dim


class MultiLevelExtractor(nn.Module):
    """Runs L0.. up to the deepest asked level and returns {level: pooled [B, D]} for the asked
    ones; full feature maps never leave the forward."""

    def __init__(self, model: nn.Module, family: str, levels: Sequence[str], pool: str = "gap"):
        super().__init__()
        self.levels = [lv for lv in LEVELS if lv in set(levels)]
        deepest = LEVELS.index(self.levels[-1])
        named = stages(model, family)[: deepest + 1]
        self.names = [lv for lv, _ in named]
        self.stages = nn.ModuleList(m for _, m in named)
        self.pool_name = pool
        self.pool = get_pool(pool)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = {}
        for name, stage in zip(self.names, self.stages):
            x = stage(x)
            if name in self.levels:
                out[name] = self.pool(x).float()
        return out


def pooled_dims(channels: Sequence[int], levels: Sequence[str], pool: str) -> dict[str, int]:
    """Pooled dim per asked level from the backbone's channel table (independent of image size)."""
    return {lv: pooled_dim(pool, channels[LEVELS.index(lv)]) for lv in LEVELS if lv in set(levels)}
