"""The .npy members of a model file's zip, read one at a time and only when asked for.

A member's dtype and shape come from its own .npy header; they are checked against what the
caller expects (kinds, shape, a byte limit) before any of its data is decompressed, so an
unreferenced or oversized member costs nothing and a declared shape of 1e12 is an error, not
an allocation. No dtype that needs pickle is ever read.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from featx.errors import FeatxError

MAX_MEMBER_BYTES = 512 << 20  # one array (a LightGBM model text of ~8,000 trees is ~30 MB)
MAX_TOTAL_BYTES = 1 << 30  # all arrays of one file together
_BOMB_RATIO = 200  # text and float arrays deflate ~2-10x; zeros ~1000x
_BOMB_MIN = 16 << 20
# what a damaged or crafted zip raises from the standard library
ZIP_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
              RuntimeError, struct.error, OverflowError, KeyError, UnicodeDecodeError)


class Members:
    """Arrays of an open zip by name (np.savez's `name.npy` members); `label` names the file in
    every error."""

    def __init__(self, zf: zipfile.ZipFile, label: str):
        self.zf = zf
        self.label = label
        self.names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        self.total = 0

    def _fail(self, msg: str) -> FeatxError:
        return FeatxError(f"{self.label}: {msg}")

    def array(self, key: object, kinds: str, shape: Sequence[int | None], *,
              max_bytes: int = MAX_MEMBER_BYTES) -> np.ndarray:
        """Member `key`, whose dtype kind is one of `kinds` and whose shape matches `shape`
        (None: any length); refused before reading if not, or if larger than `max_bytes`."""
        if not isinstance(key, str) or key not in self.names:
            raise self._fail(f"array {str(key)[:80]!r} is not in the file")
        info = self.zf.getinfo(key + ".npy")
        try:
            with self.zf.open(info) as fp:
                return self._read(fp, key, info, kinds, tuple(shape), max_bytes)
        except FeatxError:
            raise
        except ZIP_ERRORS as e:
            why = " ".join(str(e).split())[:80]
            raise self._fail(f"array {key!r} is damaged ({type(e).__name__}: {why})") from None

    def _read(self, fp, key, info, kinds, shape, max_bytes) -> np.ndarray:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            got, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            got, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise self._fail(f"array {key!r}: .npy version {version} is not read")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.kind not in kinds:
            raise self._fail(f"array {key!r} has dtype {dtype.str[:20]}, expected kind "
                             f"{'/'.join(kinds)}")
        if len(got) != len(shape) or any(w is not None and g != w for g, w in zip(got, shape)):
            want = "(" + ", ".join("n" if w is None else str(w) for w in shape) \
                + ("," if len(shape) == 1 else "") + ")"
            raise self._fail(f"array {key!r} has shape {tuple(got)}, expected {want}")
        nbytes = int(np.prod(got, dtype=object)) * dtype.itemsize
        if nbytes > max_bytes or self.total + nbytes > MAX_TOTAL_BYTES:
            raise self._fail(f"array {key!r} declares {nbytes} bytes, more than the "
                             f"{min(max_bytes, MAX_TOTAL_BYTES - self.total)} allowed")
        if nbytes > _BOMB_MIN and nbytes > _BOMB_RATIO * max(info.compress_size, 1):
            raise self._fail(f"array {key!r} declares {nbytes} bytes from "
                             f"{info.compress_size} compressed: refused as a decompression bomb")
        self.total += nbytes
        data = fp.read(nbytes)
        if len(data) != nbytes:
            raise self._fail(f"array {key!r} is truncated")
        arr = np.frombuffer(data, dtype=dtype).reshape(got, order="F" if fortran else "C")
        return arr.copy(order="K")  # the layout as saved: BLAS sums in the same order
