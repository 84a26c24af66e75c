"""Fitted estimators <-> JSON + named numpy arrays, so that model files hold no pickle.

`encode(est, arrays)` returns a JSON node and puts the estimator's fitted arrays into `arrays`;
`decode(node, arrays)` rebuilds the estimator from them. Each supported class has one small
codec in CODECS; an estimator of any other class is refused, never pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from featx.errors import FeatxError

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Codec:
    name: str
    cls: Callable[[], type]  # the class it writes (imported lazily)
    encode: Callable[[object, Arrays, str], dict]
    decode: Callable[[dict, Arrays, str], object]


def _put(arrays: Arrays, key: str, value) -> str:
    arrays[key] = np.asarray(value)
    return key


def _simple_params(est) -> dict:
    """get_params(deep=False) values JSON can hold (the rest are defaults or sub-estimators)."""
    return {k: v for k, v in est.get_params(deep=False).items()
            if v is None or isinstance(v, (bool, int, float, str))}


def _attrs(est, arrays: Arrays, key: str, names: tuple[str, ...]) -> dict:
    return {n: _put(arrays, f"{key}/{n}", getattr(est, n)) for n in names if hasattr(est, n)}


def _set_attrs(est, node: dict, arrays: Arrays):
    for n, k in node.get("attrs", {}).items():
        v = arrays[k]
        setattr(est, n, v.item() if v.ndim == 0 else v)
    return est


def _plain(module: str, cls: str, names: tuple[str, ...]) -> tuple[Callable, Callable, Callable]:
    """Codec parts for an estimator fully described by its parameters and fitted arrays."""
    def get_cls():
        import importlib
        return getattr(importlib.import_module(module), cls)

    def enc(est, arrays, key):
        return {"params": _simple_params(est), "attrs": _attrs(est, arrays, key, names)}

    def dec(node, arrays, key):
        return _set_attrs(get_cls()(**node["params"]), node, arrays)
    return get_cls, enc, dec


def _pipeline_enc(est, arrays, key):
    return {"steps": [[name, encode(step, arrays, f"{key}/{name}")] for name, step in est.steps]}


def _pipeline_dec(node, arrays, key):
    from sklearn.pipeline import Pipeline

    return Pipeline([(name, decode(step, arrays)) for name, step in node["steps"]])


def _calibrated_enc(est, arrays, key):
    if est.method != "sigmoid":
        raise FeatxError(f"cannot save a {est.method} calibration (only sigmoid)")
    parts = []
    for i, cc in enumerate(est.calibrated_classifiers_):
        parts.append({"estimator": encode(cc.estimator, arrays, f"{key}/{i}/estimator"),
                      "a": _put(arrays, f"{key}/{i}/a", [c.a_ for c in cc.calibrators]),
                      "b": _put(arrays, f"{key}/{i}/b", [c.b_ for c in cc.calibrators])})
    return {"params": _simple_params(est), "calibrated": parts,
            "attrs": _attrs(est, arrays, key, ("classes_", "n_features_in_"))}


def _calibrated_dec(node, arrays, key):
    from sklearn.calibration import _CalibratedClassifier, _SigmoidCalibration

    from classify.calibration import BalancedCalibratedClassifierCV

    est = _set_attrs(BalancedCalibratedClassifierCV(**node["params"]), node, arrays)
    est.calibrated_classifiers_ = []
    for part in node["calibrated"]:
        cals = []
        for a, b in zip(arrays[part["a"]], arrays[part["b"]]):
            c = _SigmoidCalibration()
            c.a_, c.b_ = float(a), float(b)
            cals.append(c)
        est.calibrated_classifiers_.append(_CalibratedClassifier(
            decode(part["estimator"], arrays), cals, classes=est.classes_, method="sigmoid"))
    return est


class BoosterClassifier(ClassifierMixin, BaseEstimator):
    """A LightGBM booster read back from its own model text (`from_text`), predicting like the
    fitted LGBMClassifier it was saved from (predict_proba, predict, classes_)."""

    @classmethod
    def from_text(cls, model_text: str, classes) -> "BoosterClassifier":
        import lightgbm as lgb

        est = cls()
        est.booster_ = lgb.Booster(model_str=model_text)
        est.classes_ = np.asarray(classes)
        return est

    def fit(self, X, y):
        raise FeatxError("a BoosterClassifier is read from a model file; fit an LGBMClassifier")

    def predict_proba(self, X) -> np.ndarray:
        p = np.asarray(self.booster_.predict(np.asarray(X)))
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _booster_enc(est, arrays, key):
    text = est.booster_.model_to_string().encode()
    return {"model_text": _put(arrays, f"{key}/model_text", np.frombuffer(text, np.uint8)),
            "classes": _put(arrays, f"{key}/classes", est.classes_)}


def _booster_dec(node, arrays, key):
    return BoosterClassifier.from_text(arrays[node["model_text"]].tobytes().decode(),
                                       arrays[node["classes"]])


def _flatten_enc(est, arrays, key):
    from classify.stacking import _flatten

    if est.func is not _flatten:
        raise FeatxError("cannot save a FunctionTransformer other than the stacker's flatten")
    return {}


def _flatten_dec(node, arrays, key):
    from sklearn.preprocessing import FunctionTransformer

    from classify.stacking import _flatten

    return FunctionTransformer(_flatten)


def _stacker_enc(est, arrays, key):
    return {"params": {k: v for k, v in _simple_params(est).items() if k != "base"},
            "levels": [list(map(int, lv)) for lv in est.levels] if est.levels is not None
            else None,
            "bases": [encode(b, arrays, f"{key}/base{i}") for i, b in enumerate(est.bases_)],
            "meta": encode(est.meta_, arrays, f"{key}/meta"),
            "attrs": _attrs(est, arrays, key, ("classes_", "n_features_in_"))}


def _stacker_dec(node, arrays, key):
    from classify.stacking import LevelStacker

    est = _set_attrs(LevelStacker(levels=node["levels"], **node["params"]), node, arrays)
    est.bases_ = [decode(b, arrays) for b in node["bases"]]
    est.meta_ = decode(node["meta"], arrays)
    return est


def _zs_enc(est, arrays, key):
    # classify.zsprobes: the prompts as a fitted array, the probe (if any) as its own node
    node = {"params": _simple_params(est),
            "attrs": _attrs(est, arrays, key, ("text_", "classes_", "keys_", "key_labels_"))}
    if hasattr(est, "probe_"):
        node["probe"] = encode(est.probe_, arrays, f"{key}/probe")
    return node


def _zs_dec(node, arrays, key):
    from classify import zsprobes

    cls = zsprobes.ZeroShotEnsemble if node["type"] == "zs_ensemble" else zsprobes.TipAdapter
    est = _set_attrs(cls(**node["params"]), node, arrays)
    if "probe" in node:
        est.probe_ = decode(node["probe"], arrays)
    return est


def _codecs() -> list[Codec]:
    def cls(module: str, name: str) -> Callable[[], type]:
        def get():
            import importlib
            return getattr(importlib.import_module(module), name)
        return get

    return [
        Codec("pipeline", cls("sklearn.pipeline", "Pipeline"), _pipeline_enc, _pipeline_dec),
        Codec("standard_scaler", *_plain("sklearn.preprocessing", "StandardScaler", (
            "mean_", "scale_", "var_", "n_samples_seen_", "n_features_in_"))),
        Codec("logistic_regression", *_plain("sklearn.linear_model", "LogisticRegression", (
            "coef_", "intercept_", "classes_", "n_iter_", "n_features_in_"))),
        Codec("linear_svc", *_plain("sklearn.svm", "LinearSVC", (
            "coef_", "intercept_", "classes_", "n_iter_", "n_features_in_"))),
        Codec("sigmoid_calibrated", cls("classify.calibration",
                                        "BalancedCalibratedClassifierCV"),
              _calibrated_enc, _calibrated_dec),
        # models saved before BalancedCalibratedClassifierCV (classify convert): same arrays
        Codec("sigmoid_calibrated", cls("sklearn.calibration", "CalibratedClassifierCV"),
              _calibrated_enc, _calibrated_dec),
        Codec("lightgbm", cls("lightgbm", "LGBMClassifier"), _booster_enc, _booster_dec),
        Codec("lightgbm", cls("classify.codec", "BoosterClassifier"), _booster_enc,
              _booster_dec),
        Codec("soft_label_logreg", *_plain("classify.soft", "SoftLabelLogReg", (
            "mean_", "scale_", "coef_", "intercept_", "classes_", "n_iter_"))),
        Codec("weighted_average", *_plain("classify.stacking", "WeightedAverage", (
            "weights_", "classes_"))),
        Codec("flatten", cls("sklearn.preprocessing", "FunctionTransformer"), _flatten_enc,
              _flatten_dec),
        Codec("level_stacker", cls("classify.stacking", "LevelStacker"), _stacker_enc,
              _stacker_dec),
        Codec("zs_ensemble", cls("classify.zsprobes", "ZeroShotEnsemble"), _zs_enc, _zs_dec),
        Codec("tip_adapter", cls("classify.zsprobes", "TipAdapter"), _zs_enc, _zs_dec),
    ]


CODECS: list[Codec] = _codecs()


def encode(est, arrays: Arrays, key: str = "est") -> dict:
    """A JSON node for fitted `est`; its arrays go into `arrays` under names starting `key`."""
    for c in CODECS:
        if type(est) is c.cls():
            return {"type": c.name, **c.encode(est, arrays, key)}
    raise FeatxError(f"cannot save a model of type {type(est).__name__}: classify model files "
                     f"hold only the estimators classify knows (classify.codec.CODECS)")


def decode(node: dict, arrays: Arrays):
    """The estimator `encode` described."""
    for c in CODECS:
        if c.name == node.get("type"):
            return c.decode(node, arrays, "")
    raise FeatxError(f"unknown estimator type {node.get('type')!r} in the model file")
