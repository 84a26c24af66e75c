"""Builds a folder of good images of every mode and of bad files of many kinds."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _jpeg_bytes(size=(48, 40), colour=(200, 60, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def rotated_jpeg(path: Path) -> None:
    """48x24 landscape, left half red, right half blue, EXIF orientation 6 (rotate 90 CW):
    shown upright it is 24x48, red on top."""
    a = np.zeros((24, 48, 3), np.uint8)
    a[:, :24] = (255, 0, 0)
    a[:, 24:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(path, format="JPEG", quality=95, exif=exif.tobytes())


def write_good(folder: Path) -> list[str]:
    """One image of each mode; returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (40, 52, 3), dtype=np.uint8), "RGB")
    rgb.save(folder / "rgb.jpg", quality=90)
    rgb.convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    rgb.convert("L").save(folder / "gray.jpg", quality=90)
    Image.fromarray((rng.integers(0, 65535, (40, 40))).astype(np.uint16)).save(
        folder / "sixteen.png")
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(folder / "palette.png", transparency=0)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    rgb.convert("LA").save(folder / "graya.png")
    rgb.convert("1").save(folder / "bilevel.bmp")
    rgb.save(folder / "plain.webp")
    rgb.save(folder / "plain.tiff")
    rgb.save(folder / "anim.gif")
    rotated_jpeg(folder / "rotated.jpg")
    return sorted(p.name for p in folder.iterdir())


def write_bad(folder: Path) -> list[str]:
    """Files that cannot be decoded, one per kind; returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = _jpeg_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not an image\n" * 20)
    (folder / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(3000))
    # a decompression bomb: a valid PNG header announcing 100000 x 100000 pixels
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                                      + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
                                      + _png_chunk(b"IEND", b""))
    png = bytearray(_png_bytes(Image.new("RGB", (30, 30), (1, 2, 3))))
    png[29] ^= 0xFF  # inside the IHDR chunk's CRC
    (folder / "badcrc.png").write_bytes(bytes(png))
    good_png = _png_bytes(Image.fromarray(np.random.default_rng(1).integers(
        0, 255, (64, 64, 3), dtype=np.uint8)))
    (folder / "cut.png").write_bytes(good_png[: len(good_png) * 2 // 3])
    (folder / "page.png").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    (folder / "header.gif").write_bytes(b"GIF89a" + os.urandom(40))
    (folder / "riff.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 " + os.urandom(20))
    (folder / "broken-link.jpg").symlink_to(folder / "does-not-exist.jpg")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    os.mkfifo(folder / "fifo.jpg")  # opening it would block forever: must not hang
    return sorted(p.name for p in folder.iterdir())
