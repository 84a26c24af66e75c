"""Parameter groups with their learning rates, optimisers and schedulers from a stage's spec."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase

import torch
from torch import nn

from featx.errors import FeatxError
from finetune.depth import DepthGroups
from finetune.recipes import Optimizer


Group = tuple[float, list[str], str | None]  # (lr, parameter names, label shown by plan)


def group_names(names: list[str], spec: Optimizer, depth: DepthGroups | None = None
                ) -> list[Group]:
    """[(lr, parameter names, label)]: each extra group takes the names its globs match, the
    base group (spec.lr) the rest; with layer-wise decay, the trunk's depth groups (input to
    output) come first, group d of K at spec.lr * layer_decay ** (K - d). Empty groups are left
    out."""
    extra: list[Group] = []
    rest = list(names)
    for patterns, lr in spec.group_lrs:
        mine = [n for n in rest if any(fnmatchcase(n, p) for p in patterns)]
        rest = [n for n in rest if n not in set(mine)]
        extra.append((lr, mine, None))
    layered: list[Group] = []
    if spec.layer_decay != 1.0:
        if depth is None:
            raise FeatxError("--layer-decay: this recipe's model has no depth groups (use a "
                             "modern recipe)")
        k = len(depth.groups)
        left = set(rest)
        for d, group in enumerate(depth.groups):
            label = "stem" if depth.has_stem and d == 0 else \
                f"block {d if depth.has_stem else d + 1}"
            layered.append((spec.lr * spec.layer_decay ** (k - d),
                            [n for n in group if n in left], label))
        taken = {n for _, ns, _ in layered for n in ns}
        rest = [n for n in rest if n not in taken]
    groups = layered + [(spec.lr, rest, "head" if layered else None)] + extra
    return [g for g in groups if g[1]]


# optimisers whose weight decay spares biases, norm weights and the model's no_weight_decay()
# tensors (timm, DeiT, MAE); SGD recipes follow their papers, which decay every parameter
EXEMPTING = frozenset({"adamw", "adam"})


def no_decay_names(model: nn.Module, spec: Optimizer) -> set[str]:
    """Parameters that `spec`'s optimiser does not decay: for those in EXEMPTING, the 1-D ones
    (biases, norm weights and the like) and those a module names in its `no_weight_decay()`
    (timm: cls_token, pos_embed, ...); none for the others."""
    if spec.name not in EXEMPTING or spec.weight_decay == 0:
        return set()
    names = [n for n, _ in model.named_parameters()]
    out = {n for n, p in model.named_parameters() if p.ndim <= 1}
    for prefix, module in model.named_modules():
        own = getattr(module, "no_weight_decay", None)
        if callable(own):
            full = {f"{prefix}.{n}" if prefix else n for n in own()}
            out |= {n for n in names if n in full
                    or any(fnmatchcase(n, p) for p in full if "*" in p)}
    return out


def _sgd(groups: list[dict], spec: Optimizer) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov,
                           weight_decay=spec.weight_decay)


def _adam(groups: list[dict], spec: Optimizer) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=spec.lr, weight_decay=spec.weight_decay)


def _adamw(groups: list[dict], spec: Optimizer) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=spec.lr, weight_decay=spec.weight_decay)


OPTIMIZERS: dict[str, Callable[[list[dict], Optimizer], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
}


def describe(spec: Optimizer) -> dict:
    """The optimiser's settings as shown by `finetune plan` (learning rates are in the groups)."""
    if spec.name == "sgd":
        out = {"name": "sgd", "momentum": spec.momentum, "nesterov": spec.nesterov,
               "weight_decay": spec.weight_decay}
    else:
        out = {"name": spec.name, "weight_decay": spec.weight_decay}
    if spec.layer_decay != 1.0:
        out["layer_decay"] = spec.layer_decay
    return out


def build_optimizer(model: nn.Module, groups: list[Group],
                    spec: Optimizer) -> torch.optim.Optimizer:
    """The optimiser over `groups` ([(lr, parameter names)], as group_names gives them), each
    split by weight decay (no_decay_names)."""
    if spec.name not in OPTIMIZERS:
        raise FeatxError(f"unknown --optimizer {spec.name!r}: choose one of "
                         f"{', '.join(OPTIMIZERS)}")
    params = dict(model.named_parameters())
    exempt = no_decay_names(model, spec)
    # each group in two: its decayed tensors, then its exempt ones (weight decay 0)
    param_groups = [{"params": [params[n] for n in ns if (n in exempt) == spared], "lr": lr,
                     "weight_decay": 0.0 if spared else spec.weight_decay}
                    for lr, ns, _ in groups for spared in (False, True)]
    param_groups = [g for g in param_groups if g["params"]]
    try:
        return OPTIMIZERS[spec.name](param_groups, spec)
    except ValueError as e:  # e.g. nesterov without momentum, a negative lr
        raise FeatxError(f"bad optimiser settings: {e}") from None


def _cosine(opt: torch.optim.Optimizer, epochs: int, steps: int, warmup_epochs: float):
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))


def warmup_cosine_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over `warmup` steps to 1, then cosine decay towards 0 (reached one step
    after the last of `total`)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup + 1) / (total - warmup + 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _warmup_cosine(opt: torch.optim.Optimizer, epochs: int, steps: int, warmup_epochs: float):
    total = max(epochs * steps, 1)
    warmup = min(round(warmup_epochs * steps), total)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, functools.partial(warmup_cosine_factor, total=total, warmup=warmup))


@dataclass(frozen=True)
class Schedule:
    make: Callable  # (optimizer, epochs of the stage, steps per epoch, warm-up epochs)
    per_step: bool  # stepped after every optimiser step (else once per epoch)


SCHEDULERS: dict[str, Schedule | None] = {
    "none": None,
    "cosine": Schedule(_cosine, per_step=False),
    "warmup_cosine": Schedule(_warmup_cosine, per_step=True),
}


def build_scheduler(name: str, opt: torch.optim.Optimizer, epochs: int, steps: int = 1,
                    warmup_epochs: float = 0.0):
    """The stage's scheduler (None for "none"); `steps` = optimiser steps per epoch."""
    if name not in SCHEDULERS:
        raise FeatxError(f"unknown --scheduler {name!r}: choose one of {', '.join(SCHEDULERS)}")
    sched = SCHEDULERS[name]
    return sched.make(opt, epochs, steps, warmup_epochs) if sched else None


def per_step_schedule(name: str) -> bool:
    """Whether scheduler `name` is stepped after every optimiser step."""
    sched = SCHEDULERS.get(name)
    return bool(sched and sched.per_step)
