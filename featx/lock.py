"""One writer per output: `<out>.lock`, held with a POSIX record lock (fcntl) for the run.

The kernel drops a process's record lock when it dies, so a lock left by a killed run is free
and is taken over; the file only tells who holds (or held) it: pid, host, start time. Record
locks, unlike flock, are not inherited by forked children (data-loader workers outliving a
killed run for a moment would hold an flock), and they work on NFS. All ranks of one torchrun
job are one writer: rank 0 holds the lock for them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from featx.errors import FeatxError
from featx.pathnames import show

_NO_LOCKING = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """`with OutputLock(out):` -- refuses (FeatxError naming pid and host) while another
    process holds `out`; `taken_over` describes a dead holder whose lock this one took."""

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        self.path = Path(f"{out}.lock")
        self.fd: int | None = None
        self.taken_over: str | None = None

    def _holder(self, fd: int) -> dict:
        try:
            return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict) -> FeatxError:
        who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
               f"{holder.get('started', '?')}" if holder else "details not written yet")
        return FeatxError(f"{show(self.out)} is being written by another run ({who}; lock "
                          f"{show(self.path)}): wait for it to finish or stop it, or choose "
                          f"another --out")

    def acquire(self) -> "OutputLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            reason = ("a parent is not a folder" if e.errno in (errno.EEXIST, errno.ENOTDIR)
                      else e.strerror or str(e))
            raise FeatxError(f"{show(self.out)}: cannot create its folder ({reason})") from None
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as e:
                raise FeatxError(f"{show(self.out)}: cannot write here (lock file: "
                                 f"{e.strerror or e})") from None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EAGAIN):
                    holder = self._holder(fd)
                    os.close(fd)
                    raise self._refuse(holder) from None
                if e.errno not in _NO_LOCKING:
                    os.close(fd)
                    raise
                # a file system without locks: fall back on whether the recorded pid lives
                holder = self._holder(fd)
                if (holder.get("host") == socket.gethostname()
                        and isinstance(holder.get("pid"), int) and _alive(holder["pid"])
                        and holder["pid"] != os.getpid()):
                    os.close(fd)
                    raise self._refuse(holder) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # its holder removed the file between our open and our lock
                os.close(fd)
                continue
            old = self._holder(fd)
            if old.get("pid") is not None:
                self.taken_over = (f"took over {show(self.path)}, left by pid {old['pid']} on "
                                   f"{old.get('host', '?')} (no longer running)")
            me = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            self.fd = fd
            return self
        raise FeatxError(f"{show(self.path)}: could not take the lock (it keeps being "
                         f"replaced)")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)  # before unlocking: no one can lock a file we then remove
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
