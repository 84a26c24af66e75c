"""What --fast-decode buys: decoding + resizing + cropping of JPEG photos (featx's loader work per
image) with the full decode (the default, the same pixels as PIL) against libjpeg's draft
decoding, measured alternately in one run; and how far the draft pixels are from the full ones.

python benchmarks/decode.py [--repeats 5] [--backbone resnet50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featx.backbones import get_backbone  # noqa: E402
from featx.preprocess import load_preprocessed  # noqa: E402

# skimage's sample photos, as JPEGs (quality 90), from phone-camera size down to FI-like size
PHOTOS = {"retina 1411x1411": ("retina", 1.0), "hubble 1000x872": ("hubble_deep_field", 1.0),
          "astronaut 2048x2048": ("astronaut", 4.0), "coffee 600x400": ("coffee", 1.0)}


def _photo(folder: Path, label: str) -> Path:
    import skimage.data

    name, scale = PHOTOS[label]
    img = Image.fromarray(getattr(skimage.data, name)())
    if scale != 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC)
    path = folder / f"{name}.jpg"
    img.save(path, quality=90)
    return path


def _seconds(path: Path, pp, fast: bool, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        load_preprocessed(path, pp, fast)
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="alternating rounds")
    ap.add_argument("--per-round", type=int, default=10, help="decodes per round and mode")
    ap.add_argument("--backbone", default="resnet50")
    args = ap.parse_args()
    pp = get_backbone(args.backbone).preprocess()
    print(f"{args.backbone}: {pp.describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        for label in PHOTOS:
            path = _photo(Path(tmp), label)
            full, fast = [], []
            for _ in range(args.repeats):
                full.append(_seconds(path, pp, False, args.per_round))
                fast.append(_seconds(path, pp, True, args.per_round))
            a, b = load_preprocessed(path, pp)[0], load_preprocessed(path, pp, True)[0]
            d = (a.int() - b.int()).abs()
            ratios = [x / y for x, y in zip(full, fast)]
            print(f"{label}: full {1e3 * np.median(full):.1f} ms, fast {1e3 * np.median(fast):.1f}"
                  f" ms per image: fast-decode {np.median(ratios):.2f}x (median of the rounds "
                  f"{', '.join(f'{r:.2f}' for r in ratios)}); pixels "
                  f"differ by max {int(d.max())}, mean {float(d.float().mean()):.2f} /255")


if __name__ == "__main__":
    main()
