"""Per-level stacking: one base model per level, out-of-fold probabilities, a meta model on them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from joblib import Parallel, delayed
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from featx.errors import FeatxError
from featx.progress import track


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-sample weights inversely proportional to class frequency (sklearn's 'balanced')."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    per_class = np.zeros(n_classes)
    per_class[present] = len(y) / (present.sum() * counts[present])
    return per_class[y]


class WeightedAverage(ClassifierMixin, BaseEstimator):
    """Meta model: a non-negative weighted average (weights sum to 1) of per-level probability
    vectors, the weights minimising log-loss. Input: [n, n_levels, n_classes] probabilities."""

    def __init__(self, class_weight: str | None = None):
        self.class_weight = class_weight

    def fit(self, P: np.ndarray, y: np.ndarray) -> "WeightedAverage":
        P = np.asarray(P, dtype=np.float64)
        y = np.asarray(y)
        self.classes_ = np.arange(P.shape[2])
        sw = (balanced_weights(y, P.shape[2]) if self.class_weight == "balanced"
              else np.ones(len(y)))
        sw = sw / sw.sum()
        Q = P[np.arange(len(y)), :, y]  # [n, L]: each level's probability of the true class
        eps = 1e-12

        def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            # softmax parametrisation: weights stay positive and sum to one without constraints
            w = np.exp(theta - theta.max())
            w /= w.sum()
            p = Q @ w + eps
            g_w = -(sw / p) @ Q
            return float(-(sw * np.log(p)).sum()), w * (g_w - g_w @ w)

        res = minimize(loss_grad, np.zeros(P.shape[1]), jac=True, method="L-BFGS-B")
        w = np.exp(res.x - res.x.max())
        self.weights_ = w / w.sum()
        return self

    def predict_proba(self, P: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        return np.einsum("nlk,l->nk", np.asarray(P, dtype=np.float64), self.weights_)

    def predict(self, P: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(P).argmax(axis=1)]


def _flatten(P: np.ndarray) -> np.ndarray:
    return np.asarray(P).reshape(len(P), -1)


def _meta_weighted(class_weight, seed):
    return WeightedAverage(class_weight=class_weight)


def _meta_logreg(class_weight, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    return Pipeline([("flat", FunctionTransformer(_flatten)),
                     ("clf", LogisticRegression(C=1.0, max_iter=500, class_weight=class_weight,
                                                random_state=seed))])


def _meta_lgbm(class_weight, seed):
    from lightgbm import LGBMClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline([("flat", FunctionTransformer(_flatten)),
                     ("clf", LGBMClassifier(n_estimators=100, num_leaves=7, learning_rate=0.05,
                                            class_weight=class_weight, random_state=seed,
                                            verbose=-1))])


META_MODELS = {"weighted": _meta_weighted, "logreg": _meta_logreg, "lgbm": _meta_lgbm}


def _level_proba(est, X: np.ndarray, n_classes: int) -> np.ndarray:
    """est.predict_proba with one column per class index, also for classes est never saw."""
    p = est.predict_proba(X)
    if p.shape[1] == n_classes and np.array_equal(est.classes_, np.arange(n_classes)):
        return p
    out = np.zeros((len(X), n_classes), dtype=p.dtype)
    out[:, np.asarray(est.classes_, dtype=np.int64)] = p
    return out


def _fit_level(est, X: np.ndarray, y: np.ndarray, cols: slice, fit_rows: np.ndarray | None,
               pred_rows: np.ndarray | None, n_classes: int):
    """Fit `est` on X[fit_rows, cols]; return its probabilities on pred_rows, or itself."""
    Xf = X[:, cols] if fit_rows is None else X[fit_rows, cols]
    est.fit(Xf, y if fit_rows is None else y[fit_rows])
    del Xf
    if pred_rows is None:
        return est
    return _level_proba(est, X[pred_rows, cols], n_classes).astype(np.float32)


class LevelStacker(ClassifierMixin, BaseEstimator):
    """Stacked per-level classifier.

    `levels`: the (start, stop) column range of each level in X (None: all of X is one level).
    `fit` fits a clone of `base` per level on K stratified, seeded folds to get out-of-fold
    probabilities on the training rows, fits the `meta` model ('weighted' | 'logreg' | 'lgbm') on
    them, then refits the bases on all rows. `class_weight='balanced'` weights the meta's loss.
    All K x levels + levels fits run as one batch on `n_jobs` threads.
    """

    def __init__(self, base=None, levels: Sequence[tuple[int, int]] | None = None,
                 meta: str = "weighted", folds: int = 5, seed: int = 0,
                 class_weight: str | None = None, n_jobs: int | None = None,
                 verbose: bool = False):
        self.base = base
        self.levels = levels
        self.meta = meta
        self.folds = folds
        self.seed = seed
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _columns(self, n_features: int) -> list[slice]:
        if self.levels is None:
            return [slice(0, n_features)]
        cols = [slice(int(a), int(b)) for a, b in self.levels]
        if any(not 0 <= c.start < c.stop <= n_features for c in cols):
            raise FeatxError(f"level column ranges {list(self.levels)} do not fit "
                             f"{n_features} features")
        return cols

    def _threads_per_fit(self) -> dict:
        # BLAS: 1 always (skinny products); OpenMP (sklearn's loss, LightGBM): 1 per worker
        return {"blas": 1} if self.n_jobs in (None, 1) else {"blas": 1, "openmp": 1}

    def _base(self):
        if self.base is not None:
            return self.base
        from classify.models import make_model

        return make_model("logreg", seed=self.seed)

    def fit(self, X, y) -> "LevelStacker":
        if self.meta not in META_MODELS:
            raise FeatxError(f"unknown meta model {self.meta!r}: choose one of "
                             f"{', '.join(META_MODELS)}")
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        k = len(self.classes_)
        cols = self._columns(X.shape[1])
        min_count = np.bincount(y_enc).min()
        if min_count < self.folds:
            raise FeatxError(f"stacking with {self.folds} folds needs at least {self.folds} "
                             f"training rows per class; the rarest class has {min_count}")
        splits = list(StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
                      .split(np.zeros(len(y_enc)), y_enc))
        base = self._base()
        # all fold fits and the final refits are independent: one flat parallel batch
        jobs = [(li, tr, te) for li in range(len(cols)) for tr, te in splits]
        jobs += [(li, None, None) for li in range(len(cols))]
        # largest fits first, so that no worker is left with a big one at the end
        width = [c.stop - c.start for c in cols]
        jobs.sort(key=lambda j: -width[j[0]] * (len(y_enc) if j[1] is None else len(j[1])))
        # threads share X without copies; one BLAS / OpenMP thread per fit, because the many
        # skinny [n, d] x [d, n_classes] products of lbfgs run slower on several threads
        with threadpool_limits(limits=self._threads_per_fit()):
            gen = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")(
                delayed(_fit_level)(clone(base), X, y_enc, cols[li], tr, te, k)
                for li, tr, te in jobs)
            results = list(track(gen, total=len(jobs), unit="fit", leave=False,
                                 quiet=not self.verbose,
                                 desc=f"stack: {len(cols)} levels x {self.folds} folds + refits"))
        oof = np.zeros((len(y_enc), len(cols), k), dtype=np.float32)
        self.bases_ = [None] * len(cols)
        for (li, tr, te), res in zip(jobs, results):
            if te is None:
                self.bases_[li] = res
            else:
                oof[te, li] = res
        self.meta_ = META_MODELS[self.meta](self.class_weight, self.seed).fit(oof, y_enc)
        self.oof_proba_ = oof
        return self

    def level_proba(self, X) -> np.ndarray:
        """[n, n_levels, n_classes]: each fitted base model's probabilities."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        cols = self._columns(X.shape[1])
        k = len(self.classes_)
        return np.stack([_level_proba(b, X[:, c], k) for b, c in zip(self.bases_, cols)], axis=1)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.meta_.predict_proba(self.level_proba(X))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    @property
    def level_weights_(self) -> np.ndarray:
        """The weighted meta's weight per level."""
        check_is_fitted(self)
        return self.meta_.weights_
