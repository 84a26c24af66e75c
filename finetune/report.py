"""`finetune eval --report DIR`: classify's report page (figures, table) and its
error-analysis gallery, on the images the checkpoint was evaluated on."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from featx.dataset import Collection
from finetune.predictions import Predictions


def write_eval_report(folder: str | os.PathLike, rows: list[dict], classes: list[str],
                      test: Predictions, coll: Collection, votes: bool,
                      quiet: bool = True) -> Path:
    """index.html and gallery.html in `folder` for `rows` (one evaluation) and the test
    predictions behind them; `votes`: show each image's human vote distribution (DATA's
    /label_dist over the run's classes)."""
    from classify.gallery import Evaluated, write_gallery
    from classify.report import write_report

    dist = None
    if votes and coll.label_dist is not None:
        where = {p: i for i, p in enumerate(coll.paths)}
        dist = np.asarray(coll.label_dist, dtype=np.float64)[[where[p] for p in test.paths]]
    ev = Evaluated(list(classes), test.true, test.proba, list(test.paths), coll.root,
                   escaped=False, dist=dist)
    title = f"finetune eval: {rows[0]['name']}"
    gallery = write_gallery(folder, ev, title=f"{title}: error analysis", quiet=quiet)
    return write_report(folder, rows, classes, title=title, gallery=gallery)
