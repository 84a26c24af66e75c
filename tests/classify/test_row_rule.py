"""The row rule's single cases (issue 16's findings, issue 20's predict / zeroshot failures) on
caches made by the real `featx extract`; the crossed combinations are test_protocol_matrix's."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from classify.rowrule import SEEN_MEMBER, row_ids
from featx.cache import Cache

from . import protocol_caches as pc
from .classify_helpers import read_json, run


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rowrule")
    return folder, {(s, t): pc.extract(folder, s, t) for s in ("ratio", "kfold")
                    for t in ("emotion", "map")}


def _one_line_error(res, *words):
    lines = res.output.strip().splitlines()
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    for w in words:
        assert w in lines[0], lines[0]


def test_ablate_rows_are_keyed_on_the_map_files_content(made, tmp_path):
    folder, m = made
    grid = tmp_path / "grid.json"
    grid.write_text('[{"levels": "L4"}]')
    task = tmp_path / "map.csv"
    task.write_text("".join(f"{a},{b}\n" for a, b in pc.MAP.items()))
    args = ["ablate", m["ratio", "emotion"].path, "--grid", grid, "--task", task, "--out",
            tmp_path / "abl", "--quiet", "--jobs", "1", "--json", tmp_path / "a.json"]
    assert "1 rows computed, 0 reused" in run(*args).output
    first = read_json(tmp_path / "a.json")["rows"][0]
    assert "0 rows computed, 1 reused" in run(*args).output
    task.write_text("amusement,pleasant\nawe,unpleasant\nanger,unpleasant\nfear,pleasant\n")
    assert "1 rows computed, 0 reused" in run(*args).output  # same path, other content
    second = read_json(tmp_path / "a.json")["rows"][0]
    assert first["protocol"]["task"] == second["protocol"]["task"] == "map:map.csv"
    assert first["protocol"]["task_hash"] != second["protocol"]["task_hash"]
    assert second["protocol"]["task_map"]["awe"] == "unpleasant"


def test_kfold_gallery_pools_every_fold_once(made, tmp_path):
    folder, m = made
    c = m["kfold", "emotion"]
    for command in (["fit"], ["stack", "--levels", "L3,L4", "--folds", "2"]):
        rep = tmp_path / command[0]
        run(*command, c.path, "--report", rep, "--quiet", "--json", tmp_path / "r.json")
        page = (rep / "gallery.html").read_text()
        summary = read_json(tmp_path / "r.json")["rows"][-1]
        assert summary["fold"] == "all" and summary["test"]["n"] == len(c.paths)
        assert f"<p>{len(c.paths)} test images" in page  # every image, once
        assert "pooled test predictions of 3 folds" in page and "[fold" not in page
        acc = round(100 * summary["test"]["accuracy"])
        assert f"accuracy {acc}%" in page  # the pooled summary's own figure


def test_zeroshot_and_ablate_on_a_kfold_clip_cache(made, tmp_path):
    folder, m = made
    clip = pc.with_prompts(m["kfold", "emotion"], tmp_path / "clip.h5")
    run("zeroshot", clip, "--json", tmp_path / "z.json")
    rows = read_json(tmp_path / "z.json")["rows"]
    assert [r["fold"] for r in rows] == [0, 1, 2, "all"]
    assert rows[-1]["test"]["n"] == len(m["kfold", "emotion"].paths)
    grid = tmp_path / "grid.json"
    grid.write_text('[{"levels": "L4"}]')
    for extra in ([], ["--split", "kfold:3:0"], ["--task", "sentiment"]):
        run("ablate", clip, "--grid", grid, "--out", tmp_path / "abl", "--quiet", "--jobs", "1",
            "--json", tmp_path / "a.json", *extra)
        names = [r["name"] for r in read_json(tmp_path / "a.json")["rows"]
                 if "[fold" not in r["name"]]
        assert names == ["L4 logreg", "emb zeroshot"], extra  # never dropped silently


def test_kfold_bounds_are_one_line_errors(made, tmp_path):
    from featx.cli import main as featx_main

    folder, m = made
    c = m["ratio", "emotion"].path
    for spec in ("kfold:2", "kfold:2:0", "kfold:200", "kfold:128:3"):
        _one_line_error(run("fit", c, "--split", spec, ok=False), spec, "3..127")
    res = CliRunner().invoke(featx_main, ["extract", str(folder / "images"), *pc.EXTRACT,
                                          "--split", "kfold:2:0", "--out", tmp_path / "x.h5"])
    _one_line_error(res, "kfold:2:0", "3..127")
    assert not (tmp_path / "x.h5").exists()


def test_kfold_named_fold_is_one_round(made, tmp_path):
    folder, m = made
    run("fit", m["kfold", "emotion"].path, "--split", "kfold:3:2", "--json", tmp_path / "f.json",
        "--quiet")
    row, = read_json(tmp_path / "f.json")["rows"]
    assert row["fold"] == 2 and "kfold" not in row and row["protocol"]["fold"] == 2


def test_predict_report_with_the_models_task_on_cache_and_folder(made, tmp_path):
    folder, m = made
    task = pc.task_option("map", folder)
    model = tmp_path / "m.npz"
    run("fit", m["ratio", "emotion"].path, "--task", task, "--out", model, "--quiet")
    with Cache(m["ratio", "emotion"].path) as c:
        test = [p for p, s in zip(c.paths, c.split) if s == 2]
    for target in (m["ratio", "emotion"].path, m["ratio", "map"].path, folder / "images"):
        res = run("predict", model, target, "--report", tmp_path / "rep", "--json",
                  tmp_path / "p.json", "--out", tmp_path / "p.csv", "--quiet")
        row, = read_json(tmp_path / "p.json")["rows"]
        assert list(row["test"]["per_class_recall"]) == ["pleasant", "unpleasant"]
        assert row["test"]["n"] == len(test) and row["excluded_seen"] == 48 - len(test)
        assert (tmp_path / "rep" / "gallery.html").is_file()
        if target == folder / "images":  # issue 20: a folder's training images, counted
            assert (f"warning: {48 - len(test)} of the 48 images have the relative paths of "
                    f"m.npz's training or validation rows: they are not scored") in res.output


def _model_and_copy(m, tmp_path, name: str, edit):
    """A model fitted on the ratio cache, and a copy of that cache changed by edit(h5py.File)."""
    src = m["ratio", "emotion"]
    model = tmp_path / "m.npz"
    run("fit", src.path, "--out", model, "--quiet")
    cache = tmp_path / name
    shutil.copy(src.path, cache)
    with h5py.File(cache, "a") as f:
        edit(f)
    return src, model, cache


def test_predict_report_without_the_images_writes_csv_and_a_note(made, tmp_path):
    _, model, cache = _model_and_copy(made[1], tmp_path, "moved.h5", lambda f: f.attrs.__setitem__(
        "data_root", str(tmp_path / "gone")))
    res = run("predict", model, cache, "--report", tmp_path / "rep", "--out",
              tmp_path / "p.csv")
    assert "note: no error-analysis gallery" in res.output
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 49
    assert (tmp_path / "rep" / "index.html").is_file()
    assert not (tmp_path / "rep" / "gallery.html").exists()


def test_predict_refuses_when_nothing_is_left_or_the_model_does_not_say(made, tmp_path):
    def train_val_only(f):  # a cache of only the model's train+val images: nothing to score
        f["valid"][:] = f["valid"][:] & (f["split"][:] != 2)

    src, model, only_seen = _model_and_copy(made[1], tmp_path, "seen.h5", train_val_only)
    _one_line_error(run("predict", model, only_seen, "--json", tmp_path / "p.json", ok=False),
                    "no image to score")
    # a model file that does not record its rows: refused for an evaluation, fine for a CSV
    with np.load(model) as z:
        arrays = {k: z[k] for k in z.files if k != SEEN_MEMBER}
    header = json.loads(arrays["__header__"].tobytes())
    header.pop("seen")
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    run("predict", old, src.path, "--out", tmp_path / "p.csv")
    _one_line_error(run("predict", old, src.path, "--json", tmp_path / "p.json", ok=False),
                    "does not record the rows")
    # a damaged record is refused when the file is opened
    arrays[SEEN_MEMBER] = row_ids(["a", "b"])
    header["seen"] = {"n": 5, "member": SEEN_MEMBER}
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(old, **arrays)
    _one_line_error(run("predict", old, src.path, ok=False), "damaged")


def test_zeroshot_on_a_cache_without_test_images_says_so(made, tmp_path):
    folder, m = made
    clip = pc.with_prompts(m["ratio", "emotion"], tmp_path / "clip.h5")
    with h5py.File(clip, "a") as f:
        f["split"][:] = 0
    _one_line_error(run("zeroshot", clip, ok=False), "no valid test images", "--split")
    run("zeroshot", clip, "--split", "60/20/20", "--json", tmp_path / "z.json")
    assert read_json(tmp_path / "z.json")["rows"][0]["test"]["n"] == 8
