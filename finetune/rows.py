"""A fine-tuned run's evaluation rows in classify's format (`{"name", "levels", "model",
"weighted", "val": M, "test": M, ...}`): one run's row, a k-fold protocol's fold rows and
summary row (classify's own `fold_rows`, so they line up with `classify fit --split kfold:K`),
and a cross-dataset row `RUN -> OTHER` shaped as classify's `--eval` rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from classify.rows import Result, fold_rows, make_result
from classify.table import finetune_row
from finetune.predictions import Predictions, read_predictions


def identity(cfg: dict) -> dict:
    """The row keys of the run whose config.json is `cfg` (classify table's), its target's."""
    row = finetune_row(cfg)
    if cfg.get("target", "label") == "distribution":
        row["name"] += " distribution"
    return row


def _empty(n_classes: int) -> Predictions:
    return Predictions([], np.zeros(0, dtype=np.int64), np.zeros((0, n_classes)))


def run_result(cfg: dict, classes: list[str], val: Predictions | None, test: Predictions,
               **extra) -> Result:
    """The row of a run's predictions on its val and test images (`val` None: no val)."""
    ident = identity(cfg)
    seed = int(cfg["seed"])
    v = val or _empty(len(classes))
    res = make_result(ident["name"], ident["levels"], ident["model"], ident["weighted"], classes,
                      (v.true, v.pred), (test.true, test.pred), test.paths, seed=seed,
                      protocol=ident["protocol"], target=cfg.get("target", "label"), **extra)
    res.row["val"] = val.metrics(classes, seed) if val is not None else None
    res.row["test"] = test.metrics(classes, seed)
    return res


def cv_results(fold_dirs: list[Path], cfgs: list[dict], suffix: str = "") -> list[Result]:
    """Each round's row (`"fold": F`) from its predictions{suffix}.json, then the summary row
    (pooled predictions, mean and std across folds) -- classify's `fold_rows`."""
    results, classes = [], None
    for f, (d, cfg) in enumerate(zip(fold_dirs, cfgs)):
        classes, preds = read_predictions(d / f"predictions{suffix}.json")
        res = run_result(cfg, classes, preds.get("val"), preds["test"], run=str(d))
        res.row["protocol"] = {**res.row["protocol"], "split": cfg["split"].rsplit(":", 1)[0]}
        res.row["fold"] = f
        results.append(res)
    rows = fold_rows(results, classes, seed=int(cfgs[0]["seed"]))
    rows[-1].row.pop("run", None)
    rows[-1].row["runs"] = [str(d) for d in fold_dirs]
    return rows


def cross_result(cfg: dict, run_dir: Path, val: Predictions | None, test: Predictions,
                 data: str, class_map: dict[str, str], unmatched: dict[str, int],
                 checkpoint: str) -> Result:
    """`RUN -> OTHER`: the run's model on every matched image of another dataset (`test`, its
    labels already in the run's classes); `val` the run's own val, as classify's rows."""
    res = run_result(cfg, cfg["classes"], val, test, run=str(run_dir), eval_data=str(data),
                     checkpoint=checkpoint,
                     cross_dataset={"train": str(run_dir), "eval": str(data),
                                    "class_map": class_map, "unmatched": unmatched,
                                    "n_eval": len(test.paths)})
    res.row["name"] = f"{res.row['name']} -> {Path(data).stem}"
    res.row["test"].pop("ldl", None)  # the other set's labels, not its distributions
    return res
