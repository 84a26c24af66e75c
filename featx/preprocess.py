"""Preprocessing: shorter side -> resize size, centre crop, normalisation by the model's mean/std
(SPEC's default for the papers' backbones: resize = crop = image size, ImageNet mean/std).

Decoding and resizing run in loader workers and yield uint8 tensors (4x less to move than
float); normalisation runs on the device, batched.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from featx.backbones.registry import Preprocess
from featx.decode import DecodeError, load_image

# Changing anything below changes the numbers: bump the version, it is part of the fingerprint.
PREPROCESSING = "v1:exif,rgb,jpeg-draft,resize-shorter-bilinear-antialias,center-crop,imagenet-norm"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def as_preprocess(spec: int | Preprocess) -> Preprocess:
    """An image size alone means SPEC's default: resize to it, crop it, ImageNet mean/std."""
    return spec if isinstance(spec, Preprocess) else Preprocess(int(spec), int(spec))


def preprocessing_id(base: str, spec: int | Preprocess) -> str:
    """What the fingerprint records: the decoder's steps, plus the model's own recipe where it
    is not SPEC's default (so the papers' backbones keep their fingerprints)."""
    pp = as_preprocess(spec)
    return base if pp == Preprocess(pp.input_size, pp.input_size) else f"{base};{pp.describe()}"


def resized_shape(w: int, h: int, size: int, resize: int) -> tuple[int, int]:
    """(width, height) with the shorter side scaled to `resize`, neither below the crop `size`."""
    scale = resize / min(w, h)
    return max(size, round(w * scale)), max(size, round(h * scale))


def resize_center_crop(img: Image.Image, size: int, resize: int | None = None,
                       interpolation: str = "bilinear") -> Image.Image:
    w, h = img.size
    nw, nh = resized_shape(w, h, size, resize or size)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), PIL_FILTERS[interpolation], reducing_gap=None)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_uint8_tensor(img: Image.Image) -> Tensor:
    """RGB PIL image -> uint8 [3, H, W]."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def load_preprocessed(path: str | os.PathLike, spec: int | Preprocess) -> tuple[Tensor, str]:
    """(uint8 [3, S, S], '') or (zeros, reason) for a file that cannot be decoded; `spec` is a
    Preprocess or just the image size S."""
    pp = as_preprocess(spec)
    size = pp.input_size
    try:
        img = load_image(path, draft_size=max(size, pp.resize_size))
        return to_uint8_tensor(resize_center_crop(img, size, pp.resize_size,
                                                  pp.interpolation)), ""
    except DecodeError as e:
        return torch.zeros(3, size, size, dtype=torch.uint8), str(e)


def normalize(batch: Tensor, dtype: torch.dtype = torch.float32,
              mean: tuple[float, ...] = IMAGENET_MEAN,
              std: tuple[float, ...] = IMAGENET_STD) -> Tensor:
    """uint8 [B, 3, H, W] on any device -> normalised float [B, 3, H, W]."""
    mean = torch.tensor(mean, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255
    std = torch.tensor(std, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255
    return (batch.to(dtype) - mean) / std
