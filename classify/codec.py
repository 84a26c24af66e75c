"""Fitted estimators <-> JSON + named numpy arrays, so that model files hold no pickle.

`encode(est, arrays)` returns a JSON node and puts the estimator's fitted arrays into `arrays`;
`decode(node, ctx)` rebuilds the estimator from them. Each supported class has one small codec
in CODECS; an estimator of any other class is refused, never pickled.

Decoding treats the file as data: every node's keys, every parameter (the estimator's own
constructor parameters, JSON scalars, checked by the estimator's constraints) and every array's
dtype and shape (from the classes and feature count the model must have) are checked before
use; only the attribute names a codec lists are ever set, and LightGBM trees are parsed and
checked into arrays (classify.trees), never handed to LightGBM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from classify.members import MAX_MEMBER_BYTES as MAX_MEMBER
from featx.errors import FeatxError

Arrays = dict[str, np.ndarray]
MAX_CLASSES = 10_000
MAX_PARTS = 64  # pipeline steps, stacked levels, calibrated folds


@dataclass(frozen=True)
class Ctx:
    """What a node being decoded must fit: `read(key, kinds, shape)` an array of the file;
    `d` the features it is given (an int, or (levels, classes) for a meta model on per-level
    probabilities); its classes_ lie in range(k); `where` names the node in messages."""

    read: Callable[..., np.ndarray]
    label: str
    d: int | tuple[int, int]
    k: int
    where: str = "estimator"

    def fail(self, msg: str) -> FeatxError:
        return FeatxError(f"{self.label}: {self.where}: {msg}")

    def at(self, where: str, **kw) -> "Ctx":
        return replace(self, where=f"{self.where}.{where}", **kw)

    @property
    def width(self) -> int:
        """The number of input features; a node on per-level probabilities has none."""
        if not isinstance(self.d, int):
            raise self.fail("a meta model on per-level probabilities must be a weighted "
                            "average or a pipeline that flattens them first")
        return self.d


@dataclass(frozen=True)
class Codec:
    name: str
    cls: Callable[[], type]  # the class it writes (imported lazily)
    encode: Callable[[object, Arrays, str], dict]
    decode: Callable[[dict, Ctx], object]


def _put(arrays: Arrays, key: str, value) -> str:
    arrays[key] = np.asarray(value)
    return key


def _simple_params(est) -> dict:
    """get_params(deep=False) values JSON can hold (the rest are defaults or sub-estimators)."""
    return {k: v for k, v in est.get_params(deep=False).items()
            if v is None or isinstance(v, (bool, int, float, str))}


def _attrs(est, arrays: Arrays, key: str, names: tuple[str, ...]) -> dict:
    return {n: _put(arrays, f"{key}/{n}", getattr(est, n)) for n in names if hasattr(est, n)}


# -- checks of the decoded file ------------------------------------------------------------

def _node(node, ctx: Ctx, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(node, dict):
        raise ctx.fail(f"expected an object, found {type(node).__name__}")
    missing = [k for k in required if k not in node]
    unknown = [k for k in node if k not in required and k not in optional and k != "type"]
    if missing or unknown:
        raise ctx.fail(("missing " + ", ".join(map(repr, missing)) if missing else "")
                       + ("; " if missing and unknown else "")
                       + ("unknown " + ", ".join(repr(str(k)[:40]) for k in unknown[:5])
                          if unknown else ""))
    return node


def _list(value, ctx: Ctx, what: str, lo: int = 1, hi: int = MAX_PARTS) -> list:
    if not isinstance(value, list) or not lo <= len(value) <= hi:
        raise ctx.fail(f"{what} must be a list of {lo} to {hi} items")
    return value


def _int_ok(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _params(node: dict, ctx: Ctx, cls: type, checks: dict[str, Callable] | None = None,
            exclude: tuple[str, ...] = ()) -> dict:
    """The node's constructor parameters: only `cls`'s own names, JSON scalars, each checked --
    by `checks`, else by the estimator's scikit-learn constraints."""
    params = node.get("params", {})
    if not isinstance(params, dict):
        raise ctx.fail("params must be an object")
    names = set(cls._get_param_names()) - set(exclude)
    for k, v in params.items():
        if k not in names:
            raise ctx.fail(f"unknown parameter {str(k)[:40]!r} for {cls.__name__}")
        if not (v is None or isinstance(v, (bool, int, float, str))):
            raise ctx.fail(f"parameter {k!r} must be a number, a string or null")
        if checks is not None and not checks.get(k, lambda _: False)(v):
            raise ctx.fail(f"parameter {k}={str(v)[:40]!r} is not valid for {cls.__name__}")
    if checks is None:
        from sklearn.utils._param_validation import InvalidParameterError

        try:
            cls(**params)._validate_params()
        except (InvalidParameterError, ValueError, TypeError) as e:
            raise ctx.fail(str(e).splitlines()[0][:200]) from None
    return params


def _classes(ctx: Ctx, key, exact: bool = False) -> np.ndarray:
    """A classes_ array: distinct increasing class indices within range(k) (all of them when
    `exact`)."""
    c = ctx.read(key, "iu", (None,), max_bytes=8 * MAX_CLASSES)
    c = c.astype(np.int64)
    if len(c) < 2 or (np.diff(c) <= 0).any() or c[0] < 0 or c[-1] >= ctx.k \
            or (exact and len(c) != ctx.k):
        raise ctx.fail(f"classes_ {c[:10].tolist()} do not match the model's {ctx.k} classes")
    return c


def _set_attrs(est, node: dict, ctx: Ctx, spec: dict[str, tuple[str, Callable]]):
    """Set the attributes `spec` names (name -> (dtype kinds, shape from (ctx, classes_))),
    each read and checked; classes_ first, since the other shapes depend on it."""
    attrs = node.get("attrs")
    if not isinstance(attrs, dict) or set(attrs) != set(spec):
        got = sorted(map(str, attrs)) if isinstance(attrs, dict) else type(attrs).__name__
        raise ctx.fail(f"attrs must be exactly {sorted(spec)}, found {str(got)[:200]}")
    classes = _classes(ctx, attrs["classes_"]) if "classes_" in spec else None
    for name, (kinds, shape, *limit) in spec.items():
        want = shape(ctx, classes)
        cap = limit[0] if limit else 8 * MAX_CLASSES if None in want else MAX_MEMBER
        v = classes if name == "classes_" else ctx.read(attrs[name], kinds, want, max_bytes=cap)
        if name == "n_features_in_" and int(v) != ctx.width:
            raise ctx.fail(f"n_features_in_ {int(v)} != the model's {ctx.width} features")
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise ctx.fail(f"{name} holds values that are not finite")
        setattr(est, name, v.item() if v.ndim == 0 else v)
    return est


def _rows(ctx: Ctx, classes) -> int:
    """Rows of a linear model's coef_: one for two classes, else one per class."""
    return 1 if len(classes) == 2 else len(classes)


_SCALAR = ("iu", lambda ctx, c: ())
_NITER = ("iu", lambda ctx, c: (None,))
_PER_FEATURE = ("f", lambda ctx, c: (ctx.width,))
_CLASSES = ("iu", lambda ctx, c: (None,))
_LINEAR = {"coef_": ("f", lambda ctx, c: (_rows(ctx, c), ctx.width)),
           "intercept_": ("f", lambda ctx, c: (_rows(ctx, c),)),
           "classes_": _CLASSES, "n_features_in_": _SCALAR}


def _plain(module: str, cls: str, spec: dict, checks: dict | None = None,
           n_iter: tuple | None = None) -> tuple[Callable, Callable, Callable]:
    """Codec parts for an estimator fully described by its parameters and fitted arrays."""
    if n_iter is not None:
        spec = {**spec, "n_iter_": n_iter}

    def get_cls():
        import importlib
        return getattr(importlib.import_module(module), cls)

    def enc(est, arrays, key):
        return {"params": _simple_params(est), "attrs": _attrs(est, arrays, key, tuple(spec))}

    def dec(node, ctx):
        _node(node, ctx, ("params", "attrs"))
        return _set_attrs(get_cls()(**_params(node, ctx, get_cls(), checks)), node, ctx, spec)
    return get_cls, enc, dec


def _pipeline_enc(est, arrays, key):
    return {"steps": [[name, encode(step, arrays, f"{key}/{name}")] for name, step in est.steps]}


_TRANSFORMS = ("standard_scaler", "flatten")


def _pipeline_dec(node, ctx):
    from sklearn.pipeline import Pipeline

    steps = _list(_node(node, ctx, ("steps",))["steps"], ctx, "steps", 2, 4)
    out, names = [], set()
    for i, step in enumerate(steps):
        if not (isinstance(step, list) and len(step) == 2 and isinstance(step[0], str)
                and step[0].isidentifier() and "__" not in step[0] and step[0] not in names):
            raise ctx.fail(f"steps[{i}] must be [a distinct name, an estimator]")
        names.add(step[0])
        kind = step[1].get("type") if isinstance(step[1], dict) else None
        if (kind in _TRANSFORMS) == (i == len(steps) - 1):
            raise ctx.fail(f"steps[{i}] ({str(kind)[:40]}): a pipeline is transforms, then "
                           f"one classifier")
        out.append((step[0], decode(step[1], ctx.at(f"steps[{i}]"))))
        if kind == "flatten":  # what follows sees the per-level probabilities as one row
            ctx = replace(ctx, d=ctx.d[0] * ctx.d[1])
    return Pipeline(out)


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


def _calibrated_dec(node, ctx):
    from sklearn.calibration import _CalibratedClassifier, _SigmoidCalibration

    from classify.calibration import BalancedCalibratedClassifierCV

    _node(node, ctx, ("params", "attrs", "calibrated"))
    params = _params(node, ctx, BalancedCalibratedClassifierCV, exclude=("estimator",))
    if params.get("method", "sigmoid") != "sigmoid":
        raise ctx.fail("only sigmoid calibration is read")
    est = _set_attrs(BalancedCalibratedClassifierCV(**params), node, ctx,
                     {"classes_": _CLASSES, "n_features_in_": _SCALAR})
    n_cal = _rows(ctx, est.classes_)
    est.calibrated_classifiers_ = []
    for i, part in enumerate(_list(node["calibrated"], ctx, "calibrated")):
        sub = ctx.at(f"calibrated[{i}]")
        _node(part, sub, ("estimator", "a", "b"))
        inner = decode(part["estimator"], sub.at("estimator"))
        if not np.array_equal(getattr(inner, "classes_", None), est.classes_):
            raise sub.fail("the calibrated estimator's classes_ differ from the calibration's")
        a, b = (sub.read(part[n], "f", (n_cal,)) for n in ("a", "b"))
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise sub.fail("calibration coefficients that are not finite")
        cals = []
        for ai, bi in zip(a, b):
            c = _SigmoidCalibration()
            c.a_, c.b_ = float(ai), float(bi)
            cals.append(c)
        est.calibrated_classifiers_.append(_CalibratedClassifier(
            inner, cals, classes=est.classes_, method="sigmoid"))
    return est


def _booster_enc(est, arrays, key):
    text = (est.model_text_ if hasattr(est, "model_text_")
            else est.booster_.model_to_string()).encode()
    return {"model_text": _put(arrays, f"{key}/model_text", np.frombuffer(text, np.uint8)),
            "classes": _put(arrays, f"{key}/classes", est.classes_)}


def _booster_dec(node, ctx):
    from classify.trees import TreesClassifier

    _node(node, ctx, ("model_text", "classes"))
    classes = _classes(ctx, node["classes"])
    raw = ctx.read(node["model_text"], "u", (None,))
    try:
        text = raw.tobytes().decode("ascii")
    except UnicodeDecodeError:
        raise ctx.fail("the LightGBM model text is not ASCII") from None
    try:
        return TreesClassifier.from_text(text, classes, ctx.width)
    except FeatxError as e:
        raise ctx.fail(str(e)) from None


def _flatten_enc(est, arrays, key):
    from classify.stacking import _flatten

    if est.func is not _flatten:
        raise FeatxError("cannot save a FunctionTransformer other than the stacker's flatten")
    return {}


def _flatten_dec(node, ctx):
    from sklearn.preprocessing import FunctionTransformer

    from classify.stacking import _flatten

    _node(node, ctx, ())
    if isinstance(ctx.d, int):
        raise ctx.fail("flatten is only for a meta model on per-level probabilities")
    return FunctionTransformer(_flatten)


def _stacker_enc(est, arrays, key):
    return {"params": {k: v for k, v in _simple_params(est).items() if k != "base"},
            "levels": [list(map(int, lv)) for lv in est.levels] if est.levels is not None
            else None,
            "bases": [encode(b, arrays, f"{key}/base{i}") for i, b in enumerate(est.bases_)],
            "meta": encode(est.meta_, arrays, f"{key}/meta"),
            "attrs": _attrs(est, arrays, key, ("classes_", "n_features_in_"))}


def _stack_levels(levels, ctx: Ctx) -> list[tuple[int, int]]:
    if levels is None:
        return [(0, ctx.width)]
    out = []
    for lv in _list(levels, ctx, "levels"):
        if not (isinstance(lv, list) and len(lv) == 2 and all(map(_int_ok, lv))
                and 0 <= lv[0] < lv[1] <= ctx.width):
            raise ctx.fail(f"levels: {str(lv)[:40]} is not a column range within "
                           f"{ctx.width} features")
        out.append((lv[0], lv[1]))
    return out


def _stacker_dec(node, ctx):
    from classify.stacking import META_MODELS, LevelStacker

    if not isinstance(ctx.d, int):
        raise ctx.fail("a stack cannot be a meta model")
    _node(node, ctx, ("params", "levels", "bases", "meta", "attrs"))
    checks = {"meta": lambda v: v in META_MODELS, "folds": lambda v: _int_ok(v) and v >= 2,
              "seed": _int_ok, "class_weight": lambda v: v in (None, "balanced"),
              "n_jobs": lambda v: v is None or _int_ok(v), "verbose": lambda v: v in (0, 1)}
    params = _params(node, ctx, LevelStacker, checks, exclude=("base", "levels"))
    levels = _stack_levels(node["levels"], ctx)
    est = _set_attrs(LevelStacker(levels=node["levels"], **params), node, ctx,
                     {"classes_": _CLASSES, "n_features_in_": _SCALAR})
    bases = _list(node["bases"], ctx, "bases")
    if len(bases) != len(levels):
        raise ctx.fail(f"{len(bases)} base models for {len(levels)} levels")
    est.bases_ = [decode(b, ctx.at(f"bases[{i}]", d=stop - start))
                  for i, (b, (start, stop)) in enumerate(zip(bases, levels))]
    k = len(est.classes_)
    est.meta_ = decode(node["meta"], ctx.at("meta", d=(len(levels), k), k=k))
    return est


_POSITIVE = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0  # noqa
_SOFT_CHECKS = {"C": _POSITIVE, "max_iter": lambda v: _int_ok(v) and v >= 0,
                "tol": lambda v: isinstance(v, (int, float)) and v >= 0,
                "n_classes": lambda v: v is None or _int_ok(v)}


def _weights_shape(ctx: Ctx, classes):
    if isinstance(ctx.d, int):
        raise ctx.fail("a weighted average is only a stack's meta model")
    return (ctx.d[0],)


def _zs_enc(est, arrays, key):
    # classify.zsprobes: the prompts as a fitted array, the probe (if any) as its own node
    node = {"params": _simple_params(est),
            "attrs": _attrs(est, arrays, key, ("text_", "classes_", "keys_", "key_labels_"))}
    if hasattr(est, "probe_"):
        node["probe"] = encode(est.probe_, arrays, f"{key}/probe")
    return node


_FINITE = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) \
    and abs(v) < 1e300  # noqa
_ZS_CHECKS = {"class_embeddings": lambda v: v is None, "logit_scale": _FINITE,
              "alpha": _FINITE, "beta": _FINITE, "C": _POSITIVE,
              "weighted": lambda v: isinstance(v, bool), "seed": _int_ok}
_ZS_SPEC = {"text_": ("f", lambda ctx, c: (ctx.k, ctx.width)), "classes_": _CLASSES}
_TIP_SPEC = {**_ZS_SPEC, "keys_": ("f", lambda ctx, c: (None, ctx.width), MAX_MEMBER),
             "key_labels_": ("iu", lambda ctx, c: (None,), MAX_MEMBER)}


def _zs_dec(node, ctx):
    from classify import zsprobes

    tip = node["type"] == "tip_adapter"
    cls = zsprobes.TipAdapter if tip else zsprobes.ZeroShotEnsemble
    _node(node, ctx, ("params", "attrs"), () if tip else ("probe",))
    est = _set_attrs(cls(**_params(node, ctx, cls, _ZS_CHECKS)), node, ctx,
                     _TIP_SPEC if tip else _ZS_SPEC)
    if not np.array_equal(est.classes_, np.arange(ctx.k)):
        raise ctx.fail(f"classes_ must be all {ctx.k} classes")
    if tip:
        labels = est.key_labels_
        if len(labels) != len(est.keys_) or (labels < 0).any() or (labels >= ctx.k).any():
            raise ctx.fail("key_labels_ do not match keys_ and the classes")
    elif "probe" in node:
        est.probe_ = decode(node["probe"], ctx.at("probe"))
    else:
        raise ctx.fail("a zero-shot ensemble without its probe")
    return est


def _codecs() -> list[Codec]:
    def cls(module: str, name: str) -> Callable[[], type]:
        def get():
            import importlib
            return getattr(importlib.import_module(module), name)
        return get

    return [
        Codec("pipeline", cls("sklearn.pipeline", "Pipeline"), _pipeline_enc, _pipeline_dec),
        Codec("standard_scaler", *_plain("sklearn.preprocessing", "StandardScaler", {
            "mean_": _PER_FEATURE, "scale_": _PER_FEATURE, "var_": _PER_FEATURE,
            "n_samples_seen_": ("iuf", _SCALAR[1]), "n_features_in_": _SCALAR})),
        Codec("logistic_regression", *_plain("sklearn.linear_model", "LogisticRegression",
                                             _LINEAR, n_iter=_NITER)),
        Codec("linear_svc", *_plain("sklearn.svm", "LinearSVC", _LINEAR, n_iter=_SCALAR)),
        Codec("sigmoid_calibrated", cls("classify.calibration",
                                        "BalancedCalibratedClassifierCV"),
              _calibrated_enc, _calibrated_dec),
        # models saved before BalancedCalibratedClassifierCV (classify convert): same arrays
        Codec("sigmoid_calibrated", cls("sklearn.calibration", "CalibratedClassifierCV"),
              _calibrated_enc, _calibrated_dec),
        Codec("lightgbm", cls("lightgbm", "LGBMClassifier"), _booster_enc, _booster_dec),
        Codec("lightgbm", cls("classify.trees", "TreesClassifier"), _booster_enc, _booster_dec),
        Codec("soft_label_logreg", *_plain("classify.soft", "SoftLabelLogReg", {
            "mean_": _PER_FEATURE, "scale_": _PER_FEATURE,
            "coef_": ("f", lambda ctx, c: (len(c), ctx.width)),
            "intercept_": ("f", lambda ctx, c: (len(c),)), "classes_": _CLASSES,
            "n_iter_": _SCALAR}, checks=_SOFT_CHECKS)),
        Codec("weighted_average", *_plain("classify.stacking", "WeightedAverage", {
            "weights_": ("f", _weights_shape), "classes_": _CLASSES},
            checks={"class_weight": lambda v: v in (None, "balanced")})),
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


def decode(node, ctx: Ctx):
    """The estimator `encode` described, every part checked against `ctx`."""
    kind = node.get("type") if isinstance(node, dict) else None
    for c in CODECS:
        if c.name == kind:
            return c.decode(node, ctx)
    if not isinstance(node, dict):
        raise ctx.fail(f"expected an estimator object, found {type(node).__name__}")
    raise ctx.fail(f"unknown estimator type {str(kind)[:40]!r}")
