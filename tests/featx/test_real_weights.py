"""Real ImageNet weights (../shared/weights/mobilenet_v2-imagenet.pth) on real photos: featx's
L4 features, run through the model's own classifier head, name the right ImageNet class."""

from pathlib import Path

import numpy as np
import pytest
import torch

from .featx_helpers import run_featx
from featx.cache import Cache

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
WEIGHTS = SHARED / "weights" / "mobilenet_v2-imagenet.pth"
CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
ESPRESSO = 967

pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(),
                                reason=f"no real weights at {WEIGHTS} (../shared is absent)")


def test_mobilenet_v2_names_the_cat(tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    data = tmp_path / "photos"
    for label, img in (("cat", skimage_data.chelsea()), ("coffee", skimage_data.coffee())):
        (data / label).mkdir(parents=True)
        Image.fromarray(img).save(data / label / f"{label}.jpg", quality=95)
    (data / "manifest.csv").write_text("path,label,split\ncat/cat.jpg,cat,train\n"
                                       "coffee/coffee.jpg,coffee,test\n")
    out = tmp_path / "mnv2.h5"
    r = run_featx("extract", data / "manifest.csv", "--backbone", "mobilenet_v2", "--weights",
                  WEIGHTS, "--layers", "L3,L4", "--device", "cpu", "--workers", "0", "--quiet",
                  "--out", out)
    assert r.exit_code == 0, r.output
    with Cache(out) as c:
        paths, feats = c.paths, c.features(["L4"])
        assert c.dims == {"L3": 96, "L4": 1280}
        assert c.attrs["resize_size"] == 232 and c.attrs["input_size"] == 224

    from featx.backbones import get_backbone
    from featx.weights import build_model
    model, ident = build_model(get_backbone("mobilenet_v2"), str(WEIGHTS))
    assert ident.startswith("file:mobilenet_v2-imagenet.pth:sha256=")
    with torch.no_grad():
        probs = model.eval().classifier(torch.from_numpy(feats)).softmax(1).numpy()
    top = dict(zip(paths, probs.argmax(1)))
    assert top["cat/cat.jpg"] in CATS, np.sort(probs[paths.index("cat/cat.jpg")])[-3:]
    assert top["coffee/coffee.jpg"] == ESPRESSO
