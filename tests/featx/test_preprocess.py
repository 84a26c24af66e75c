"""featx.preprocess against the libraries' own transforms, pixel for pixel: sizes (the longer side
truncated), crop offsets (rounded as torchvision's center_crop), padding; the full JPEG decode by
default and draft decoding only with --fast-decode; the fingerprints that record them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image
from timm.data.transforms import CenterCropOrPad, ResizeKeepRatio
from torchvision import transforms as T
from torchvision.models import get_model_weights

from featx.backbones import Preprocess, get_backbone, list_backbones
from featx.backbones.torchvision import SPEC_PREPROCESS, weights_preprocess
from featx.preprocess import (PREPROCESSING, is_fast_decode, load_preprocessed, preprocessing_id,
                              resized_size, to_model_input, to_uint8_tensor)

SHAPES = [(w, h) for w, h in itertools.product((17, 40, 41, 64), (18, 41, 63))]
# (crop, resize): equal, odd and even differences, resized below the crop (padded)
SIZES = [(16, 16), (24, 35), (24, 36), (32, 29)]


def _library(mode: str, crop: int, resize: int, interpolation: str, fill: tuple) -> T.Compose:
    """The libraries' own eval steps: torchvision's Resize / CenterCrop (timm and open_clip use
    them), timm's ResizeKeepRatio + CenterCropOrPad for the longest side."""
    mode_ = T.InterpolationMode(interpolation)
    return T.Compose({
        "shortest": [T.Resize(resize, mode_), T.CenterCrop(crop)],
        "squash": [T.Resize((resize, resize), mode_), T.CenterCrop(crop)],
        "longest": [ResizeKeepRatio(resize, longest=1.0, interpolation=interpolation),
                    CenterCropOrPad(crop, fill=list(fill))]}[mode])


@pytest.mark.parametrize("mode", ["shortest", "squash", "longest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_pixels_equal_the_library_steps(mode, interpolation):
    rng = np.random.default_rng(0)
    for (w, h), (crop, resize) in itertools.product(SHAPES, SIZES):
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        pp = Preprocess(crop, resize, interpolation=interpolation, resize_mode=mode,
                        fill=(124, 116, 104))
        ours = np.asarray(to_model_input(img, pp))
        ref = np.asarray(_library(mode, crop, resize, interpolation, pp.fill)(img))
        assert np.array_equal(ours, ref), (w, h, crop, resize)


@pytest.mark.parametrize("resize", [32, 118, 235, 248, 256, 389])
def test_longer_side_truncated_as_torchvision(resize):
    for w, h in [(451, 300), (300, 451), (500, 375), (37, 64), (33, 95), (1000, 999)]:
        pp = Preprocess(min(resize, 32), resize)
        assert resized_size(w, h, pp) == T.Resize(resize)(Image.new("L", (w, h))).size


def test_chelsea_451x300_is_372_wide_at_248():
    """timm's ViT-B/16 (resize 248): int(248 * 451 / 300) = 372, not round() = 373."""
    pp = get_backbone("timm/vit_base_patch16_224").preprocess()
    assert pp.resize_size == 248 and resized_size(451, 300, pp) == (372, 248)


def test_torchvision_image_size_keeps_the_exact_crop_fraction():
    """--image-size S resizes to floor(S * resize / crop) with the weights' own two sizes, for
    every S from 32 to 1024 (a crop fraction rounded to 4 decimals was off by one for 35)."""
    assert get_backbone("convnext_tiny").preprocess(112).resize_size == 118
    for name in list_backbones():
        native = weights_preprocess(name)
        if name in SPEC_PREPROCESS:
            resize, crop = 224, 224  # SPEC: shorter side to the image size, centre crop
        else:
            t = get_model_weights(name).DEFAULT.transforms()
            resize, crop = t.resize_size[0], t.crop_size[0]
        assert (native.resize_size, native.input_size) == (resize, crop), name
        for s in range(32, 1025):
            assert native.at_size(s).resize_size == s * resize // crop, (name, s)


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    """A real photo large enough for draft decoding (1000x872 >= twice the resize)."""
    skimage = pytest.importorskip("skimage", reason="scikit-image gives the real photos")
    path = tmp_path_factory.mktemp("big") / "hubble.jpg"
    Image.fromarray(skimage.data.hubble_deep_field()).save(path, quality=92)
    return path


@pytest.mark.parametrize("name", ["resnet50", "timm/vit_base_patch16_224", "clip/RN50:openai"])
def test_default_decoding_is_the_full_decode(big_jpeg, name):
    pp = get_backbone(name).preprocess()
    with Image.open(big_jpeg) as img:
        full = to_uint8_tensor(to_model_input(img.convert("RGB"), pp))
    exact, err = load_preprocessed(big_jpeg, pp)
    fast, err_fast = load_preprocessed(big_jpeg, pp, fast=True)
    assert not err and not err_fast
    assert np.array_equal(exact.numpy(), full.numpy())
    assert (fast.int() - full.int()).abs().max().item() > 1  # the draft decode is not the same pixels


def test_fingerprints_record_the_decoding_and_the_recipe(small_set):
    from featx.extract import extract_images

    paths = sorted(small_set.rglob("*.jpg"))[:2]
    kw = dict(backbone="resnet18", weights="none", layers="L4", pool="gap", image_size=32,
              dtype="float32", device="cpu", workers=0, quiet=True)
    *_, fp = extract_images(paths, **kw)
    *_, fp_fast = extract_images(paths, fast_decode=True, **kw)
    assert fp != fp_fast
    pp = get_backbone("resnet18").preprocess()
    ids = {preprocessing_id(PREPROCESSING, pp), preprocessing_id(PREPROCESSING + ",jpeg-draft",
                                                                  pp)}
    # what featx v1 recorded for the papers' backbones (draft decoding, rounded sizes): a cache of
    # it is never resumed or reused as if it were the same
    v1 = "v1:exif,rgb,jpeg-draft,resize-shorter-bilinear-antialias,center-crop,imagenet-norm"
    assert v1 not in ids and len(ids) == 2
    assert [is_fast_decode(i) for i in sorted(ids, key=len)] == [False, True]


def test_info_shows_the_real_preprocessing_and_decoding(small_set, tmp_path):
    from .featx_helpers import FAST, run_featx

    out = tmp_path / "c.h5"
    assert run_featx("extract", small_set, *FAST, "--fast-decode", "--out", out).exit_code == 0
    info = run_featx("info", out).output
    pp = get_backbone("resnet18").preprocess(32)
    assert f"preprocess   {pp.describe()}" in info
    assert "shorter side to 32 (longer truncated), bilinear, centre crop 32" in info
    assert f"decoding     {PREPROCESSING},jpeg-draft" in info


@pytest.mark.parametrize("kw", [dict(resize_mode="random"), dict(interpolation="area")])
def test_a_recipe_featx_cannot_reproduce_is_refused(kw):
    from featx.errors import FeatxError

    with pytest.raises(FeatxError, match="cannot reproduce"):
        Preprocess(224, 256, **kw)
