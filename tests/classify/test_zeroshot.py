"""`classify zeroshot` and ablate's zero-shot row on a cache whose prompt embeddings are known
vectors; none of it imports torch."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from .classify_helpers import SMALL_DIMS, add_prompts, read_json, run
from classify.synthetic import write_synthetic_cache

EMB_DIM = 16


def _with_prompts(path, perm=None, scale=50.0):
    """Give the cache an emb level near known class vectors, and those vectors as the prompt
    embeddings (rows permuted by `perm`, so class c's prompt is class perm[c]'s vector)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "a") as f:
        labels = f["labels"][:].astype(int)
        C = len(json.loads(f.attrs["classes"]))
        vecs = np.linalg.qr(rng.normal(size=(EMB_DIM, EMB_DIM)))[0][:C]  # orthonormal rows
        emb = 3.0 * vecs[labels] + 0.05 * rng.normal(size=(len(labels), EMB_DIM))
        emb[~f["valid"][:]] = 0
        add_prompts(f, emb, vecs if perm is None else vecs[perm], scale)
    return path


@pytest.fixture(scope="module")
def clip_like(tmp_path_factory):
    d = tmp_path_factory.mktemp("zs")
    return _with_prompts(write_synthetic_cache(d / "zs.h5", n=320, dims=SMALL_DIMS, invalid=2))


def test_zeroshot_picks_the_classes_of_the_known_vectors(clip_like, tmp_path):
    run("zeroshot", clip_like, "--json", tmp_path / "zs.json")
    row = read_json(tmp_path / "zs.json")["rows"][0]
    assert row["name"] == "emb zeroshot" and row["levels"] == ["emb"]
    assert row["model"] == "zeroshot" and row["weighted"] is False
    assert row["test"]["accuracy"] == 1.0 and row["val"]["accuracy"] == 1.0
    # the same row shape as every other command's
    run("fit", clip_like, "--levels", "L4", "--quiet", "--json", tmp_path / "fit.json")
    fit = read_json(tmp_path / "fit.json")["rows"][0]
    assert {"name", "levels", "model", "weighted", "val", "test"} <= set(row) & set(fit)
    assert set(row["test"]) == set(fit["test"]) and set(row["val"]) == set(fit["val"])


def test_permuted_prompts_give_the_permuted_classes(tmp_path):
    perm = np.array([1, 2, 3, 4, 5, 6, 7, 0])  # class c's prompt is class c+1's vector
    path = _with_prompts(write_synthetic_cache(tmp_path / "p.h5", n=160, dims=SMALL_DIMS),
                         perm=perm)
    run("zeroshot", path, "--json", tmp_path / "p.json")
    conf = np.array(read_json(tmp_path / "p.json")["rows"][0]["test"]["confusion"])
    inverse = np.argsort(perm)  # an image of class t is predicted as inverse[t]
    assert conf.trace() == 0
    assert all(conf[t, inverse[t]] == conf[t].sum() for t in range(8))


def test_ablate_adds_the_zeroshot_row(clip_like, tmp_path):
    run("ablate", clip_like, "--grid", "quick", "--out", tmp_path / "abl", "--jobs", "1",
        "--quiet", "--json", tmp_path / "a.json")
    rows = read_json(tmp_path / "a.json")["rows"]
    zs = [r for r in rows if r["name"] == "emb zeroshot"]
    assert len(zs) == 1 and zs[0]["test"]["accuracy"] == 1.0 and "mcnemar_p" in zs[0]


def test_a_cache_without_prompts_says_so(tmp_path):
    path = write_synthetic_cache(tmp_path / "plain.h5", n=80, dims=SMALL_DIMS)
    r = run("zeroshot", path, ok=False)
    assert r.exit_code == 1 and "emb" in r.output and "Traceback" not in r.output


def test_zeroshot_never_imports_torch(clip_like):
    probe = ("import sys\nfrom click.testing import CliRunner\nfrom classify.cli import main\n"
             f"r = CliRunner().invoke(main, ['zeroshot', {str(clip_like)!r}])\n"
             "assert r.exit_code == 0, r.output\nprint('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
