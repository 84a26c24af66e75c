"""Atomic file writes: a temporary file in the target's folder, then os.replace."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from featx.errors import FeatxError


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for a moment, for every thread)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_normal_mode(path: str | os.PathLike) -> None:
    """The permissions open() would have given a new file (0666 less the umask): mkstemp's
    files are owner-only, which the file would otherwise keep after os.replace."""
    os.chmod(path, 0o666 & ~_umask())


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)`, then move tmp_path onto `path`; a failure leaves `path` untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        give_normal_mode(tmp)
    except OSError as e:
        raise FeatxError(f"{path}: cannot write here ({e.strerror or e})") from None
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise FeatxError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_writable(path: str | os.PathLike, flag: str, folder: bool = False) -> None:
    """Fail before hours of work, not after: can the file (or `folder`) `path` be written?"""
    path = Path(path)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if folder and path.exists() and not path.is_dir():
        raise FeatxError(f"{flag} {path}: is a file, give a folder")
    if path.is_dir() and not folder:
        raise FeatxError(f"{flag} {path}: is a folder, give a file name")
    if not ancestor.is_dir():
        raise FeatxError(f"{flag} {path}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK):
        raise FeatxError(f"{flag} {path}: {ancestor} is not writable")


def write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return write_atomic(path, write)


def write_json(path: str | os.PathLike, obj: object) -> Path:
    return write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
