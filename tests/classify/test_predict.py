"""classify predict on a cache and on an image folder; refusal of mismatched features."""

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from classify.synthetic import write_synthetic_cache
from .classify_helpers import SMALL_DIMS, run


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def stack_model(balanced, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "stack.joblib"
    run("stack", balanced, "--levels", "L2-L4", "--folds", "3", "--out", path, "--quiet")
    return path


def test_predict_on_cache(stack_model, balanced, tmp_path):
    out = tmp_path / "p.csv"
    res = run("predict", stack_model, balanced, "--out", out)
    rows = _read(out)
    classes = ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear",
               "sadness"]
    assert list(rows[0]) == (["path", "split", "label", "model_saw", "predicted"]
                             + [f"p_{c}" for c in classes] + ["error"])
    assert len(rows) == 640
    # the model's train+val images, as the model file records them (the row rule)
    assert [r["model_saw"] == "1" for r in rows] == [r["split"] != "test" and not r["error"]
                                                    for r in rows]
    failed = [r for r in rows if r["error"]]
    assert len(failed) == 4 and all(r["predicted"] == "" for r in failed)  # undecodable rows
    ok = [r for r in rows if not r["error"]]
    p = np.array([[float(r[f"p_{c}"]) for c in classes] for r in ok])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert [classes[i] for i in p.argmax(axis=1)] == [r["predicted"] for r in ok]
    test = [r for r in ok if r["split"] == "test"]
    assert np.mean([r["predicted"] == r["label"] for r in test]) > 0.6
    assert "4 images failed" in res.output


def test_predict_refuses_other_features(stack_model, cache_dir, tmp_path):
    other = write_synthetic_cache(cache_dir / "other.h5", n=160, dims=SMALL_DIMS, tag="other")
    res = run("predict", stack_model, other, "--out", tmp_path / "p.csv", ok=False)
    assert res.exit_code != 0 and "feature_fingerprint" in res.output
    assert not (tmp_path / "p.csv").exists()


def test_predict_refuses_other_dims(balanced, stack_model, tmp_path):
    from classify.persist import load_model

    forged = write_synthetic_cache(tmp_path / "dims.h5", n=160,
                                   dims={**SMALL_DIMS, "L4": 30},
                                   feature_fingerprint=load_model(stack_model)[
                                       "feature_fingerprint"])
    res = run("predict", stack_model, forged, ok=False)
    assert res.exit_code != 0 and "level L4 has 30 dims, the model expects 24" in res.output


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    """A small cache written by featx extract from generated images."""
    from featx.cli import main as featx_main
    from featx.synthetic import generate_images

    root = tmp_path_factory.mktemp("real")
    images = generate_images(root / "images", n_per_class=12, size=40)
    cache = root / "real.h5"
    res = CliRunner().invoke(featx_main, [
        "extract", str(images), "--backbone", "resnet18", "--weights", "none", "--image-size",
        "32", "--device", "cpu", "--workers", "0", "--quiet", "--out", str(cache)])
    assert res.exit_code == 0, res.output
    return images, cache


def test_real_cache_fit_and_predict_on_images_match_cache(real_cache, tmp_path):
    images, cache = real_cache
    model = tmp_path / "m.joblib"
    run("fit", cache, "--levels", "L3,L4", "--out", model, "--json", tmp_path / "f.json",
        "--quiet")
    run("predict", model, cache, "--out", tmp_path / "c.csv")
    run("predict", model, images, "--out", tmp_path / "i.csv", "--quiet")
    from_cache = {r["path"]: r for r in _read(tmp_path / "c.csv")}
    from_images = {r["path"]: r for r in _read(tmp_path / "i.csv")}
    assert set(from_images) == set(from_cache) and len(from_cache) == 96
    assert "label" not in next(iter(from_images.values()))  # no true label for a plain folder
    for path, r in from_images.items():
        assert r["predicted"] == from_cache[path]["predicted"]
        assert float(r["p_awe"]) == pytest.approx(float(from_cache[path]["p_awe"]), abs=1e-4)


def test_real_cache_stack_and_image_folder_with_other_settings_refused(real_cache, tmp_path):
    from featx.cli import main as featx_main

    images, cache = real_cache
    other = tmp_path / "gmp.h5"
    res = CliRunner().invoke(featx_main, [
        "extract", str(images), "--backbone", "resnet18", "--weights", "none", "--image-size",
        "32", "--pool", "gmp", "--layers", "L3,L4", "--device", "cpu", "--workers", "0",
        "--quiet", "--out", str(other)])
    assert res.exit_code == 0, res.output
    model = tmp_path / "gmp.joblib"
    run("stack", other, "--levels", "L3,L4", "--folds", "2", "--out", model, "--quiet")
    res = run("predict", model, cache, ok=False)  # gap features for a gmp model
    assert res.exit_code != 0 and "pool" in res.output and "Traceback" not in res.output


def test_predict_one_image_file_and_a_file_that_is_neither(real_cache, tmp_path):
    images, cache = real_cache
    model = tmp_path / "m.npz"
    run("fit", cache, "--levels", "L4", "--out", model, "--quiet")
    run("predict", model, cache, "--out", tmp_path / "c.csv")
    from_cache = {r["path"]: r for r in _read(tmp_path / "c.csv")}
    one = sorted(images.rglob("*.jpg"))[5]
    res = run("predict", model, one, "--out", tmp_path / "one.csv", "--quiet")
    (row,) = _read(tmp_path / "one.csv")
    ref = from_cache[one.relative_to(images).as_posix()]
    assert row["path"] == one.name and row["predicted"] == ref["predicted"]
    assert float(row["p_awe"]) == pytest.approx(float(ref["p_awe"]), abs=1e-4)
    assert "1 predictions written" in res.output
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    bad = run("predict", model, notes, "--out", tmp_path / "x.csv", ok=False)
    assert bad.exit_code == 1 and "neither a feature cache (HDF5) nor an image file" in bad.output
    assert str(notes) in bad.output and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()
