"""`classify predict`: a model file + a cache or a folder of images -> per-image probabilities."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featx.cache import Cache, CacheError
from featx.dataset import walk_folder
from featx.pathnames import show
from featx.errors import FeatxError


@dataclass
class Predictions:
    paths: list[str]
    proba: np.ndarray  # [n, n_classes]; rows of failed images are NaN
    errors: list[str]
    labels: list[str] | None = None  # true class names, when known
    split: list[str] | None = None
    source_labels: list[str] | None = None  # a cache's classes before its own --task map
    dist: np.ndarray | None = None  # [n, n_classes] human votes (/label_dist), where known


@dataclass
class Scored:
    """The rows of a prediction that an evaluation may score (the row rule, classify.rowrule):
    predicted, with a true class among the model's, and not the model's train or val rows."""

    rows: np.ndarray  # indices into the predictions
    y: np.ndarray  # their true class (index into the model's classes)
    n_seen: int  # labelled, predicted rows left out: the model trained or selected on them
    n_unknown: int  # predicted rows whose class is none of the model's (after its task)


def scored(preds: Predictions, bundle: dict) -> Scored:
    """Which rows of `preds` an evaluation of the model may score, with their true classes: a
    cache's labels, or a folder's first-level folder names, under the model's task."""
    from classify.rowrule import TaskView, seen_mask

    view = TaskView.of(bundle)
    if preds.labels is not None:
        names = view.true_classes(preds.labels, preds.source_labels)
    else:
        names = view.true_classes([p.split("/", 1)[0] if "/" in p else None
                                   for p in preds.paths])
    ok = ~np.isnan(preds.proba).any(axis=1)
    known = np.array([n is not None for n in names], dtype=bool)
    seen = seen_mask(bundle, preds.paths)
    rows = np.flatnonzero(ok & known & ~seen)
    index = {c: i for i, c in enumerate(view.classes)}
    return Scored(rows, np.array([index[names[i]] for i in rows], dtype=np.int64),
                  int((ok & known & seen).sum()), int((ok & ~known).sum()))


def _proba(bundle: dict, X: np.ndarray) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return bundle["estimator"].predict_proba(X)


def _assemble(bundle: dict, features: dict, valid: np.ndarray) -> np.ndarray:
    proba = np.full((len(valid), len(bundle["classes"])), np.nan)
    rows = np.flatnonzero(valid)
    if len(rows):
        X = np.concatenate([np.asarray(features[lv])[rows].astype(np.float32)
                            for lv in bundle["levels"]], axis=1)
        proba[rows] = _proba(bundle, X)
    return proba


def predict_cache(bundle: dict, path: str | os.PathLike) -> Predictions:
    """Every row of a cache whose features were made like the model's training features."""
    with Cache(path) as cache:
        theirs = str(cache.attrs.get("feature_fingerprint", ""))
        if theirs != bundle["feature_fingerprint"]:
            raise CacheError(f"{path}: its features were made with other settings than the "
                             f"model's (feature_fingerprint {theirs[:12] or 'missing'} != "
                             f"{bundle['feature_fingerprint'][:12]}; {_settings_diff(bundle, cache)})")
        cache.check_levels(bundle["levels"])
        for lv, d in bundle["dims"].items():
            if cache.dims[lv] != d:
                raise CacheError(f"{path}: level {lv} has {cache.dims[lv]} dims, the model "
                                 f"expects {d}")
        valid = cache.valid
        features = {lv: cache.f["features"][lv][:] for lv in bundle["levels"]}
        proba = _assemble(bundle, features, valid)
        labels = [cache.classes[y] for y in cache.labels]
        split = [cache.split_names[s] for s in cache.split]
        errors = [e or ("" if v else "invalid row") for e, v in zip(cache.errors, valid)]
        source = cache.before_task
        dist = cache.label_dist  # votes over the model's classes only
        same = list(cache.classes) == list(bundle["classes"])
        return Predictions(cache.paths, proba, errors, labels, split,
                           [source[0][y] for y in source[1]] if source else None,
                           dist=dist if same else None)


def _settings_diff(bundle: dict, cache: Cache) -> str:
    ours = bundle.get("extract", {})
    diffs = [f"{k} {cache.attrs.get(k)!r} vs {ours[k]!r}" for k in ours
             if k in cache.attrs and str(cache.attrs.get(k)) != str(ours[k])
             and k != "layers"]
    return "; ".join(diffs) if diffs else "see featx info"


def find_images(folder: Path) -> list[str]:
    """Relative paths of every image under `folder`, sorted (each real folder walked once)."""
    return [p for p, _ in walk_folder(folder, class_folders=False).items]


def predict_images(bundle: dict, folder: str | os.PathLike, *, batch_size: int = 64,
                   device: str = "auto", quiet: bool = False) -> Predictions:
    """Extract features of the images under `folder` (or of the one image `folder` names) with
    the model's cache settings, then predict; refuses if the extracted features would not match
    the model's."""
    folder = Path(folder)
    if folder.is_file():  # one image
        folder, rel = folder.parent, [folder.name]
    else:
        rel = find_images(folder)
    if not rel:
        raise FeatxError(f"{folder}: no images found")
    # a fused model (classify.fusion): each cache's backbone in turn, its blocks ALIAS:LEVEL
    fused = "sources" in bundle
    features, valid, errors = {}, np.ones(len(rel), dtype=bool), [""] * len(rel)
    for src in bundle["sources"] if fused else [bundle]:
        f, v, e = _extract_like(src, folder, rel, batch_size, device, quiet)
        features.update({f"{src['alias']}:{lv}": f[lv] for lv in src["levels"]} if fused else f)
        valid &= np.asarray(v, dtype=bool)
        errors = [a or b for a, b in zip(errors, e)]
    proba = _assemble(bundle, features, valid)
    return Predictions([show(p) for p in rel], proba, [show(e or "") for e in errors])


def _extract_like(model: dict, folder: Path, rel: list[str], batch_size: int, device: str,
                  quiet: bool):
    """(features, valid, errors) of `rel` under `folder`, extracted with the settings `model`
    (a model bundle, or one cache of a fused one) records; refused unless they match its."""
    ex = model.get("extract", {})
    needed = ("backbone", "weights_source", "layers", "pool", "image_size", "dtype")
    if any(k not in ex for k in needed):
        raise FeatxError(f"the model was trained on a cache without featx extract settings "
                         f"({', '.join(k for k in needed if k not in ex)} missing): predict "
                         f"on a cache instead")
    from featx.extract import extract_images  # torch: only for this path
    from featx.preprocess import is_fast_decode

    features, valid, errors, fp = extract_images(
        [folder / p for p in rel], backbone=ex["backbone"], weights=ex["weights_source"],
        layers=ex["layers"], pool=ex["pool"], image_size=int(ex["image_size"]),
        dtype=ex["dtype"], seed=int(ex.get("seed", 0)), batch_size=batch_size, device=device,
        quiet=quiet, fast_decode=is_fast_decode(str(ex.get("preprocessing", ""))))
    if fp != model["feature_fingerprint"]:
        raise FeatxError(f"{folder}: features extracted here do not match the model's "
                         f"(feature_fingerprint {fp[:12]} != {model['feature_fingerprint'][:12]}"
                         f"); e.g. another device precision or decoder: extract a cache with "
                         f"featx extract and predict on it")
    return features, valid, errors


def predictions_csv(preds: Predictions, classes: list[str],
                    seen: np.ndarray | None = None) -> str:
    """CSV text: path, [split, label,] [model_saw,] predicted, p_<class>..., error;
    `model_saw` (1/0): whether the model trained or selected on the image (`seen`, where the
    model file records its rows)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = (["path"] + (["split"] if preds.split else []) + (["label"] if preds.labels else [])
            + (["model_saw"] if seen is not None else []))
    w.writerow(head + ["predicted"] + [f"p_{c}" for c in classes] + ["error"])
    for i, path in enumerate(preds.paths):
        row = [path] + ([preds.split[i]] if preds.split else []) + (
            [preds.labels[i]] if preds.labels else []) + (
            [str(int(seen[i]))] if seen is not None else [])
        p = preds.proba[i]
        if np.isnan(p).any():
            row += [""] + [""] * len(classes)
        else:
            row += [classes[int(p.argmax())]] + [f"{v:.6f}" for v in p]
        w.writerow(row + [preds.errors[i]])
    return buf.getvalue()
