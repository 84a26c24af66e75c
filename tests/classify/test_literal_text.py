"""Class names and titles are user text: "$" in them is drawn as a dollar sign, never parsed as
matplotlib maths (which failed on `$\\badcmd$` and set "price $5 and $6" in italics)."""

import numpy as np
import pytest
from PIL import Image

from classify.report import confusion_png, recall_png
from classify.synthetic import write_synthetic_cache
from .classify_helpers import run

NAMES = ["$\\badcmd$", "price $5 and $6", "a_b^c", "plain"]


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("figure", ["confusion", "recall"])
def test_dollars_are_drawn_as_written(tmp_path, figure):
    # the reference: matplotlib's own escaping ("\$" is a literal dollar) with maths parsing on
    escaped = [n.replace("$", "\\$") for n in NAMES]
    cm = np.arange(16).reshape(4, 4)

    def draw(fn, path, names):
        if figure == "confusion":
            fn(path, cm, names, f"title {names[1]}")
        else:
            rows = [{"name": names[1], "test": {"per_class_recall": dict(zip(names, (.1, .2, .3,
                                                                                   .4)))}}]
            fn(path, rows, names)

    fn = confusion_png if figure == "confusion" else recall_png
    draw(fn, tmp_path / "ours.png", NAMES)
    draw(fn.__wrapped__, tmp_path / "ref.png", escaped)
    assert np.array_equal(_pixels(tmp_path / "ours.png"), _pixels(tmp_path / "ref.png"))


def test_report_with_dollar_class_names(tmp_path):
    cache = write_synthetic_cache(tmp_path / "c.h5", n=160, dims={"L4": 8},
                                  classes=NAMES, tag="dollars")
    run("fit", cache, "--levels", "L4", "--report", tmp_path / "r", "--quiet")
    pngs = sorted((tmp_path / "r").glob("*.png"))
    assert len(pngs) >= 2 and all(Image.open(p).size[0] > 100 for p in pngs)
