"""Training losses by name (a stage's `loss`)."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

from finetune.models import logits_of


def cross_entropy(out: Tensor | dict, y: Tensor) -> Tensor:
    return F.cross_entropy(logits_of(out).float(), y)


def heads_sum(out: dict, y: Tensor) -> Tensor:
    """The ensemble's stage 1: every level head's cross-entropy, summed."""
    return sum(F.cross_entropy(z.float(), y) for z in out["heads"])


LOSSES: dict[str, Callable[[Tensor | dict, Tensor], Tensor]] = {
    "ce": cross_entropy,
    "heads_sum": heads_sum,
}
