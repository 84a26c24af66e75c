"""featx: images -> multi-level CNN features -> one HDF5 cache.

Importing the package is cheap (no torch): `classify` reads caches where only h5py is installed.
In a notebook: `X, y, paths = featx.load("cache/fi-resnet101-gap.h5", levels="L4",
split="train")` (featx.ecosystem.api, imported on first use).
"""

__version__ = "0.1.0"

_API = ("load", "classes")


def __getattr__(name: str):
    if name in _API:
        from featx.ecosystem import api

        return getattr(api, name)
    raise AttributeError(f"module 'featx' has no attribute {name!r}")
