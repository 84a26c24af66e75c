"""Robust image decoding: any file -> an RGB PIL image, or a DecodeError with a one-line reason."""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Larger images are refused before their pixels are decoded (decompression bombs).
MAX_PIXELS = 64_000_000


class DecodeError(Exception):
    """An image that cannot be used; str(e) is the reason recorded in the cache's /errors."""


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") else max(float(a.max()), 1.0)
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _open(source) -> Image.Image:
    """A file path, or an image inside another file (featx.datasets.members: `.data()`)."""
    if isinstance(source, (str, os.PathLike)):
        if os.path.getsize(source) == 0:
            raise DecodeError("empty file (0 bytes)")
        return Image.open(source)
    try:
        raw = source.data()
    except (OSError, ValueError) as e:
        raise DecodeError(f"cannot read the image bytes ({e})") from None
    if not raw:
        raise DecodeError("empty image (0 bytes)")
    return Image.open(io.BytesIO(raw))


def load_image(path, draft_size: int | None = None) -> Image.Image:
    """Decode `path` (a file, or a member with `.data()`) to RGB with EXIF orientation applied.

    draft_size: for JPEGs, let libjpeg decode at a reduced scale that still keeps both sides
    >= draft_size (much faster for large photos; the caller resizes further anyway).
    """
    if isinstance(path, str):
        path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open(path) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise DecodeError(f"decompression bomb: {w}x{h} pixels is over the limit "
                                      f"of {MAX_PIXELS}")
                if w == 0 or h == 0:
                    raise DecodeError(f"image has no pixels ({w}x{h})")
                if draft_size and img.format == "JPEG":
                    img.draft("RGB", (draft_size, draft_size))
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except DecodeError:
        raise
    except UnidentifiedImageError:
        raise DecodeError("not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DecodeError(f"decompression bomb: {e}") from None
    except FileNotFoundError:
        raise DecodeError("file not found (or a broken link)") from None
    except IsADirectoryError:
        raise DecodeError("is a folder, not a file") from None
    except PermissionError:
        raise DecodeError("permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as e:
        raise DecodeError(f"corrupt image data ({type(e).__name__}: {e})") from None
    except MemoryError:
        raise DecodeError("out of memory while decoding") from None
    except Exception as e:  # e.g. zlib.error from a damaged PNG: still one bad image, not a crash
        raise DecodeError(f"cannot decode ({type(e).__name__}: {e})") from None
