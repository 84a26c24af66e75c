"""The backbone registry: one `Backbone` entry per model, resolved by name.

Bare names are torchvision models registered one by one (featx.backbones.torchvision);
`timm/<model>[.<tag>]` and `clip/<arch>:<tag>` are resolved by their source modules, which build
the model on the meta device (no weights, no memory) to read its taps and dims.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from featx.errors import FeatxError
from featx.levels import LEVELS


# how the image is brought to the resize size (the libraries' eval transforms):
# shortest: the shorter side to resize_size, the longer truncated (torchvision Resize(int));
# squash: both sides to resize_size (timm crop_mode='squash', open_clip resize_mode='squash');
# longest: the longer side to resize_size, the shorter rounded (timm crop_mode='border', open_clip
# resize_mode='longest'), padded with `fill` up to the crop
RESIZE_MODES = ("shortest", "squash", "longest")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "box", "hamming", "lanczos")


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's input: resize (`resize_mode`) to resize_size in
    `interpolation`, centre crop input_size (padded with `fill` where smaller, offsets rounded as
    torchvision's center_crop), then (x/255 - mean) / std."""

    input_size: int
    resize_size: int
    interpolation: str = "bilinear"  # one of INTERPOLATIONS (PIL's filters)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    crop_pct: float = 1.0
    resize_mode: str = "shortest"  # one of RESIZE_MODES
    fill: tuple[int, int, int] = (0, 0, 0)
    # (resize, crop) of a recipe given as two sizes (torchvision's weights): another input size
    # S resizes to floor(S * resize / crop), computed exactly rather than through crop_pct
    ratio: tuple[int, int] | None = None

    def __post_init__(self):
        # refused when the recipe is read, not image by image in the loader workers
        if self.resize_mode not in RESIZE_MODES or self.interpolation not in INTERPOLATIONS:
            raise FeatxError(f"featx cannot reproduce resize mode {self.resize_mode!r} with "
                             f"interpolation {self.interpolation!r} (it does "
                             f"{', '.join(RESIZE_MODES)}; {', '.join(INTERPOLATIONS)})")

    def describe(self) -> str:
        """One line for `featx info`, `featx preview` and the fingerprint."""
        how = {"shortest": f"shorter side to {self.resize_size} (longer truncated)",
               "squash": f"squash to {self.resize_size}x{self.resize_size}",
               "longest": f"longer side to {self.resize_size} (shorter rounded)"}[self.resize_mode]
        pad = f", pad {','.join(map(str, self.fill))}" if self.resize_mode == "longest" else ""
        return (f"resize {how}, {self.interpolation}{pad}, centre crop {self.input_size} "
                f"(crop_pct {self.crop_pct:g}), mean {','.join(f'{m:.4g}' for m in self.mean)}, "
                f"std {','.join(f'{s:.4g}' for s in self.std)}")

    @property
    def pad_fill(self) -> tuple[int, int, int]:
        """The padding's colour where the resized image is smaller than the crop: `fill` after
        a longest-side resize (CenterCropOrPad), black otherwise (torchvision's CenterCrop)."""
        return tuple(self.fill) if self.resize_mode == "longest" else (0, 0, 0)

    def at_size(self, image_size: int | None) -> "Preprocess":
        """The same recipe at another input size (resize by the same crop fraction)."""
        if image_size is None or image_size == self.input_size:
            return self
        s = int(image_size)
        resize = s * self.ratio[0] // self.ratio[1] if self.ratio else \
            int(math.floor(s / self.crop_pct))
        return replace(self, input_size=s, resize_size=resize)


def preprocess_from(input_size: int, crop_pct: float = 1.0, **kw) -> Preprocess:
    """A Preprocess whose resize follows timm's rule floor(input_size / crop_pct)."""
    return Preprocess(input_size=int(input_size),
                      resize_size=int(math.floor(input_size / crop_pct)), crop_pct=crop_pct, **kw)


# how a tapped tensor is laid out, and what it is turned into: maps -> [B, C, H, W],
# tokens -> [B, N, C] (prefix tokens first), vectors -> [B, D]
TAP_KINDS = ("map", "nhwc", "tokens", "lnd", "vector")


@dataclass(frozen=True)
class Tap:
    """Where one level is read: the output (or, with `input`, the input) of the module at dotted
    path `module` inside the image tower ('' = the tower's own output)."""

    module: str
    kind: str = "map"
    input: bool = False
    post: str | None = None  # a name in featx.backbones.taps.POSTS (e.g. "relu")
    prefix: int = 0  # tokens: how many prefix (class/register/distillation) tokens come first
    cls: bool = False  # tokens: the first prefix token is a class token
    patches: bool = True  # tokens: patch tokens follow the prefix ones (False: prefix tokens only)
    pooled: str | None = None  # vector: the pool the model itself applied (fc_norm: "gap")

    @property
    def is_tokens(self) -> bool:
        return self.kind in ("tokens", "lnd")

    def pools(self) -> tuple[str, ...] | None:
        """The --pool values that apply to this tap (None: any, e.g. CLIP's `emb`)."""
        from featx.pooling import POOLS, TOKEN_POOLS

        if self.kind == "vector":
            return (self.pooled,) if self.pooled else None
        if not self.is_tokens:
            return tuple(POOLS)
        return tuple(p for p in TOKEN_POOLS
                     if (self.cls or not p.startswith("cls")) and (self.patches or p == "cls"))

    def describe(self) -> str:
        """'tokens (1 prefix, cls)', 'map', 'vector (gap)': for `featx backbones`."""
        if self.is_tokens:
            if not self.patches:
                return "tokens (class token only)"
            return f"tokens ({self.prefix} prefix{', cls' if self.cls else ''})"
        if self.kind == "vector":
            return f"vector ({self.pooled or 'not pooled'})"
        return "map"


@dataclass(frozen=True)
class Backbone:
    """One `--backbone`: where it comes from, its taps per level and their channel counts."""

    name: str
    family: str
    source: str  # "torchvision" | "timm" | "open_clip"
    taps: Mapping[str, Tap]  # level -> Tap, in depth order (L0..L4[, emb])
    dims: Mapping[str, int]  # level -> channels of the raw tap (emb: the embedding size)
    default_preprocess: Preprocess
    num_prefix_tokens: int = 0  # the model's class + register tokens (per tap: Tap.prefix)
    has_cls_token: bool = False  # the model has a class token (per tap: Tap.cls)
    ref: object = None  # what the source needs to build it (constructor, timm name, arch/tag)
    weights_from: str = ""  # where pretrained weights come from (URL or hub repo)
    extra: Mapping[str, object] = field(default_factory=dict)
    # the rules that chose the taps, where they differ from featx's first ones (e.g. "taps-2"):
    # it enters the cache fingerprint, so a cache written with the older taps is never resumed
    taps_rev: str = ""

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.taps)

    @property
    def token_levels(self) -> frozenset[str]:
        """Levels whose raw tap is a token sequence [B, N, C]."""
        return frozenset(lv for lv, t in self.taps.items() if t.kind in ("tokens", "lnd"))

    def is_tokens(self, level: str) -> bool:
        return level in self.token_levels

    @property
    def channels(self) -> tuple[int, ...]:
        """Channel counts at L0..L4 (the older form of `dims`)."""
        return tuple(self.dims[lv] for lv in LEVELS)

    @property
    def default_pool(self) -> str:
        """The default pool over all levels (`pool_for`; 'gap' where none applies to all)."""
        return self.pool_for(self.levels) or "gap"

    def pool_for(self, levels: Sequence[str]) -> str | None:
        """SPEC's default, where it applies at every level in `levels`: `cls` when every level is
        a token sequence with a class token, else `gap`; None when neither applies to all."""
        taps = [self.taps[lv] for lv in levels if lv in self.taps]
        for pool in ("cls", "gap"):
            if pool == "cls" and not all(t.is_tokens or t.pooled is None and t.kind == "vector"
                                         for t in taps):
                continue
            if all(t.pools() is None or pool in t.pools() for t in taps):
                return pool
        return None

    def preprocess(self, image_size: int | None = None) -> Preprocess:
        return self.default_preprocess.at_size(image_size)


_REGISTRY: dict[str, Callable[[], Backbone]] = {}
# name prefix -> resolver of the rest of the name (timm/..., clip/...)
_PREFIXES: dict[str, Callable[[str], Backbone]] = {}


def register(fn: Callable[[], Backbone], name: str | None = None) -> Callable[[], Backbone]:
    """Register a bare-named backbone: `fn()` gives its entry (name: the function's, or `name`)."""
    _REGISTRY[name or fn.__name__] = fn
    return fn


def register_prefix(prefix: str, resolve: Callable[[str], Backbone]) -> None:
    _PREFIXES[prefix] = resolve


def list_backbones() -> list[str]:
    """The bare names (torchvision); timm/ and clip/ names are open-ended."""
    _load_sources()
    return sorted(_REGISTRY)


@functools.lru_cache(maxsize=None)
def get_backbone(name: str) -> Backbone:
    _load_sources()
    for prefix, resolve in _PREFIXES.items():
        if name.startswith(prefix):
            try:
                return resolve(name[len(prefix):])
            except FeatxError:
                raise
            except Exception as e:  # noqa: BLE001 -- any failure to resolve: one line, no forward
                msg = str(e).splitlines()[0] if str(e) else ""
                raise FeatxError(f"--backbone {name}: cannot be resolved "
                                 f"({type(e).__name__}: {msg})") from None
    if name not in _REGISTRY:
        raise FeatxError(f"unknown --backbone {name!r}: choose one of "
                         f"{', '.join(list_backbones())}, or timm/<model>[.<tag>], "
                         f"clip/<arch>:<tag> (`featx backbones` lists them)")
    return _REGISTRY[name]()


def _load_sources() -> None:
    # importing a source module registers its backbones (timm and open_clip are imported only
    # when one of their names is resolved)
    from featx.backbones import open_clip, timm, torchvision  # noqa: F401
