"""curves.png from metrics.jsonl: per-epoch loss and val metrics, EMA beside, across stages."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from finetune.curves import write_curves


def _lines(n: int, ema: bool) -> str:
    recs = []
    for e in range(n):
        r = {"stage": "s1" if e < 3 else "s2", "stage_index": int(e >= 3), "epoch": e + 1,
             "train_loss": 2.0 / (e + 1), "val_accuracy": 0.1 * e, "val_macro_recall": None
             if e == 0 else 0.08 * e}
        if ema:
            r.update(val_ema_accuracy=0.09 * e, val_ema_macro_recall=0.07 * e)
        recs.append(json.dumps(r))
    return "\n".join(recs) + "\n{cut sho"


def test_curves_drawn_from_metrics(tmp_path):
    assert write_curves(tmp_path) is None  # no epoch yet: nothing drawn
    pixels = {}
    for ema in (False, True):
        d = tmp_path / str(ema)
        d.mkdir()
        (d / "metrics.jsonl").write_text(_lines(5, ema))
        path = write_curves(d)
        assert path == d / "curves.png"
        with Image.open(path) as im:
            pixels[ema] = np.asarray(im.convert("L"))
    # the EMA lines change the right-hand plot: the two images differ
    assert pixels[False].shape == pixels[True].shape
    assert (pixels[False] != pixels[True]).any()
