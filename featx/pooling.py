"""Global pooling of a feature map [B, C, H, W] -> [B, D]; runs inside the batched forward."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from featx.errors import FeatxError


def gap(x: Tensor) -> Tensor:
    # accumulate and return float32 even under autocast (a bf16 mean keeps ~3 digits)
    return x.mean(dim=(2, 3), dtype=torch.float32)


def gmp(x: Tensor) -> Tensor:
    return x.amax(dim=(2, 3))


def gap_gmp(x: Tensor) -> Tensor:
    return torch.cat([gap(x), gmp(x)], dim=1)


def meanstd(x: Tensor) -> Tensor:
    """Per-channel mean and standard deviation: a cheap texture/style descriptor."""
    x = x.float()
    std, mean = torch.std_mean(x, dim=(2, 3), unbiased=False)
    return torch.cat([mean, std], dim=1)


# name -> (function, pooled dim as a multiple of the channel count)
POOLS: dict[str, tuple[Callable[[Tensor], Tensor], int]] = {
    "gap": (gap, 1),
    "gmp": (gmp, 1),
    "gap+gmp": (gap_gmp, 2),
    "meanstd": (meanstd, 2),
}


def get_pool(name: str) -> Callable[[Tensor], Tensor]:
    if name not in POOLS:
        raise FeatxError(f"unknown --pool {name!r}: choose one of {', '.join(POOLS)}")
    return POOLS[name][0]


def pooled_dim(name: str, channels: int) -> int:
    get_pool(name)
    return POOLS[name][1] * channels
