"""Fusion across caches: two backbones (--weights none) extracted from the same generated
images; fit, stack, model files and predict over both, checked against each cache read alone;
caches of other images refused in one line naming the first difference."""

import csv

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from .classify_helpers import copy_cache, read_json, run
from classify.fusion import Fused, parse_sources
from featx.cache import Cache

BACKBONES = ("resnet18", "mobilenet_v2")


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """(images, {backbone: cache}) of 96 generated images, L3 and L4 of two backbones."""
    from featx.cli import main as featx_main
    from featx.synthetic import generate_images

    root = tmp_path_factory.mktemp("fusion")
    images = generate_images(root / "images", n_per_class=12, size=40)
    caches = {}
    for bb in BACKBONES:
        caches[bb] = root / f"{bb}.h5"
        res = CliRunner().invoke(featx_main, [
            "extract", str(images), "--backbone", bb, "--weights", "none", "--image-size", "32",
            "--layers", "L3,L4", "--device", "cpu", "--workers", "0", "--quiet", "--out",
            str(caches[bb])])
        assert res.exit_code == 0, res.output
    return images, caches


def _read(path, levels, rows):
    with h5py.File(path, "r") as f:
        return np.concatenate([f["features"][lv][:][rows].astype(np.float32) for lv in levels],
                              axis=1)


@pytest.mark.parametrize("spec, expected", [
    ("L4", {"resnet18": ["L4"], "mobilenet_v2": ["L4"]}),
    ("L3-L4", {"resnet18": ["L3", "L4"], "mobilenet_v2": ["L3", "L4"]}),
    ("resnet18:L4,mobilenet_v2:L3", {"resnet18": ["L4"], "mobilenet_v2": ["L3"]}),
    ("mobilenet_v2:L3,L4,resnet18:L3", {"resnet18": ["L3"], "mobilenet_v2": ["L3", "L4"]}),
    ("resnet18:L3-L4,mobilenet_v2:L4", {"resnet18": ["L3", "L4"], "mobilenet_v2": ["L4"]}),
])
def test_levels_per_cache_and_the_fused_matrices(two, spec, expected):
    _, caches = two
    paths = [str(caches[b]) for b in BACKBONES]
    sources = parse_sources(paths, spec)
    assert {s.alias: list(s.levels) for s in sources} == expected
    d = next(Fused(paths, spec).rounds(None, None, 0))
    assert d.levels == [f"{b}:{lv}" for b in BACKBONES for lv in expected[b]]
    for split in ("train", "val", "test"):
        rows = d[split].rows
        want = np.concatenate([_read(caches[b], expected[b], rows) for b in BACKBONES], axis=1)
        np.testing.assert_array_equal(d[split].X, want)
        assert [a for a, b in d.slices] == list(np.cumsum([0] + [d.dims[x] for x in d.levels]))[:-1]


@pytest.mark.parametrize("spec, message", [
    ("resnet18:L4", "names no level of mobilenet_v2"),
    ("vgg:L4,resnet18:L4", "no cache is called 'vgg'"),
    ("L4,resnet18:L3", "'L4' names no cache"),
    ("resnet18:L2,mobilenet_v2:L4", "level L2 is not in this cache"),
])
def test_bad_levels_are_one_line_errors(two, spec, message):
    _, caches = two
    res = run("fit", caches["resnet18"], caches["mobilenet_v2"], "--levels", spec, ok=False)
    assert res.exit_code != 0 and message in res.output, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def _change(what):
    def edit(f):
        if what == "paths":
            p = f["paths"][:]
            p[5] = b"other/img.jpg"
            f["paths"][...] = p
        elif what == "labels":
            y = f["labels"][:]
            y[7] = (y[7] + 1) % 8
            f["labels"][...] = y
        elif what == "split":
            s = f["split"][:]
            s[3] = (s[3] + 1) % 3
            f["split"][...] = s
        else:
            f.attrs["classes"] = f.attrs["classes"].replace("awe", "wonder")
    return edit


@pytest.mark.parametrize("what, message", [
    ("paths", "image 5 is 'other/img.jpg'"), ("labels", "the labels differ (image 7"),
    ("split", "the split differ (image 3"), ("classes", "classes ["),
])
def test_caches_of_other_images_are_refused_naming_the_first_difference(two, tmp_path, what,
                                                                        message):
    _, caches = two
    other = copy_cache(caches["mobilenet_v2"], tmp_path / "other.h5", _change(what))
    for cmd in ("fit", "stack"):
        res = run(cmd, caches["resnet18"], other, "--levels", "L4", ok=False)
        assert res.exit_code != 0 and message in res.output, res.output
        assert "not of the same images" in res.output and len(res.output.strip().splitlines()) == 1


def test_fused_fit_is_logreg_on_the_blocks_side_by_side(two, tmp_path):
    from classify.models import make_model

    _, caches = two
    run("fit", caches["resnet18"], caches["mobilenet_v2"], "--levels", "L4", "--quiet",
        "--json", tmp_path / "f.json")
    row = read_json(tmp_path / "f.json")["rows"][0]
    assert row["levels"] == ["resnet18:L4", "mobilenet_v2:L4"]
    assert row["name"] == "resnet18:L4+mobilenet_v2:L4 logreg"
    assert set(row["caches"]) == set(BACKBONES)
    # the same model fitted here on the two caches' L4 read directly
    with Cache(caches["resnet18"]) as c:
        y, split = c.labels, c.split
    X = np.concatenate([_read(caches[b], ["L4"], slice(None)) for b in BACKBONES], axis=1)
    est = make_model("logreg", **row["params"]).fit(X[split == 0], y[split == 0])
    acc = float(np.mean(est.predict(X[split == 2]) == y[split == 2]))
    assert row["test"]["accuracy"] == pytest.approx(acc)


def test_fused_stack_rows_weights_model_file_and_predict(two, tmp_path):
    _, caches = two
    a, b = caches["resnet18"], caches["mobilenet_v2"]
    model = tmp_path / "fused.npz"
    run("stack", a, b, "--levels", "L3-L4", "--folds", "3", "--quiet", "--out", model,
        "--json", tmp_path / "s.json", "--report", tmp_path / "rep")
    rows = read_json(tmp_path / "s.json")["rows"]
    blocks = [f"{x}:{lv}" for x in BACKBONES for lv in ("L3", "L4")]
    assert [r["levels"] for r in rows[:-1]] == [[x] for x in blocks]
    weights = rows[-1]["level_weights"]
    assert list(weights) == blocks and sum(weights.values()) == pytest.approx(1.0)
    assert min(weights.values()) >= 0
    assert (tmp_path / "rep" / "weights.png").stat().st_size > 1000
    assert "weights.png" in (tmp_path / "rep" / "index.html").read_text()
    # each (cache, level) base model is the one a stack of that cache alone fits
    run("stack", a, "--levels", "L3-L4", "--folds", "3", "--quiet", "--json", tmp_path / "a.json")
    alone = {r["name"]: r for r in read_json(tmp_path / "a.json")["rows"]}
    assert rows[1]["test"] == alone["L4 logreg (untuned)"]["test"]

    from classify.persist import load_model

    bundle = load_model(model)
    fps = {}
    for x in BACKBONES:
        with Cache(caches[x]) as c:
            fps[x] = c.attrs["feature_fingerprint"]
    assert [(s["alias"], s["feature_fingerprint"]) for s in bundle["sources"]] == \
        [(x, fps[x]) for x in BACKBONES]
    run("predict", model, a, b, "--out", tmp_path / "p.csv")
    with open(tmp_path / "p.csv") as f:
        got = list(csv.DictReader(f))
    with Cache(a) as c:
        classes = c.classes
    X = np.concatenate([_read(caches[x], ["L3", "L4"], slice(None)) for x in BACKBONES], axis=1)
    want = bundle["estimator"].predict_proba(X)
    assert len(got) == len(want)
    np.testing.assert_allclose([[float(r[f"p_{k}"]) for k in classes] for r in got], want,
                               atol=2e-6)
    # on the image folder: each backbone extracts in turn, the same probabilities
    run("predict", model, two[0], "--out", tmp_path / "i.csv", "--quiet")
    with open(tmp_path / "i.csv") as f:
        from_images = {r["path"]: r for r in csv.DictReader(f)}
    assert set(from_images) == {r["path"] for r in got}
    for r in got:
        np.testing.assert_allclose([float(from_images[r["path"]][f"p_{k}"]) for k in classes],
                                   [float(r[f"p_{k}"]) for k in classes], atol=1e-4)
    for args, message in (((b, a), "other settings than the model's resnet18 cache"),
                          ((a,), "fuses 2 caches"), ((two[0], a), "or one image folder")):
        res = run("predict", model, *args, "--out", tmp_path / "x.csv", ok=False)
        assert res.exit_code != 0 and message in res.output, res.output


def test_ablate_fusion_grid(two, tmp_path):
    _, caches = two
    a, b = caches["resnet18"], caches["mobilenet_v2"]
    run("ablate", a, b, "--grid", "fusion", "--out", tmp_path / "abl", "--quiet", "--json",
        tmp_path / "g.json")
    rows = {r["name"]: r for r in read_json(tmp_path / "g.json")["rows"]}
    assert [r["fusion_row"] for r in rows.values()] == [
        "best single level"] * 2 + ["cache stack"] * 2 + [
        "concat deepest", "stack deepest", "stack every"] + ["leave one backbone out"] * 2
    # the best single level is the one fit rows pick on val
    for bb, path in caches.items():
        val = {}
        for lv in ("L3", "L4"):
            run("fit", path, "--levels", lv, "--quiet", "--json", tmp_path / f"{lv}.json")
            val[lv] = read_json(tmp_path / f"{lv}.json")["rows"][0]
        best = max(val, key=lambda lv: val[lv]["val"]["accuracy"])
        row = rows[f"{bb}: best single level ({best}, on val)"]
        assert row["test"] == val[best]["test"]
    base = [r for r in rows.values() if r["baseline"]]
    assert len(base) == 1 and base[0]["fusion_row"] == "best single level"
    assert all(r["mcnemar"]["baseline"] == base[0]["name"] for r in rows.values())
    assert base[0]["mcnemar_p"] == 1.0
    assert rows["concat of deepest levels"]["levels"] == ["resnet18:L4", "mobilenet_v2:L4"]
    assert set(rows["stack of every (cache, level)"]["level_weights"]) == {
        f"{x}:{lv}" for x in BACKBONES for lv in ("L3", "L4")}
    # leaving one of two backbones out is the other one's own stack
    assert rows["stack of every (cache, level) without resnet18"]["test"] == \
        rows["mobilenet_v2: stack L3+L4"]["test"]
