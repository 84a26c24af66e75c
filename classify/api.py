"""The notebook API: `classify.load_model(PATH)` -> a fitted model with predict_proba(X)."""

from __future__ import annotations

import os

import numpy as np


class LoadedModel:
    """A classify model file, for features from `featx.load` with the model's `levels`:
    `predict_proba(X)` [n, n_classes] in `classes_` order, `predict(X)` class names."""

    def __init__(self, bundle: dict):
        self.bundle = bundle
        self.classes_ = np.array(bundle["classes"])
        self.levels: list[str] = list(bundle["levels"])
        self.n_features_in_ = int(sum(bundle["dims"].values()))

    def predict_proba(self, X) -> np.ndarray:
        from classify.predict import _proba
        from featx.errors import FeatxError

        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise FeatxError(f"X has shape {X.shape}; the model takes [n, "
                             f"{self.n_features_in_}] (levels {','.join(self.levels)}: "
                             f"featx.load(CACHE, levels={','.join(self.levels)!r}))")
        return _proba(self.bundle, X)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __repr__(self) -> str:
        return (f"LoadedModel({self.bundle.get('recipe', {}).get('name', 'model')!r}, "
                f"levels={self.levels}, classes={list(self.classes_)})")


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Open a model file written by `classify fit --save` (arrays and JSON only, no pickle)."""
    from classify.persist import load_model as read

    return LoadedModel(read(path))
