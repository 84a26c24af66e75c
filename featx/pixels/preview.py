"""`featx preview`: per image, the normalised tensor the model receives (.npy, float32
[3, H, W]) and that tensor de-normalised into a picture (.png)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from featx.backbones import Preprocess, get_backbone
from featx.errors import FeatxError
from featx.parts import atomic_write
from featx.pathnames import show
from featx.preprocess import PREPROCESSING, FAST_DECODE, load_preprocessed, normalize


def model_input(path: str | os.PathLike, pp: Preprocess, fast: bool = False) -> np.ndarray:
    """float32 [3, S, S]: the file decoded, resized, cropped and normalised exactly as featx
    extract feeds it to the model (the same functions, in the same order)."""
    x, err = load_preprocessed(path, pp, fast)
    if err:
        raise FeatxError(f"{show(path)}: {err}")
    return normalize(x[None], torch.float32, pp.mean, pp.std)[0].numpy()


def denormalize(t: np.ndarray, pp: Preprocess) -> np.ndarray:
    """float32 [3, S, S] model input -> uint8 [S, S, 3] picture."""
    mean = np.asarray(pp.mean, dtype=np.float64).reshape(3, 1, 1)
    std = np.asarray(pp.std, dtype=np.float64).reshape(3, 1, 1)
    x = (t.astype(np.float64) * std + mean) * 255.0
    return np.clip(np.rint(x), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def _names(paths: Sequence[Path]) -> list[str]:
    """One output name per image: its stem, numbered where two images share one."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = Path(p).stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        out.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return out


def write_previews(paths: Sequence[Path], backbone: str, out: Path, image_size: int | None = None,
                   fast: bool = False, log: Callable[[str], None] = print) -> list[Path]:
    """Write <name>.npy and <name>.png per image into `out`; the images that cannot be decoded
    are listed in one error at the end (the others are written)."""
    from featx.extract import MIN_IMAGE_SIZE

    if image_size is not None and image_size < MIN_IMAGE_SIZE:
        raise FeatxError(f"--image-size {image_size}: must be at least {MIN_IMAGE_SIZE}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FeatxError(f"--out {show(out)}: is a file, not a folder")
    pp = get_backbone(backbone).preprocess(image_size)
    names = _names(paths)
    inputs = {Path(p).resolve() for p in paths}
    clash = [out / f"{n}{ext}" for n in names for ext in (".npy", ".png")
             if (out / f"{n}{ext}").resolve() in inputs]
    if clash:
        raise FeatxError(f"--out {show(out)}: would overwrite the input {show(clash[0])}")
    out.mkdir(parents=True, exist_ok=True)
    decoding = PREPROCESSING + (f",{FAST_DECODE}" if fast else "")
    log(f"{backbone}: {pp.describe()}; decoding {decoding}")
    written, failed = [], []
    for path, name in zip(paths, names):
        try:
            t = model_input(path, pp, fast)
        except FeatxError as e:
            failed.append(str(e))
            continue
        picture = Image.fromarray(denormalize(t, pp))
        atomic_write(out / f"{name}.npy", lambda f: np.save(f, t))
        atomic_write(out / f"{name}.png", lambda f: picture.save(f, format="PNG"))
        written.append(out / f"{name}.npy")
        log(f"{show(path)} -> {show(out / name)}.npy, .png  {list(t.shape)}")
    if failed:
        raise FeatxError(f"{len(failed)} of {len(paths)} images could not be decoded "
                         f"({'; '.join(failed[:3])}{'; ...' if len(failed) > 3 else ''})")
    return written
