"""Model files of every kind classify writes, small enough to be read thousands of times."""

from __future__ import annotations

from pathlib import Path

from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from classify.data import load_levels
from classify.persist import save_model
from classify.stacking import LevelStacker, _flatten
from classify.training import run_fit, run_stack


def _small_lgbm():
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=6, num_leaves=5, min_child_samples=10, verbose=-1,
                          n_jobs=1)


def write_every_kind(cache, ldl_cache, folder: Path) -> dict[str, dict]:
    """kind -> {"model": path, "cache": the cache it predicts on}: logreg, linsvm and LightGBM
    fits, stacks with each meta model (LightGBM bases too), a label-distribution model."""
    levels = ["L3", "L4"]
    data = load_levels(cache, levels)
    tr = data["train"]
    out: dict[str, dict] = {}

    def save(kind, trained, on=cache):
        path = folder / f"{kind}.npz"
        save_model(path, trained)
        out[kind] = {"model": str(path), "cache": str(on)}

    for model in ("logreg", "linsvm"):
        save(model, run_fit(cache, levels, model, jobs=1, quiet=True, data=data))
    trained = run_fit(cache, levels, "logreg", jobs=1, quiet=True, data=data)
    trained.estimator = _small_lgbm().fit(tr.X, tr.y)
    save("lgbm", trained)
    for meta in ("weighted", "logreg"):
        save(f"stack-{meta}", run_stack(cache, levels, "logreg", meta, folds=2, jobs=1,
                                        quiet=True, data=data))
    stack = LevelStacker(_small_lgbm(), levels=data.slices, folds=2, n_jobs=1).fit(tr.X, tr.y)
    stack.meta_ = Pipeline([("flat", FunctionTransformer(_flatten)),
                            ("clf", _small_lgbm())]).fit(stack.oof_proba_, tr.y)
    trained.estimator = stack
    save("stack-lgbm", trained)
    save("soft", run_fit(ldl_cache, ["L4"], "logreg", target="distribution", jobs=1,
                         quiet=True), ldl_cache)
    return out
