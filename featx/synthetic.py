"""A small 8-class image set whose classes differ in colour, texture and shape (demo and tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

EMOTIONS = ("amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness")

# per class: base RGB colour, texture, shape
_STYLE = {
    "amusement": ((250, 200, 40), "dots", "circle"),
    "anger": ((200, 30, 30), "stripes", "triangle"),
    "awe": ((60, 90, 220), "smooth", "square"),
    "contentment": ((80, 190, 90), "waves", "ellipse"),
    "disgust": ((120, 140, 40), "noise", "blob"),
    "excitement": ((240, 110, 20), "checker", "star"),
    "fear": ((40, 30, 60), "noise", "triangle"),
    "sadness": ((110, 120, 140), "stripes", "circle"),
}


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(6, 12) * size / 64
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "stripes":
        t = np.sin((xx * np.cos(phase) + yy * np.sin(phase)) * 2 * np.pi / period)
    elif kind == "dots":
        t = np.sin(xx * 2 * np.pi / period + phase) * np.sin(yy * 2 * np.pi / period + phase)
    elif kind == "waves":
        t = np.sin((xx + 4 * np.sin(yy / period)) * 2 * np.pi / (2 * period) + phase)
    elif kind == "checker":
        t = np.sign(np.sin(xx * np.pi / period + phase) * np.sin(yy * np.pi / period + phase))
    elif kind == "noise":
        t = rng.standard_normal((size, size)).astype(np.float32)
    else:  # smooth gradient
        t = (xx * np.cos(phase) + yy * np.sin(phase)) / size
    return t


def _shape(draw: ImageDraw.ImageDraw, kind: str, size: int, rng: np.random.Generator,
           fill: tuple[int, int, int]) -> None:
    r = rng.uniform(0.15, 0.3) * size
    cx, cy = rng.uniform(r, size - r, size=2)
    box = [cx - r, cy - r, cx + r, cy + r]
    if kind == "circle":
        draw.ellipse(box, fill=fill)
    elif kind == "square":
        draw.rectangle(box, fill=fill)
    elif kind == "ellipse":
        draw.ellipse([cx - r, cy - r / 2, cx + r, cy + r / 2], fill=fill)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif kind == "star":
        a = np.linspace(0, 2 * np.pi, 11)[:-1] + rng.uniform(0, np.pi)
        rad = np.where(np.arange(10) % 2 == 0, r, r / 2.5)
        draw.polygon(list(zip(cx + rad * np.cos(a), cy + rad * np.sin(a))), fill=fill)
    else:  # blob: a few overlapping circles
        for _ in range(4):
            dx, dy = rng.uniform(-r / 2, r / 2, size=2)
            q = r * rng.uniform(0.4, 0.7)
            draw.ellipse([cx + dx - q, cy + dy - q, cx + dx + q, cy + dy + q], fill=fill)


def render(label: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One image of class `label`."""
    colour, texture, shape = _STYLE[label]
    base = np.array(colour, dtype=np.float32) + rng.normal(0, 25, size=3)
    t = _texture(texture, size, rng)[..., None]
    img = base * (0.75 + 0.25 * t) + rng.normal(0, 12, size=(size, size, 3))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    fill = tuple(int(v) for v in np.clip(255 - base + rng.normal(0, 20, size=3), 0, 255))
    _shape(ImageDraw.Draw(pil), shape, size, rng, fill)
    return pil


def generate_images(out_dir: str | os.PathLike, n_per_class: int = 40, size: int = 96,
                    seed: int = 0, classes: tuple[str, ...] = EMOTIONS) -> Path:
    """Write out_dir/<class>/<class>_NNNN.jpg (class-folder layout); existing files are kept."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    for label in classes:
        (out / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            img = render(label, size, rng)
            path = out / label / f"{label}_{i:04d}.jpg"
            if not path.exists():
                tmp = path.with_name(f".{path.name}.tmp")
                img.save(tmp, format="JPEG", quality=90)
                os.replace(tmp, path)
    return out
