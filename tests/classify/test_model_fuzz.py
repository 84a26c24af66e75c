"""Model files that cannot hurt: >= 1,000 mutations of saved model files of every kind classify
writes, each run through `classify predict` in a forked child under an address-space limit,
end with status 0 or a one-line error -- no signal, no traceback, no runaway memory."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from classify.synthetic import write_distribution_cache, write_synthetic_cache
from .model_files import write_every_kind

N_MUTATIONS = 1000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the harness forks one child per file")
def test_mutated_model_files_end_in_status_0_or_one_line(tmp_path):
    # small caches: thousands of predictions on them stay cheap
    cache = write_synthetic_cache(tmp_path / "c.h5", n=240, dims={"L3": 12, "L4": 16},
                                  invalid=2)
    ldl = write_distribution_cache(tmp_path / "ldl.h5", n=200, votes=20, dims={"L4": 8})
    files = write_every_kind(cache, ldl, tmp_path)
    spec = {"files": files, "n": N_MUTATIONS, "seed": 16, "out": str(tmp_path / "res.json"),
            "headroom": 1 << 30}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "tests.classify.model_fuzz",
                           str(tmp_path / "spec.json")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "res.json").read_text())
    originals, mutated = res[:len(files)], res[len(files):]
    assert [r["verdict"] for r in originals] == ["ok"] * len(files), originals
    assert len(mutated) == N_MUTATIONS
    bad = [r for r in mutated if r["verdict"] not in ("ok", "error")]
    assert not bad, f"{len(bad)} bad runs, e.g. {bad[:3]}"
    # every kind and every way of mutating was exercised, and most were refused
    ways = Counter(r["kind"] for r in mutated)
    assert {k.split("/")[0] for k in ways} == set(files) and len(files) == 9
    assert {k.split("/")[1] for k in ways} == {"bytes", "header", "member", "lgbm-text"}
    assert Counter(r["verdict"] for r in mutated)["error"] > N_MUTATIONS // 2
