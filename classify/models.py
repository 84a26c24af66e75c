"""The model kinds `--model` names: each an sklearn estimator factory and its hyperparameter grid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from featx.errors import FeatxError


@dataclass(frozen=True)
class Staged:
    """A boosting-rounds parameter whose grid values share one fit: `predict(est, X, k)` predicts
    with the first k rounds; `truncate(est, k)` turns the fit into a plain fitted estimator
    that uses only those."""

    param: str
    predict: Callable[[object, np.ndarray, int], np.ndarray]
    truncate: Callable[[object, int], object]


@dataclass(frozen=True)
class ModelKind:
    """A named model: `build(weighted, seed, threads)` -> unfitted estimator; `grid` over its
    parameters (sklearn `set_params` names) searched on val or by `--cv`; `staged` when the
    grid's values of one parameter are prefixes of the longest fit."""

    name: str
    build: Callable[..., object]
    grid: dict[str, list]
    about: str
    staged: Staged | None = None
    cost: float = 1.0  # a fit's time relative to logreg's, to start the slow ablation rows first


def _balanced(weighted: bool) -> str | None:
    return "balanced" if weighted else None


def _logreg(weighted: bool = False, seed: int = 0, threads: int | None = None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    # lbfgs is multinomial. tol 1e-3 (sklearn: 1e-4): on an FI-sized cache it needs 2-2.5x
    # fewer iterations for the same test accuracy (within 0.3 points)
    return Pipeline([("scale", StandardScaler()),
                     ("clf", LogisticRegression(C=0.1, tol=1e-3, max_iter=300,
                                                class_weight=_balanced(weighted),
                                                random_state=seed))])


def _linsvm(weighted: bool = False, seed: int = 0, threads: int | None = None):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from classify.calibration import BalancedCalibratedClassifierCV

    # a linear SVM has no probabilities; sigmoid calibration on 3 internal folds gives them
    # (predict CSVs and stacking need them) at the price of three extra fits. Balanced sample
    # weights reach the SVM's fits and the calibrators alike (a class_weight on the SVM alone
    # would be undone by unweighted calibrators)
    svm = LinearSVC(C=0.01, random_state=seed, max_iter=5000)
    return Pipeline([("scale", StandardScaler()),
                     ("clf", BalancedCalibratedClassifierCV(svm, method="sigmoid", cv=3,
                                                            ensemble=False,
                                                            class_weight=_balanced(weighted)))])


def _lgbm(weighted: bool = False, seed: int = 0, threads: int | None = None):
    from lightgbm import LGBMClassifier

    # trees do not care about feature scale: no scaler. class_weight through the sklearn API is
    # what actually reweights (a class_weight inside lgb.train params is silently ignored)
    # small leaves, >= 40 rows a leaf and L2 on leaf values: many weak, noisy dims overfit fast.
    # Speed, measured on an FI-sized synthetic L4 (18.6k train rows x 2048 dims, 1 thread): a
    # round's cost is its histograms, one per sampled column, so colsample 0.2 (was 0.5) and 63
    # bins (was 255) make rounds ~3x cheaper and binning ~2x, with lr 0.1 (was 0.05). The rounds
    # grid costs one fit of its longest value (staged); 300 because 150 was chosen at the edge.
    # force_col_wise skips LightGBM's row- vs col-wise timing probe at each fit's start
    return LGBMClassifier(n_estimators=150, num_leaves=15, learning_rate=0.1,
                          min_child_samples=40, reg_lambda=1.0, max_bin=63,
                          colsample_bytree=0.2, subsample=0.8, subsample_freq=1,
                          force_col_wise=True, class_weight=_balanced(weighted),
                          random_state=seed, n_jobs=threads or 0, verbose=-1)


def _lgbm_predict(est, X: np.ndarray, k: int) -> np.ndarray:
    return est.predict(X, num_iteration=k)


def _lgbm_truncate(est, k: int):
    import lightgbm as lgb

    if k >= est.booster_.current_iteration():
        return est
    # the first k rounds' trees, as a booster of their own: the fitted LGBMClassifier then
    # predicts (and pickles) exactly like a k-round fit, without fitting again
    est._Booster = lgb.Booster(model_str=est.booster_.model_to_string(num_iteration=k))
    return est.set_params(n_estimators=k)


MODELS: dict[str, ModelKind] = {
    m.name: m for m in (
        ModelKind("logreg", _logreg, {"clf__C": [0.01, 0.1, 1.0]},
                  "multinomial logistic regression (lbfgs) on standardised features"),
        ModelKind("linsvm", _linsvm, {"clf__estimator__C": [0.001, 0.01, 0.1]},
                  "linear SVM (one-vs-rest), sigmoid-calibrated probabilities"),
        ModelKind("lgbm", _lgbm, {"n_estimators": [50, 150, 300], "num_leaves": [7, 31]},
                  "LightGBM gradient-boosted trees (sklearn API)",
                  staged=Staged("n_estimators", _lgbm_predict, _lgbm_truncate), cost=20.0),
        # CLIP caches only (their /zeroshot prompts): classify.zsprobes chooses these on val
        ModelKind("zs-ensemble", lambda **kw: _zs("ZeroShotEnsemble", **kw),
                  {"C": [0.01, 0.1, 1.0], "alpha": "0..1 by 0.1"},
                  "linear probe on emb mixed with the zero-shot head (log-probabilities)"),
        ModelKind("tip-adapter", lambda **kw: _zs("TipAdapter", **kw),
                  {"alpha": "classify.zsprobes.TIP_ALPHAS", "beta": "TIP_BETAS"},
                  "Tip-Adapter: zero-shot logits plus a key-value cache of the training emb"),
    )
}
ZERO_SHOT_MODELS = ("zs-ensemble", "tip-adapter")


def _zs(name: str, weighted: bool = False, seed: int = 0, threads: int | None = None):
    from classify import zsprobes

    if name == "TipAdapter":
        return zsprobes.TipAdapter()
    return zsprobes.ZeroShotEnsemble(weighted=weighted, seed=seed)


def model_kind(name: str) -> ModelKind:
    try:
        return MODELS[name]
    except KeyError:
        raise FeatxError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}") from None


def make_model(name: str, weighted: bool = False, seed: int = 0, threads: int | None = None,
               **params):
    """An unfitted estimator of kind `name`, with `params` (grid names) set."""
    est = model_kind(name).build(weighted=weighted, seed=seed, threads=threads)
    return est.set_params(**params) if params else est
