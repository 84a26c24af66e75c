"""The model kinds `--model` names: each an sklearn estimator factory and its hyperparameter grid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from featx.errors import FeatxError


@dataclass(frozen=True)
class ModelKind:
    """A named model: `build(weighted, seed, threads)` -> unfitted estimator; `grid` over its
    parameters (sklearn `set_params` names) searched on val or by `--cv`."""

    name: str
    build: Callable[..., object]
    grid: dict[str, list]
    about: str


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
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    # a linear SVM has no probabilities; sigmoid calibration on 3 internal folds gives them
    # (predict CSVs and stacking need them) at the price of three extra fits
    svm = LinearSVC(C=0.01, class_weight=_balanced(weighted), random_state=seed, max_iter=5000)
    return Pipeline([("scale", StandardScaler()),
                     ("clf", CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False))])


def _lgbm(weighted: bool = False, seed: int = 0, threads: int | None = None):
    from lightgbm import LGBMClassifier

    # trees do not care about feature scale: no scaler. class_weight through the sklearn API is
    # what actually reweights (a class_weight inside lgb.train params is silently ignored)
    # small leaves, >= 40 rows a leaf and L2 on leaf values: many weak, noisy dims overfit fast
    return LGBMClassifier(n_estimators=200, num_leaves=15, learning_rate=0.05,
                          min_child_samples=40, reg_lambda=1.0,
                          colsample_bytree=0.5, subsample=0.8, subsample_freq=1,
                          class_weight=_balanced(weighted), random_state=seed,
                          n_jobs=threads or 0, verbose=-1)


MODELS: dict[str, ModelKind] = {
    m.name: m for m in (
        ModelKind("logreg", _logreg, {"clf__C": [0.01, 0.1, 1.0]},
                  "multinomial logistic regression (lbfgs) on standardised features"),
        ModelKind("linsvm", _linsvm, {"clf__estimator__C": [0.001, 0.01, 0.1]},
                  "linear SVM (one-vs-rest), sigmoid-calibrated probabilities"),
        ModelKind("lgbm", _lgbm, {"n_estimators": [100, 300], "num_leaves": [7, 31]},
                  "LightGBM gradient-boosted trees (sklearn API)"),
    )
}


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
