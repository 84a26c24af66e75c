"""Training losses by name (a stage's `loss`), with the stage's label smoothing."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

from finetune.models import logits_of


def cross_entropy(out: Tensor | dict, y: Tensor, smoothing: float = 0.0) -> Tensor:
    return F.cross_entropy(logits_of(out).float(), y, label_smoothing=smoothing)


def heads_sum(out: dict, y: Tensor, smoothing: float = 0.0) -> Tensor:
    """The ensemble's stage 1: every level head's cross-entropy, summed."""
    return sum(F.cross_entropy(z.float(), y, label_smoothing=smoothing) for z in out["heads"])


# name -> (model output, labels, label smoothing) -> loss
LOSSES: dict[str, Callable[..., Tensor]] = {
    "ce": cross_entropy,
    "heads_sum": heads_sum,
}


def stage_loss(name: str, smoothing: float = 0.0) -> Callable[[Tensor | dict, Tensor], Tensor]:
    """LOSSES[name] with label smoothing bound (the plain function where it is 0)."""
    fn = LOSSES[name]
    return functools.partial(fn, smoothing=smoothing) if smoothing else fn
