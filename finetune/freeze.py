"""Trainable sets by parameter-name patterns; frozen parts keep their batch-norm statistics."""

from __future__ import annotations

import math
from fnmatch import fnmatchcase

from torch import nn

from featx.errors import FeatxError
from finetune.recipes import Trainable


def last_conv_names(model: nn.Module, k: int) -> list[str]:
    """Module names of the model's last k Conv2d layers (all of them for k < 0)."""
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if k < 0:
        return convs
    return convs[len(convs) - k:] if k else []


def last_units(model: nn.Module, fraction: float) -> set[str]:
    """Parameter names of the last ceil(fraction * n) depth units of the model's trunk (blocks of
    a transformer, stages of a CNN; finetune.depth), with what follows them."""
    if fraction <= 0:
        return set()
    if not hasattr(model, "depth_groups"):
        raise FeatxError("this recipe's model has no depth groups (use a modern recipe)")
    blocks = model.depth_groups(used_parameters(model)).blocks
    k = min(len(blocks), math.ceil(fraction * len(blocks) - 1e-9))
    return {n for group in blocks[len(blocks) - k:] for n in group}


def used_parameters(model: nn.Module) -> list[str]:
    """Parameter names, without those the model never uses (HeadNet.unused)."""
    unused = getattr(model, "unused", frozenset())
    return [n for n, _ in model.named_parameters() if n not in unused]


def select(model: nn.Module, trainable: Trainable) -> list[str]:
    """Names of the parameters `trainable` selects, in the model's order."""
    convs = last_conv_names(model, trainable.last_convs)
    if trainable.last_convs > 0 and len(convs) < trainable.last_convs:
        raise FeatxError(f"asked to unfreeze the last {trainable.last_convs} conv layers; the "
                         f"model has {len(convs)}")
    prefixes = tuple(c + "." for c in convs)
    units = last_units(model, trainable.last_units)
    names = [n for n in used_parameters(model)
             if any(fnmatchcase(n, p) for p in trainable.patterns) or n.startswith(prefixes)
             or n in units]
    if not names:
        raise FeatxError(f"trainable patterns {list(trainable.patterns)} match no parameter")
    return names


def apply(model: nn.Module, names: list[str]) -> None:
    """Make exactly `names` trainable."""
    wanted = set(names)
    for n, p in model.named_parameters():
        p.requires_grad_(n in wanted)


def frozen_batchnorms(model: nn.Module) -> list[nn.Module]:
    """Batch-norm layers none of whose parameters train."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and not any(p.requires_grad for p in m.parameters())]


def train_mode(model: nn.Module) -> None:
    """model.train(), with frozen batch-norm layers left in eval so their statistics stay put."""
    model.train()
    for m in frozen_batchnorms(model):
        m.eval()
