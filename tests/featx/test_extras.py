"""A command that needs a missing optional dependency stops with one line naming the
`pip install` of the extra that adds it, before doing any work."""

from __future__ import annotations

import subprocess

import pytest

from classify.synthetic import write_synthetic_cache

from .featx_helpers import PYTHON, subprocess_env

# the module made unimportable, the command, the extra named
CASES = [
    ("datasets", "featx", ["extract", "{tmp}", "--format", "hf", "--weights", "none"], "hf"),
    ("pyarrow", "featx", ["export", "{cache}", "--to", "parquet"], "hf"),
    ("distributed", "classify", ["ablate", "{cache}", "--grid", "quick", "--out", "{tmp}/a",
                                 "--backend", "dask"], "dask"),
    # (finetune run --track checks its extra the same way, featx.ecosystem.tracking.parse_track)
    ("mlflow", "classify", ["fit", "{cache}", "--track", "mlflow"], "track"),
]


@pytest.mark.parametrize("module,cli,args,extra", CASES, ids=[c[0] for c in CASES])
def test_missing_extra_is_one_line(tmp_path, module, cli, args, extra):
    cache = write_synthetic_cache(tmp_path / "c.h5", n=40, dims={"L4": 4})
    (tmp_path / "x.parquet").write_bytes(b"")  # an hf-looking folder
    argv = [a.format(tmp=tmp_path, cache=cache) for a in args]
    # the module, and every submodule, fails to import as if it were not installed
    code = (f"import sys; sys.modules[{module!r}] = None; "
            f"from {cli}.cli import main; main({argv!r})")
    res = subprocess.run([PYTHON, "-c", code], env=subprocess_env(), capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'featx[{extra}]'" in lines[0], res.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "mlruns").exists()
