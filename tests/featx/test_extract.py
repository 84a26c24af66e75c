import hashlib
import json
import resource
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from .featx_helpers import FAST, PYTHON, run_featx, subprocess_env
from featx.cache import Cache
from featx.dataset import load_collection
from featx.extract import extract_images
from .featx_corpus import write_bad, write_good


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cache(small_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("ex") / "small.h5"
    r = run_featx("extract", small_set, *FAST, "--out", out, "--batch-size", "8")
    assert r.exit_code == 0, r.output
    return out


def test_cache_contents(cache, small_set):
    coll = load_collection(small_set)
    with Cache(cache) as c:
        a = c.attrs
        assert a["backbone"] == "resnet18" and a["pool"] == "gap" and a["dtype"] == "float32"
        assert a["image_size"] == 32 and a["weights"] == "none:seed=0"
        assert a["weights_source"] == "none" and json.loads(a["layers"]) == c.levels
        assert c.levels == ["L0", "L1", "L2", "L3", "L4"]
        assert c.dims == {"L0": 64, "L1": 64, "L2": 128, "L3": 256, "L4": 512}
        assert len(a["feature_fingerprint"]) == 64 and a["feature_fingerprint"] != c.fingerprint
        assert c.paths == coll.paths and c.classes == coll.classes
        assert np.array_equal(c.split, coll.split) and np.array_equal(c.labels, coll.labels)
        assert c.valid.all() and a["n_failed"] == 0
        x = c.features(["L0", "L4"])
        assert x.shape == (40, 576) and np.isfinite(x).all() and (x.std(axis=0) > 0).any()
    assert not (cache.parent / "small.h5.parts").exists()


def test_rerun_is_a_no_op(cache, small_set):
    before = _sha(cache)
    r = run_featx("extract", small_set, *FAST[:-1], "--out", cache, "--batch-size", "8")
    assert r.exit_code == 0 and "already complete" in r.output
    assert _sha(cache) == before


@pytest.mark.parametrize("change,named", [
    (["--pool", "gmp"], "pool gap -> gmp"),
    (["--image-size", "40"], "image_size 32 -> 40"),
    (["--layers", "L4"], "layers"),
    (["--split", "90/5/5"], "split_spec 80/5/15 -> 90/5/5"),
])
def test_other_settings_refused_and_cache_untouched(cache, small_set, change, named):
    before = _sha(cache)
    r = run_featx("extract", small_set, *FAST, "--out", cache, "--batch-size", "8", *change)
    assert r.exit_code == 1
    msg = r.output.strip()
    assert msg.startswith("Error:") and "\n" not in msg and str(cache) in msg and named in msg
    assert _sha(cache) == before
    assert not (cache.parent / f"{cache.name}.parts").exists()


def test_foreign_work_folder_refused(small_set, tmp_path):
    out = tmp_path / "c.h5"
    parts = tmp_path / "c.h5.parts"
    parts.mkdir()
    (parts / "meta.json").write_text(json.dumps({"fingerprint": "0" * 64, "settings": {
        "backbone": "resnet50"}}))
    r = run_featx("extract", small_set, *FAST, "--out", out)
    assert r.exit_code == 1 and str(parts) in r.output and "backbone resnet50 -> resnet18" in \
        r.output
    assert not out.exists() and (parts / "meta.json").is_file()


def test_not_a_cache_at_out_is_not_overwritten(small_set, tmp_path):
    out = tmp_path / "notes.h5"
    out.write_text("precious")
    r = run_featx("extract", small_set, *FAST, "--out", out)
    assert r.exit_code == 1 and "not a featx cache" in r.output
    assert out.read_text() == "precious"


def test_corrupt_corpus(tmp_path):
    data = tmp_path / "data"
    good = write_good(data / "awe")
    bad = write_bad(data / "fear")
    bad.remove("loop.png")  # a link loop is no image row: it is recorded in /skipped
    out = tmp_path / "c.h5"
    r = run_featx("extract", data, *FAST[:-1], "--out", out, "--batch-size", "4",
                  "--chunk-size", "8")
    assert r.exit_code == 0, r.output
    assert f"{len(bad)} of {len(good) + len(bad)} images could not be used" in r.output
    with Cache(out) as c:
        valid = dict(zip(c.paths, c.valid))
        errors = dict(zip(c.paths, c.errors))
        assert "fear/loop.png" not in valid
        skipped = dict(c.skipped)
        feats = c.features(["L0", "L4"])
        assert c.attrs["n_failed"] == len(bad)
    assert skipped["fear/loop.png"] == "link loop"
    assert all(valid[f"awe/{n}"] and errors[f"awe/{n}"] == "" for n in good)
    assert all(not valid[f"fear/{n}"] and errors[f"fear/{n}"] for n in bad)
    assert "bomb" in errors["fear/bomb.png"]
    rows = np.array(list(valid.values()))
    assert not feats[~rows].any() and np.abs(feats[rows]).sum(axis=1).min() > 0


def test_weights_from_a_state_dict_file(small_set, tmp_path):
    from featx.backbones import get_backbone
    from featx.weights import build_model
    model, _ = build_model(get_backbone("resnet18"), "none", seed=3)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    a, b = tmp_path / "file.h5", tmp_path / "seed3.h5"
    args = [*FAST, "--layers", "L2,L4"]
    r1 = run_featx("extract", small_set, *args, "--weights", tmp_path / "w.pt", "--out", a)
    r2 = run_featx("extract", small_set, *args, "--seed", "3", "--out", b)
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    with Cache(a) as ca, Cache(b) as cb:
        assert ca.attrs["weights"].startswith("file:w.pt:sha256=")
        assert ca.attrs["weights_source"] == str(tmp_path / "w.pt")
        assert ca.paths == cb.paths
        np.testing.assert_allclose(ca.features(["L2", "L4"]), cb.features(["L2", "L4"]),
                                   rtol=1e-5, atol=1e-5)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    r = run_featx("extract", small_set, *FAST, "--weights", tmp_path / "bad.pt",
                  "--out", tmp_path / "x.h5")
    assert r.exit_code == 1 and "bad.pt" in r.output and "Traceback" not in r.output


def test_imagenet_offline_fails_fast(small_set, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr("featx.weights._reachable", lambda url, timeout=3.0: False)
    t = time.perf_counter()
    r = run_featx("extract", small_set, "--backbone", "resnet18", "--weights", "imagenet",
                  "--device", "cpu", "--workers", "0", "--out", tmp_path / "x.h5")
    assert time.perf_counter() - t < 30
    assert r.exit_code == 1
    assert "--weights PATH" in r.output and "--weights none" in r.output
    assert not (tmp_path / "x.h5").exists()


def test_extract_images_matches_the_cache(cache, small_set):
    with Cache(cache) as c:
        paths = [small_set / p for p in c.paths[:10]]
        ref = c.features(["L1", "L4"], rows=np.arange(10))
        ffp = c.attrs["feature_fingerprint"]
    feats, valid, errors, fp = extract_images(
        paths + [small_set / "missing.jpg"], backbone="resnet18", weights="none",
        layers="L0-L4", pool="gap", image_size=32, dtype="float32", batch_size=8, workers=0,
        device="cpu", quiet=True)
    assert fp == ffp
    assert valid.tolist() == [True] * 10 + [False] and "not found" in errors[10]
    np.testing.assert_allclose(np.concatenate([feats["L1"][:10], feats["L4"][:10]], axis=1), ref,
                               rtol=1e-4, atol=1e-5)
    assert not feats["L4"][10].any()
    _, _, _, fp16 = extract_images(paths[:1], backbone="resnet18", weights="none", layers="L0-L4",
                                   pool="gap", image_size=32, dtype="float16", device="cpu",
                                   workers=0, quiet=True)
    assert fp16 != ffp


def test_csv_manifest_split_is_used(small_set, tmp_path):
    coll = load_collection(small_set)
    names = ["train", "val", "test"]
    lines = ["path,label,split"] + [f"data/{p},{coll.classes[y]},{names[i % 3]}"
                                    for i, (p, y) in enumerate(zip(coll.paths, coll.labels))]
    (small_set.parent / "m.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "m.h5"
    r = run_featx("extract", small_set.parent / "m.csv", *FAST, "--layers", "L4", "--out", out)
    assert r.exit_code == 0, r.output
    with Cache(out) as c:
        assert c.attrs["split_spec"] == "csv"
        assert [f"data/{p}" for p in coll.paths] == c.paths
        assert c.split.tolist() == [i % 3 for i in range(len(coll))] and c.valid.all()


@pytest.mark.parametrize("args,match", [
    (["--image-size", "8"], "--image-size"),
    (["--layers", "L9"], "L9"),
    (["--chunk-size", "10", "--batch-size", "4"], "--chunk-size"),
    (["--backbone", "alexnet"], "--backbone"),
    (["--pool", "median"], "--pool"),
    (["--split", "1/2"], "--split"),
])
def test_bad_flags_one_line(small_set, tmp_path, args, match):
    r = run_featx("extract", small_set, *FAST, "--out", tmp_path / "x.h5", *args)
    assert r.exit_code in (1, 2) and match in r.output and "Traceback" not in r.output


def test_unwritable_out(small_set, tmp_path):
    (tmp_path / "file").write_text("x")
    r = run_featx("extract", small_set, *FAST, "--out", tmp_path / "file" / "c.h5")
    assert r.exit_code == 1 and "file/c.h5" in r.output and len(r.output.strip().splitlines()) == 1


def test_disk_full_leaves_other_caches_intact(cache, small_set, tmp_path):
    """A write limit makes every write past 64 KiB fail (EFBIG), as a full disk would."""
    folder = tmp_path / "caches"
    folder.mkdir()
    shutil.copyfile(cache, folder / "old.h5")
    before = _sha(folder / "old.h5")

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    p = subprocess.run([PYTHON, "-m", "featx", "extract", str(small_set), *FAST,
                        "--out", str(folder / "new.h5")], env=subprocess_env(),
                       preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip()
    assert err.startswith("Error:") and "\n" not in err and "file too large" in err
    assert _sha(folder / "old.h5") == before
    assert not (folder / "new.h5").exists()
