"""SPEC preprocessing: shorter side -> image_size, centre crop, ImageNet normalisation.

Decoding and resizing run in loader workers and yield uint8 tensors (4x less to move than
float); normalisation runs on the device, batched.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from featx.decode import DecodeError, load_image

# Changing anything below changes the numbers: bump the version, it is part of the fingerprint.
PREPROCESSING = "v1:exif,rgb,jpeg-draft,resize-shorter-bilinear-antialias,center-crop,imagenet-norm"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=None)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_uint8_tensor(img: Image.Image) -> Tensor:
    """RGB PIL image -> uint8 [3, H, W]."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def load_preprocessed(path: str | os.PathLike, size: int) -> tuple[Tensor, str]:
    """(uint8 [3, size, size], '') or (zeros, reason) for a file that cannot be decoded."""
    try:
        img = load_image(path, draft_size=size)
        return to_uint8_tensor(resize_center_crop(img, size)), ""
    except DecodeError as e:
        return torch.zeros(3, size, size, dtype=torch.uint8), str(e)


def normalize(batch: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 [B, 3, H, W] on any device -> normalised float [B, 3, H, W]."""
    mean = torch.tensor(IMAGENET_MEAN, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255
    return (batch.to(dtype) - mean) / std
