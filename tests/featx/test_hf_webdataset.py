"""--format hf and --format webdataset: datasets built with the `datasets` and `webdataset`
libraries themselves give the same features, labels and split as the same images in class
folders; corrupt members land in /errors, samples without a label in /skipped."""

from __future__ import annotations

import io
import json
import subprocess

import numpy as np
import pytest

from featx.cache import Cache
from featx.synthetic import generate_images

from .featx_helpers import FAST, PYTHON, kill_run_after, run_featx, subprocess_env

datasets = pytest.importorskip("datasets", reason="needs the [hf] extra")
wds = pytest.importorskip("webdataset", reason="needs the [hf] extra")

CLASSES = ("anger", "awe", "fear")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes x 4 JPEGs, and their features extracted from the folder: the reference."""
    root = tmp_path_factory.mktemp("hfwds")
    data = generate_images(root / "data", n_per_class=4, size=40, classes=CLASSES)
    out = root / "folder.h5"
    assert run_featx("extract", data, *FAST, "--out", out).exit_code == 0
    with Cache(out) as c:
        feats = {p: c.features(["L3", "L4"], np.array([i])) for i, p in enumerate(c.paths)}
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.jpg"))
    return data, files, feats


def _split_of(i: int) -> str:
    return ("train", "train", "validation", "test")[i % 4]


def build_hf(data, files, dest, kind):
    """The images as a Hugging Face dataset: Image feature + ClassLabel, three splits."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value

    feats = Features({"image": Image(), "label": ClassLabel(names=list(CLASSES)),
                      "name": Value("string"), "score": Value("float32")})
    rows = {}
    for i, f in enumerate(files):
        r = rows.setdefault(_split_of(i), {"image": [], "label": [], "name": [], "score": []})
        # "paths": an Image feature holding file paths (to_parquet keeps them so)
        r["image"].append(str(data / f) if kind == "paths"
                          else {"bytes": (data / f).read_bytes(), "path": None})
        r["label"].append(CLASSES.index(f.split("/")[0]))
        r["name"].append(f)
        r["score"].append(i / 10)
    dd = DatasetDict({s: Dataset.from_dict(r, features=feats) for s, r in rows.items()})
    if kind == "disk":
        dd.save_to_disk(str(dest))
    else:
        for s, d in dd.items():
            d.to_parquet(str(dest / "data" / f"{s}-00000-of-00001.parquet"))
    return dest


def build_wds(data, files, dest, kind):
    """The images as WebDataset shards of 5 samples: .cls + classes.txt, or .json labels."""
    dest.mkdir()
    (dest / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for s in range(0, len(files), 5):
        with wds.TarWriter(str(dest / f"shard-{s // 5:04d}.tar")) as w:
            for f in files[s:s + 5]:
                key = f.replace("/", "_").removesuffix(".jpg")
                label = ({"cls": CLASSES.index(f.split("/")[0])} if kind == "cls"
                         else {"json": {"label": f.split("/")[0]}})
                w.write({"__key__": key, "jpg": (data / f).read_bytes(), **label})
    return dest if kind == "cls" else dest / "shard-{0000..0002}.tar"


def source_file(kind, stored, files):
    """The folder file a stored path of `kind` came from."""
    if kind in ("disk", "parquet", "paths"):
        split, row = stored.split("/")
        in_split = [f for i, f in enumerate(files) if _split_of(i) == split]
        return in_split[int(row)]
    key = stored.split("/")[1]
    return next(f for f in files if f.replace("/", "_").removesuffix(".jpg") == key)


@pytest.mark.parametrize("kind", ["disk", "parquet", "paths", "cls", "json"])
def test_features_equal_the_folder_s(folder, tmp_path, kind):
    data, files, ref = folder
    hf = kind in ("disk", "parquet", "paths")
    src = (build_hf if hf else build_wds)(data, files, tmp_path / "ds", kind)
    fmt = "hf" if hf else "webdataset"
    out = tmp_path / "x.h5"
    res = run_featx("extract", src, *FAST, "--format", fmt, "--out", out)
    assert res.exit_code == 0, res.output
    with Cache(out) as c:
        assert c.classes == list(CLASSES) and len(c) == len(files) and c.valid.all()
        assert c.attrs["dataset_format"] == fmt
        for i, p in enumerate(c.paths):
            f = source_file(kind, p, files)
            assert c.classes[c.labels[i]] == f.split("/")[0]
            np.testing.assert_array_equal(c.features(["L3", "L4"], np.array([i])), ref[f])
        if fmt == "hf":  # train/validation/test become the split; extra columns kept
            assert c.attrs["split_spec"] == "official"
            want = [{"validation": "val"}.get(p.split("/")[0], p.split("/")[0]) for p in c.paths]
            assert [c.split_names[s] for s in c.split] == want
            assert c.extra("name") == [source_file(kind, p, files) for p in c.paths]
            assert set(c.extra_names) == {"name", "score"}
    # detection finds the format without --format
    assert run_featx("extract", src, *FAST, "--out", out).exit_code == 0
    info = run_featx("info", out).output
    assert f"source       {fmt}" in info
    from featx.extract import default_out

    assert default_out(src, "resnet18", "gap").name == "ds-resnet18-gap.h5"  # a pattern too


def test_hf_options_and_errors(folder, tmp_path):
    """--hf-split, --id-column, string labels, a corrupt image, a missing label, bad names."""
    from datasets import Dataset, Features, Value

    data, files, ref = folder
    rows = {"img": [(data / f).read_bytes() for f in files], "emotion": [f.split("/")[0]
                                                                        for f in files],
            "id": [f"im{i:02d}" for i in range(len(files))],
            # a label distribution, as a CSV's p_<class> columns
            **{f"p_{c}": [0.5 if f.startswith(c) else 0.25 for f in files] for c in CLASSES}}
    rows["img"][1] = b"\xff\xd8 not really a jpeg"
    rows["emotion"][2] = None
    d = Dataset.from_dict(rows, features=Features({"img": Value("binary"),
                                                   "emotion": Value("string"),
                                                   "id": Value("string"),
                                                   **{f"p_{c}": Value("float32")
                                                      for c in CLASSES}}))
    d.to_parquet(str(tmp_path / "pq" / "train.parquet"))
    out = tmp_path / "x.h5"
    res = run_featx("extract", tmp_path / "pq", *FAST, "--hf-split", "train", "--id-column",
                    "id", "--out", out)
    assert res.exit_code == 0, res.output
    with Cache(out) as c:
        assert len(c) == len(files) - 1 and c.paths == [f"im{i:02d}" for i in range(len(files))
                                                        if i != 2]
        assert c.attrs["split_spec"] == "80/5/15"
        bad = c.paths.index("im01")
        assert not c.valid[bad] and c.errors[bad]
        i = c.paths.index("im05")
        np.testing.assert_array_equal(c.features(["L3", "L4"], np.array([i])), ref[files[5]])
        want = [[0.5 if files[int(p[2:])].startswith(k) else 0.25 for k in CLASSES]
                for p in c.paths]
        np.testing.assert_allclose(c.label_dist, want)
        skipped = c.skipped
        assert [p for p, _ in skipped] == ["im02"] and "no label" in skipped[0][1]
    for args, msg in [(["--hf-split", "test"], "--hf-split 'test': "),
                      (["--image-column", "nope"], "--image-column 'nope': "),
                      (["--label-column", "nope"], "--label-column 'nope': ")]:
        res = run_featx("extract", tmp_path / "pq", *FAST, *args, "--out", tmp_path / "y.h5")
        assert res.exit_code == 1 and msg in res.output and len(res.output.splitlines()) == 1


def test_webdataset_corrupt_and_unlabelled_members(folder, tmp_path):
    data, files, _ = folder
    dest = tmp_path / "shards"
    dest.mkdir()
    (dest / "classes.txt").write_text("\n".join(CLASSES))
    with wds.TarWriter(str(dest / "a.tar")) as w:
        w.write({"__key__": "good", "jpg": (data / files[0]).read_bytes(), "cls": 0})
        w.write({"__key__": "broken", "png": b"\x89PNG\r\n\x1a\n truncated", "cls": 1})
        w.write({"__key__": "nolabel", "jpg": (data / files[1]).read_bytes()})
        w.write({"__key__": "badindex", "jpg": (data / files[2]).read_bytes(), "cls": 7})
        w.write({"__key__": "copy", "jpg": (data / files[0]).read_bytes(), "cls": 0})
    out = tmp_path / "x.h5"
    res = run_featx("extract", dest, *FAST, "--out", out)
    assert res.exit_code == 0, res.output
    with Cache(out) as c:
        assert c.paths == ["a.tar/broken", "a.tar/copy", "a.tar/good"]
        assert c.valid.tolist() == [False, True, True] and "corrupt" in c.errors[0]
        assert json.loads(c.attrs["duplicate_groups"]) == [["a.tar/copy", "a.tar/good"]]
        reasons = dict(c.skipped)
        assert reasons["a.tar/nolabel"] == "no label (.cls or .json)"
        assert "not in classes.txt" in reasons["a.tar/badindex"]
    (dest / "b.tar").write_bytes(b"x" * 700)
    res = run_featx("extract", dest, *FAST, "--out", tmp_path / "y.h5")
    assert res.exit_code == 1 and "b.tar: not a readable tar file" in res.output


def test_webdataset_torchrun_killed_and_resumed(tmp_path):
    """A 2-process torchrun killed after some chunks resumes them (chunks are rows of the
    shards, shared among the ranks) and equals an uninterrupted single-process run."""
    data = generate_images(tmp_path / "data", n_per_class=8, size=64, classes=CLASSES)
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.jpg"))
    src = build_wds(data, files, tmp_path / "shards", "cls")
    args = [*FAST[:-3], "--batch-size", "4", "--chunk-size", "4"]
    ref = tmp_path / "ref.h5"
    assert run_featx("extract", src, *args, "--workers", "0", "--quiet", "--out", ref)\
        .exit_code == 0
    out = tmp_path / "out.h5"
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "featx", "extract", str(src), *args, "--workers", "1", "--out", str(out)]
    done = kill_run_after(cmd, tmp_path / "out.h5.parts", 2)
    assert 2 <= done < 6 and not out.exists()
    rerun = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done} of 6 chunks already done" in rerun.stderr and "(2 processes)" in rerun.stderr
    with Cache(ref) as a, Cache(out) as b:
        assert a.paths == b.paths and a.fingerprint == b.fingerprint
        for lv in a.levels:
            np.testing.assert_array_equal(a.features([lv]), b.features([lv]))
