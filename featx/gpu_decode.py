"""JPEG decoding on the GPU (nvJPEG via torchvision.io.decode_jpeg), for `--decode gpu|auto`.

Workers only read the file bytes and the EXIF orientation (PIL parses the header, no pixels);
the main process decodes the whole batch on the device, then orients, resizes (the recipe's
interpolation, antialiased; the same sizes, padding and crop offsets as the CPU path) and crops it
there. Anything else -- not a JPEG, CMYK, too large, or a file
nvJPEG rejects -- goes through the CPU decoder, so every image is treated as `--decode cpu` would
treat it, only faster.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from featx.decode import MAX_PIXELS
from featx.backbones.registry import Preprocess
from featx.loader import Batch, Decoder
from featx.preprocess import PREPROCESSING, as_preprocess, geometry, load_preprocessed

GPU_PREPROCESSING = PREPROCESSING + ",decode=nvjpeg,orient+resize=torch-antialias"
# what torch.nn.functional.interpolate can do on the device; other filters decode on the CPU
GPU_INTERPOLATIONS = ("bilinear", "bicubic")
EXIF_ORIENTATION = 0x0112

# EXIF orientation -> the [3, H, W] transform that shows the image upright (as PIL's
# ImageOps.exif_transpose does)
ORIENT: dict[int, Callable[[Tensor], Tensor]] = {
    1: lambda t: t,
    2: lambda t: t.flip(-1),
    3: lambda t: t.flip(-1).flip(-2),
    4: lambda t: t.flip(-2),
    5: lambda t: t.transpose(-1, -2),
    6: lambda t: torch.rot90(t, k=-1, dims=(-2, -1)),
    7: lambda t: t.transpose(-1, -2).flip(-1).flip(-2),
    8: lambda t: torch.rot90(t, k=1, dims=(-2, -1)),
}

# an item: (row, path, jpeg bytes or None, orientation, CPU-decoded image or None, error)
Item = tuple[int, str, Tensor | None, int, Tensor | None, str]


class JpegBytes(Dataset):
    """Raw bytes of plain RGB/grayscale JPEGs; everything else decoded on the CPU right away."""

    def __init__(self, paths: Sequence[Path], image_size: int | Preprocess, fast: bool = False):
        self.paths = [str(p) for p in paths]
        self.pp = as_preprocess(image_size)
        self.image_size = self.pp.input_size
        self.fast = fast  # --fast-decode: for the files decoded on the CPU
        self.on_gpu = self.pp.interpolation in GPU_INTERPOLATIONS

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        raw = _jpeg_for_gpu(self.paths[i]) if self.on_gpu else None
        if raw is not None:
            data, orientation = raw
            return i, self.paths[i], data, orientation, None, ""
        try:
            img, error = load_preprocessed(self.paths[i], self.pp, self.fast)
        except Exception as e:  # a decoder bug must cost one image, not the run
            img = torch.zeros(3, self.image_size, self.image_size, dtype=torch.uint8)
            error = f"unexpected decoding error ({type(e).__name__}: {e})"
        return i, self.paths[i], None, 0, img, error


def _jpeg_for_gpu(path: str) -> tuple[Tensor, int] | None:
    """(bytes, EXIF orientation) when nvJPEG can take the file, else None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:3] != b"\xff\xd8\xff":
            return None
        with Image.open(io.BytesIO(data)) as img:  # header only: no pixels decoded
            w, h = img.size
            if img.format != "JPEG" or img.mode not in ("RGB", "L") or not 0 < w * h <= MAX_PIXELS:
                return None
            orientation = int(img.getexif().get(EXIF_ORIENTATION, 1))
        return torch.frombuffer(bytearray(data), dtype=torch.uint8), \
            orientation if orientation in ORIENT else 1
    except Exception:
        return None  # the CPU decoder will find and record what is wrong


def collate_items(items: list[Item]) -> list[Item]:
    return items


def orient_resize_crop(img: Tensor, orientation: int, size: int | Preprocess) -> Tensor:
    """uint8 [3, H, W] (any device) -> upright, resized, padded and cropped as the CPU path
    (featx.preprocess.geometry) does it."""
    pp = as_preprocess(size)
    s = pp.input_size
    img = ORIENT[orientation](img)
    h, w = img.shape[-2:]
    g = geometry(w, h, pp)
    if g.size is not None:
        nw, nh = g.size
        x = F.interpolate(img[None].float(), size=(nh, nw), mode=pp.interpolation,
                          align_corners=False, antialias=True)
        img = x[0].round_().clamp_(0, 255).to(torch.uint8)
    if any(g.pad):
        left, top, right, bottom = g.pad
        canvas = torch.tensor(pp.pad_fill, dtype=torch.uint8, device=img.device).view(3, 1, 1)
        canvas = canvas.expand(3, img.shape[1] + top + bottom, img.shape[2] + left + right)
        canvas = canvas.clone()
        canvas[:, top:top + img.shape[1], left:left + img.shape[2]] = img
        img = canvas
    left, top = g.crop
    return img[:, top:top + s, left:left + s]


def _decode(datas: list[Tensor], device: torch.device) -> list[Tensor | None]:
    """Batched decode on `device`; on a failure, image by image (a bad file costs only itself)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        out: list[Tensor | None] = []
        for d in datas:
            try:
                out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                out.append(None)
        return out


def finish(items: list[Item], device: torch.device, spec: int | Preprocess) -> Batch:
    """Decode the batch's JPEGs on `device`; the CPU-decoded ones are just moved there."""
    pp = as_preprocess(spec)
    image_size = pp.input_size
    idx = torch.tensor([it[0] for it in items], dtype=torch.long)
    out = torch.empty(len(items), 3, image_size, image_size, dtype=torch.uint8, device=device)
    errors = [it[5] for it in items]
    on_gpu = [j for j, it in enumerate(items) if it[2] is not None]
    for j, it in enumerate(items):
        if it[2] is None:
            out[j] = it[4].to(device, non_blocking=True)
    if on_gpu:
        decoded = _decode([items[j][2] for j in on_gpu], device)
        for j, img in zip(on_gpu, decoded):
            if img is None:  # nvJPEG refused it: the CPU decoder decides (and explains)
                x, errors[j] = load_preprocessed(items[j][1], pp)
                out[j] = x.to(device)
            else:
                out[j] = orient_resize_crop(img, items[j][3], pp)
    return idx, out, errors


GPU_DECODER = Decoder("gpu", GPU_PREPROCESSING, JpegBytes, collate_items, finish)
_WORKS: dict[str, bool] = {}


def gpu_decode_works(device: torch.device) -> bool:
    """Whether nvJPEG decodes a small JPEG on `device` (checked once per device)."""
    key = str(device)
    if key not in _WORKS:
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (10, 20, 30)).save(buf, format="JPEG")
        try:
            from torchvision.io import decode_jpeg
            decode_jpeg(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8),
                        device=device)
            _WORKS[key] = True
        except Exception:
            _WORKS[key] = False
    return _WORKS[key]
