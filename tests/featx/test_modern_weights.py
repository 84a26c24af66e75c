"""Pretrained weights of timm / open_clip backbones: taken from the Hugging Face hub cache without
any network call when they are there; offline and not there, a fast one-line error naming
--weights PATH and --weights none. `--weights PATH` takes .safetensors too."""

import time

import numpy as np
import pytest
import torch

from .featx_helpers import run_featx
from featx.cache import Cache

ARGS = ["--weights", "imagenet", "--image-size", "32", "--device", "cpu", "--workers", "0",
        "--layers", "L2,L4", "--quiet"]
VIT = "timm/vit_tiny_patch16_224"


def _no_network(monkeypatch):
    def refuse(url, timeout=3.0):
        raise AssertionError(f"network asked for {url}")
    monkeypatch.setattr("featx.weights._reachable", refuse)


def test_hub_cached_timm_weights_are_used_offline(small_set, tmp_path, monkeypatch):
    import huggingface_hub.constants
    from safetensors.torch import save_file

    import timm
    from featx.backbones import get_backbone

    repo = get_backbone(VIT).extra["pretrained_cfg"]["hf_hub_id"]
    torch.manual_seed(7)
    sd = timm.create_model(VIT.removeprefix("timm/"), pretrained=False).state_dict()
    hub = tmp_path / "hub"
    snap = hub / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, snap / "model.safetensors")
    (hub / f"models--{repo.replace('/', '--')}" / "refs").mkdir()
    (hub / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _no_network(monkeypatch)

    r = run_featx("backbones", VIT)
    assert r.exit_code == 0 and r.output.rstrip().endswith("yes"), r.output
    a, b = tmp_path / "hub.h5", tmp_path / "file.h5"
    r1 = run_featx("extract", small_set, "--backbone", VIT, *ARGS, "--out", a)
    assert r1.exit_code == 0, r1.output
    r2 = run_featx("extract", small_set, "--backbone", VIT, *ARGS, "--out", b,
                   "--weights", snap / "model.safetensors")
    assert r2.exit_code == 0, r2.output
    with Cache(a) as ca, Cache(b) as cb:
        assert ca.attrs["weights"] == f"timm:vit_tiny_patch16_224:https://huggingface.co/{repo}"
        assert cb.attrs["weights"].startswith("file:model.safetensors:sha256=")
        np.testing.assert_allclose(ca.features(["L2", "L4"]), cb.features(["L2", "L4"]),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backbone", [VIT, "clip/ViT-B-32:openai"])
def test_offline_and_not_cached_fails_fast(small_set, tmp_path, monkeypatch, backbone):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr("featx.weights._reachable", lambda url, timeout=3.0: False)
    t = time.perf_counter()
    r = run_featx("extract", small_set, "--backbone", backbone, *ARGS, "--out", tmp_path / "x.h5")
    assert time.perf_counter() - t < 30
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "--weights PATH" in r.output and "--weights none" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "x.h5").exists()


def test_a_state_dict_of_another_model_is_refused(small_set, tmp_path):
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    r = run_featx("extract", small_set, "--backbone", VIT, *ARGS, "--weights",
                  tmp_path / "other.pth", "--out", tmp_path / "x.h5")
    assert r.exit_code == 1 and "does not fit timm/vit_tiny_patch16_224" in r.output
