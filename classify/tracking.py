"""`classify fit|stack|ablate --track mlflow[:URI]`: a parent MLflow run for the command (its
table as artifacts) with one child run per row: the row's settings and protocol as params, its
val/test scalars (and k-fold means) as metrics. Imports MLflow, never torch."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from featx.ecosystem.tracking import MlflowRun, parse_track
from featx.errors import FeatxError

EXPERIMENT = "classify"
SECTIONS = ("val", "test")  # a row's metric blocks (SPEC's M)


def check_track(specs: Sequence[str]) -> None:
    """Fail before any training on a --track classify cannot do."""
    for spec in specs:
        if parse_track(spec)[0] != "mlflow":
            raise FeatxError(f"--track {spec}: classify logs rows to mlflow[:URI] (TensorBoard's "
                             f"curves are for finetune run)")


def row_params(row: dict) -> dict:
    """What the row was made with: every plain field and the protocol, not its metrics."""
    skip = set(SECTIONS) | {"kfold", "ldl", "cross_dataset"}
    return {k: v for k, v in row.items() if k not in skip and not k.endswith("_vs_base")}


def row_metrics(row: dict) -> dict[str, float]:
    """The row's scalar metrics: val/accuracy, test/macro_recall, ..., and on a k-fold summary
    row kfold/test/mean/accuracy, kfold/test/std/accuracy, ..."""
    out = {}
    for section in SECTIONS:
        out.update(_numbers(row.get(section) or {}, f"{section}/"))
        out.update(_numbers((row.get("kfold") or {}).get(section, {}).get("mean", {}),
                            f"kfold/{section}/mean/"))
        out.update(_numbers((row.get("kfold") or {}).get(section, {}).get("std", {}),
                            f"kfold/{section}/std/"))
    return out


def _numbers(block: dict, prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in block.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def track_rows(specs: Sequence[str], command: str, doc: dict,
               files: Sequence[Path] = ()) -> list[str]:
    """Log `doc`'s rows (rows_document) to each MLflow store; returns the parent run ids."""
    parents = []
    for spec in specs:
        where = parse_track(spec)[1]
        parent = MlflowRun(where, EXPERIMENT, f"classify {command}",
                           tags={"featx.command": command})
        parent.params({"command": command, "rows": len(doc["rows"])}, new_run=True)
        for i, row in enumerate(doc["rows"]):
            child = MlflowRun(where, EXPERIMENT, str(row.get("name", f"row {i}")),
                              tags={"mlflow.parentRunId": parent.run_id,
                                    "featx.command": command}, beside=parent)
            child.params(row_params(row), new_run=True)
            child.scalars(row_metrics(row), 0)
            child.close()
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "rows.json"
            table.write_text(json.dumps(doc, indent=1), encoding="utf-8")
            parent.files([table, *files])
        parent.close()
        parents.append(parent.run_id)
    return parents


def tracked(command: str):
    """Decorator for a click command whose rows end in `ctx.meta["classify.rows"]` (and files
    to keep in `ctx.meta["classify.files"]`): adds --track, checked before the command runs,
    the rows logged after it. Goes below `one_line_errors`, so its errors are one line."""
    import functools

    import click

    def wrap(fn):
        @click.option("--track", multiple=True, metavar="mlflow[:URI]",
                      help="(repeatable) Also log each row to MLflow: params, metrics, the "
                           "table as artifact (default: an sqlite store in ./mlruns).")
        @functools.wraps(fn)
        def run(*args, track: tuple[str, ...] = (), **kwargs):
            check_track(track)
            result = fn(*args, **kwargs)
            if track:
                meta = click.get_current_context().meta
                ids = track_rows(track, command, meta["classify.rows"],
                                 meta.get("classify.files", ()))
                n = len(meta["classify.rows"]["rows"])
                click.echo(f"tracked: MLflow run {', '.join(ids)} ({n} rows)", err=True)
            return result
        return run
    return wrap
