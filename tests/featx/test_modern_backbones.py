"""torchvision families, timm and open_clip towers with `--weights none`: five levels in depth
order with the dims the registry (and `featx backbones`) states; the pooled deepest level equals
the model's own pre-logits features; token taps equal `forward_intermediates`; the forward stops
after the deepest asked level."""

import json

import pytest
import torch
from torch import nn

from .featx_helpers import run_featx
from featx.backbones import get_backbone, tapped
from featx.errors import FeatxError
from featx.extractor import MultiLevelExtractor, pooled_dims
from featx.weights import build_model

LEVELS = ["L0", "L1", "L2", "L3", "L4"]


def _built(name, size):
    bb = get_backbone(name)
    return bb, build_model(bb, "none", seed=0, image_size=size)[0].eval()


def _classifier_input(model: nn.Module, x) -> torch.Tensor:
    """What torchvision's classifier sees (its avgpool output, flattened)."""
    head = next(getattr(model, n) for n in ("classifier", "fc", "heads", "head")
                if hasattr(model, n))
    seen = {}
    h = head.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    with torch.no_grad():
        model(x)
    h.remove()
    return seen["x"].flatten(1)


# torchvision families at small inputs: (name, size)
TORCHVISION = [("mobilenet_v2", 64), ("mobilenet_v3_large", 64), ("efficientnet_b0", 64),
               ("regnet_y_400mf", 64), ("densenet121", 64), ("convnext_tiny", 64),
               ("swin_t", 64), ("vit_b_16", 32)]


@pytest.mark.parametrize("name,size", TORCHVISION)
def test_torchvision_families(name, size):
    torch.manual_seed(0)
    bb, model = _built(name, size)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        raw = tapped(model, bb, LEVELS)(x)
        pooled = MultiLevelExtractor(model, bb, LEVELS, bb.default_pool)(x)
    assert list(raw) == LEVELS
    for lv, t in raw.items():  # channels as stated; maps shrink (or keep) with depth
        assert t.shape[-1 if bb.is_tokens(lv) else 1] == bb.dims[lv]
    if not bb.token_levels:
        sides = [raw[lv].shape[-1] for lv in LEVELS]
        assert sides == sorted(sides, reverse=True) and sides[0] > sides[-1]
    assert {lv: p.shape[1] for lv, p in pooled.items()} == pooled_dims(bb, LEVELS,
                                                                       bb.default_pool)
    torch.testing.assert_close(pooled["L4"], _classifier_input(model, x), rtol=1e-4, atol=1e-4)


def test_timm_vit_taps_equal_forward_intermediates_and_pre_logits():
    torch.manual_seed(0)
    bb, model = _built("timm/vit_tiny_patch16_224", 32)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        raw = tapped(model, bb, LEVELS)(x)
        ref = model.forward_intermediates(x, indices=[2, 4, 7, 9], return_prefix_tokens=True,
                                          output_fmt="NLC", intermediates_only=True)
        feats = model.forward_features(x)
        pre_logits = model.forward_head(feats, pre_logits=True)
        cls = MultiLevelExtractor(model, bb, ["L4"], "cls")(x)["L4"]
    for lv, (spatial, prefix) in zip(LEVELS, ref):
        torch.testing.assert_close(raw[lv], torch.cat([prefix, spatial], dim=1))
    torch.testing.assert_close(raw["L4"], feats)
    torch.testing.assert_close(cls, pre_logits)
    assert bb.token_levels == frozenset(LEVELS) and bb.default_pool == "cls"


def test_timm_cnn_and_four_stage_models():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    bb, model = _built("timm/resnet18", 64)  # five reductions: L4 is the pre-logits map
    with torch.no_grad():
        out = MultiLevelExtractor(model, bb, LEVELS, "gap")(x)
        torch.testing.assert_close(out["L4"], model.forward_head(model.forward_features(x),
                                                                 pre_logits=True))
    assert [out[lv].shape[1] for lv in LEVELS] == [64, 64, 128, 256, 512]
    bb, model = _built("timm/convnext_atto", 64)  # stem + four stages
    with torch.no_grad():
        raw = tapped(model, bb, LEVELS)(x)
        stem = model.stem(x)
        pooled = MultiLevelExtractor(model, bb, ["L4"], "gap")(x)["L4"]
        # ConvNeXt's head normalises after pooling: L4 is what its pooling sees
        ref = model.head.global_pool(model.forward_features(x)).flatten(1)
    torch.testing.assert_close(raw["L0"], stem)
    assert [raw[lv].shape[2] for lv in LEVELS] == [16, 16, 8, 4, 2]
    torch.testing.assert_close(pooled, ref)


def test_register_tokens_are_excluded_from_gap_and_l4_is_after_fc_norm():
    torch.manual_seed(0)
    bb, model = _built("timm/vit_wee_patch16_reg1_gap_256", 64)
    assert bb.num_prefix_tokens == 1 and not bb.has_cls_token and bb.default_pool == "gap"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = MultiLevelExtractor(model, bb, ["L3", "L4"], "gap")(x)
        l3 = model.forward_intermediates(x, indices=[11], intermediates_only=True)[0]
        # the head's fc_norm normalises the pooled patch tokens: L4 is timm's pre-logits
        ref = model.forward_head(model.forward_features(x), pre_logits=True)
    torch.testing.assert_close(out["L3"], l3.mean((2, 3)))  # the register token left out
    torch.testing.assert_close(out["L4"], ref)
    with pytest.raises(FeatxError, match="without a class token"):
        MultiLevelExtractor(model, bb, ["L3"], "cls")
    with pytest.raises(FeatxError, match="fc_norm"):
        MultiLevelExtractor(model, bb, ["L4"], "gmp")


def test_clip_tower_taps_and_embedding():
    torch.manual_seed(0)
    bb, model = _built("clip/ViT-S-32-alt", 64)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        raw = tapped(model, bb, LEVELS + ["emb"])(x)
        ref = model.visual.forward_intermediates(x, indices=[2, 4, 7, 9], output_fmt="NLC",
                                                 intermediates_only=True,
                                                 output_extra_tokens=True)
        emb = model.encode_image(x)
        pooled = MultiLevelExtractor(model, bb, ["L4", "emb"], "cls")(x)
    for lv, spatial, prefix in zip(LEVELS, ref["image_intermediates"],
                                   ref["image_intermediates_prefix"]):
        torch.testing.assert_close(raw[lv], torch.cat([prefix, spatial], dim=1))
    torch.testing.assert_close(raw["emb"], emb)
    torch.testing.assert_close(pooled["emb"], emb)
    torch.testing.assert_close(pooled["L4"] @ model.visual.proj, emb)  # L4 is after ln_post
    assert dict(bb.dims) == {**{lv: 384 for lv in LEVELS}, "emb": 256}


def test_forward_stops_after_the_deepest_asked_level():
    bb, model = _built("timm/vit_tiny_patch16_224", 32)
    ran = []
    for i, blk in enumerate(model.blocks):
        blk.register_forward_hook(lambda m, a, o, i=i: ran.append(i))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        tapped(model, bb, ["L0", "L2"])(x)
        assert ran == list(range(8))  # L2 = block ceil(3*12/5) = 8
        ran.clear()
        tapped(model, bb, LEVELS)(x)
        assert ran == list(range(12))
        assert model(x).shape == (1, 1000)  # the taps leave the model usable as it was


def test_tapped_trains():
    bb, model = _built("mobilenet_v2", 32)
    model.train()
    out = tapped(model, bb, ["L1", "L3"])(torch.randn(2, 3, 32, 32))
    (out["L1"].mean() + out["L3"].mean()).backward()
    assert model.features[0][0].weight.grad is not None
    assert model.features[-1][0].weight.grad is None  # beyond L3: never ran


def test_backbones_command_states_the_dims():
    r = run_featx("backbones", "resnet18", "timm/vit_tiny_patch16_224", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["resnet18"]["dims"] == dict(zip(LEVELS, [64, 64, 128, 256, 512]))
    assert rows["timm/vit_tiny_patch16_224"]["dims"] == {lv: 192 for lv in LEVELS}
    assert rows["timm/vit_tiny_patch16_224"]["tokens"] == LEVELS
    assert rows["timm/vit_tiny_patch16_224"]["input_size"] == 224
    assert rows["resnet18"]["weights_from"].startswith("https://download.pytorch.org/")
    table = run_featx("backbones", "mobilenet_v2").output
    assert "mobilenet_v2" in table and "16 24 32 96 1280" in table


@pytest.mark.parametrize("name,match", [("timm/not_a_model_xyz", "timm has no model"),
                                        ("clip/ViT-B-32:nope", "unknown pretrained tag"),
                                        ("alexnet", "--backbone")])
def test_unknown_names_one_line(name, match):
    with pytest.raises(FeatxError, match=match):
        get_backbone(name)


def test_model_preprocessing():
    vit = get_backbone("timm/vit_base_patch16_224").preprocess()
    assert (vit.input_size, vit.resize_size, vit.interpolation, vit.mean) == \
        (224, 248, "bicubic", (0.5, 0.5, 0.5))
    assert get_backbone("timm/vit_base_patch16_224").preprocess(384).resize_size == 426
    clip = get_backbone("clip/ViT-B-32:openai").preprocess()
    assert (clip.input_size, clip.resize_size, clip.interpolation) == (224, 224, "bicubic")
    assert clip.mean[0] == pytest.approx(0.48145466)
    assert get_backbone("resnet50").preprocess() == get_backbone("resnet50").preprocess(224)
    assert get_backbone("resnet50").preprocess().resize_size == 224  # SPEC's, unchanged
    assert get_backbone("mobilenet_v2").preprocess().resize_size == 232  # torchvision's


@pytest.mark.parametrize("args,match", [
    (["--pool", "cls"], "is a feature map"),
    (["--layers", "L4,emb"], "has no level emb"),
    (["--prompts", "p.txt"], "no text tower"),
    (["--backbone", "timm/vit_tiny_patch16_224", "--pool", "meanmax"], "unknown --pool"),
])
def test_bad_pool_level_prompts_one_line(small_set, tmp_path, args, match):
    base = ["--backbone", "resnet18", "--weights", "none", "--device", "cpu", "--quiet"]
    r = run_featx("extract", small_set, *base, *args, "--out", tmp_path / "x.h5")
    assert r.exit_code == 1 and match in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "x.h5").exists()
