"""torchrun with 2 CPU processes (gloo) gives the single-process cache, row by row, and a killed
sharded run resumes without redoing its finished chunks."""

import subprocess

import h5py
import numpy as np
import pytest

from .featx_helpers import PYTHON, kill_run_after, subprocess_env
from featx.synthetic import generate_images

ARGS = ["--backbone", "resnet18", "--weights", "none", "--image-size", "112", "--device", "cpu",
        "--batch-size", "4", "--chunk-size", "4", "--layers", "L1,L3,L4", "--workers", "0"]
N = 48


def single(data, out):
    return [PYTHON, "-m", "featx", "extract", str(data), *ARGS, "--out", str(out)]


def torchrun(data, out):
    return [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            "-m", "featx", "extract", str(data), *ARGS, "--out", str(out)]


def rows(path):
    with h5py.File(path, "r") as f:
        return ([p.decode() for p in f["paths"][:]], f["labels"][:], f["split"][:],
                f["valid"][:], {lv: f["features"][lv][:] for lv in f["features"]},
                dict(f.attrs))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_images(tmp_path_factory.mktemp("dist") / "data", n_per_class=6, size=112)


def test_two_processes_equal_one_and_resume_per_shard(data, tmp_path):
    env = subprocess_env()
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"
    subprocess.run(single(data, ref) + ["--quiet"], env=env, check=True, timeout=300)

    # a sharded run killed midway (every process of it) ...
    parts = tmp_path / "out.h5.parts"
    done_before = kill_run_after(torchrun(data, out), parts, 3)
    assert 3 <= done_before < N // 4 and not out.exists()

    # ... and finished by the same command
    r = subprocess.run(torchrun(data, out), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{done_before} of {N // 4} chunks already done" in r.stderr
    assert "(2 processes)" in r.stderr and not parts.exists()

    paths_a, labels_a, split_a, valid_a, feats_a, attrs_a = rows(ref)
    paths_b, labels_b, split_b, valid_b, feats_b, attrs_b = rows(out)
    assert paths_a == paths_b and len(paths_a) == N
    assert np.array_equal(labels_a, labels_b) and np.array_equal(split_a, split_b)
    assert valid_a.all() and valid_b.all()
    assert attrs_a == attrs_b
    for lv in ("L1", "L3", "L4"):
        for i in range(N):  # row by row: every row accounted for, the same bytes
            assert feats_a[lv][i].tobytes() == feats_b[lv][i].tobytes(), (lv, paths_a[i])
