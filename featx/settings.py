"""What a cache's numbers depend on, its two fingerprints, and a readable account of what differs
between two runs' settings."""

from __future__ import annotations

import json
from collections.abc import Mapping

from featx.cache import fingerprint

# Settings that change the feature values of one image (no file list): the feature fingerprint.
FEATURE_KEYS = ("backbone", "weights", "layers", "pool", "image_size", "preprocessing",
                "precision", "dtype")
# ...plus what fixes the rows: the full fingerprint.
DATA_KEYS = ("classes", "split_spec", "seed", "files")
# ...and, where a run has them, the CLIP zero-shot prompt templates (stored in the cache too)
OPTIONAL_KEYS = ("prompts",)


def feature_fingerprint(settings: Mapping[str, object]) -> str:
    return fingerprint({k: settings[k] for k in FEATURE_KEYS})


def full_fingerprint(settings: Mapping[str, object]) -> str:
    keys = FEATURE_KEYS + DATA_KEYS + tuple(k for k in OPTIONAL_KEYS if settings.get(k))
    return fingerprint({k: settings[k] for k in keys})


def from_cache_attrs(attrs: Mapping[str, object]) -> dict:
    """The settings a cache written by featx extract records in its root attributes."""
    out: dict = {}
    for key in FEATURE_KEYS + DATA_KEYS + OPTIONAL_KEYS:
        attr = "files_fingerprint" if key == "files" else key
        if attr in attrs:
            v = attrs[attr]
            out[key] = json.loads(v) if key in ("layers", "classes", "prompts") \
                and isinstance(v, str) else v
    return out


def difference(old: Mapping[str, object], new: Mapping[str, object]) -> str:
    """'backbone resnet18 -> resnet50, image_size 64 -> 224' (or a general note if unknown)."""
    parts = []
    for key in FEATURE_KEYS + DATA_KEYS + OPTIONAL_KEYS:
        if key in old and key in new and _norm(old[key]) != _norm(new[key]):
            if key == "files":
                parts.append("the file list, labels or split differ")
            else:
                parts.append(f"{key} {_show(old[key])} -> {_show(new[key])}")
    return ", ".join(parts) or "settings recorded differently (older featx?)"


def _norm(v: object) -> object:
    return json.dumps(v, sort_keys=True, default=str)


def _show(v: object) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)
