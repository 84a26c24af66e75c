"""featx export --to parquet|npz and featx.load: read back (pandas, polars, numpy) and compared
with the cache as h5py reads it."""

from __future__ import annotations

import json
import subprocess

import h5py
import numpy as np
import pytest

import featx
from featx.errors import FeatxError
from featx.synthetic import generate_images

from .featx_helpers import FAST, PYTHON, run_featx, subprocess_env

CLASSES = ("anger", "awe", "fear")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A kfold:3 cache from a CSV with label distributions, a number and a text column, and one
    undecodable file."""
    root = tmp_path_factory.mktemp("export")
    data = generate_images(root / "data", n_per_class=3, size=40, classes=CLASSES)
    (data / "anger" / "broken.jpg").write_bytes(b"not a jpeg")
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.jpg"))
    lines = ["path,label,p_anger,p_awe,p_fear,score,note"]
    for i, f in enumerate(files):
        c = f.split("/")[0]
        p = [0.6 if k == c else 0.2 for k in CLASSES]
        lines.append(f"{f},{c},{p[0]},{p[1]},{p[2]},{i * 0.5},note {i}")
    (data / "labels.csv").write_text("\n".join(lines) + "\n")
    out = root / "c.h5"
    res = run_featx("extract", data / "labels.csv", *FAST, "--split", "kfold:3", "--out", out)
    assert res.exit_code == 0, res.output
    return out


def from_h5(path):
    with h5py.File(path, "r") as f:
        classes = json.loads(f.attrs["classes"])
        names = json.loads(f.attrs["split_names"])
        dec = (lambda v: v.decode() if isinstance(v, bytes) else v)
        return {"path": [dec(p) for p in f["paths"][:]],
                "label": [classes[y] for y in f["labels"][:]],
                "label_index": f["labels"][:], "split": [names[s] for s in f["split"][:]],
                "fold": f["fold"][:], "valid": f["valid"][:],
                "error": [dec(e) for e in f["errors"][:]],
                "label_dist": f["label_dist"][:],
                "score": f["extra/score"][:], "note": [dec(v) for v in f["extra/note"][:]],
                **{lv: f["features"][lv][:].astype(np.float32) for lv in f["features"]}}


@pytest.mark.parametrize("to", ["parquet", "npz"])
@pytest.mark.parametrize("levels", [None, "L4", "L1,L3"])
def test_export_reads_back_as_the_cache(cache, tmp_path, to, levels):
    out = tmp_path / f"x.{to}"
    res = run_featx("export", cache, "--to", to, *(["--levels", levels] if levels else []),
                    "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    ref = from_h5(cache)
    chosen = levels.split(",") if levels else ["L0", "L1", "L2", "L3", "L4"]
    if to == "parquet":
        import pandas as pd

        df = pd.read_parquet(out)
        got = {k: list(df[k]) if df[k].dtype == object or str(df[k].dtype).startswith("str")
               else df[k].to_numpy() for k in df.columns if k not in chosen + ["label_dist"]}
        for lv in chosen + ["label_dist"]:
            got[lv] = np.stack(df[lv].to_numpy())
        assert [c for c in df.columns if c.startswith("L")] == chosen
        import pyarrow.parquet as pq

        meta = json.loads(pq.read_schema(out).metadata[b"featx"])
        assert meta["classes"] == list(CLASSES) and meta["levels"] == chosen
        polars = pytest.importorskip("polars") if to == "parquet" and levels == "L4" else None
        if polars is not None:
            pl = polars.read_parquet(out)
            np.testing.assert_array_equal(pl["L4"].to_numpy(), ref["L4"])
            assert pl["path"].to_list() == ref["path"]
    else:
        with np.load(out, allow_pickle=False) as z:
            got = {k: z[k] for k in z.files}
        assert list(got["classes"]) == list(CLASSES)
        assert [k for k in got if k.startswith("L")] == chosen
    assert not ref["valid"].all() and "broken" in ref["path"][int(np.flatnonzero(~ref["valid"])[0])]
    for k, v in ref.items():
        if k.startswith("L") and k not in chosen:
            assert k not in got
            continue
        if isinstance(v, list):
            assert list(got[k]) == v, k
        else:
            np.testing.assert_array_equal(np.asarray(got[k]), v, err_msg=k)


def test_export_errors(cache, tmp_path):
    for args, msg in [(["--levels", "L4,emb"], "level emb is not in this cache"),
                      (["--out", cache], "that is the cache itself")]:
        res = run_featx("export", cache, "--to", "npz", *args)
        assert res.exit_code == 1 and msg in res.output and len(res.output.splitlines()) == 1
    (tmp_path / "not.h5").write_bytes(b"nope")
    res = run_featx("export", tmp_path / "not.h5", "--to", "parquet")
    assert res.exit_code == 1 and "not a readable HDF5 file" in res.output


@pytest.mark.parametrize("split,fold,levels", [(None, None, "L4"), ("train", None, "L3,L4"),
                                               (None, 1, ["L0", "L4"])])
def test_load(cache, split, fold, levels):
    ref = from_h5(cache)
    X, y, paths = featx.load(cache, levels=levels, split=split, fold=fold)
    keep = ref["valid"].copy()
    if split is not None:
        keep &= np.array([s == split for s in ref["split"]])
    if fold is not None:
        keep &= ref["fold"] == fold
    rows = np.flatnonzero(keep)
    chosen = levels.split(",") if isinstance(levels, str) else levels
    assert X.dtype == np.float32 and len(rows) > 0
    np.testing.assert_array_equal(X, np.concatenate([ref[lv][rows] for lv in chosen], axis=1))
    np.testing.assert_array_equal(y, ref["label_index"][rows])
    assert paths == [ref["path"][i] for i in rows] and featx.classes(cache) == list(CLASSES)
    with pytest.raises(FeatxError, match="split 'bogus'"):
        featx.load(cache, split="bogus")


def test_import_featx_and_classify_stays_light():
    code = ("import sys, featx, classify; featx.load; classify.load_model; "
            "print(sorted(m for m in ('torch', 'pandas', 'pyarrow', 'datasets', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([PYTHON, "-c", code], env=subprocess_env(), capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
