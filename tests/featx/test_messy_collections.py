"""Collections as they come from archives and shared drives: names that are not UTF-8, link
cycles, links out of DATA, clutter; one writer per --out; features that overflow float16."""

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from featx.cache import Cache
from featx.pathnames import from_stored, to_stored
from .featx_helpers import FAST, run_featx, subprocess_env

BAD_NAME = b"caf\xe9 \xff.jpg"  # Latin-1 bytes, not UTF-8


@pytest.fixture(scope="module")
def messy(small_set, tmp_path_factory):
    """small_set's 40 images plus: a non-UTF-8 name, a link cycle to DATA's parent, a link back
    into DATA, two links to one folder outside DATA (2 images), clutter."""
    base = tmp_path_factory.mktemp("messy")
    data = base / "data"
    shutil.copytree(small_set, data)
    awe = sorted((data / "awe").iterdir())
    os.rename(awe[0], os.fsencode(data / "awe") + b"/" + BAD_NAME)
    outside = base / "outside" / "more"
    outside.mkdir(parents=True)
    for i, src in enumerate(sorted((data / "fear").iterdir())[:2]):
        Image.fromarray(255 - np.asarray(Image.open(src))).save(outside / f"out{i}.png")
    os.symlink("..", data / "joy")  # DATA/joy -> DATA's parent, which holds DATA: a loop
    os.symlink("../anger", data / "sadness" / "again")  # back into DATA
    os.symlink(base / "outside", data / "fear" / "ext")  # out of DATA: followed once
    os.symlink(base / "outside", data / "disgust" / "ext2")  # the same folder again
    os.symlink(base / "nowhere.jpg", data / "awe" / "broken.jpg")  # a row that failed
    os.symlink(base / "nowhere", data / "awe" / "old-album")
    (data / "awe" / "notes.txt").write_text("not an image")
    (data / "awe" / ".DS_Store").write_bytes(b"\0")
    (data / "README").write_text("top-level file")
    return data


def _entries(data: Path) -> list[str]:
    """Every entry under DATA, not following links, as stored names."""
    out = []
    for dirpath, dirnames, filenames in os.walk(data):
        rel = Path(dirpath).relative_to(data)
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in filenames + links:
            out.append(to_stored((rel / name).as_posix()))
    return out


def test_messy_folder_every_entry_used_or_recorded(messy, tmp_path):
    out = tmp_path / "c.h5"
    res = run_featx("extract", messy, *FAST, "--out", out)
    assert res.exit_code == 0, res.output
    with Cache(out) as c:
        paths, fs_paths, errors = c.paths, c.fs_paths, c.errors
        skipped = dict(c.skipped)
        links_out, links_in = c.attrs["links_out"], c.attrs["links_in"]
    # 40 images + 2 outside, each once: nothing through the loop, the link back or ext2;
    # and the broken link with an image's name, recorded as a failed row like before
    assert len(paths) == 43 == len(set(paths))
    assert errors[paths.index("awe/broken.jpg")] == "file not found (or a broken link)"
    # the first link to the outside folder in sorted order is walked, the second recorded
    assert sorted(p for p in paths if "/ext" in p) == ["disgust/ext2/more/out0.png",
                                                       "disgust/ext2/more/out1.png"]
    assert "awe/caf\\xe9 \\xff.jpg" in paths  # readable, reversible
    assert all((messy / p).is_file() for p in fs_paths if p != "awe/broken.jpg")
    assert os.fsencode(messy / fs_paths[paths.index("awe/caf\\xe9 \\xff.jpg")]).endswith(BAD_NAME)
    assert skipped == {
        "joy": "link to a folder that holds DATA (a loop)",
        "sadness/again": "link back into DATA (its folder is used where it lies)",
        "fear/ext": "folder already walked (a second link to it, or a link cycle)",
        "awe/old-album": "broken link", "awe/notes.txt": "not an image by its extension (.txt)",
        "awe/.DS_Store": "hidden", "README": "not in a class folder"}
    assert (links_out, links_in) == (2, 2)
    for entry in _entries(messy):
        assert entry in paths or entry in skipped or entry == "disgust/ext2", entry
    info = run_featx("info", out)
    assert info.exit_code == 0 and "Traceback" not in info.output
    for line in ("2 folder links lead outside DATA", "2 folder links lead back into DATA",
                 "7 entries under DATA not used", "1 broken link: e.g. awe/old-album"):
        assert line in info.output, info.output


def test_non_utf8_name_through_predict(messy, tmp_path):
    from classify.cli import main as classify
    from click.testing import CliRunner

    cache = tmp_path / "c.h5"
    assert run_featx("extract", messy, *FAST, "--split", "70/0/30", "--out", cache).exit_code == 0
    runner = CliRunner()
    res = runner.invoke(classify, ["fit", str(cache), "--cv", "2", "--out",
                                   str(tmp_path / "m.npz"), "--quiet"])
    assert res.exit_code == 0, res.output
    for target in (cache, messy / "awe"):
        res = runner.invoke(classify, ["predict", str(tmp_path / "m.npz"), str(target), "--out",
                                       str(tmp_path / "p.csv"), "--device", "cpu", "--quiet"])
        assert res.exit_code == 0, res.output
        text = (tmp_path / "p.csv").read_text(encoding="utf-8")
        assert "caf\\xe9 \\xff.jpg" in text


def test_stored_names_round_trip():
    for name in ["plain.jpg", "caf\udce9.jpg", "back\\slash.jpg", "a\\xe9b", "\\\\x80\udcff",
                 "ünïcode ok.jpg"]:
        assert from_stored(to_stored(name)) == name
        to_stored(name).encode("utf-8")  # storable as HDF5 UTF-8, printable


def _tree(folder: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_one_writer_per_out(small_set, tmp_path):
    out = tmp_path / "o" / "c.h5"
    # the holder forks a child that outlives it, as a data-loader worker may for a moment
    holder = subprocess.Popen(
        [sys.executable, "-c", "import os, sys, time; from featx.lock import OutputLock; "
         "OutputLock(sys.argv[1]).acquire(); child = os.fork()\n"
         "if child == 0: time.sleep(60); os._exit(0)\n"
         "print('locked', child, flush=True); time.sleep(120)",
         str(out)], stdout=subprocess.PIPE, text=True, env=subprocess_env())
    child = None
    try:
        word, child = holder.stdout.readline().split()
        assert word == "locked"
        before = _tree(tmp_path)
        res = run_featx("extract", small_set, *FAST, "--out", out)
        assert res.exit_code == 1
        assert f"pid {holder.pid} on {socket.gethostname()}" in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
        assert _tree(tmp_path) == before  # nothing touched
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    try:
        assert (tmp_path / "o" / "c.h5.lock").exists()  # left behind by the killed holder
        res = run_featx("extract", small_set, *[a for a in FAST if a != "--quiet"], "--out",
                        out)
    finally:
        if child:
            os.kill(int(child), signal.SIGKILL)
    assert res.exit_code == 0, res.output
    assert f"took over {out}.lock, left by pid {holder.pid}" in res.output
    assert out.is_file() and not (tmp_path / "o" / "c.h5.lock").exists()
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()


def test_default_out_is_the_locked_path(small_set, tmp_path, monkeypatch):
    # without --out or --pool, the lock is taken on the very file the run writes
    from featx.extract import ExtractConfig, output_path

    monkeypatch.chdir(tmp_path)
    out = output_path(ExtractConfig(data=small_set, backbone="resnet18"))
    assert out == Path("cache") / f"{small_set.name}-resnet18-gap.h5"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from featx.lock import OutputLock; "
         "OutputLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)",
         str(tmp_path / out)], stdout=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        res = run_featx("extract", small_set, *FAST)
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 1 and "is being written by another run" in res.output, res.output
    assert not (tmp_path / out).exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_float16_overflow_is_refused(small_set, tmp_path):
    data = tmp_path / "d"
    for cls in ("anger", "awe"):
        (data / cls).mkdir(parents=True)
        for src in sorted((small_set / cls).iterdir())[:2]:
            shutil.copy(src, data / cls)
    out = tmp_path / "c.h5"
    args = [a if a != "resnet18" else "resnet152" for a in FAST]
    res = run_featx("extract", data, *args, "--dtype", "float16", "--layers", "L3,L4",
                    "--out", out)
    assert res.exit_code == 1
    assert "do not fit float16" in res.output and "--dtype float32" in res.output, res.output
    assert not out.exists() and not Path(f"{out}.parts").exists()


def test_classify_refuses_a_cache_with_inf(tmp_path):
    from classify.synthetic import write_synthetic_cache
    from classify.training import run_fit
    from featx.errors import FeatxError

    path = write_synthetic_cache(tmp_path / "inf.h5", n=80, dims={"L4": 8})
    with h5py.File(path, "a") as f:
        x = f["features/L4"][:]
        x[np.flatnonzero(f["valid"][:])[3], 2] = np.inf
        f["features/L4"][:] = x
    with pytest.raises(FeatxError, match="level L4 has NaN or infinite features in 1 usable"):
        run_fit(path, ["L4"], quiet=True)
