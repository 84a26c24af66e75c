"""Every bad input ends in a one-line error naming the file or flag: no traceback."""

import json

import pytest

from classify.synthetic import write_synthetic_cache
from .classify_helpers import SMALL_DIMS, copy_cache, run


def one_line_error(res, *needles):
    assert res.exit_code != 0
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])


def _set_attr(key, value):
    def edit(f):
        f.attrs[key] = value
    return edit


def _drop_level(f):
    del f["features"]["L0"]


def _class_out_of_train(f):
    labels, split = f["labels"][:], f["split"][:]
    split[(labels == 6) & (split == 0)] = 2  # every 'fear' training image goes to test
    f["split"][:] = split


@pytest.mark.parametrize("edit, needle", [
    (_set_attr("complete", False), "incomplete"),
    (_set_attr("version", 2), "version 2"),
    (_set_attr("format", "other"), "not a featx cache"),
    (_class_out_of_train, "class fear has no valid training image"),
])
def test_bad_cache(balanced, tmp_path, edit, needle):
    bad = copy_cache(balanced, tmp_path / "bad.h5", edit)
    for cmd in (["fit"], ["stack", "--folds", "2"]):
        one_line_error(run(*cmd, bad, "--quiet", ok=False), "bad.h5", needle)


def test_missing_level(balanced, tmp_path):
    bad = copy_cache(balanced, tmp_path / "nol0.h5", _drop_level)
    one_line_error(run("stack", bad, "--levels", "L0-L4", ok=False), "nol0.h5",
                   "level L0 is not in this cache")
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"levels": "L0,L4"}]))
    one_line_error(run("ablate", bad, "--grid", grid, "--out", tmp_path / "a", ok=False),
                   "nol0.h5", "level L0")


def test_not_a_cache(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_text("hello")
    one_line_error(run("fit", junk, ok=False), "junk.h5", "not a readable HDF5 file")
    one_line_error(run("fit", tmp_path / "none.h5", ok=False), "none.h5", "no such cache file")


def test_no_validation_images_without_cv(tmp_path):
    c = write_synthetic_cache(tmp_path / "noval.h5", n=240, dims=SMALL_DIMS, split_spec="80/0/20")
    one_line_error(run("fit", c, "--quiet", ok=False), "noval.h5", "--cv K")
    run("fit", c, "--cv", "3", "--quiet")  # the way out works


@pytest.mark.parametrize("args, needle", [
    (["fit", "--cv", "1"], "--cv 1"),
    (["stack", "--folds", "1"], "--folds 1"),
    (["fit", "--jobs", "0"], "--jobs 0"),
    (["stack", "--folds", "200"], "rarest class has"),
])
def test_bad_numbers(balanced, args, needle):
    one_line_error(run(*args[:1], balanced, *args[1:], "--quiet", ok=False), needle)


def test_bad_flag_values_name_the_flag(balanced):
    for args, flag in ((["--levels", "L9"], "--levels"), (["--model", "svm"], "--model")):
        res = run("fit", balanced, *args, ok=False)
        assert res.exit_code == 2 and "Traceback" not in res.output and flag in res.output


def test_unwritable_outputs(balanced, tmp_path):
    (tmp_path / "file").write_text("")
    one_line_error(run("fit", balanced, "--levels", "L4", "--json", tmp_path / "file" / "x.json",
                       "--quiet", ok=False), "--json", "x.json", "is not a folder")
    res = run("stack", balanced, "--out", tmp_path, "--quiet", ok=False)  # click checks this one
    assert res.exit_code == 2 and "'--out'" in res.output and "is a directory" in res.output


def test_bad_model_and_target(balanced, tmp_path):
    junk = tmp_path / "model.joblib"
    junk.write_bytes(b"\x00not a pickle")
    one_line_error(run("predict", junk, balanced, ok=False), "model.joblib",
                   "not a classify model file")
    one_line_error(run("predict", tmp_path / "nomodel", balanced, ok=False), "nomodel",
                   "no such model file")
    model = tmp_path / "m.joblib"
    run("fit", balanced, "--levels", "L4", "--out", model, "--quiet")
    one_line_error(run("predict", model, tmp_path / "nothing", ok=False), "nothing",
                   "no such cache file or image folder")
    (tmp_path / "empty").mkdir()
    one_line_error(run("predict", model, tmp_path / "empty", ok=False), "empty",
                   "no images found")


def test_bad_grid(balanced, tmp_path):
    one_line_error(run("ablate", balanced, "--grid", "huge", ok=False), "--grid 'huge'")
    g = tmp_path / "g.json"
    g.write_text(json.dumps([{"model": "logreg"}]))
    one_line_error(run("ablate", balanced, "--grid", g, ok=False), "g.json", "not a grid file")
