"""Model files: one .npz (a zip of .npy arrays) whose `__header__` is UTF-8 JSON -- the format
version, fingerprints, classes, levels, the recipe, evaluation rows and the estimator's
structure (classify.codec) -- beside the fitted arrays; LightGBM models as their own model
text. Opening one reads arrays and JSON only (`np.load(allow_pickle=False)`): it cannot run
code. Older joblib model files are refused; `classify convert --trust` is the only place where
a pickle is ever opened."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from classify.atomic import write_atomic
from featx.errors import FeatxError
from featx.pathnames import show

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


def load_model(path: str | os.PathLike) -> dict:
    """The bundle of a model file, its estimator rebuilt from arrays; never unpickles."""
    from classify.codec import decode

    path = Path(path)
    if not path.is_file():
        raise FeatxError(f"{show(path)}: no such model file")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        if _looks_like_pickle(head):
            raise FeatxError(f"{show(path)}: looks like an old classify model file (joblib, i.e. "
                             f"pickle, which can run code when opened), so it is not opened; if "
                             f"you trust it, convert it once: classify convert --trust "
                             f"{show(path)} NEW")
        raise FeatxError(f"{show(path)}: not a classify model file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(arrays.pop(HEADER).tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, EOFError):
        raise FeatxError(f"{show(path)}: not a classify model file (unreadable)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FeatxError(f"{show(path)}: not a classify model file")
    if header.get("version") != VERSION:
        raise FeatxError(f"{show(path)}: model file version {header.get('version')} is not "
                         f"supported (this classify reads version {VERSION})")
    header["estimator"] = decode(header["estimator"], arrays)
    _attach_seen(header, arrays, path)
    return header


def _attach_seen(header: dict, arrays: dict, path: Path) -> None:
    """The train+val row identities the header announces, checked against it."""
    from classify.rowrule import SEEN_MEMBER

    seen = header.get("seen")
    if seen is None:
        return
    ids = arrays.get(SEEN_MEMBER) if isinstance(seen, dict) else None
    if (ids is None or ids.dtype != np.uint64 or ids.ndim != 1
            or len(ids) != seen.get("n")):
        raise FeatxError(f"{show(path)}: the record of the model's training rows is damaged "
                         f"({SEEN_MEMBER} does not match the header)")
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
