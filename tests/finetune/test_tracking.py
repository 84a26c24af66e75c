"""finetune run --track tensorboard --track mlflow:sqlite:///...: killed with -9 and resumed, the
event files (read with TensorBoard's EventAccumulator) and the MLflow store (read with
MlflowClient) hold one curve per metric, step by step, equal to metrics.jsonl and test.json."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest

from .finetune_helpers import QUICK, metrics, start_run

pytest.importorskip("tensorboard", reason="needs the [track] extra")
pytest.importorskip("mlflow", reason="needs the [track] extra")

STEPS, EPOCHS = 8, 3
ARGS = ["full", "--epochs", str(EPOCHS), "--steps-per-epoch", str(STEPS), "--lr", "0.002",
        "--ema", "0.9", "--checkpoint-every", "3", *QUICK]


def kill_after_first_epoch(args, images, out):
    victim = start_run(args, images, out)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        if (out / "metrics.jsonl").exists() and \
                (out / "metrics.jsonl").read_text().count("\n") >= 1:
            time.sleep(0.3)
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the run ended before it could be killed"


def test_tracked_run_killed_and_resumed(images, tmp_path):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    db = tmp_path / "ml.db"
    out = tmp_path / "run"
    args = ARGS + ["--track", "tensorboard", "--track", f"mlflow:sqlite:///{db}"]
    kill_after_first_epoch(args, images, out)
    run_id = json.loads((out / "tracking.json").read_text())["mlflow_run_id"]
    resumed = start_run(args, images, out, "--resume")
    log, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, log
    assert json.loads((out / "tracking.json").read_text())["mlflow_run_id"] == run_id

    recs = metrics(out)
    test = json.loads((out / "test.json").read_text())
    test_ema = json.loads((out / "test_ema.json").read_text())
    ev = EventAccumulator(str(out))
    ev.Reload()
    tb = {tag: [(s.step, s.value) for s in ev.Scalars(tag)] for tag in ev.Tags()["scalars"]}
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name("finetune").experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]  # the resumed run is the same MLflow run
    run = runs[0]
    assert run.info.status == "FINISHED"
    ml = {k: sorted({m.step: m.value for m in client.get_metric_history(run_id, k)}.items())
          for k in run.data.metrics}
    for name, curves in (("tensorboard", tb), ("mlflow", ml)):
        # every optimiser step once (the killed run's events past the resume point dropped)
        steps = [s for s, _ in curves["train/loss"]]
        assert steps == list(range(EPOCHS * STEPS)), name
        loss = np.array([v for _, v in curves["train/loss"]])
        # the epoch's loss (metrics.jsonl) is the mean of its steps' losses (equal batches)
        np.testing.assert_allclose(loss.reshape(EPOCHS, STEPS).mean(axis=1),
                                   [r["train_loss"] for r in recs], rtol=1e-4, err_msg=name)
        lrs = [v for _, v in curves["train/lr"]]
        assert lrs[0] < lrs[STEPS] and lrs[-1] < lrs[STEPS]  # warm-up, then cosine decay
        for key, tag in (("val_accuracy", "val/accuracy"),
                         ("val_ema_macro_recall", "val_ema/macro_recall")):
            got = curves[tag]
            assert [s for s, _ in got] == [STEPS, 2 * STEPS, 3 * STEPS], (name, tag)
            np.testing.assert_allclose([v for _, v in got], [r[key] for r in recs], rtol=1e-6)
        assert curves["test/accuracy"][-1][1] == pytest.approx(test["accuracy"])
        assert curves["test_ema/macro_recall"][-1][1] == pytest.approx(test_ema["macro_recall"])
    assert run.data.params["recipe.name"] == "full" and run.data.params["ema"] == "0.9"
    files = {a.path for a in client.list_artifacts(run_id)}
    assert {"test.json", "confusion.png", "best.pt", "test_ema.json", "best_ema.pt"} <= files
