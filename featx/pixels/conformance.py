"""Preprocessing conformance: featx's model input (`featx preview`'s tensor) against the library's
own eval transform -- timm's resolve_data_config + create_transform, open_clip's preprocess,
torchvision's weights transforms -- on real photos, for pretrained configs (no weights needed).

Used by benchmarks/preprocess_sweep.py (every config) and the tests (a fixed sample). Needs
scikit-image for the photos (the dev extra).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from featx.backbones.registry import Preprocess
from featx.errors import FeatxError
from featx.pixels.preview import model_input

# the pass mark: at most one grey level apart, before normalisation
TOLERANCE = 1 / 255
Transform = Callable[[Image.Image], "object"]  # PIL image -> normalised float tensor [3, H, W]


def photos(folder: Path, names: Iterable[str] = ("astronaut", "chelsea", "coffee", "rocket")
           ) -> list[Path]:
    """skimage's sample photos saved as JPEG (quality 90) and PNG in `folder`: astronaut 512x512,
    chelsea 451x300, coffee 600x400, rocket turned upright (427x640)."""
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        a = getattr(skimage.data, name)()
        if name == "rocket":
            a = np.ascontiguousarray(np.rot90(a))
        for ext, kw in ((".jpg", {"quality": 90}), (".png", {})):
            path = folder / f"{name}{ext}"
            if not path.is_file():
                Image.fromarray(a).save(path, **kw)
            out.append(path)
    return out


@dataclass(frozen=True)
class Case:
    """One pretrained config: its name, featx's recipe (or why featx refuses it), the library's
    preprocessing config and `make(config)` its transform, the normalisation std, and the key of
    what both depend on."""

    source: str
    name: str
    pp: Preprocess | None
    refused: str
    config: dict
    make: Callable[[dict], Transform]
    std: tuple[float, ...]
    key: str

    def reference(self) -> Transform:
        return self.make(self.config)


def max_difference(paths: Iterable[Path], pp: Preprocess, reference: Transform,
                   std: tuple[float, ...]) -> float:
    """Largest |featx - library| over the photos, in pixel units of [0, 1] (normalised
    differences times the std: a wrong mean or std shows too)."""
    s = np.asarray(std, dtype=np.float64).reshape(3, 1, 1)
    worst = 0.0
    for path in paths:
        ours = model_input(path, pp).astype(np.float64)
        with Image.open(path) as img:
            ref = np.asarray(reference(img.convert("RGB")), dtype=np.float64)
        if ours.shape != ref.shape:
            return math.inf
        worst = max(worst, float((np.abs(ours - ref) * s).max()))
    return worst


def _key(*parts: object) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def timm_cases(names: Iterable[str] | None = None) -> Iterator[Case]:
    """Every timm pretrained config (timm.list_pretrained()), or `names`."""
    import timm
    from timm.data import create_transform, resolve_data_config
    from timm.models import get_pretrained_cfg

    from featx.backbones.timm import pretrained_preprocess

    for name in names if names is not None else timm.list_pretrained():
        cfg = get_pretrained_cfg(name).to_dict()
        data = resolve_data_config(pretrained_cfg=cfg)
        try:
            pp, refused = pretrained_preprocess(cfg, name), ""
        except FeatxError as e:
            pp, refused = None, str(e)
        yield Case("timm", name, pp, refused, data, lambda d: create_transform(**d),
                   tuple(data["std"]), _key(data, pp and asdict(pp)))


def open_clip_cases(tags: Iterable[tuple[str, str]] | None = None) -> Iterator[Case]:
    """Every open_clip pretrained tag (open_clip.list_pretrained()), or `tags`; the library's
    preprocess config as create_model sets it (factory.create_model: PreprocessCfg defaults,
    the tag's config merged over them, the size of the image tower's config)."""
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict

    from featx.backbones.open_clip import pretrained_preprocess

    for arch, tag in tags if tags is not None else open_clip.list_pretrained():
        cfg = merge_preprocess_dict(PreprocessCfg(), open_clip.get_pretrained_cfg(arch, tag))
        cfg["size"] = open_clip.get_model_config(arch)["vision_cfg"]["image_size"]
        try:
            pp, refused = pretrained_preprocess(arch, tag), ""
        except FeatxError as e:
            pp, refused = None, str(e)
        yield Case("open_clip", f"{arch}:{tag}", pp, refused, cfg,
                   lambda c: image_transform_v2(PreprocessCfg(**c), is_train=False),
                   tuple(cfg["std"]), _key(cfg, pp and asdict(pp)))


def torchvision_cases(names: Iterable[str] | None = None) -> Iterator[Case]:
    """featx's torchvision backbones: the weights' transforms(); the papers' ResNet/VGG against
    SPEC's recipe in torchvision (Resize(224), CenterCrop(224), ImageNet mean/std)."""
    from torchvision import transforms as T
    from torchvision.models import get_model_weights

    from featx.backbones import list_backbones
    from featx.backbones.torchvision import SPEC_PREPROCESS, weights_preprocess

    spec = T.Compose([T.Resize(224), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    for name in names if names is not None else list_backbones():
        t = spec if name in SPEC_PREPROCESS else get_model_weights(name).DEFAULT.transforms()
        std = tuple(t.transforms[-1].std) if t is spec else tuple(t.std)
        pp = weights_preprocess(name)
        yield Case("torchvision", name, pp, "", {"transform": t}, lambda c: c["transform"], std,
                   _key(repr(t), asdict(pp)))


SOURCES: dict[str, Callable[..., Iterator[Case]]] = {
    "timm": timm_cases, "open_clip": open_clip_cases, "torchvision": torchvision_cases}


@dataclass
class Result:
    source: str
    name: str
    status: str  # "exact" (within TOLERANCE) | "different" | "refused"
    max_diff: float | None
    detail: str = ""


def check(cases: Iterable[Case], paths: list[Path]) -> Iterator[Result]:
    """Each case's result; recipes already checked (same key) are not computed twice."""
    done: dict[str, float] = {}
    for c in cases:
        if c.pp is None:
            yield Result(c.source, c.name, "refused", None, c.refused)
            continue
        if c.key not in done:
            done[c.key] = max_difference(paths, c.pp, c.reference(), c.std)
        d = done[c.key]
        yield Result(c.source, c.name, "exact" if d <= TOLERANCE else "different", d,
                     c.pp.describe())
