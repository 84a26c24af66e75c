"""A timm ViT cache and a CLIP cache through the whole path: killed and resumed (the CLIP run in
one process, the ViT run under torchrun with 2 processes) equal to an uninterrupted run, the
zero-shot prompts stored, and classify working on both."""

import subprocess

import h5py
import numpy as np
import pytest

from .featx_helpers import PYTHON, kill_run_after, subprocess_env
from featx.synthetic import generate_images

N = 48


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_images(tmp_path_factory.mktemp("modern") / "data", n_per_class=N // 8,
                           size=64)


def _read(path):
    with h5py.File(path, "r") as f:
        feats = {lv: f["features"][lv][:] for lv in f["features"]}
        zs = {k: f["zeroshot"][k][:] for k in f["zeroshot"]} if "zeroshot" in f else None
        return feats, dict(f.attrs), zs


def _classify(*args):
    from click.testing import CliRunner

    from classify.cli import main
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def test_timm_vit_under_torchrun_killed_and_resumed(data, tmp_path):
    args = ["--backbone", "timm/vit_tiny_patch16_224", "--weights", "none", "--image-size",
            "160", "--device", "cpu", "--batch-size", "4", "--chunk-size", "4", "--workers",
            "0", "--pool", "cls+gap", "--split", "50/25/25"]
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"
    single = [PYTHON, "-m", "featx", "extract", str(data), *args]
    multi = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
             "-m", "featx", "extract", str(data), *args, "--out", str(out)]
    subprocess.run(single + ["--out", str(ref), "--quiet"], env=subprocess_env(), check=True,
                   timeout=300)
    done = kill_run_after(multi, tmp_path / "out.h5.parts", 3)
    assert 3 <= done < N // 4 and not out.exists()
    r = subprocess.run(multi, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{done} of {N // 4} chunks already done" in r.stderr
    (fa, aa, _), (fb, ab, _) = _read(ref), _read(out)
    assert aa["fingerprint"] == ab["fingerprint"] and aa["pool"] == "cls+gap"
    for lv in fa:
        assert fa[lv].shape == (N, 384)  # cls + gap of 192-d tokens
        np.testing.assert_allclose(fa[lv], fb[lv], rtol=1e-5, atol=1e-5)
    assert "L0-L4 logreg" in _classify("fit", out, "--levels", "L0-L4", "--quiet")
    from .featx_helpers import run_featx
    info = run_featx("info", out).output
    assert "resize shorter side to 177 (longer truncated), bicubic, centre crop 160 (crop_pct " \
        "0.9)" in info
    assert "mean 0.5,0.5,0.5" in info and "token levels L0, L1, L2, L3, L4" in info
    assert "decoding     v2:pil-full-decode" in info


def test_clip_killed_and_resumed_with_prompts_and_zeroshot(data, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# mine\na painting full of {}\n\nthis makes me feel {}\n")
    args = ["--backbone", "clip/ViT-S-32-alt", "--weights", "none", "--image-size", "224",
            "--device", "cpu", "--batch-size", "4", "--chunk-size", "4", "--workers", "0",
            "--prompts", str(prompts), "--split", "50/25/25"]
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"
    cmd = [PYTHON, "-m", "featx", "extract", str(data), *args]
    subprocess.run(cmd + ["--out", str(ref), "--quiet"], env=subprocess_env(), check=True,
                   timeout=300)
    done = kill_run_after(cmd + ["--out", str(out)], tmp_path / "out.h5.parts", 3)
    assert 3 <= done < N // 4 and not out.exists()
    subprocess.run(cmd + ["--out", str(out), "--quiet"], env=subprocess_env(), check=True,
                   timeout=300)
    (fa, aa, za), (fb, ab, zb) = _read(ref), _read(out)
    assert sorted(fa) == ["L0", "L1", "L2", "L3", "L4", "emb"] and fa["emb"].shape == (N, 256)
    for lv in fa:
        np.testing.assert_array_equal(fa[lv], fb[lv])
    assert [t.decode() for t in za["templates"]] == ["a painting full of {}",
                                                     "this makes me feel {}"]
    np.testing.assert_array_equal(za["class_embeddings"], zb["class_embeddings"])

    # the stored class embeddings are CLIP's text tower on the filled-in templates
    import torch
    import torch.nn.functional as F

    import open_clip
    from featx.backbones import get_backbone
    from featx.weights import build_model
    model = build_model(get_backbone("clip/ViT-S-32-alt"), "none", image_size=224)[0].eval()
    classes = sorted(p.name for p in data.iterdir())
    tok = open_clip.get_tokenizer("ViT-S-32-alt")
    with torch.no_grad():
        e = F.normalize(model.encode_text(tok([f"this makes me feel {classes[2]}"])), dim=-1)
        e2 = F.normalize(model.encode_text(tok([f"a painting full of {classes[2]}"])), dim=-1)
        want = F.normalize((e + e2)[0] / 2, dim=-1).numpy()
    np.testing.assert_allclose(za["class_embeddings"][2], want, rtol=1e-4, atol=1e-5)
    assert len(za["class_embeddings"]) == 8

    table = _classify("zeroshot", out)
    assert "emb zeroshot" in table
    assert "emb logreg" in _classify("fit", out, "--levels", "emb", "--quiet")
