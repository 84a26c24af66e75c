"""The preprocessing conformance check (benchmarks/preprocess_sweep.py runs it over every
config): featx's model input against timm's create_transform, open_clip's preprocess and
torchvision's weights transforms on real photos, for a fixed sample of configs that covers every
resize mode and the cases of issue 15; at other input sizes too; and the check itself can fail."""

from __future__ import annotations

import dataclasses

import pytest

from featx.pixels.conformance import (TOLERANCE, check, max_difference, open_clip_cases,
                                      timm_cases, torchvision_cases)

TIMM_SAMPLE = [
    "convnext_tiny.in12k_ft_in1k",  # resize 235, crop 224: the crop offset rounds (5.5 -> 6)
    "convnext_base.fb_in22k_ft_in1k_384",  # crop_mode squash
    "vit_base_patch16_clip_384.laion2b_ft_in12k_in1k",  # squash
    "eva02_base_patch14_448.mim_in22k_ft_in22k_in1k",  # squash
    "maxvit_tiny_tf_384.in1k",  # squash
    "vit_base_patch16_224.augreg2_in21k_ft_in1k",  # resize 248: chelsea 451x300 -> 372 wide
    "volo_d4_448.sail_in1k",  # crop_pct 1.15: resized below the crop, padded with zeros
    "deepseek_vit_412m.deepseek_v4_flash_vision_exp",  # crop_mode border: longest side + fill
    "resnet50.a1_in1k",  # bicubic, crop_pct 0.95
    "efficientnet_b0.ra_in1k",  # bilinear
    "vit_base_patch14_dinov2.lvd142m",  # 518 px: enlarges the photos
]
CLIP_SAMPLE = [("ViT-B-16-SigLIP", "webli"), ("ViT-B-16-SigLIP2", "webli"),
               ("ViT-H-14", "dfn5b"), ("ViT-B-32", "openai"), ("RN50", "openai"),
               ("ViT-B-32", "laion2b_s34b_b79k")]
TV_SAMPLE = ["resnet50", "vgg16", "convnext_tiny", "vit_b_16", "efficientnet_b4", "swin_t",
             "regnet_y_400mf"]


@pytest.mark.parametrize("cases", [lambda: timm_cases(TIMM_SAMPLE),
                                   lambda: open_clip_cases(CLIP_SAMPLE),
                                   lambda: torchvision_cases(TV_SAMPLE)],
                         ids=["timm", "open_clip", "torchvision"])
def test_sample_equals_the_librarys_transform(photos, cases):
    results = list(check(cases(), list(photos.values())))
    assert results and all(r.status == "exact" for r in results), \
        [(r.name, r.max_diff) for r in results if r.status != "exact"]
    assert max(r.max_diff for r in results) < 1e-5  # in fact equal, up to float rounding


def test_squash_configs_are_squashed():
    modes = {c.name: c.pp.resize_mode for c in timm_cases(TIMM_SAMPLE[1:5])}
    modes.update({c.name: c.pp.resize_mode for c in open_clip_cases(CLIP_SAMPLE[:3])})
    assert set(modes.values()) == {"squash"}, modes


def test_non_square_input_refused_in_one_line():
    (result,) = check(timm_cases(["vit_base_patch16_sapiens2.fb"]), [])
    assert result.status == "refused" and "1024x768" in result.detail
    assert "\n" not in result.detail


@pytest.mark.parametrize("change", [dict(resize_mode="shortest"), dict(resize_size=385),
                                    dict(interpolation="bilinear"), dict(mean=(0.5, 0.5, 0.5))])
def test_the_check_sees_a_wrong_recipe(photos, change):
    """What featx got wrong before (squash ignored, sizes off by one) is caught."""
    (case,) = timm_cases(["convnext_base.fb_in22k_ft_in1k_384"])
    wrong = dataclasses.replace(case.pp, **change)
    d = max_difference([photos["chelsea.jpg"]], wrong, case.reference(), case.std)
    assert d > TOLERANCE


@pytest.mark.parametrize("size", [64, 97, 160, 300])
def test_timm_at_other_sizes(photos, size):
    """--image-size S: timm's own transform for input_size S (crop_pct and mode kept)."""
    for case in timm_cases(TIMM_SAMPLE[:2] + TIMM_SAMPLE[6:8]):
        reference = case.make({**case.config, "input_size": (3, size, size)})
        d = max_difference([photos["chelsea.jpg"], photos["rocket.png"]],
                           case.pp.at_size(size), reference, case.std)
        assert d <= TOLERANCE, (case.name, size, d)


@pytest.mark.parametrize("size", [64, 97, 300])
def test_open_clip_at_other_sizes(photos, size):
    """--image-size S: open_clip's preprocess of the tower built at S (force_image_size)."""
    for case in open_clip_cases(CLIP_SAMPLE[:1] + CLIP_SAMPLE[3:4]):
        reference = case.make({**case.config, "size": size})
        d = max_difference([photos["coffee.jpg"], photos["astronaut.png"]],
                           case.pp.at_size(size), reference, case.std)
        assert d <= TOLERANCE, (case.name, size, d)


@pytest.mark.parametrize("name,cases", [
    ("timm/convnext_tiny.in12k_ft_in1k", lambda: timm_cases(TIMM_SAMPLE[:1])),
    ("timm/convnext_base.fb_in22k_ft_in1k_384", lambda: timm_cases(TIMM_SAMPLE[1:2])),
    ("clip/ViT-B-16-SigLIP:webli", lambda: open_clip_cases(CLIP_SAMPLE[:1])),
    ("clip/RN50:openai", lambda: open_clip_cases(CLIP_SAMPLE[4:5])),
    ("convnext_tiny", lambda: torchvision_cases(["convnext_tiny"]))])
def test_the_sweep_checks_what_extract_uses(name, cases):
    """The sweep reads configs without building models; extract resolves the backbone: the
    same recipe."""
    from featx.backbones import get_backbone

    (case,) = cases()
    assert get_backbone(name).preprocess() == case.pp


@pytest.mark.parametrize("fill", [0, 128])
def test_open_clip_longest_side_with_its_fill(photos, fill):
    """open_clip's resize_mode='longest' (no pretrained tag uses it today): the longer side to
    the size, padded with fill_color."""
    (case,) = open_clip_cases(CLIP_SAMPLE[3:4])
    reference = case.make({**case.config, "resize_mode": "longest", "fill_color": fill})
    pp = dataclasses.replace(case.pp, resize_mode="longest", fill=(fill,) * 3)
    d = max_difference([photos["chelsea.jpg"], photos["rocket.png"], photos["astronaut.png"]],
                       pp, reference, case.std)
    assert d <= TOLERANCE
