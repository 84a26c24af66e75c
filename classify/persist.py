"""Model files: a joblib bundle of the fitted estimator and what it was trained on."""

from __future__ import annotations

import json
import os
from pathlib import Path

from classify.atomic import write_atomic
from featx.errors import FeatxError

FORMAT = "classify-model"
VERSION = 1
# the cache settings `predict` needs to extract matching features from new images
_EXTRACT_ATTRS = ("backbone", "weights", "weights_source", "layers", "pool", "image_size", "dtype",
                  "seed", "preprocessing", "precision")


def model_bundle(trained) -> dict:
    """The dict a model file holds, from a `training.Trained`."""
    data = trained.data
    attrs = {k: data.attrs[k] for k in _EXTRACT_ATTRS if k in data.attrs}
    if isinstance(attrs.get("layers"), str):
        attrs["layers"] = json.loads(attrs["layers"])
    return {"format": FORMAT, "version": VERSION, "estimator": trained.estimator,
            "cache": str(Path(data.cache).resolve()), "cache_fingerprint": data.fingerprint,
            "feature_fingerprint": data.feature_fingerprint, "classes": list(data.classes),
            "levels": list(data.levels), "dims": dict(data.dims), "recipe": trained.recipe,
            "extract": attrs, "rows": [r.row for r in trained.results]}


def save_model(path: str | os.PathLike, trained) -> Path:
    import joblib

    bundle = model_bundle(trained)
    return write_atomic(path, lambda tmp: joblib.dump(bundle, tmp, compress=3))


def load_model(path: str | os.PathLike) -> dict:
    import joblib

    path = Path(path)
    if not path.is_file():
        raise FeatxError(f"{path}: no such model file")
    try:
        bundle = joblib.load(path)
    except Exception as e:  # joblib/pickle raise many types for a file that is not theirs
        raise FeatxError(f"{path}: not a classify model file ({type(e).__name__})") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise FeatxError(f"{path}: not a classify model file")
    if bundle.get("version") != VERSION:
        raise FeatxError(f"{path}: model file version {bundle.get('version')} is not supported "
                         f"(this classify reads version {VERSION})")
    return bundle
