"""`featx preview`: the tensor written is the one the model receives, equal to the library's own
transform (timm create_transform, open_clip preprocess, torchvision weights.transforms()) on real
photos within 1/255 before normalisation; its PNG; bad input as one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from featx.backbones import get_backbone
from featx.engine import Engine
from featx.pixels.preview import model_input
from ..featx_helpers import run_featx


def _timm(size=None):
    from timm.data import create_transform, resolve_data_config
    from timm.models import get_pretrained_cfg

    args = {"input_size": (3, size, size)} if size else {}
    return create_transform(**resolve_data_config(
        args, pretrained_cfg=get_pretrained_cfg("convnext_tiny.fb_in1k").to_dict()))


def _open_clip(size=None):
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict

    cfg = merge_preprocess_dict(PreprocessCfg(), open_clip.get_pretrained_cfg("ViT-B-16-SigLIP",
                                                                              "webli"))
    return image_transform_v2(PreprocessCfg(**{**cfg, "size": size or 224}), is_train=False)


def _torchvision(size=None):
    from torchvision.models import get_model_weights

    return get_model_weights("convnext_tiny").DEFAULT.transforms()


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# backbone, the library's transform, its mean and std (differences in normalised units times the
# std are differences before normalisation)
CASES = [("timm/convnext_tiny.fb_in1k", _timm, IMAGENET),
         ("clip/ViT-B-16-SigLIP:webli", _open_clip, ((0.5,) * 3, (0.5,) * 3)),
         ("convnext_tiny", _torchvision, IMAGENET)]
IMAGES = ["chelsea.jpg", "astronaut.png", "rocket.jpg", "coffee.png"]


def _check(out, photos, names, reference, norm, size):
    mean, std = (np.asarray(v).reshape(3, 1, 1) for v in norm)
    for name in names:
        stem = name.rsplit(".", 1)[0]
        t = np.load(out / f"{stem}.npy")
        assert t.dtype == np.float32 and t.shape == (3, size, size)
        with Image.open(photos[name]) as img:
            ref = reference(img.convert("RGB")).numpy()
        diff = np.abs(t - ref) * std
        assert diff.max() <= 1 / 255, (name, diff.max())
        png = np.asarray(Image.open(out / f"{stem}.png")).transpose(2, 0, 1).astype(int)
        assert np.abs(png - np.rint((ref * std + mean) * 255)).max() <= 1


@pytest.mark.parametrize("backbone,reference,norm", CASES, ids=[c[0] for c in CASES])
def test_preview_equals_the_librarys_transform(photos, tmp_path, backbone, reference, norm):
    result = run_featx("preview", *[photos[n] for n in IMAGES], "--backbone", backbone,
                       "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert get_backbone(backbone).preprocess().describe() in result.output
    _check(tmp_path, photos, IMAGES, reference(), norm,
           get_backbone(backbone).preprocess().input_size)


@pytest.mark.parametrize("backbone,reference,norm", CASES[:2], ids=[c[0] for c in CASES[:2]])
def test_preview_at_another_image_size(photos, tmp_path, backbone, reference, norm):
    result = run_featx("preview", photos["chelsea.jpg"], photos["rocket.png"], "--backbone",
                       backbone, "--image-size", "96", "--out", tmp_path, "--quiet")
    assert result.exit_code == 0 and result.output == ""
    _check(tmp_path, photos, ["chelsea.jpg", "rocket.png"], reference(96), norm, 96)


def test_preview_is_what_the_engine_feeds_the_model(photos):
    """The model's forward on the preview tensor equals featx's own forward on that image."""
    from featx.preprocess import load_preprocessed

    engine = Engine("resnet18", "none", ["L4"], "gap", torch.device("cpu"), "float32",
                    progress=False, image_size=64)
    x, _ = load_preprocessed(photos["chelsea.jpg"], engine.preprocess)
    ours = engine.forward(x[None])["L4"]
    t = torch.from_numpy(model_input(photos["chelsea.jpg"], engine.preprocess))[None]
    with torch.inference_mode():
        direct = engine.extractor(t)["L4"]
    torch.testing.assert_close(ours, direct)


def test_preview_errors_are_one_line(photos, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    out = tmp_path / "out"
    result = run_featx("preview", photos["chelsea.jpg"], bad, "--backbone", "resnet18",
                       "--out", out, "--quiet")
    assert result.exit_code != 0 and "1 of 2 images" in result.output
    assert "broken.jpg" in result.output and "Traceback" not in result.output
    assert (out / "chelsea.npy").is_file() and not (out / "broken.npy").exists()
    for args, match in [(["--image-size", "8"], "--image-size 8"),
                        (["--out", photos["chelsea.png"].parent], "would overwrite the input"),
                        (["--backbone", "timm/not_a_model_xyz"], "timm has no model")]:
        argv = ["preview", photos["chelsea.png"], "--backbone", "resnet18", "--out", out] + args
        result = run_featx(*argv)
        assert result.exit_code != 0 and match in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
