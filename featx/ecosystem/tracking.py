"""Experiment tracking for `--track tensorboard[:DIR]` and `--track mlflow[:URI]`: parameters,
scalars by step and files, written by TensorBoard's event writer or MLflow's client. The runs
resume: a TensorBoard run drops the events past the step it resumes at, an MLflow run is reopened
by its id (kept in the run folder's tracking.json). torch is imported only by the TensorBoard
writer (finetune); classify tracks to MLflow without it."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from featx.ecosystem.extras import need
from featx.errors import FeatxError

KINDS = ("tensorboard", "mlflow")
STATE_FILE = "tracking.json"  # in a finetune run folder: the MLflow run id to resume


def parse_track(spec: str) -> tuple[str, str | None]:
    """'tensorboard', 'tensorboard:DIR', 'mlflow', 'mlflow:URI' -> (kind, where or None)."""
    kind, _, where = spec.partition(":")
    if kind not in KINDS:
        raise FeatxError(f"--track {spec!r}: use tensorboard[:DIR] or mlflow[:URI]")
    need(kind)  # a missing extra fails before any work, not after it
    return kind, where or None


def mlflow_uri(where: str | None) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment or None). Default and a plain folder:
    an sqlite store `mlflow.db` in it (default ./mlruns) with the artifacts beside it (MLflow's
    file store is frozen); a URI with a scheme (sqlite:///, http://, databricks) as it is."""
    if where and "://" in where or where == "databricks":
        if where.startswith("sqlite:///"):
            db = Path(where.removeprefix("sqlite:///"))
            return where, (db.resolve().parent / "mlartifacts").as_uri()
        return where, None
    folder = Path(where or "mlruns").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


def _flat(params: Mapping, prefix: str = "") -> dict[str, str]:
    """Nested settings -> MLflow's flat string params (a.b = ...)."""
    out = {}
    for k, v in params.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            text = v if isinstance(v, str) else json.dumps(v, default=str)
            out[f"{prefix}{k}"] = text[:6000]  # MLflow's limit for a param value
    return out


class TensorBoardRun:
    """Scalars into TensorBoard event files in `logdir`; `purge_step`: a resumed run's first step
    (events a killed run wrote from there on are dropped)."""

    def __init__(self, logdir: str | os.PathLike, purge_step: int | None = None):
        need("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = Path(logdir)
        self.writer = SummaryWriter(str(self.logdir), purge_step=purge_step)

    def params(self, params: Mapping) -> None:
        self.writer.add_text("config", "```\n" + json.dumps(params, indent=1, default=str)
                             + "\n```", 0)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        self.steps([(values, step)])

    def steps(self, rows: Iterable[tuple[Mapping[str, float], int]]) -> None:
        for values, step in rows:
            for k, v in values.items():
                if v is not None:
                    self.writer.add_scalar(k, float(v), step)
        self.writer.flush()  # on disk now: a killed run keeps what it logged

    def files(self, paths: Iterable[Path]) -> None:
        pass  # the files are in the run folder beside the event files

    def close(self, ok: bool = True) -> None:
        self.writer.close()


class MlflowRun:
    """One MLflow run through MlflowClient (no global state): created, or reopened by id."""

    def __init__(self, where: str | None, experiment: str, name: str,
                 run_id: str | None = None, tags: Mapping[str, str] | None = None,
                 beside: "MlflowRun | None" = None):
        """`beside`: an open run whose store and experiment this one shares (child runs)."""
        need("mlflow")
        need("sqlalchemy")
        for noisy in ("mlflow", "alembic"):  # table creation is logged at INFO
            logging.getLogger(noisy).setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        self.uri, artifacts = mlflow_uri(where)
        self.client = beside.client if beside else MlflowClient(tracking_uri=self.uri)
        try:
            if run_id is not None:
                self.run_id = run_id
                self.client.update_run(run_id, status="RUNNING")
                return
            if beside is not None:
                self.exp_id = beside.exp_id
            else:
                exp = self.client.get_experiment_by_name(experiment)
                self.exp_id = exp.experiment_id if exp is not None else \
                    self.client.create_experiment(experiment, artifact_location=None
                                                  if artifacts is None
                                                  else f"{artifacts}/{experiment}")
            self.run_id = self.client.create_run(self.exp_id, run_name=name,
                                                 tags=dict(tags or {})).info.run_id
        except Exception as e:  # MLflow raises its own and its store's types
            raise FeatxError(f"--track mlflow:{self.uri}: {type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}") from None

    def params(self, params: Mapping, new_run: bool = False) -> None:
        """Log `params` (a resumed run keeps those it has: MLflow refuses to change one)."""
        from mlflow.entities import Param

        have = {} if new_run else self.client.get_run(self.run_id).data.params
        new = [Param(k, v) for k, v in _flat(params).items() if k not in have]
        for i in range(0, len(new), 100):  # MLflow takes 100 params a batch
            self.client.log_batch(self.run_id, params=new[i:i + 100])

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        self.steps([(values, step)])

    def steps(self, rows: Iterable[tuple[Mapping[str, float], int]]) -> None:
        """Several steps' values in as few transactions as MLflow allows (1000 a batch)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(step)) for values, step in rows
                   for k, v in values.items() if v is not None]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def files(self, paths: Iterable[Path]) -> None:
        for p in paths:
            if Path(p).is_file():
                self.client.log_artifact(self.run_id, str(p))

    def close(self, ok: bool = True) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED" if ok else "FAILED")


def read_state(folder: Path) -> dict:
    try:
        return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_state(folder: Path, state: dict) -> None:
    from featx.parts import atomic_write

    atomic_write(folder / STATE_FILE, lambda f: f.write(json.dumps(state, indent=1).encode()))
