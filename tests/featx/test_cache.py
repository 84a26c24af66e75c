import json

import h5py
import numpy as np
import pytest

from featx.cache import (FORMAT, VERSION, Cache, CacheError, CacheMeta, CacheWriter, fingerprint,
                         list_fingerprint)


def _meta(fp="f" * 64):
    return CacheMeta(backbone="resnet18", weights="none:seed=0", image_size=32, pool="gap",
                     dtype="float16", classes=["awe", "fear"], split_spec="80/5/15", seed=0,
                     fingerprint=fp, extra={"layers": ["L0", "L4"], "preprocessing": "v1"})


def _write(path, n=5):
    rng = np.random.default_rng(0)
    feats = {"L0": rng.standard_normal((n, 4)).astype(np.float32),
             "L4": rng.standard_normal((n, 6)).astype(np.float32)}
    valid = np.array([True] * (n - 1) + [False])
    errors = [""] * (n - 1) + ["truncated"]
    w = CacheWriter(path, _meta(), [f"c/{i}.jpg" for i in range(n)], np.arange(n) % 2,
                    np.array([0, 0, 1, 2, 0][:n], dtype=np.uint8), {"L0": 4, "L4": 6})
    w.write_rows(0, {k: v[:3] for k, v in feats.items()}, valid[:3], errors[:3])
    w.write_rows(3, {k: v[3:] for k, v in feats.items()}, valid[3:], errors[3:])
    return w, feats


def test_roundtrip_follows_spec_layout(tmp_path):
    path = tmp_path / "c.h5"
    w, feats = _write(path)
    assert not path.exists()  # nothing at the destination until commit
    w.commit()
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == FORMAT and a["version"] == VERSION and bool(a["complete"])
        assert json.loads(a["classes"]) == ["awe", "fear"]
        assert json.loads(a["split_names"]) == ["train", "val", "test"]
        assert json.loads(a["layers"]) == ["L0", "L4"]
        assert f["features/L0"].dtype == np.float16 and f["features/L4"].shape == (5, 6)
        assert f["labels"].dtype == np.int16 and f["split"].dtype == np.uint8
        assert f["valid"].dtype == bool
    with Cache(path) as c:
        assert len(c) == 5 and c.levels == ["L0", "L4"] and c.dims == {"L0": 4, "L4": 6}
        assert c.paths[4] == "c/4.jpg" and c.errors[4] == "truncated" and not c.valid[4]
        x = c.features(["L0", "L4"])
        assert x.shape == (5, 10) and x.dtype == np.float32
        np.testing.assert_allclose(x[:, :4], feats["L0"], atol=2e-3)
        assert c.split_indices("train").tolist() == [0, 1]  # row 4 is train too, but invalid
        with pytest.raises(CacheError, match="L2"):
            c.features(["L2"])


def test_abort_and_incomplete(tmp_path):
    path = tmp_path / "c.h5"
    w, _ = _write(path)
    w.abort()
    assert list(tmp_path.iterdir()) == []
    with h5py.File(path, "w") as f:  # what a crashed writer without temp files would leave
        for k, v in _meta().attrs().items():
            f.attrs[k] = v
        f.attrs["complete"] = False
        f.create_group("features")
        f.create_dataset("labels", data=np.zeros(1, np.int16))
    with pytest.raises(CacheError, match="incomplete"):
        Cache(path)
    assert Cache(path, require_complete=False).fingerprint == "f" * 64


def test_not_a_cache(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"hello")
    with pytest.raises(CacheError, match="not a readable HDF5"):
        Cache(tmp_path / "x.h5")
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f.attrs["format"] = "other"
    with pytest.raises(CacheError, match="not a featx cache"):
        Cache(tmp_path / "y.h5")
    with pytest.raises(CacheError, match="no such"):
        Cache(tmp_path / "z.h5")


def test_fingerprints_change_with_content():
    a = fingerprint({"backbone": "resnet18", "pool": "gap"})
    assert a == fingerprint({"pool": "gap", "backbone": "resnet18"})
    assert a != fingerprint({"backbone": "resnet18", "pool": "gmp"})
    labels, split = np.array([0, 1]), np.array([0, 2])
    base = list_fingerprint(["a", "b"], labels, split)
    assert base != list_fingerprint(["a", "c"], labels, split)
    assert base != list_fingerprint(["a", "b"], labels, np.array([0, 1]))
