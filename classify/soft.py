"""Soft-label multinomial logistic regression: learns from label distributions by minimising
the mean KL divergence between each image's distribution and the predicted one (equivalently,
cross-entropy with soft targets), with an L2 penalty. Fitted state is plain numpy arrays
(`mean_`, `scale_`, `coef_`, `intercept_`), so a model file can hold it without pickle."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted


def as_distribution(y: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """[n, C] distributions as given, or one-hot rows for a label vector."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.astype(np.float64)
    k = int(n_classes if n_classes is not None else y.max() + 1)
    out = np.zeros((len(y), k))
    out[np.arange(len(y)), y.astype(np.int64)] = 1.0
    return out


class SoftLabelLogReg(ClassifierMixin, BaseEstimator):
    """`fit(X, Y)`: Y is [n, C] label distributions (rows summing to 1) or hard labels (then
    one-hot: ordinary multinomial logistic regression). Features are standardised inside.
    Objective: mean_i KL(Y_i || softmax(x_i W + b)) + ||W||^2 / (2 C n)."""

    def __init__(self, C: float = 1.0, max_iter: int = 500, tol: float = 1e-6,
                 n_classes: int | None = None):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.n_classes = n_classes

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "SoftLabelLogReg":
        X = np.asarray(X, dtype=np.float64)
        P = as_distribution(Y, self.n_classes)
        n, d = X.shape
        k = P.shape[1]
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        Z = (X - self.mean_) / self.scale_
        lam = 1.0 / (self.C * n)
        # the entropy of P is constant: minimising cross-entropy minimises KL
        def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            W = theta[: d * k].reshape(d, k)
            b = theta[d * k:]
            logq = log_softmax(Z @ W + b, axis=1)
            loss = -(P * logq).sum() / n + 0.5 * lam * (W * W).sum()
            G = (np.exp(logq) * P.sum(axis=1, keepdims=True) - P) / n
            return loss, np.concatenate([(Z.T @ G + lam * W).ravel(), G.sum(axis=0)])

        res = minimize(loss_grad, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                       options={"maxiter": self.max_iter, "gtol": self.tol})
        self.coef_ = res.x[: d * k].reshape(d, k).T.copy()  # [k, d] as sklearn's
        self.intercept_ = res.x[d * k:].copy()
        self.classes_ = np.arange(k)
        self.n_iter_ = int(res.nit)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "coef_")
        Z = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return np.exp(log_softmax(Z @ self.coef_.T + self.intercept_, axis=1))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
