"""finetune's confusion.png draws class names as written: "$" is not matplotlib maths."""

import numpy as np
from PIL import Image

from finetune.evaluate import plot_confusion

NAMES = ["$\\badcmd$", "price $5 and $6", "plain"]


def test_confusion_png_draws_dollars_as_written(tmp_path):
    cm = [[3, 1, 0], [0, 2, 2], [1, 0, 5]]
    plot_confusion(cm, NAMES, tmp_path / "ours.png", f"test {NAMES[0]}")
    # the reference: matplotlib's own escaping ("\$" is a literal dollar), maths parsing on
    escaped = [n.replace("$", "\\$") for n in NAMES]
    plot_confusion.__wrapped__(cm, escaped, tmp_path / "ref.png", f"test {escaped[0]}")
    ours, ref = (np.asarray(Image.open(tmp_path / f).convert("RGB")) for f in ("ours.png",
                                                                              "ref.png"))
    assert np.array_equal(ours, ref)
