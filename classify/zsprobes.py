"""Zero-shot-informed probes on a CLIP cache's `emb` level (numpy and scikit-learn only):

- `zs-ensemble`: a linear probe whose log-probabilities are mixed with the zero-shot head's,
  alpha * log softmax(zero-shot logits) + (1 - alpha) * log p_probe; alpha = 1 is the zero-shot
  head, alpha = 0 the probe.
- `tip-adapter` (Zhang et al. 2022, training-free): zero-shot logits plus alpha times the
  key-value cache's, exp(-beta (1 - cos(x, training embedding))) times the one-hot training
  labels. The cache term is averaged per class (the paper sums over K shots: the same up to a
  factor alpha absorbs) and put on the zero-shot logits' scale (times the logit scale), so
  one alpha grid serves any K and full training sets; alpha = 0 is the zero-shot head.

Their hyperparameters are chosen on val from the grids below."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from featx.cache import Cache, CacheError
from featx.errors import FeatxError
from featx.levels import EMB

ENSEMBLE_ALPHAS = tuple(round(a, 2) for a in np.linspace(0.0, 1.0, 11))  # 0 and 1 included
ENSEMBLE_CS = (0.01, 0.1, 1.0)  # the probe's C (logreg's grid)
TIP_ALPHAS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
TIP_BETAS = (1.0, 3.0, 5.5, 10.0)
_CHUNK = 2048  # test rows per block of affinities (n x N_train floats)


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(_log_softmax(z))


class _ZeroShotHead(ClassifierMixin, BaseEstimator):
    """Shared: the zero-shot logits from `text_` (unit class embeddings) and `logit_scale`."""

    def _zs_logits(self, X) -> np.ndarray:
        return float(self.logit_scale) * (_unit(X) @ self.text_.T)

    def _set_text(self, class_embeddings) -> None:
        if class_embeddings is None:
            raise FeatxError(f"{type(self).__name__} needs the cache's class embeddings")
        self.text_ = _unit(class_embeddings)

    def predict_proba(self, X) -> np.ndarray:
        return _softmax(self.decision_function(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]


class ZeroShotEnsemble(_ZeroShotHead):
    """alpha * log softmax(zero-shot logits) + (1 - alpha) * log p(linear probe)."""

    def __init__(self, class_embeddings=None, logit_scale: float = 100.0, alpha: float = 0.5,
                 C: float = 0.1, weighted: bool = False, seed: int = 0):
        self.class_embeddings = class_embeddings
        self.logit_scale = logit_scale
        self.alpha = alpha
        self.C = C
        self.weighted = weighted
        self.seed = seed

    def fit(self, X, y) -> "ZeroShotEnsemble":
        from classify.models import make_model

        self._set_text(self.class_embeddings)
        self.probe_ = make_model("logreg", weighted=self.weighted, seed=self.seed,
                                 clf__C=self.C).fit(X, y)
        self.classes_ = np.arange(self.text_.shape[0])
        return self

    def _probe_log(self, X) -> np.ndarray:
        p = np.zeros((len(X), len(self.classes_)))
        p[:, np.asarray(self.probe_.classes_, dtype=np.int64)] = self.probe_.predict_proba(X)
        return np.log(np.maximum(p, 1e-300))

    def mix(self, zs_log: np.ndarray, probe_log: np.ndarray, alpha: float) -> np.ndarray:
        # alpha 0 / 1 exactly: one side alone (0 * -inf would be NaN)
        if alpha == 1:
            return zs_log
        if alpha == 0:
            return probe_log
        return alpha * zs_log + (1 - alpha) * probe_log

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.mix(_log_softmax(self._zs_logits(X)), self._probe_log(X), float(self.alpha))


class TipAdapter(_ZeroShotHead):
    """Zero-shot logits + alpha * logit_scale * the class-mean of exp(-beta (1 - cos)) to the
    training embeddings."""

    def __init__(self, class_embeddings=None, logit_scale: float = 100.0, alpha: float = 1.0,
                 beta: float = 5.5):
        self.class_embeddings = class_embeddings
        self.logit_scale = logit_scale
        self.alpha = alpha
        self.beta = beta

    def fit(self, X, y) -> "TipAdapter":
        self._set_text(self.class_embeddings)
        self.classes_ = np.arange(self.text_.shape[0])
        self.keys_ = _unit(X)
        self.key_labels_ = np.asarray(y, dtype=np.int64)
        return self

    def cache_term(self, X, beta: float) -> np.ndarray:
        """[n, C]: each class's mean affinity exp(-beta (1 - cos)) over its training images."""
        onehot = np.zeros((len(self.key_labels_), len(self.classes_)), dtype=np.float32)
        onehot[np.arange(len(self.key_labels_)), self.key_labels_] = 1
        onehot /= np.maximum(onehot.sum(axis=0, keepdims=True), 1)
        Xu = _unit(X)
        out = np.empty((len(Xu), len(self.classes_)), dtype=np.float64)
        for s in range(0, len(Xu), _CHUNK):
            A = np.exp(-beta * (1 - Xu[s:s + _CHUNK] @ self.keys_.T))
            out[s:s + _CHUNK] = A @ onehot
        return out

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        zs = self._zs_logits(X)
        if float(self.alpha) == 0:
            return zs
        return zs + float(self.alpha) * float(self.logit_scale) * self.cache_term(X, self.beta)


@dataclass
class ZsSelected:
    estimator: object
    params: dict
    metric: str
    scores: list


def prompts(cache: str, model: str, levels: Sequence[str], n_classes: int
            ) -> tuple[np.ndarray, float]:
    """The class embeddings and logit scale of a CLIP cache; a one-line refusal otherwise."""
    if list(levels) != [EMB]:
        raise FeatxError(f"--model {model} works on the emb level alone: --levels emb")
    with Cache(cache) as c:
        if not c.has_zeroshot:
            raise CacheError(f"{cache}: --model {model} needs a CLIP cache with /zeroshot "
                             f"(class prompt embeddings); this cache has none")
        _, emb, scale = c.zeroshot()
    if emb.shape[0] != n_classes:
        raise FeatxError(f"{cache}: --model {model}: the prompts are of the cache's "
                         f"{emb.shape[0]} classes, the task has {n_classes}; use --task emotion")
    return emb, scale


def _score(y, pred, weighted: bool) -> float:
    from classify.select import _score, selection_metric

    return _score(y, pred, selection_metric(weighted))


def select_zs(model: str, cache: str, levels: Sequence[str], classes: Sequence[str],
              X_train, y_train, X_val, y_val, weighted: bool = False, seed: int = 0
              ) -> ZsSelected:
    """Fit `model` (zs-ensemble | tip-adapter) on train with the hyperparameters that score
    best on val (accuracy; macro recall when weighted); ties: the first in grid order."""
    from classify.select import selection_metric

    emb, scale = prompts(cache, model, levels, len(classes))
    if X_val is None or len(y_val) == 0:
        raise FeatxError(f"--model {model} chooses its alpha on val: the cache has no "
                         f"validation images")
    scores, best = [], None
    if model == "zs-ensemble":
        zs_log = None
        for C in ENSEMBLE_CS:
            est = ZeroShotEnsemble(emb, scale, C=C, weighted=weighted, seed=seed).fit(
                X_train, y_train)
            if zs_log is None:
                zs_log = _log_softmax(est._zs_logits(X_val))
            probe_log = est._probe_log(X_val)
            for a in ENSEMBLE_ALPHAS:
                s = _score(y_val, est.mix(zs_log, probe_log, a).argmax(axis=1), weighted)
                scores.append([{"C": C, "alpha": a}, s])
                if best is None or s > best[1]:
                    best = (est, s, {"C": C, "alpha": a})
    else:
        est = TipAdapter(emb, scale).fit(X_train, y_train)
        zs = est._zs_logits(X_val)
        for beta in TIP_BETAS:
            cache_val = est.cache_term(X_val, beta)
            for a in TIP_ALPHAS:
                s = _score(y_val, (zs + a * scale * cache_val).argmax(axis=1), weighted)
                scores.append([{"alpha": a, "beta": beta}, s])
                if best is None or s > best[1]:
                    best = (est, s, {"alpha": a, "beta": beta})
    est, _, params = best
    est.set_params(**params)
    return ZsSelected(est, params, selection_metric(weighted), scores)
