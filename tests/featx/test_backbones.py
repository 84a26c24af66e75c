import pytest
import torch

from featx.backbones import get_backbone, list_backbones
from featx.engine import fold_batchnorm
from featx.errors import FeatxError
from featx.extractor import MultiLevelExtractor, pooled_dims
from featx.pooling import POOLS, get_pool, pooled_dim
from featx.weights import build_model

EXPECTED = {
    "resnet18": [64, 64, 128, 256, 512],
    "resnet101": [64, 256, 512, 1024, 2048],
    "vgg19": [64, 128, 256, 512, 512],
}
LEVELS = ["L0", "L1", "L2", "L3", "L4"]


@pytest.fixture(scope="module")
def models():
    return {name: build_model(get_backbone(name), "none")[0].eval() for name in EXPECTED}


@pytest.mark.parametrize("size", [224, 64])
@pytest.mark.parametrize("name", list(EXPECTED))
def test_pooled_dims_from_a_real_forward(models, name, size):
    ext = MultiLevelExtractor(models[name], get_backbone(name).family, LEVELS, "gap").eval()
    with torch.inference_mode():
        out = ext(torch.randn(1, 3, size, size))
    assert [out[lv].shape[1] for lv in LEVELS] == EXPECTED[name]
    assert all(out[lv].shape[0] == 1 for lv in LEVELS)
    assert pooled_dims(get_backbone(name).channels, LEVELS, "gap") == dict(zip(LEVELS,
                                                                              EXPECTED[name]))


def test_resnet101_tap_shapes_at_224(models):
    seen = {}
    ext = MultiLevelExtractor(models["resnet101"], "resnet", LEVELS, "gap")
    for lv, stage in zip(ext.names, ext.stages):
        stage.register_forward_hook(lambda m, i, o, lv=lv: seen.__setitem__(lv, tuple(o.shape)))
    with torch.inference_mode():
        ext(torch.randn(1, 3, 224, 224))
    assert seen == {"L0": (1, 64, 56, 56), "L1": (1, 256, 56, 56), "L2": (1, 512, 28, 28),
                    "L3": (1, 1024, 14, 14), "L4": (1, 2048, 7, 7)}


def test_gap_l4_equals_torchvision_avgpool(models):
    model = models["resnet18"]
    x = torch.randn(2, 3, 64, 64)
    captured = {}
    h = model.avgpool.register_forward_hook(lambda m, i, o: captured.setdefault("v", o))
    with torch.inference_mode():
        model(x)
        mine = MultiLevelExtractor(model, "resnet", ["L4"], "gap")(x)["L4"]
    h.remove()
    torch.testing.assert_close(mine, captured["v"].flatten(1), rtol=1e-6, atol=1e-6)


def test_only_needed_stages_run(models):
    ext = MultiLevelExtractor(models["resnet18"], "resnet", ["L1"], "gap")
    assert len(ext.stages) == 2 and ext.levels == ["L1"]


@pytest.mark.parametrize("pool", list(POOLS))
def test_pools(pool):
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    y = get_pool(pool)(x)
    assert y.shape == (2, pooled_dim(pool, 3))
    if pool == "gap":
        torch.testing.assert_close(y, x.mean(dim=(2, 3)))
    if pool == "gmp":
        torch.testing.assert_close(y, x.flatten(2).max(dim=2).values)
    if pool == "meanstd":
        torch.testing.assert_close(y[:, 3:], x.flatten(2).std(dim=2, unbiased=False))


def test_batchnorm_folding_keeps_features():
    torch.manual_seed(0)
    model = build_model(get_backbone("resnet18"), "none")[0].eval()
    for m in model.modules():  # non-trivial statistics, as in trained weights
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        ref = MultiLevelExtractor(model, "resnet", LEVELS, "gap")(x)
        folded = fold_batchnorm(model)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        out = MultiLevelExtractor(folded, "resnet", LEVELS, "gap")(x)
    for lv in LEVELS:
        torch.testing.assert_close(out[lv], ref[lv], rtol=1e-4, atol=1e-4)


def test_registry_and_errors():
    assert {"resnet101", "resnet152", "resnet18", "resnet34", "resnet50", "vgg16",
            "vgg19"} <= set(list_backbones())
    with pytest.raises(FeatxError, match="--backbone"):
        get_backbone("alexnet")
    with pytest.raises(FeatxError, match="--pool"):
        get_pool("median")
