"""No non-finite feature enters a cache as valid: checked on the forward's float32 output and
again after the cast to the stored dtype (float16 holds at most 65504).

An overflowing float16 run is refused (the chosen policy; storing float32 instead would give
one cache two dtypes): the message names the level, the largest value and `--dtype float32`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from featx.errors import FeatxError


class NonFiniteFeatures(FeatxError):
    """A batch whose features are NaN or infinite, before or after the cast."""


def _some(names: Sequence[str], rows: np.ndarray) -> str:
    return ", ".join(names[i] for i in rows[:3]) + (" ..." if len(rows) > 3 else "")


def stored_features(raw: Mapping[str, object], valid: np.ndarray, np_dtype,
                    names: Sequence[str]) -> dict[str, np.ndarray]:
    """{level: pooled float32 features (torch tensors or arrays)} of one batch -> numpy in the
    stored dtype, rows of undecodable images zeroed; raises NonFiniteFeatures naming images."""
    out = {}
    for lv, x in raw.items():
        a = x.to("cpu").numpy() if hasattr(x, "to") else np.asarray(x)
        a = a.astype(np.float32, copy=False)
        a[~valid] = 0  # an undecodable image's rows are zero, never its placeholder's features
        bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
        if len(bad):
            raise NonFiniteFeatures(
                f"{lv}: the model's forward gave NaN or infinite features for {len(bad)} of "
                f"{len(a)} images ({_some(names, bad)}); broken weights, or activations beyond "
                f"the forward's precision")
        with np.errstate(over="ignore"):
            s = a.astype(np_dtype)
        bad = np.flatnonzero(~np.isfinite(s).all(axis=1))
        if len(bad):
            big = float(np.abs(a).max())
            raise NonFiniteFeatures(
                f"{lv}: features up to {big:.3g} do not fit {np.dtype(np_dtype).name} (largest "
                f"{float(np.finfo(np_dtype).max):.0f}) for {len(bad)} of {len(a)} images "
                f"({_some(names, bad)}): rerun with --dtype float32")
        out[lv] = s
    return out
