"""kill -9 at several points, rerun, and the cache equals an uninterrupted run's byte for byte."""

import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from .featx_helpers import PYTHON, subprocess_env
from featx.synthetic import generate_images

ARGS = ["--backbone", "resnet18", "--weights", "none", "--image-size", "96", "--device", "cpu",
        "--batch-size", "4", "--chunk-size", "8", "--layers", "L0-L4", "--dtype", "float16"]
N_CHUNKS = 16


def featx_cmd(data, out, workers="1"):
    return [PYTHON, "-m", "featx", "extract", str(data), *ARGS, "--workers", workers,
            "--out", str(out)]


def kill_after(data, out, chunks_done: int) -> int:
    """Start a run, SIGKILL it once `chunks_done` chunk files exist; returns how many there were."""
    parts = out.parent / f"{out.name}.parts"
    p = subprocess.Popen(featx_cmd(data, out), env=subprocess_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if (parts / "meta.json").exists() and \
                    len(list(parts.glob("chunk-*.npz"))) >= chunks_done:
                break
            assert p.poll() is None, "the run finished before it could be killed"
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
    return len(list(parts.glob("chunk-*.npz")))


def read_all(path):
    with h5py.File(path, "r") as f:
        data = {name: f[name][:] for name in ("labels", "split", "paths", "valid", "errors")}
        data.update({f"features/{lv}": f["features"][lv][:] for lv in f["features"]})
        return data, dict(f.attrs)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_images(tmp_path_factory.mktemp("resume") / "data", n_per_class=16, size=96)


def test_kill_and_resume_is_bit_identical(data, tmp_path):
    ref = tmp_path / "ref.h5"
    subprocess.run(featx_cmd(data, ref, workers="0") + ["--quiet"], env=subprocess_env(),
                   check=True, timeout=300)
    out = tmp_path / "out.h5"
    seen = []
    for target in (0, 3, 9):
        seen.append(kill_after(data, out, target))
        assert not out.exists()  # never a half-written cache at --out
    assert seen[0] < N_CHUNKS and seen[-1] >= 9
    done = subprocess.run(featx_cmd(data, out), env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # the finished chunks were not redone
    assert f"{seen[-1]} of {N_CHUNKS} chunks already done" in done.stderr
    assert not (tmp_path / "out.h5.parts").exists()
    a, attrs_a = read_all(ref)
    b, attrs_b = read_all(out)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        if a[k].dtype == object:  # strings
            assert a[k].tolist() == b[k].tolist(), k
        else:
            assert a[k].tobytes() == b[k].tobytes(), k
    assert attrs_a == attrs_b
    assert a["features/L4"].dtype == np.float16 and a["features/L4"].shape == (128, 512)
