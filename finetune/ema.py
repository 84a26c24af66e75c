"""Exponential moving average of a model's weights (`--ema DECAY`), evaluated and checkpointed
beside the raw weights."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """`module`: a copy of the model whose floating-point parameters and buffers follow
    ema = decay * ema + (1 - decay) * raw after every optimiser step; other buffers (batch-norm
    counters) are copied."""

    def __init__(self, model: nn.Module, decay: float, module: nn.Module | None = None):
        """`module`: a fresh model of the same architecture to hold the average (default: a
        deep copy; models whose taps are hooks must be built anew, a copy keeps the original's
        hooks)."""
        self.decay = decay
        self.module = (module if module is not None else copy.deepcopy(model)).eval()
        self.module.load_state_dict(model.state_dict())
        for p in self.module.parameters():
            p.requires_grad_(False)

    def _pairs(self, model: nn.Module) -> tuple[list, list, list, list]:
        ema_float, raw_float, ema_other, raw_other = [], [], [], []
        raw = dict(model.state_dict(keep_vars=True))
        for name, t in self.module.state_dict(keep_vars=True).items():
            (ema_float if t.is_floating_point() else ema_other).append(t)
            (raw_float if t.is_floating_point() else raw_other).append(raw[name])
        return ema_float, raw_float, ema_other, raw_other

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_f, raw_f, ema_o, raw_o = self._pairs(model)
        torch._foreach_lerp_(ema_f, [t.detach() for t in raw_f], 1.0 - self.decay)
        for e, r in zip(ema_o, raw_o):
            e.copy_(r)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)

    def to(self, *args, **kwargs) -> "EMA":
        self.module.to(*args, **kwargs)
        return self
