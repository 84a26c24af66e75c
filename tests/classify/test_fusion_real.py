"""Real ImageNet weights (../shared/weights/mobilenet_v2-imagenet.pth) on one small generated
image set extracted at two input sizes: the two caches fuse, the weighted fused stack is not
worse than the better single cache's stack by more than its interval, and few-shot accuracy
rises with K."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from .classify_helpers import read_json, run

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
WEIGHTS = SHARED / "weights" / "mobilenet_v2-imagenet.pth"
SIZES = (64, 112)


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    """{input size: cache} of 240 generated images (30 a class), MobileNetV2's L3 and L4."""
    if not WEIGHTS.is_file():
        pytest.skip(f"no real weights at {WEIGHTS} (../shared is absent)")
    from featx.cli import main as featx_main
    from featx.synthetic import generate_images

    root = tmp_path_factory.mktemp("real_fusion")
    images = generate_images(root / "images", n_per_class=30, size=72, seed=3)
    out = {}
    for size in SIZES:
        out[size] = root / f"mnv2_{size}.h5"
        res = CliRunner().invoke(featx_main, [
            "extract", str(images), "--backbone", "mobilenet_v2", "--weights", str(WEIGHTS),
            "--image-size", str(size), "--layers", "L3,L4", "--split", "60/20/20", "--device",
            "cpu", "--workers", "0", "--quiet", "--out", str(out[size])])
        assert res.exit_code == 0, res.output
    return out


def test_two_input_sizes_fuse_and_the_weighted_stack_holds_up(sized, tmp_path):
    single = {}
    for size, cache in sized.items():
        run("stack", cache, "--levels", "L3,L4", "--folds", "3", "--quiet", "--json",
            tmp_path / f"{size}.json")
        single[size] = read_json(tmp_path / f"{size}.json")["rows"][-1]
    run("stack", *sized.values(), "--levels", "L3,L4", "--folds", "3", "--quiet", "--json",
        tmp_path / "fused.json")
    fused = read_json(tmp_path / "fused.json")["rows"][-1]
    assert fused["levels"] == ["mobilenet_v2:L3", "mobilenet_v2:L4", "mobilenet_v2-2:L3",
                               "mobilenet_v2-2:L4"]
    better = max(r["test"]["accuracy"] for r in single.values())
    assert fused["test"]["accuracy_ci95"][1] >= better, (fused["test"], better)
    assert sum(fused["level_weights"].values()) == pytest.approx(1.0)


def test_few_shot_accuracy_rises_with_k(sized, tmp_path):
    run("fit", sized[112], "--levels", "L4", "--shots", "1,4,16", "--trials", "3", "--quiet",
        "--json", tmp_path / "fs.json")
    acc = {r["shots"]: r["test"]["accuracy"] for r in read_json(tmp_path / "fs.json")["rows"]
           if r["trial"] == "all"}
    assert acc[1] < acc[4] <= acc[16] and acc[1] < acc[16], acc
