"""Training losses by name (a stage's `loss`), with the stage's label smoothing."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

from finetune.models import logits_of


def _loss(logits: Tensor, y: Tensor, smoothing: float) -> Tensor:
    """Cross-entropy against labels; against label distributions (float [B, C]) the mean
    KL(p || softmax(logits)), p smoothed as cross-entropy smooths it ((1 - e) p + e / C)."""
    logits = logits.float()
    if not y.is_floating_point():
        return F.cross_entropy(logits, y, label_smoothing=smoothing)
    p = y.float()
    if smoothing:
        p = (1 - smoothing) * p + smoothing / p.shape[1]
    return F.kl_div(F.log_softmax(logits, dim=1), p, reduction="batchmean")


def cross_entropy(out: Tensor | dict, y: Tensor, smoothing: float = 0.0) -> Tensor:
    """Cross-entropy (KL divergence for label distributions) of the model's output."""
    return _loss(logits_of(out), y, smoothing)


def heads_sum(out: dict, y: Tensor, smoothing: float = 0.0) -> Tensor:
    """The ensemble's stage 1: every level head's cross-entropy (or KL), summed."""
    return sum(_loss(z, y, smoothing) for z in out["heads"])


# name -> (model output, labels, label smoothing) -> loss
LOSSES: dict[str, Callable[..., Tensor]] = {
    "ce": cross_entropy,
    "heads_sum": heads_sum,
}


def stage_loss(name: str, smoothing: float = 0.0) -> Callable[[Tensor | dict, Tensor], Tensor]:
    """LOSSES[name] with label smoothing bound (the plain function where it is 0)."""
    fn = LOSSES[name]
    return functools.partial(fn, smoothing=smoothing) if smoothing else fn
