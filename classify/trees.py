"""LightGBM model text -> checked arrays -> probabilities, in numpy.

A model file's trees never reach LightGBM's C++ parser (which trusts every index in the text):
`parse_forest` reads the text into arrays and checks each index, size and value against the
model's classes and feature count; `Forest.raw` then evaluates all trees at once, with
LightGBM's own numerical decision rule (missing-value types, default directions). What featx
never writes -- categorical splits, linear trees, random-forest averaging, objectives other
than binary and multiclass -- is refused, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from featx.errors import FeatxError

MAX_LEAVES = 131072  # LightGBM's own limit on num_leaves
MAX_TREES = 1_000_000
_ZERO = 1e-35  # LightGBM's kZeroThreshold
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2
_ROWS_X_TREES = 1 << 20  # elements of one evaluation block: bounds the evaluator's memory


@dataclass(frozen=True)
class Forest:
    """Checked trees, padded to a common size. Internal nodes are >= 0, leaf j is ~j (< 0)."""

    num_class: int  # score columns: 1 for binary
    n_features: int
    sigmoid: float  # binary only
    feature: np.ndarray  # [T, M] int64
    threshold: np.ndarray  # [T, M] float64
    default_left: np.ndarray  # [T, M] bool
    missing: np.ndarray  # [T, M] int8
    left: np.ndarray  # [T, M] int64
    right: np.ndarray  # [T, M] int64
    leaf_value: np.ndarray  # [T, L] float64
    root: np.ndarray  # [T] int64: 0, or ~0 for a one-leaf tree
    depth: int

    def raw(self, X: np.ndarray) -> np.ndarray:
        """[n, num_class] raw scores: the sum of each class's trees, as LightGBM's predict."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise FeatxError(f"the trees expect {self.n_features} features, got an array of "
                             f"shape {X.shape}")
        T = len(self.root)
        out = np.zeros((len(X), self.num_class))
        step = max(1, _ROWS_X_TREES // max(T, 1))
        for a in range(0, len(X), step):
            out[a:a + step] = self._raw_block(X[a:a + step])
        return out

    def _raw_block(self, X: np.ndarray) -> np.ndarray:
        # one (row, tree) pair per element, only those still inside a tree: the work is the sum
        # of the path lengths, not rows x trees x the deepest tree
        n, T = len(X), len(self.root)
        M, L = self.feature.shape[1], self.leaf_value.shape[1]
        base = np.arange(T) * M
        leaf_base = np.arange(T) * L

        def globalise(child: np.ndarray) -> np.ndarray:
            # internal node j of tree t -> t*M + j; leaf j -> ~(t*L + j)
            return np.where(child >= 0, child + base[:, None], ~(~child + leaf_base[:, None]))

        left, right = globalise(self.left).ravel(), globalise(self.right).ravel()
        feature, threshold = self.feature.ravel(), self.threshold.ravel()
        missing, default_left = self.missing.ravel(), self.default_left.ravel()
        flat_x = X.ravel()
        leaf = np.empty(n * T, np.int64)
        start = np.where(self.root >= 0, base, ~leaf_base)
        cur = np.broadcast_to(start, (n, T)).ravel().copy()
        pos = np.arange(n * T)
        done = cur < 0
        leaf[pos[done]] = ~cur[done]
        pos, cur = pos[~done], cur[~done]
        for _ in range(self.depth):
            if not len(pos):
                break
            v = flat_x[(pos // T) * self.n_features + feature[cur]]
            miss = missing[cur]
            nan = np.isnan(v)
            v = np.where(nan & (miss != _MISSING_NAN), 0.0, v)
            is_missing = (((miss == _MISSING_ZERO) & (v >= -_ZERO) & (v <= _ZERO))
                          | ((miss == _MISSING_NAN) & nan))
            go_left = np.where(is_missing, default_left[cur], v <= threshold[cur])
            cur = np.where(go_left, left[cur], right[cur])
            done = cur < 0
            leaf[pos[done]] = ~cur[done]
            pos, cur = pos[~done], cur[~done]
        values = self.leaf_value.ravel()[leaf].reshape(n, T)
        # tree i belongs to class i % num_class; summed in tree order, as LightGBM does
        return values.reshape(n, T // self.num_class, self.num_class).sum(axis=1)

    def proba(self, X: np.ndarray) -> np.ndarray:
        """[n, classes] probabilities: softmax (multiclass) or sigmoid (binary, two columns)."""
        r = self.raw(X)
        if self.num_class == 1:
            p = 1.0 / (1.0 + np.exp(-self.sigmoid * r[:, 0]))
            return np.column_stack([1.0 - p, p])
        e = np.exp(r - r.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def _fail(msg: str) -> FeatxError:
    return FeatxError(f"LightGBM model text: {msg}")


def _ints(text: str, key: str, n: int) -> np.ndarray:
    parts = text.split()
    if len(parts) != n:
        raise _fail(f"{key} has {len(parts)} values, expected {n}")
    try:
        return np.array([int(p) for p in parts], dtype=np.int64)
    except (ValueError, OverflowError):
        raise _fail(f"{key} holds a value that is not an integer") from None


def _floats(text: str, key: str, n: int, infinite: bool = False) -> np.ndarray:
    parts = text.split()
    if len(parts) != n:
        raise _fail(f"{key} has {len(parts)} values, expected {n}")
    try:
        v = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        raise _fail(f"{key} holds a value that is not a number") from None
    if np.isnan(v).any() or not (infinite or np.isfinite(v).all()):
        raise _fail(f"{key} holds a value that is not " + ("a number" if infinite else "finite"))
    return v


def _int(fields: dict, key: str, lo: int, hi: int) -> int:
    if key not in fields:
        raise _fail(f"no {key}")
    try:
        v = int(fields[key])
    except ValueError:
        raise _fail(f"{key}={fields[key][:40]!r} is not an integer") from None
    if not lo <= v <= hi:
        raise _fail(f"{key}={v} is outside [{lo}, {hi}]")
    return v


def _sections(text: str) -> tuple[dict, list[dict]]:
    """The header's key=value lines and each tree's, up to 'end of trees'."""
    header: dict[str, str] = {}
    trees: list[dict] = []
    current = header
    for line in text.split("\n"):
        line = line.strip()
        if line == "end of trees":
            return header, trees
        if not line or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if key == "Tree":
            if value != str(len(trees)):
                raise _fail(f"Tree={value[:20]} where Tree={len(trees)} was expected")
            if len(trees) >= MAX_TREES:
                raise _fail(f"more than {MAX_TREES} trees")
            current = {}
            trees.append(current)
        elif key in current:
            raise _fail(f"{key} given twice")
        else:
            current[key] = value
    raise _fail("no 'end of trees' line")


def _tree(fields: dict, i: int, n_features: int) -> dict:
    """One tree's checked arrays; raises if any index, size or value is out of place."""
    where = f"tree {i}: "
    try:
        leaves = _int(fields, "num_leaves", 1, MAX_LEAVES)
        if _int(fields, "num_cat", 0, MAX_LEAVES) != 0:
            raise _fail("categorical splits are not supported (featx features are numerical)")
        if fields.get("is_linear", "0") != "0":
            raise _fail("linear trees are not supported")
        if "leaf_value" not in fields:
            raise _fail("no leaf_value")
        leaf_value = _floats(fields["leaf_value"], "leaf_value", leaves)
        m = leaves - 1
        for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child"):
            if m and key not in fields:
                raise _fail(f"no {key}")
        if m == 0:
            return {"m": 0, "leaf_value": leaf_value, "depth": 0}
        feature = _ints(fields["split_feature"], "split_feature", m)
        # LightGBM itself writes threshold=inf for a split of NaN against the rest
        threshold = _floats(fields["threshold"], "threshold", m, infinite=True)
        decision = _ints(fields["decision_type"], "decision_type", m)
        left = _ints(fields["left_child"], "left_child", m)
        right = _ints(fields["right_child"], "right_child", m)
        if (feature < 0).any() or (feature >= n_features).any():
            raise _fail(f"a split_feature is outside [0, {n_features})")
        if (decision & 1).any():
            raise _fail("categorical splits are not supported (featx features are numerical)")
        missing = (decision >> 2) & 3
        if (decision < 0).any() or (decision > 15).any() or (missing == 3).any():
            raise _fail("a decision_type is not one LightGBM writes")
        depth = _check_structure(left, right, leaves)
    except FeatxError as e:
        raise FeatxError(str(e).replace("LightGBM model text: ", f"LightGBM model text: {where}",
                                        1)) from None
    return {"m": m, "feature": feature, "threshold": threshold,
            "default_left": (decision & 2) != 0, "missing": missing.astype(np.int8),
            "left": left, "right": right, "leaf_value": leaf_value, "depth": depth}


def _check_structure(left: np.ndarray, right: np.ndarray, leaves: int) -> int:
    """The depth of the tree the child arrays describe; raises unless they form one binary tree
    whose root is node 0, reaching every internal node and every leaf exactly once."""
    m = leaves - 1
    child = np.concatenate([left, right])
    if (child >= m).any() or (child < -leaves).any():
        raise _fail("a left_child or right_child is out of range")
    inner = child[child >= 0]
    leaf = ~child[child < 0]
    if (np.bincount(inner, minlength=m)[1:] != 1).any() or (inner == 0).any() \
            or (np.bincount(leaf, minlength=leaves) != 1).any():
        raise _fail("the child arrays do not form a tree (a node reached twice or never)")
    depth, level = 0, np.array([0])
    seen = 0
    while len(level):
        seen += len(level)
        depth += 1
        nxt = np.concatenate([left[level], right[level]])
        level = nxt[nxt >= 0]
        if seen > m:
            break
    if seen != m:
        raise _fail("the child arrays do not form a tree (a cycle)")
    return depth


def parse_forest(text: str, n_classes: int, n_features: int) -> Forest:
    """The checked trees of LightGBM model `text` for `n_classes` classes and `n_features`
    features; a FeatxError names what does not fit."""
    header, trees = _sections(text)
    if header.get("version") not in ("v3", "v4"):
        raise _fail(f"version {header.get('version', 'missing')!r} is not v3 or v4")
    if "average_output" in header:
        raise _fail("random-forest averaging (average_output) is not supported")
    objective = header.get("objective", "").split()
    want = 1 if n_classes == 2 else n_classes
    num_class = _int(header, "num_class", 1, 10_000)
    per_iter = _int(header, "num_tree_per_iteration", 1, 10_000)
    if num_class != want or per_iter != want:
        raise _fail(f"num_class={num_class}, num_tree_per_iteration={per_iter}: the model "
                    f"has {n_classes} classes, so both must be {want}")
    sigmoid = 1.0
    if want == 1:
        if objective[:1] != ["binary"]:
            raise _fail(f"objective {' '.join(objective)[:40]!r} is not binary")
        opts = dict(o.split(":", 1) for o in objective[1:] if ":" in o)
        try:
            sigmoid = float(opts.get("sigmoid", "1"))
        except ValueError:
            sigmoid = float("nan")
        if not np.isfinite(sigmoid) or sigmoid <= 0:
            raise _fail("the binary objective's sigmoid is not a positive number")
    elif objective[:1] != ["multiclass"]:
        raise _fail(f"objective {' '.join(objective)[:40]!r} is not multiclass")
    if _int(header, "max_feature_idx", 0, 10**9) != n_features - 1:
        raise _fail(f"max_feature_idx={header['max_feature_idx'][:20]}: the model has "
                    f"{n_features} features")
    if not trees or len(trees) % want:
        raise _fail(f"{len(trees)} trees is not a positive multiple of {want} per iteration")
    parsed = [_tree(t, i, n_features) for i, t in enumerate(trees)]
    return _pad(parsed, want, n_features, sigmoid)


def _pad(parsed: list[dict], num_class: int, n_features: int, sigmoid: float) -> Forest:
    T = len(parsed)
    M = max(1, max(t["m"] for t in parsed))
    L = max(len(t["leaf_value"]) for t in parsed)
    arrays = {"feature": np.zeros((T, M), np.int64), "threshold": np.zeros((T, M)),
              "default_left": np.zeros((T, M), bool), "missing": np.zeros((T, M), np.int8),
              "left": np.full((T, M), -1, np.int64), "right": np.full((T, M), -1, np.int64)}
    leaf_value = np.zeros((T, L))
    root = np.zeros(T, np.int64)
    for i, t in enumerate(parsed):
        leaf_value[i, :len(t["leaf_value"])] = t["leaf_value"]
        if t["m"] == 0:
            root[i] = ~0
            continue
        for k, a in arrays.items():
            a[i, :t["m"]] = t[k]
    return Forest(num_class, n_features, sigmoid, leaf_value=leaf_value, root=root,
                  depth=max(t["depth"] for t in parsed), **arrays)


class TreesClassifier(ClassifierMixin, BaseEstimator):
    """A LightGBM classifier read back from a model file (`from_text`): predict_proba, predict
    and classes_ like the fitted LGBMClassifier it was saved from, evaluated by `Forest`."""

    @classmethod
    def from_text(cls, text: str, classes: np.ndarray, n_features: int) -> "TreesClassifier":
        est = cls()
        est.classes_ = np.asarray(classes)
        est.n_features_in_ = int(n_features)
        est.forest_ = parse_forest(text, len(est.classes_), est.n_features_in_)
        est.model_text_ = text
        return est

    def fit(self, X, y):
        raise FeatxError("trees read from a model file cannot be refitted; fit an LGBMClassifier")

    def predict_proba(self, X) -> np.ndarray:
        return self.forest_.proba(X)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
