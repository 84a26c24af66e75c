import h5py
import numpy as np

from .featx_helpers import FAST, run_featx
from featx.cache import Cache


def test_info_summary(small_set, tmp_path):
    out = tmp_path / "c.h5"
    assert run_featx("extract", small_set, *FAST, "--layers", "L2,L4", "--out", out).exit_code == 0
    with h5py.File(out, "r+") as f:  # mark one row failed, as a bad image would be
        f["valid"][3] = False
        f["errors"][3] = "corrupt image data (truncated)"
    r = run_featx("info", out)
    assert r.exit_code == 0, r.output
    text = r.output
    for expected in ("resnet18", "none:seed=0", "L2 128, L4 512", "gap", "float32", "32 px",
                     "complete     yes", "failures     1", "corrupt image data (truncated)",
                     "duplicates   0"):
        assert expected in text, expected
    with Cache(out) as c:
        counts = np.bincount(c.labels[c.split == 0], minlength=8)
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(c.classes[0]))
    assert line.split()[1] == str(counts[0])
    total = next(ln for ln in text.splitlines() if ln.strip().startswith("all "))
    assert total.split()[-1] == "40"


def test_info_errors(tmp_path):
    r = run_featx("info", tmp_path / "missing.h5")
    assert r.exit_code == 1 and "no such cache file" in r.output


def test_demo_twice(tmp_path):
    folder = tmp_path / "demo"
    r = run_featx("demo", folder, "--per-class", "3", "--size", "40", "--quiet")
    assert r.exit_code == 0, r.output
    caches = list(folder.glob("*.h5"))
    assert len(caches) == 1
    assert "classify fit" in r.output and "classify stack" in r.output
    assert f"--data {folder / 'images'} --backbone resnet18 --weights none" in r.output
    with Cache(caches[0]) as c:
        assert len(c) == 24 and c.levels == ["L0", "L1", "L2", "L3", "L4"] and c.valid.all()
        assert len(c.classes) == 8
    mtime = caches[0].stat().st_mtime_ns
    again = run_featx("demo", folder, "--per-class", "3", "--size", "40")
    assert again.exit_code == 0 and "(reused)" in again.output
    assert caches[0].stat().st_mtime_ns == mtime
