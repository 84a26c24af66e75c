"""Model files of every kind classify writes, small enough to be read thousands of times."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from classify.data import load_levels
from classify.persist import save_model
from classify.stacking import LevelStacker, _flatten
from classify.synthetic import write_synthetic_cache
from classify.training import run_fit, run_stack
from .classify_helpers import add_prompts, run


def _small_lgbm():
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=6, num_leaves=5, min_child_samples=10, verbose=-1,
                          n_jobs=1)


def write_every_kind(cache, ldl_cache, folder: Path) -> dict[str, dict]:
    """kind -> {"model": path, "cache": the cache it predicts on}: logreg, linsvm and LightGBM
    fits, stacks with each meta model (LightGBM bases too), a label-distribution model, the
    zero-shot-informed probes (on a small CLIP-like cache)."""
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
    clip = _clip_cache(folder / "clip.h5")
    for model in ("zs-ensemble", "tip-adapter"):
        path = folder / f"{model}.npz"
        run("fit", clip, "--model", model, "--quiet", "--out", path)
        out[model] = {"model": str(path), "cache": str(clip)}
    return out


def _clip_cache(path: Path, dim: int = 12) -> Path:
    """A CLIP-like cache: an emb level near class vectors, prompts that are noisy copies."""
    write_synthetic_cache(path, n=160, dims={"L4": 4}, tag="clip-fuzz")
    rng = np.random.default_rng(1)
    with h5py.File(path, "a") as f:
        y = f["labels"][:].astype(int)
        vecs = rng.normal(size=(int(y.max()) + 1, dim))
        add_prompts(f, vecs[y] + rng.normal(size=(len(y), dim)),
                    vecs + 0.5 * rng.normal(size=vecs.shape), 30.0)
    return path
