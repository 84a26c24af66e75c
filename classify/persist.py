"""Model files: one .npz (a zip of .npy arrays) whose `__header__` is UTF-8 JSON -- the format
version, fingerprints, classes, levels, the recipe, evaluation rows and the estimator's
structure (classify.codec) -- beside the fitted arrays; LightGBM models as their own model
text. Opening one reads arrays and JSON only, never a pickle, so it cannot run code; every field
is checked before use and only referenced arrays are read (classify.members, classify.codec,
classify.trees: docs/model-files.md, "Model files are data"). Older joblib model files are
refused; `classify convert --trust` is the only place where a pickle is ever opened."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from classify.atomic import write_atomic
from featx.errors import FeatxError
from featx.pathnames import show

MAX_CLASSES = 10_000

FORMAT = "classify-model"
VERSION = 2  # 1: joblib (pickle), refused; 2: npz + JSON header
HEADER = "__header__"
# the cache settings `predict` needs to extract matching features from new images
_EXTRACT_ATTRS = ("backbone", "weights", "weights_source", "layers", "pool", "image_size", "dtype",
                  "seed", "preprocessing", "precision")


def model_bundle(trained) -> dict:
    """The dict a model file holds, from a `training.Trained`: with its protocol and the
    identities of the rows it was trained and selected on (classify.rowrule)."""
    from classify.rowrule import SEEN_MEMBER, seen_record

    data = trained.data
    if trained.pooled:
        raise FeatxError(f"{data.protocol.get('split')} trains one model per fold: save one "
                         f"with a ratio split or kfold:K:F")
    seen, ids = seen_record(data["train"].paths + data["val"].paths)
    attrs = {k: data.attrs[k] for k in _EXTRACT_ATTRS if k in data.attrs}
    if isinstance(attrs.get("layers"), str):
        attrs["layers"] = json.loads(attrs["layers"])
    return {"format": FORMAT, "version": VERSION, "estimator": trained.estimator,
            "cache": str(Path(data.cache).resolve()), "cache_fingerprint": data.fingerprint,
            "feature_fingerprint": data.feature_fingerprint, "classes": list(data.classes),
            "levels": list(data.levels), "dims": dict(data.dims), "recipe": trained.recipe,
            "extract": attrs, "rows": [r.row for r in trained.results],
            "protocol": data.protocol, "seen": seen, SEEN_MEMBER: ids,
            **({"sources": data.model_sources()} if hasattr(data, "model_sources") else {})}


def save_bundle(path: str | os.PathLike, bundle: dict) -> Path:
    from classify.codec import encode
    from classify.rows import _jsonable

    from classify.rowrule import SEEN_MEMBER

    arrays: dict[str, np.ndarray] = {}
    header = {k: v for k, v in bundle.items() if k not in ("estimator", SEEN_MEMBER)}
    if bundle.get(SEEN_MEMBER) is not None:
        arrays[SEEN_MEMBER] = np.asarray(bundle[SEEN_MEMBER], dtype=np.uint64)
    header.update(format=FORMAT, version=VERSION, estimator=encode(bundle["estimator"], arrays))
    blob = json.dumps(_jsonable(header), allow_nan=False, default=str).encode()
    arrays[HEADER] = np.frombuffer(blob, dtype=np.uint8)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return write_atomic(path, write)


def save_model(path: str | os.PathLike, trained) -> Path:
    return save_bundle(path, model_bundle(trained))


def _looks_like_pickle(head: bytes) -> bool:
    # pickle protocol 2+ starts with 0x80; joblib's compressed files are zlib streams (0x78) or
    # its own "ZF" header; an uncompressed protocol-0/1 pickle starts with an opcode like "("
    return head[:1] in (b"\x80", b"x", b"(", b"]", b"}") or head[:2] == b"ZF"


MAX_HEADER_BYTES = 64 << 20


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _str(v) -> bool:
    return isinstance(v, str)


def _str_list(v) -> bool:
    return isinstance(v, list) and 0 < len(v) <= MAX_CLASSES and all(map(_str, v)) \
        and len(set(v)) == len(v)


def _dims(v) -> bool:
    return isinstance(v, dict) and all(
        isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 10**7 for d in v.values())


# header fields that classify reads, each with its check; other fields are kept as data only
HEADER_FIELDS = {"estimator": lambda v: isinstance(v, dict), "feature_fingerprint": _str,
                 "classes": lambda v: _str_list(v) and len(v) >= 2, "levels": _str_list,
                 "dims": _dims}
def _sources(v) -> bool:
    """A fused model's caches (classify.fusion): alias, feature fingerprint, levels each."""
    return isinstance(v, list) and 0 < len(v) <= 64 and all(
        isinstance(s, dict) and _str(s.get("alias")) and _str(s.get("feature_fingerprint"))
        and _str_list(s.get("levels")) and isinstance(s.get("extract", {}), dict) for s in v)


OPTIONAL_FIELDS = {"cache": _str, "cache_fingerprint": _str, "recipe": lambda v: isinstance(
                   v, dict), "extract": lambda v: isinstance(v, dict),
                   "rows": lambda v: isinstance(v, list), "protocol": lambda v: isinstance(
                   v, dict) or v is None, "seen": lambda v: isinstance(v, dict) or v is None,
                   "sources": _sources}


def _check_header(header: dict, label: str) -> None:
    for name, ok in (*HEADER_FIELDS.items(), *OPTIONAL_FIELDS.items()):
        if name not in header:
            if name in HEADER_FIELDS:
                raise FeatxError(f"{label}: no {name!r} in the model file's header")
            continue
        if not ok(header[name]):
            raise FeatxError(f"{label}: the header's {name!r} is not valid "
                             f"({type(header[name]).__name__})")
    if set(header["dims"]) != set(header["levels"]):
        raise FeatxError(f"{label}: the header's dims are not one per level of its levels")
    if "sources" in header and header["levels"] != [
            f"{s['alias']}:{lv}" for s in header["sources"] for lv in s["levels"]]:
        raise FeatxError(f"{label}: the header's levels are not its sources' levels")


def load_model(path: str | os.PathLike) -> dict:
    """The bundle of a model file, its estimator rebuilt from arrays; never unpickles. Every
    field is checked before use and only the arrays the estimator refers to are read."""
    from classify.codec import Ctx, decode
    from classify.members import ZIP_ERRORS, Members

    path = Path(path)
    label = show(path)
    if not path.is_file():
        raise FeatxError(f"{label}: no such model file")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        if _looks_like_pickle(head):
            raise FeatxError(f"{label}: looks like an old classify model file (joblib, i.e. "
                             f"pickle, which can run code when opened), so it is not opened; if "
                             f"you trust it, convert it once: classify convert --trust "
                             f"{label} NEW")
        raise FeatxError(f"{label}: not a classify model file")
    try:
        with zipfile.ZipFile(path) as zf:
            members = Members(zf, label)
            try:
                blob = members.array(HEADER, "u", (None,), max_bytes=MAX_HEADER_BYTES)
            except FeatxError:
                raise FeatxError(f"{label}: not a classify model file (no readable header)"
                                 ) from None
            try:
                header = json.loads(blob.tobytes().decode(), parse_constant=_no_constant)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise FeatxError(f"{label}: the model file's header is not valid JSON") from None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise FeatxError(f"{label}: not a classify model file")
            if header.get("version") != VERSION:
                raise FeatxError(f"{label}: model file version {str(header.get('version'))[:20]}"
                                 f" is not supported (this classify reads version {VERSION})")
            _check_header(header, label)
            k = len(header["classes"])
            d = sum(header["dims"][lv] for lv in header["levels"])
            est = decode(header["estimator"], Ctx(members.array, label, d, k))
            _attach_seen(header, members, label)
    except ZIP_ERRORS as e:
        raise FeatxError(f"{label}: not a classify model file (unreadable: "
                         f"{type(e).__name__})") from None
    if not np.array_equal(getattr(est, "classes_", None), np.arange(k)):
        raise FeatxError(f"{label}: the estimator's classes do not match the header's {k} "
                         f"classes")
    header["estimator"] = est
    return header


def _attach_seen(header: dict, members, label: str) -> None:
    """The train+val row identities the header announces, checked against it."""
    from classify.rowrule import SEEN_MEMBER

    seen = header.get("seen")
    if seen is None:
        return
    n = seen.get("n") if isinstance(seen, dict) else None
    if not (isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 10**9):
        raise FeatxError(f"{label}: the record of the model's training rows is damaged (the "
                         f"header's 'seen' has no row count)")
    try:
        ids = members.array(SEEN_MEMBER, "u", (n,))
    except FeatxError as e:
        raise FeatxError(f"{label}: the record of the model's training rows is damaged "
                         f"({str(e).removeprefix(label + ': ')})") from None
    if ids.dtype != np.uint64:
        raise FeatxError(f"{label}: the record of the model's training rows is damaged "
                         f"({SEEN_MEMBER} is {ids.dtype}, not uint64)")
    header[SEEN_MEMBER] = ids


def convert_legacy(old: str | os.PathLike, new: str | os.PathLike) -> Path:
    """Read a joblib model file of format version 1 -- with pickle, so only for a file the user
    trusts -- and write it in the current format."""
    import joblib

    old = Path(old)
    if not old.is_file():
        raise FeatxError(f"{show(old)}: no such model file")
    with open(old, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise FeatxError(f"{show(old)}: already a model file of the current format")
    try:
        bundle = joblib.load(old)
    except Exception as e:  # joblib/pickle raise many types for a file that is not theirs
        raise FeatxError(f"{show(old)}: not a joblib model file ({type(e).__name__})") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT or "estimator" not in bundle:
        raise FeatxError(f"{show(old)}: not a classify model file")
    return save_bundle(new, bundle)
