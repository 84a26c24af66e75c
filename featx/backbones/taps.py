"""Reading the levels of a model: `tapped(model, backbone, levels)` and the meta-device trace
that finds the taps' channel counts without weights.

Taps are forward hooks on the model's own modules, so the model runs its own forward (fused
attention, BN folded, channels_last ...) and nothing is copied. The forward stops right after the
deepest asked level: a hook raises `_Stop`, which the wrapper catches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from featx.backbones.registry import Backbone, Tap
from featx.errors import FeatxError

POSTS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu}


class _Stop(Exception):
    """Raised by the deepest tap's hook: the rest of the forward is not needed."""


def shape_tap(x: Tensor, tap: Tap) -> Tensor:
    """A captured tensor in featx's layout: maps [B, C, H, W], tokens [B, N, C], vectors [B, D]."""
    if isinstance(x, (tuple, list)):
        x = x[0]
    if tap.post:
        x = POSTS[tap.post](x)
    if tap.kind == "nhwc":
        x = x.permute(0, 3, 1, 2)
    elif tap.kind == "lnd":
        x = x.transpose(0, 1)
    return x


def _module(root: nn.Module, path: str) -> nn.Module:
    return root.get_submodule(path) if path else root


class Tapped(nn.Module):
    """`forward(images)` -> {level: raw tap} for the asked levels; runs only as deep as needed."""

    def __init__(self, tower: nn.Module, taps: Mapping[str, Tap], levels: Sequence[str]):
        super().__init__()
        self.tower = tower
        self.levels = [lv for lv in taps if lv in set(levels)]
        unknown = sorted(set(levels) - set(taps))
        if unknown or not self.levels:
            raise FeatxError(f"level {', '.join(unknown) or '(none)'} is not available: this "
                             f"backbone has {', '.join(taps)}")
        self._taps = {lv: taps[lv] for lv in self.levels}
        self._deepest = self.levels[-1]
        self._out: dict[str, Tensor] | None = None
        self.raw: dict[str, object] | None = None  # set to {} to keep the raw taps (tracing)
        self._handles = []
        for lv, tap in self._taps.items():
            if not tap.module:
                continue  # the tower's output: taken from its return value
            mod = _module(tower, tap.module)
            if tap.input:
                h = mod.register_forward_pre_hook(self._pre_hook(lv))
            else:
                h = mod.register_forward_hook(self._hook(lv))
            self._handles.append(h)

    def _record(self, lv: str, x) -> None:
        if self._out is None or lv in self._out:
            return  # not our forward (the model used directly), or a module called twice
        self._out[lv] = shape_tap(x, self._taps[lv])
        if self.raw is not None:
            self.raw[lv] = x
        if lv == self._deepest:
            raise _Stop

    def _hook(self, lv: str):
        return lambda mod, args, output: self._record(lv, output)

    def _pre_hook(self, lv: str):
        return lambda mod, args: self._record(lv, args[0])

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        self._out = out = {}
        try:
            y = self.tower(x)
            root = [lv for lv, t in self._taps.items() if not t.module]
            for lv in root:
                out[lv] = shape_tap(y, self._taps[lv])
                if self.raw is not None:
                    self.raw[lv] = y
        except _Stop:
            pass
        finally:
            self._out = None
        missing = [lv for lv in self.levels if lv not in out]
        if missing:
            raise FeatxError(f"the forward never reached level {', '.join(missing)} "
                             f"(unsupported model layout?)")
        return {lv: out[lv] for lv in self.levels}

    def remove(self) -> None:
        """Take the hooks off the model."""
        for h in self._handles:
            h.remove()
        self._handles = []


def tapped(model: nn.Module, backbone: Backbone, levels: Sequence[str]) -> Tapped:
    """An nn.Module whose forward(normalised float images) returns {level: raw tap} (maps
    [B, C, H, W], tokens [B, N, C], `emb` [B, D]) for `levels`, running the model only up to
    the deepest one. No inference mode inside: usable for training."""
    from featx.backbones.sources import image_tower

    return Tapped(image_tower(backbone, model), backbone.taps, levels)


def trace(tower: nn.Module, taps: Mapping[str, Tap], image_size: int
          ) -> tuple[dict[str, Tensor], dict[str, object]]:
    """One forward of the (meta-device) tower with every tap: ({level: tap in featx's layout},
    {level: the module's raw output}), so shapes and shared outputs can be read."""
    t = Tapped(tower, taps, list(taps))
    t.raw = {}
    try:
        with torch.no_grad():
            device = next(iter(tower.parameters())).device
            out = t(torch.empty(1, 3, image_size, image_size, device=device))
    finally:
        t.remove()
    return out, t.raw


def dims_of(taps: Mapping[str, Tap], out: Mapping[str, Tensor]) -> dict[str, int]:
    """Channel count of every traced tap."""
    return {lv: int(x.shape[1] if taps[lv].kind in ("map", "nhwc") else x.shape[-1])
            for lv, x in out.items()}


def trace_dims(tower: nn.Module, taps: Mapping[str, Tap], image_size: int) -> dict[str, int]:
    """Channel count of every tap, from one forward of the (meta-device) tower."""
    return dims_of(taps, trace(tower, taps, image_size)[0])


def prefix_tokens(n_tokens: int, image_size: int, reduction: int, most: int) -> tuple[int, bool]:
    """(prefix tokens, patch tokens follow) of a tap holding `n_tokens` tokens at `reduction` of
    a square input: the patch grid is image_size / reduction a side (floored or ceiled); the
    rest, at most `most`, are prefix tokens. Raises ValueError when that does not add up."""
    for side in dict.fromkeys((image_size // reduction, -(-image_size // reduction))):
        if 0 <= n_tokens - side * side <= most and side > 0:
            return n_tokens - side * side, True
    if 0 < n_tokens <= most:
        return n_tokens, False  # prefix tokens only (PiT's last norm sees its class tokens)
    raise ValueError(f"{n_tokens} tokens at stride {reduction} of {image_size} px is neither a "
                     f"patch grid nor a grid plus at most {most} prefix tokens")


def settle_tokens(taps: Mapping[str, Tap], out: Mapping[str, Tensor], image_size: int,
                  reductions: Mapping[str, int], most: int, class_token: bool) -> dict[str, Tap]:
    """The taps with, per token level, its traced prefix count (class-token ones first when the
    model has a class token); rank-2 outputs become vectors."""
    from dataclasses import replace

    settled = {}
    for lv, tap in taps.items():
        x = out[lv]
        if tap.is_tokens and x.ndim == 3:
            try:
                prefix, patches = prefix_tokens(int(x.shape[1]), image_size, reductions[lv],
                                                most)
            except ValueError as e:  # tokens featx cannot tell apart: refused by name
                raise FeatxError(f"{lv}: {e}") from None
            tap = replace(tap, prefix=prefix, patches=patches, cls=class_token and prefix > 0)
        elif x.ndim == 2 and tap.kind != "vector":
            tap = replace(tap, kind="vector")
        settled[lv] = tap
    return settled


def shared_outputs(raw: Mapping[str, object]) -> list[tuple[str, str]]:
    """Pairs of levels whose taps are the very same tensor (one module tapped twice)."""
    levels = list(raw)
    return [(a, b) for i, a in enumerate(levels) for b in levels[i + 1:] if raw[a] is raw[b]]


def trace_modules(tower: nn.Module, image_size: int, call: Callable | None = None
                  ) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, output shape, output id) of every module in call order for one meta forward
    (`call(tower, x)` or the tower itself)."""
    seen: list[tuple[str, tuple[int, ...], int]] = []
    handles = []
    for name, mod in tower.named_modules():
        def hook(m, a, o, name=name):
            # modules returning tuples (PiT's stages) are recorded too, without a shape
            seen.append((name, tuple(o.shape) if isinstance(o, Tensor) else None, id(o)))
        handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            device = next(iter(tower.parameters())).device
            x = torch.empty(1, 3, image_size, image_size, device=device)
            result = call(tower, x) if call else tower(x)
    finally:
        for h in handles:
            h.remove()
    if not isinstance(result, Tensor):  # CoaT, CrossViT: one output per branch
        raise FeatxError(f"its forward gives a {type(result).__name__}, not one tensor")
    seen.append(("<result>", tuple(result.shape), id(result)))
    return seen


def block_indices(depth: int) -> list[int]:
    """0-based indices of the blocks whose outputs are L0..L3 of a D-block transformer:
    blocks ceil(k*D/5), k = 1..4 (1-based); L4 is the fifth, after the final norm."""
    import math
    return [math.ceil(k * depth / 5) - 1 for k in range(1, 5)]
