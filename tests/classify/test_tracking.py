"""classify fit|ablate --track mlflow:sqlite:///...: read back with MlflowClient, a parent run per
command holding the table, a child run per row with its settings and metrics."""

from __future__ import annotations

import json

import pytest

from .classify_helpers import read_json, run

pytest.importorskip("mlflow", reason="needs the [track] extra")


def test_fit_and_kfold_ablate_rows_in_mlflow(balanced, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'ml.db'}"
    run("fit", balanced, "--levels", "L4", "--json", tmp_path / "fit.json", "--track",
        f"mlflow:{uri}", "--quiet")
    grid = tmp_path / "g.json"
    grid.write_text(json.dumps([{"levels": "L4", "model": "logreg"},
                                {"levels": "L3,L4", "model": "logreg"}]))
    run("ablate", balanced, "--grid", grid, "--split", "kfold:3", "--out", tmp_path / "abl",
        "--jobs", "1", "--json", tmp_path / "abl.json", "--track", f"mlflow:{uri}", "--quiet")
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("classify").experiment_id
    runs = client.search_runs([exp], max_results=100)
    parents = {r.data.tags["featx.command"]: r for r in runs
               if "mlflow.parentRunId" not in r.data.tags}
    assert sorted(parents) == ["ablate", "fit"]
    for command in ("fit", "abl"):
        doc = read_json(tmp_path / f"{command}.json")
        parent = parents["ablate" if command == "abl" else "fit"]
        children = {r.info.run_name: r for r in runs
                    if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
        assert sorted(children) == sorted(r["name"] for r in doc["rows"])
        for row in doc["rows"]:
            child = children[row["name"]]
            assert child.info.status == "FINISHED"
            assert child.data.params["model"] == row["model"]
            assert json.loads(child.data.params["levels"]) == row["levels"]
            assert child.data.params["protocol.split"] == row["protocol"]["split"]
            for section in ("val", "test"):
                for k in ("accuracy", "macro_recall", "macro_f1"):
                    assert child.data.metrics[f"{section}/{k}"] == pytest.approx(row[section][k])
            if "kfold" in row:
                assert child.data.metrics["kfold/test/mean/accuracy"] == \
                    pytest.approx(row["kfold"]["test"]["mean"]["accuracy"])
                assert child.data.metrics["kfold/val/std/macro_recall"] == \
                    pytest.approx(row["kfold"]["val"]["std"]["macro_recall"])
        files = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert "rows.json" in files
        if command == "abl":
            assert {"ablation.md", "ablation.csv"} <= files
            assert len(doc["rows"]) == 2 * 4  # 3 folds and the summary, per grid row
        local = client.download_artifacts(parent.info.run_id, "rows.json", str(tmp_path))
        assert json.loads(open(local).read()) == doc
    res = run("fit", balanced, "--track", "tensorboard", ok=False)
    assert res.exit_code == 1 and "classify logs rows to mlflow" in res.output
