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


# Token sequences [B, N, C] with `prefix` class/register tokens first: pools over the patch tokens
# (register tokens excluded), `cls` takes the class token.
def _patches(x: Tensor, prefix: int) -> Tensor:
    return x[:, prefix:]


def _tok_gap(x: Tensor, prefix: int) -> Tensor:
    return _patches(x, prefix).mean(dim=1, dtype=torch.float32)


def _tok_cls(x: Tensor, prefix: int) -> Tensor:
    return x[:, 0].float()


def _tok_gmp(x: Tensor, prefix: int) -> Tensor:
    return _patches(x, prefix).amax(dim=1)


def _tok_meanstd(x: Tensor, prefix: int) -> Tensor:
    std, mean = torch.std_mean(_patches(x, prefix).float(), dim=1, unbiased=False)
    return torch.cat([mean, std], dim=1)


TOKEN_POOLS: dict[str, tuple[Callable[[Tensor, int], Tensor], int]] = {
    "cls": (_tok_cls, 1),
    "gap": (_tok_gap, 1),
    "cls+gap": (lambda x, p: torch.cat([_tok_cls(x, p), _tok_gap(x, p)], dim=1), 2),
    "gmp": (_tok_gmp, 1),
    "gap+gmp": (lambda x, p: torch.cat([_tok_gap(x, p), _tok_gmp(x, p).float()], dim=1), 2),
    "meanstd": (_tok_meanstd, 2),
}
ALL_POOLS = tuple(dict.fromkeys([*POOLS, *TOKEN_POOLS]))


def get_token_pool(name: str, prefix: int, has_cls: bool = True) -> Callable[[Tensor], Tensor]:
    if name not in TOKEN_POOLS:
        raise FeatxError(f"unknown --pool {name!r} for token levels: choose one of "
                         f"{', '.join(TOKEN_POOLS)}")
    if name.startswith("cls") and not has_cls:
        raise FeatxError(f"--pool {name}: this backbone has no class token; use gap")
    fn = TOKEN_POOLS[name][0]
    return lambda x: fn(x, prefix)


def token_pooled_dim(name: str, channels: int) -> int:
    get_token_pool(name, 0)
    return TOKEN_POOLS[name][1] * channels
