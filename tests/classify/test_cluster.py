"""classify ablate --backend dask[:ADDRESS]: the rows run as tasks on a Dask cluster and give
the local backend's table row for row; the row cache on disk makes an interrupted grid resume."""

from __future__ import annotations

import json

import pytest

from .classify_helpers import read_json, run

distributed = pytest.importorskip("distributed", reason="needs the [dask] extra")

GRID = [{"levels": "L4", "model": "logreg"}, {"levels": "L2-L4", "model": "logreg",
                                              "meta": "weighted"}]


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded in-process workers: the same scheduler and tasks as processes."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as c:
        yield c.scheduler_address


def test_dask_rows_equal_local_rows_and_resume(balanced, tmp_path, cluster):
    grid = tmp_path / "g.json"
    grid.write_text(json.dumps(GRID))
    common = ["ablate", balanced, "--grid", grid, "--split", "kfold:3", "--quiet"]
    run(*common, "--out", tmp_path / "local", "--jobs", "1")
    res = run(*common, "--out", tmp_path / "dask", "--backend", f"dask:{cluster}")
    assert "2 rows computed, 0 reused" in res.output
    local = read_json(tmp_path / "local" / "ablation.json")
    dask = read_json(tmp_path / "dask" / "ablation.json")
    assert len(local["rows"]) == 2 * 4 and dask == local  # folds and summaries, row for row
    # a grid whose cluster went away after one row: the other is computed, on a LocalCluster
    # started for the run (worker processes), the others reused
    rows = sorted((tmp_path / "dask" / "rows").glob("*.json"))
    rows[0].unlink()
    res = run(*common, "--out", tmp_path / "dask", "--backend", "dask", "--jobs", "2")
    assert "1 rows computed, 1 reused" in res.output
    assert read_json(tmp_path / "dask" / "ablation.json") == local


def test_bad_backend_is_one_line(balanced, tmp_path):
    res = run("ablate", balanced, "--grid", "quick", "--out", tmp_path / "x", "--backend",
              "ray", ok=False)
    assert res.exit_code == 1 and "--backend 'ray': use local, dask" in res.output
    assert len(res.output.strip().splitlines()) == 1
