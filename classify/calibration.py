"""Probability calibration that honours class-balanced training."""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils._param_validation import StrOptions


class BalancedCalibratedClassifierCV(CalibratedClassifierCV):
    """sklearn's CalibratedClassifierCV plus `class_weight='balanced'`: every sample weighted
    inversely to its class frequency in the wrapped estimator's fits *and* in the calibrators'.

    A class_weight on the wrapped estimator alone does not make the calibrated model balanced:
    the calibrators, fitted unweighted, put the class priors back into the probabilities whose
    argmax is the prediction."""

    _parameter_constraints: dict = {**CalibratedClassifierCV._parameter_constraints,
                                    "class_weight": [StrOptions({"balanced"}), None]}

    def __init__(self, estimator=None, *, method="sigmoid", cv=None, n_jobs=None,
                 ensemble="auto", class_weight=None):
        super().__init__(estimator=estimator, method=method, cv=cv, n_jobs=n_jobs,
                         ensemble=ensemble)
        self.class_weight = class_weight

    def fit(self, X, y, sample_weight=None, **fit_params):
        if self.class_weight == "balanced":
            w = compute_sample_weight("balanced", y)
            sample_weight = w if sample_weight is None else w * np.asarray(sample_weight)
        return super().fit(X, y, sample_weight=sample_weight, **fit_params)
