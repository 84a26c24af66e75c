"""`finetune run` / `eval` end to end through the command line on tiny generated images."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from .finetune_helpers import QUICK

from finetune.cli import main

M_KEYS = {"accuracy", "macro_recall", "macro_f1", "per_class_recall", "confusion",
          "accuracy_ci95", "macro_recall_ci95", "n"}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def run_dir(images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "resnet"
    res = invoke("run", "resnet", "--data", str(images), "--out", str(out), "--epochs", "2",
                 "--lr", "0.01", *QUICK)
    assert res.exit_code == 0, res.output
    assert "test accuracy" in res.output
    return out


def test_run_writes_the_run_folder(run_dir, images):
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "metrics.jsonl", "best.pt", "last.pt", "test.json",
            "confusion.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["recipe"]["name"] == "resnet" and cfg["recipe"]["backbone"] == "resnet18"
    assert cfg["split"] == "60/20/20" and cfg["weights_identity"] == "none:seed=0"
    assert cfg["counts"] == {"train": 48, "val": 16, "test": 16}
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in lines] == [("train", 1), ("train", 2)]
    for r in lines:
        assert {"train_loss", "val_accuracy", "val_macro_recall", "seconds",
                "train_minutes"} <= set(r)
        assert r["train_loss"] > 0 and 0 <= r["val_macro_recall"] <= 1
    test = json.loads((run_dir / "test.json").read_text())
    assert set(test) == M_KEYS and test["n"] == 16
    assert sum(map(sum, test["confusion"])) == 16
    assert (run_dir / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = torch.load(run_dir / "best.pt", weights_only=True)
    best_line = max(lines, key=lambda r: r["val_macro_recall"])
    assert best["val_macro_recall"] == best_line["val_macro_recall"]
    last = torch.load(run_dir / "last.pt", weights_only=True)
    assert last["position"] == [1, 0, 0]


def test_eval_reproduces_test_json(run_dir, images, tmp_path):
    out = tmp_path / "eval.json"
    res = invoke("eval", str(run_dir), "--data", str(images), "--json", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert {"name", "levels", "model", "weighted", "val", "test"} <= set(row)
    assert row["levels"] == ["L4"] and row["weighted"] is True
    test = json.loads((run_dir / "test.json").read_text())
    assert row["test"]["confusion"] == test["confusion"]
    assert "test: accuracy" in res.output
    assert row["protocol"] == {"split": "60/20/20", "seed": 0, "task": "emotion"}
    # classify table: the run folder's test.json and the eval row, side by side, same numbers
    from classify.cli import main as classify_main

    table = CliRunner().invoke(classify_main, ["table", str(run_dir), str(out), "--csv"])
    assert table.exit_code == 0, table.output
    got = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [g["source"] for g in got] == ["resnet/test.json", "eval.json"]
    for g in got:
        assert g["name"] == "finetune:resnet" and g["protocol"] == "60/20/20 seed 0 emotion"
        assert float(g["test_accuracy"]) == test["accuracy"]
        assert float(g["test_macro_recall_ci_lo"]) == test["macro_recall_ci95"][0]
    best = max(json.loads(x)["val_macro_recall"]
               for x in (run_dir / "metrics.jsonl").read_text().splitlines())
    assert float(got[0]["val_macro_recall"]) == best == row["val"]["macro_recall"]


def test_eval_report_is_classify_s_report_and_gallery(run_dir, images, tmp_path):
    import re

    rep = tmp_path / "rep"
    res = invoke("eval", str(run_dir), "--data", str(images), "--report", str(rep), "--json",
                 str(tmp_path / "e.json"), "--quiet")
    assert res.exit_code == 0, res.output
    (row,) = json.loads((tmp_path / "e.json").read_text())["rows"]
    page = (rep / "gallery.html").read_text()
    assert 'href="gallery.html"' in (rep / "index.html").read_text()
    classes = list(row["test"]["per_class_recall"])
    cm = row["test"]["confusion"]
    k = len(classes)
    off = sorted(((cm[t][p], t, p) for t in range(k) for p in range(k) if t != p and cm[t][p]),
                 key=lambda c: (-c[0], c[1], c[2]))
    sections = re.findall(r'<section class="confusion" id="c\d+" data-true="([^"]+)" '
                          r'data-pred="([^"]+)" data-count="(\d+)"', page)
    assert [(classes.index(t), classes.index(p), int(n)) for t, p, n in sections] == [
        (t, p, n) for n, t, p in off[:8]]
    assert f"{row['test']['n']} test images" in page
    figures = re.findall(r'<figure data-path="([^"]+)" data-true="([^"]+)"', page)
    assert bool(figures) == bool(off)
    for path, true in figures:  # every image named is a test image of its true class
        assert (images / path).is_file() and path.split("/")[0] == true


def test_refuses_to_overwrite_a_run_and_resumes_a_finished_one(run_dir, images):
    res = invoke("run", "resnet", "--data", str(images), "--out", str(run_dir), "--epochs", "2",
                 "--lr", "0.01", *QUICK)
    assert res.exit_code != 0 and "--resume" in res.output and "Traceback" not in res.output
    before = (run_dir / "metrics.jsonl").read_text()
    res = invoke("run", "resnet", "--data", str(images), "--out", str(run_dir), "--epochs", "2",
                 "--lr", "0.01", "--resume", *QUICK)
    assert res.exit_code == 0, res.output
    assert (run_dir / "metrics.jsonl").read_text() == before  # nothing left to train
    res = invoke("run", "resnet", "--data", str(images), "--out", str(run_dir), "--epochs", "2",
                 "--lr", "0.02", "--resume", *QUICK)
    assert res.exit_code != 0 and "different settings (recipe)" in res.output


def test_broken_images_are_skipped_and_reported(images, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(images, data)
    for i in range(6):
        (data / "anger" / f"broken_{i}.jpg").write_bytes(b"not a jpeg at all")
    out = tmp_path / "run"
    res = CliRunner().invoke(main, [
        "run", "resnet_fc", "--data", str(data), "--out", str(out), "--epochs", "1", *QUICK])
    assert res.exit_code == 0, res.output + res.stderr
    assert "warning: skipped anger/broken_" in res.stderr
    assert "not an image" in res.stderr
    test = json.loads((out / "test.json").read_text())
    cfg = json.loads((out / "config.json").read_text())
    assert test["n"] < cfg["counts"]["test"]  # broken test images are not counted


@pytest.mark.parametrize("args, message", [
    (["run", "resnet", "--data", "/no/such/folder"], "/no/such/folder: no such file or folder"),
    (["run", "resnet", "--data", "{images}", "--weights", "/no/file.pt"], "--weights"),
    (["run", "resnet", "--data", "{images}", "--device", "cuda:7"], "--device"),
    (["eval", "/no/such/run", "--data", "{images}"], "not a finetune run folder"),
])
def test_bad_input_is_a_one_line_error(args, message, images, tmp_path):
    args = [a.replace("{images}", str(images)) for a in args]
    extra = ["--out", str(tmp_path / "r"), *QUICK] if args[0] == "run" else []
    res = invoke(*args[:2], *extra, *args[2:])  # the later option wins
    assert res.exit_code != 0
    assert message in res.output and "Traceback" not in res.output
