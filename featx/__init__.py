"""featx: images -> multi-level CNN features -> one HDF5 cache.

Importing the package is cheap (no torch): `classify` reads caches where only h5py is installed.
"""

__version__ = "0.1.0"
