"""Files the tools write get the permissions open() would give (0666 less the umask), not
mkstemp's owner-only 0600."""

import os
import stat

import pytest

from .classify_helpers import run


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(folder):
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode)
            for p in folder.rglob("*") if p.is_file()}


def test_reports_models_predictions_rows_are_0644(balanced, tmp_path, umask_022):
    from finetune.files import write_json

    run("fit", balanced, "--levels", "L4", "--out", tmp_path / "m.npz", "--json",
        tmp_path / "r.json", "--report", tmp_path / "report", "--quiet")
    run("predict", tmp_path / "m.npz", balanced, "--out", tmp_path / "p.csv")
    run("ablate", balanced, "--grid", "quick", "--out", tmp_path / "abl", "--jobs", "1",
        "--quiet")
    write_json({"a": 1}, tmp_path / "finetune.json")  # finetune's run-folder files
    modes = _modes(tmp_path)
    assert {"m.npz", "r.json", "p.csv", "report/index.html", "report/recall.png",
            "abl/ablation.md", "finetune.json"} <= set(modes)
    assert set(modes.values()) == {0o644}, modes
