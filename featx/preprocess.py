"""Preprocessing: the model's own eval transform (resize, centre crop, normalisation by its
mean/std), equal pixel for pixel to the library's (timm's create_transform, open_clip's preprocess,
torchvision's weights transforms): same output sizes (longer side truncated, as torchvision's
Resize), same crop offsets (rounded, as its center_crop), same PIL filters.

Decoding and resizing run in loader workers and yield uint8 tensors (4x less to move than
float); normalisation runs on the device, batched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from featx.backbones.registry import Preprocess
from featx.decode import DecodeError, load_image

# How files become RGB pixels; the model's recipe (Preprocess.describe) is appended to it in the
# fingerprint. Changing anything here changes the numbers: bump the version.
# v1 decoded large JPEGs at a reduced scale and rounded sizes and crop offsets differently.
PREPROCESSING = "v2:pil-full-decode,exif,rgb"
# --fast-decode: libjpeg's reduced-scale (draft) decoding of JPEGs at least twice the resize
# size; faster, but not the same pixels as the full decode
FAST_DECODE = "jpeg-draft"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST,
               "box": Image.BOX, "hamming": Image.HAMMING, "lanczos": Image.LANCZOS}


def is_fast_decode(preprocessing: str) -> bool:
    """Whether a recorded preprocessing id was extracted with --fast-decode."""
    return preprocessing.split(";")[0].endswith(f",{FAST_DECODE}")


def as_preprocess(spec: int | Preprocess) -> Preprocess:
    """An image size alone means SPEC's default: resize to it, crop it, ImageNet mean/std."""
    return spec if isinstance(spec, Preprocess) else Preprocess(int(spec), int(spec))


def preprocessing_id(base: str, spec: int | Preprocess) -> str:
    """What the fingerprint records: the decoder's steps, then the model's recipe."""
    return f"{base};{as_preprocess(spec).describe()}"


@dataclass(frozen=True)
class Geometry:
    """Where an image of a given size goes: resized to `size` (w, h; None: kept), padded by
    `pad` (left, top, right, bottom) with the recipe's fill, cropped at (left, top)."""

    size: tuple[int, int] | None
    pad: tuple[int, int, int, int]
    crop: tuple[int, int]


def resized_size(w: int, h: int, pp: Preprocess) -> tuple[int, int]:
    """(width, height) after the recipe's resize, computed as the libraries do."""
    r = pp.resize_size
    if pp.resize_mode == "squash":
        return r, r
    if pp.resize_mode == "longest":  # timm/open_clip ResizeKeepRatio(longest=1): rounded
        ratio = max(h / r, w / r)
        return round(w / ratio), round(h / ratio)
    # torchvision's Resize(int): the shorter side to r, int(r * long / short) for the longer
    return (r, int(r * h / w)) if w <= h else (int(r * w / h), r)


def geometry(w: int, h: int, pp: Preprocess) -> Geometry:
    """The resize, padding and crop of a w x h image (torchvision's center_crop: pad to the crop
    where smaller, then offsets int(round((size - crop) / 2)))."""
    nw, nh = resized_size(w, h, pp)
    s = pp.input_size
    pad = ((s - nw) // 2 if s > nw else 0, (s - nh) // 2 if s > nh else 0,
           (s - nw + 1) // 2 if s > nw else 0, (s - nh + 1) // 2 if s > nh else 0)
    pw, ph = nw + pad[0] + pad[2], nh + pad[1] + pad[3]
    return Geometry(None if (nw, nh) == (w, h) else (nw, nh), pad,
                    (int(round((pw - s) / 2.0)), int(round((ph - s) / 2.0))))


def to_model_input(img: Image.Image, pp: Preprocess) -> Image.Image:
    """RGB PIL image -> the input_size square the model sees (before normalisation)."""
    g = geometry(*img.size, pp)
    if g.size is not None:
        img = img.resize(g.size, PIL_FILTERS[pp.interpolation])
    if any(g.pad):
        img = ImageOps.expand(img, border=g.pad, fill=pp.pad_fill)
    left, top = g.crop
    return img.crop((left, top, left + pp.input_size, top + pp.input_size))


def resize_center_crop(img: Image.Image, size: int, resize: int | None = None,
                       interpolation: str = "bilinear") -> Image.Image:
    """The shorter side to `resize` (default `size`), centre crop `size`."""
    return to_model_input(img, Preprocess(size, resize or size, interpolation=interpolation))


def to_uint8_tensor(img: Image.Image) -> Tensor:
    """RGB PIL image -> uint8 [3, H, W]."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def load_preprocessed(path: str | os.PathLike, spec: int | Preprocess,
                      fast: bool = False) -> tuple[Tensor, str]:
    """(uint8 [3, S, S], '') or (zeros, reason) for a file that cannot be decoded; `spec` is a
    Preprocess or just the image size S; `fast`: JPEG draft decoding (not the same pixels)."""
    pp = as_preprocess(spec)
    size = pp.input_size
    try:
        img = load_image(path, draft_size=max(size, pp.resize_size) if fast else None)
        return to_uint8_tensor(to_model_input(img, pp)), ""
    except DecodeError as e:
        return torch.zeros(3, size, size, dtype=torch.uint8), str(e)


def normalize(batch: Tensor, dtype: torch.dtype = torch.float32,
              mean: tuple[float, ...] = IMAGENET_MEAN,
              std: tuple[float, ...] = IMAGENET_STD) -> Tensor:
    """uint8 [B, 3, H, W] on any device -> normalised float [B, 3, H, W]."""
    mean = torch.tensor(mean, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255
    std = torch.tensor(std, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255
    return (batch.to(dtype) - mean) / std
