"""Evaluation rows (SPEC's `{"name", "levels", "model", "weighted", "val": M, "test": M}`) and
their names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from classify.metrics import evaluate
from featx.levels import ALL_LEVELS


@dataclass
class Result:
    """A row plus the test predictions behind it (for paired tests against another row)."""

    row: dict
    test_true: np.ndarray
    test_pred: np.ndarray
    test_paths: list[str]


def level_label(levels: Sequence[str]) -> str:
    """['L0'..'L4'] -> 'L0-L4'; ['L3', 'L4'] -> 'L3+L4'."""
    idx = [ALL_LEVELS.index(lv) for lv in levels]
    if len(idx) >= 3 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{levels[0]}-{levels[-1]}"
    return "+".join(levels)


def row_name(levels: Sequence[str], model: str, weighted: bool, meta: str | None = None) -> str:
    core = (f"stack {level_label(levels)} {model}>{meta}" if meta else
            f"{level_label(levels)} {model}")
    return core + (" weighted" if weighted else "")


def make_result(name: str, levels: Sequence[str], model: str, weighted: bool, classes: list[str],
                val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                test_paths: list[str], seed: int = 0, **extra) -> Result:
    """`val`, `test`: (y_true, y_pred). Extra keys (cache, params, ...) go into the row."""
    row = {"name": name, "levels": list(levels), "model": model, "weighted": bool(weighted),
           "val": evaluate(*val, classes, seed=seed), "test": evaluate(*test, classes, seed=seed)}
    row.update(extra)
    return Result(row=row, test_true=np.asarray(test[0]), test_pred=np.asarray(test[1]),
                  test_paths=list(test_paths))


def rows_document(results: Sequence[Result]) -> dict:
    """What `--json` writes."""
    return {"rows": [_jsonable(r.row) for r in results]}


def _jsonable(obj):
    # NaN (a metric over zero images) is not JSON: write null
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj
