"""Parameter groups with their learning rates, optimisers and schedulers from a stage's spec."""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase

import torch
from torch import nn

from featx.errors import FeatxError
from finetune.recipes import Optimizer


def group_names(names: list[str], spec: Optimizer) -> list[tuple[float, list[str]]]:
    """[(lr, parameter names)]: each extra group takes the names its globs match, the base group
    (spec.lr) the rest; empty groups are left out."""
    groups: list[tuple[float, list[str]]] = []
    rest = list(names)
    for patterns, lr in spec.group_lrs:
        mine = [n for n in rest if any(fnmatchcase(n, p) for p in patterns)]
        rest = [n for n in rest if n not in set(mine)]
        groups.append((lr, mine))
    groups.insert(0, (spec.lr, rest))
    return [(lr, ns) for lr, ns in groups if ns]


def _sgd(groups: list[dict], spec: Optimizer) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov,
                           weight_decay=spec.weight_decay)


def _adam(groups: list[dict], spec: Optimizer) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=spec.lr, weight_decay=spec.weight_decay)


OPTIMIZERS: dict[str, Callable[[list[dict], Optimizer], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
}


def describe(spec: Optimizer) -> dict:
    """The optimiser's settings as shown by `finetune plan` (learning rates are in the groups)."""
    if spec.name == "sgd":
        return {"name": "sgd", "momentum": spec.momentum, "nesterov": spec.nesterov,
                "weight_decay": spec.weight_decay}
    return {"name": spec.name, "weight_decay": spec.weight_decay}


def build_optimizer(model: nn.Module, groups: list[tuple[float, list[str]]],
                    spec: Optimizer) -> torch.optim.Optimizer:
    """The optimiser over `groups` ([(lr, parameter names)], as group_names gives them)."""
    if spec.name not in OPTIMIZERS:
        raise FeatxError(f"unknown --optimizer {spec.name!r}: choose one of "
                         f"{', '.join(OPTIMIZERS)}")
    params = dict(model.named_parameters())
    param_groups = [{"params": [params[n] for n in ns], "lr": lr} for lr, ns in groups]
    try:
        return OPTIMIZERS[spec.name](param_groups, spec)
    except ValueError as e:  # e.g. nesterov without momentum, a negative lr
        raise FeatxError(f"bad optimiser settings: {e}") from None


def _cosine(opt: torch.optim.Optimizer, epochs: int):
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))


# name -> (optimizer, epochs of the stage) -> scheduler stepped once per epoch, or None
SCHEDULERS: dict[str, Callable | None] = {
    "none": None,
    "cosine": _cosine,
}


def build_scheduler(name: str, opt: torch.optim.Optimizer, epochs: int):
    if name not in SCHEDULERS:
        raise FeatxError(f"unknown --scheduler {name!r}: choose one of {', '.join(SCHEDULERS)}")
    make = SCHEDULERS[name]
    return make(opt, epochs) if make else None
