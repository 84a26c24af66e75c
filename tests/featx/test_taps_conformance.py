"""Taps decided from traced shapes: a fixed sample of timm / open_clip architectures, random
weights at small inputs, each exact against an independent reference (timm's
forward_intermediates and pre-logits, open_clip's encode_image, hooks for maps) or refused in one
line; and the cases the issue found, through the CLI."""

import json
from dataclasses import replace

import h5py
import numpy as np
import pytest
import torch

from .featx_helpers import run_featx
from featx.backbones import get_backbone
from featx.backbones.conformance import check, compare
from featx.errors import FeatxError
from featx.extract import feature_settings
from featx.extractor import MultiLevelExtractor, check_pool
from featx.settings import feature_fingerprint
from featx.weights import build_model

LEVELS = ["L0", "L1", "L2", "L3", "L4"]

# (backbone, the smallest input it accepts): every level exact against the reference
EXACT = [
    ("timm/cait_xxs24_224", 32), ("timm/xcit_nano_12_p16_224", 32), ("timm/pit_ti_224", 32),
    ("timm/efficientformer_l1", 224), ("timm/beit_base_patch16_224", 32),
    ("timm/vit_wee_patch16_reg1_gap_256", 32), ("timm/vit_small_patch14_reg4_dinov2", 28),
    ("timm/eva02_tiny_patch14_224", 28), ("timm/fastvit_t8", 32),
    ("timm/maxvit_nano_rw_256", 64), ("timm/coatnet_nano_rw_224", 32),
    ("timm/convnext_atto", 32), ("timm/swin_tiny_patch4_window7_224", 32),
    ("clip/RN50", 32), ("clip/ViT-S-32-alt", 32),
]
# (backbone, what the one-line refusal says)
REFUSED = [
    ("timm/levit_128s", "L3 and L4 would be the same tensor"),
    ("timm/twins_svt_small", "names 'block.0', a module the model does not have"),
    ("timm/mvitv2_tiny", "names 'block.0', a module the model does not have"),
    ("clip/nllb-clip-base", "open_clip cannot build it here"),
]


@pytest.mark.parametrize("name,size", EXACT)
def test_every_level_equals_the_reference(name, size):
    v = check(name, sizes=(size,))
    assert v.status == "exact", (v.status, v.reason, v.checked)
    assert v.size == size and not v.reason, v.reason  # every level had a reference
    levels = {k.split("/")[0] for k in v.checked}
    assert levels == set(get_backbone(name).taps)


@pytest.mark.parametrize("name,match", REFUSED)
def test_refused_in_one_line_by_name(name, match):
    with pytest.raises(FeatxError, match=match) as e:
        get_backbone(name)
    assert name in str(e.value) and "\n" not in str(e.value)
    r = run_featx("backbones", name)
    assert r.exit_code == 1 and match in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_class_token_only_after_the_main_blocks():
    """CaiT/XCiT: the blocks hold patch tokens only; the class token joins before the norm."""
    for name in ("timm/cait_xxs24_224", "timm/xcit_nano_12_p16_224"):
        bb = get_backbone(name)
        assert [(t.prefix, t.cls) for t in bb.taps.values()] == [(0, False)] * 4 + [(1, True)]
        assert bb.default_pool == "gap" and bb.pool_for(["L4"]) == "cls"
        assert bb.taps_rev  # a cache of the older taps gets another fingerprint
    with pytest.raises(FeatxError, match="L0 is a token sequence without a class token"):
        check_pool(bb, ["L0", "L4"], "cls")


@pytest.mark.parametrize("name,levels,old", [
    # featx's first taps: one class token counted at every level of XCiT
    ("timm/xcit_nano_12_p16_224", LEVELS[:4], dict(prefix=1, cls=True)),
    # ...and L4 of a gap ViT before its head's fc_norm
    ("timm/vit_wee_patch16_reg1_gap_256", ["L4"], dict(module="norm", kind="tokens", prefix=1)),
])
def test_the_reference_catches_the_old_taps(name, levels, old):
    bb = get_backbone(name)
    model = build_model(bb, "none", seed=0, image_size=32)[0].eval()
    assert compare(model, bb, 32).status == "exact"
    wrong = replace(bb, taps={**bb.taps, **{lv: replace(bb.taps[lv], **old) for lv in levels}})
    v = compare(model, wrong, 32)
    assert v.status == "wrong" and all(f"{lv}/gap" in v.reason for lv in levels), v.reason


def test_new_taps_change_the_fingerprint_only_where_they_changed():
    def fp(name, rev):
        s = feature_settings(name, "none", LEVELS, "gap", 32, "float32", 0, "p", "float32")
        assert s["backbone"].endswith(" (taps-2)") == rev
        s_old = {**s, "backbone": name}  # what featx wrote before the taps were traced
        return feature_fingerprint(s), feature_fingerprint(s_old)

    new, old = fp("timm/cait_xxs24_224", True)
    assert new != old
    new, old = fp("timm/vit_tiny_patch16_224", False)
    assert new == old


def test_pit_stages_are_maps_in_backbones_and_extract(small_set, tmp_path):
    r = run_featx("backbones", "timm/pit_ti_224", "timm/efficientformer_l1", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    # channels, not the 27/14/7 spatial widths
    assert list(rows["timm/pit_ti_224"]["dims"].values()) == [64, 64, 128, 256, 256]
    assert rows["timm/pit_ti_224"]["tokens"] == ["L4"]
    assert rows["timm/efficientformer_l1"]["tokens"] == ["L4"]
    base = ["extract", small_set, "--backbone", "timm/pit_ti_224", "--weights", "none",
            "--image-size", "32", "--device", "cpu", "--workers", "0", "--quiet"]
    # L0-L3 maps (gap), L4 the class token only: no single pool; refused before any image
    r = run_featx(*base, "--out", tmp_path / "all.h5")
    assert r.exit_code == 1 and "no --pool applies at every asked level" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "all.h5").exists() and not (tmp_path / "all.h5.parts").exists()
    r = run_featx(*base, "--layers", "L0-L3", "--out", tmp_path / "maps.h5")
    assert r.exit_code == 0, r.output
    bb = get_backbone("timm/pit_ti_224")
    model = build_model(bb, "none", seed=0, image_size=32)[0].eval()
    with h5py.File(tmp_path / "maps.h5") as f:
        assert [f[f"features/{lv}"].shape[1] for lv in LEVELS[:4]] == [64, 64, 128, 256]
        assert np.isfinite(f["features/L3"][:]).all()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        l4 = MultiLevelExtractor(model, bb, ["L4"], "cls")(x)["L4"]
        ref = model.forward_head(model.forward_features(x), pre_logits=True)
    torch.testing.assert_close(l4, ref)


def test_refusals_come_before_any_image_and_leave_nothing(small_set, tmp_path):
    out = tmp_path / "t.h5"
    for args in (["--backbone", "timm/twins_svt_small"],
                 ["--backbone", "timm/cait_xxs24_224", "--pool", "cls"]):
        r = run_featx("extract", small_set, *args, "--weights", "none", "--device", "cpu",
                      "--quiet", "--out", out)
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
        assert not out.exists() and not (tmp_path / "t.h5.parts").exists()


def test_a_cache_or_work_folder_of_the_old_taps_is_never_resumed(small_set, tmp_path):
    from featx.parts import Parts
    from featx.settings import from_cache_attrs, full_fingerprint

    name = "timm/xcit_nano_12_p16_224"
    args = ["extract", small_set, "--backbone", name, "--weights", "none", "--image-size", "32",
            "--device", "cpu", "--workers", "0", "--quiet", "--layers", "L3,L4"]
    out = tmp_path / "x.h5"
    assert run_featx(*args, "--out", out).exit_code == 0
    with h5py.File(out, "r+") as f:  # what featx wrote before the taps were traced
        old = {k: v.item() if isinstance(v, np.generic) else v
               for k, v in from_cache_attrs(f.attrs).items()}
        assert old["backbone"] == name
        f.attrs["fingerprint"] = full_fingerprint(old)
    r = run_featx(*args, "--out", out)
    assert r.exit_code == 1 and f"backbone {name} -> {name} (taps-2)" in r.output, r.output
    Parts(tmp_path / "y.h5").create({"fingerprint": full_fingerprint(old), "settings": old})
    r = run_featx(*args, "--out", tmp_path / "y.h5")
    assert r.exit_code == 1 and "older taps of this model: delete the folder" in r.output
    assert len(r.output.strip().splitlines()) == 1
