"""The resumable work folder beside the output (`<out>.parts/`): meta.json and one file per
finished chunk of rows, each moved into place atomically, so a killed run loses at most the
chunks it was working on."""

from __future__ import annotations

import errno
import json
import os
import queue
import shutil
import threading
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from featx.errors import FeatxError

META = "meta.json"


def os_error(path: Path, e: OSError, doing: str) -> FeatxError:
    """A one-line error for a failed write, naming the path and the likely cause."""
    reason = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied", errno.EFBIG: "file too large",
              errno.ENOTDIR: "a parent is not a folder"}.get(e.errno, e.strerror or str(e))
    return FeatxError(f"{path}: cannot {doing} ({reason})")


def atomic_write(path: Path, write) -> None:
    """write(file object) into a temp file beside `path`, then move it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise os_error(path, e, "write") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Parts:
    """`<out>.parts/`: meta.json + chunk-NNNNNN.npz files."""

    def __init__(self, out: Path):
        self.dir = Path(f"{out}.parts")

    def chunk_path(self, k: int) -> Path:
        return self.dir / f"chunk-{k:06d}.npz"

    def exists(self) -> bool:
        return (self.dir / META).is_file()

    def read_meta(self) -> dict:
        try:
            return json.loads((self.dir / META).read_text())
        except (OSError, ValueError) as e:
            raise FeatxError(f"{self.dir / META}: unreadable work file ({e}); delete {self.dir} "
                             f"to start over") from None

    def create(self, meta: Mapping) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise os_error(self.dir, e, "create the work folder") from None
        blob = json.dumps(meta, indent=1, sort_keys=True).encode()
        atomic_write(self.dir / META, lambda f: f.write(blob))

    def write_chunk(self, k: int, features: Mapping[str, np.ndarray], valid: np.ndarray,
                    errors: Sequence[str]) -> None:
        arrays = {f"feat_{lv}": x for lv, x in features.items()}
        arrays["valid"] = np.asarray(valid, dtype=bool)
        arrays["errors"] = np.array(list(errors), dtype=str)
        atomic_write(self.chunk_path(k), lambda f: np.savez(f, **arrays))

    def read_chunk(self, k: int) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
        with np.load(self.chunk_path(k), allow_pickle=False) as z:
            feats = {name[5:]: z[name] for name in z.files if name.startswith("feat_")}
            return feats, z["valid"], [str(e) for e in z["errors"]]

    def chunk_ok(self, k: int, rows: int, dims: Mapping[str, int]) -> bool:
        """Whether chunk k's file is there and whole. Reads only the zip directory and the array
        headers, so checking thousands of chunks on resume is quick; chunk files appear by
        os.replace, so a partial one can only come from a lost disk cache (power failure)."""
        expected = {f"feat_{lv}.npy": (rows, d) for lv, d in dims.items()}
        expected.update({"valid.npy": (rows,), "errors.npy": (rows,)})
        try:
            with zipfile.ZipFile(self.chunk_path(k)) as z:
                if sorted(z.namelist()) != sorted(expected):
                    return False
                for name, shape in expected.items():
                    with z.open(name) as f:
                        version = np.lib.format.read_magic(f)
                        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                else np.lib.format.read_array_header_2_0)
                        shape_found = read(f)[0]
                    if tuple(shape_found) != shape:
                        return False
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            return False
        return True

    def done(self, n_chunks: int) -> set[int]:
        return {k for k in range(n_chunks) if self.chunk_path(k).is_file()}

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class ChunkWriter:
    """Writes chunk files in a background thread, so disk I/O never stalls the forward. An error
    in the thread is raised in the caller at the next `put` or at `close`."""

    def __init__(self, parts: Parts, depth: int = 4):
        self.parts = parts
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="featx-chunk-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is None:
                try:
                    self.parts.write_chunk(*item)
                except BaseException as e:  # handed to the main thread
                    self.error = e

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, k: int, features: Mapping[str, np.ndarray], valid: np.ndarray,
            errors: Sequence[str]) -> None:
        self._check()
        self.q.put((k, features, valid, errors))

    def close(self) -> None:
        """Wait until everything queued is on disk."""
        self.q.put(None)
        self.thread.join()
        self._check()
