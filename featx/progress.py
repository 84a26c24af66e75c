"""Progress that suits where it goes: a live bar on a terminal (tqdm), otherwise a plain line
every few seconds (done/total, rate, ETA) that a log file, CI or SLURM keeps readable; nothing
with quiet. Shared by featx, classify and finetune; imports neither torch nor numpy."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")
INTERVAL = float(os.environ.get("FEATX_PROGRESS_SECONDS", "5"))  # between plain lines


def _live(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """`with Progress(total, "extract", "img", quiet=q) as bar: bar.update(n)`."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it",
                 quiet: bool = False, initial: int = 0, leave: bool = True,
                 stream: IO | None = None, interval: float | None = None, warmup: int = 0):
        """`warmup`: the first items pay a start-up (worker processes, imports); the rate
        and ETA count from the end of the `warmup`-th, "ETA estimating" until one more."""
        self.total, self.desc, self.unit = total, desc, unit
        self.warmup = warmup
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interval = INTERVAL if interval is None else interval
        self.n = self.start_n = self.said = initial
        self.postfix = ""
        self.t0 = self.last = time.monotonic()
        self.rate_t, self.rate_n = self.t0, initial  # where the rate is counted from
        self.bar = None
        if not quiet and _live(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave,
                            file=self.stream, dynamic_ncols=True)

    def line(self) -> str:
        """The plain progress line: `desc: done/total unit (pct), rate, ETA`."""
        now = time.monotonic()
        elapsed = now - self.t0
        estimating = self.warmup and self.n <= self.start_n + self.warmup
        rate = 0.0 if estimating or now <= self.rate_t else \
            (self.n - self.rate_n) / (now - self.rate_t)
        parts = [f"{self.n}/{self.total}" if self.total else f"{self.n}"]
        if self.total:
            parts[0] += f" {self.unit} ({100 * self.n / self.total:.0f}%)"
        else:
            parts[0] += f" {self.unit}"
        parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 or rate == 0
                     else f"{1 / rate:.3g} s/{self.unit}")
        if self.total and estimating and self.n < self.total:
            parts[-1] = "ETA estimating"
        elif self.total and rate > 0 and self.n < self.total:
            parts.append(f"ETA {_clock((self.total - self.n) / rate)}")
        else:
            parts.append(f"{_clock(elapsed)} elapsed")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.desc}: " + ", ".join(parts) if self.desc else ", ".join(parts)

    def _say(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self.last, self.said = time.monotonic(), self.n

    def update(self, n: int = 1) -> None:
        warming = self.warmup and self.n < self.start_n + self.warmup
        self.n += n
        if warming and self.n >= self.start_n + self.warmup:  # the start-up is paid
            self.rate_t, self.rate_n = time.monotonic(), self.n
            if self.bar is not None:  # tqdm's rate restarts here too (its EMA, its clock)
                self.bar.reset(self.total)
                self.bar.initial = self.bar.n = self.bar.last_print_n = self.n
                self.bar.refresh()
                return
        if self.bar is not None:
            self.bar.update(n)
        elif not self.quiet and time.monotonic() - self.last >= self.interval:
            self._say()

    def set_postfix(self, **values: object) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        if self.bar is not None:
            self.bar.set_postfix(values)

    def write(self, msg: str) -> None:
        """A message that does not tear a live bar."""
        if self.bar is not None:
            self.bar.write(msg, file=self.stream)
        else:
            print(msg, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif (not self.quiet and self.said != self.n
              and time.monotonic() - self.t0 >= min(1.0, self.interval)):
            self._say()  # the last word of a run that lasted: how long, how fast
        self.quiet = True

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
          quiet: bool = False, leave: bool = True, warmup: int = 0) -> Iterator[T]:
    """Iterate `items`, counting each in a Progress."""
    with Progress(total, desc, unit, quiet=quiet, leave=leave, warmup=warmup) as bar:
        for item in items:
            yield item
            bar.update(1)


def write(msg: str, stream: IO | None = None) -> None:
    """A message line while bars may be live (tqdm keeps its bars below such lines)."""
    stream = stream or sys.stderr
    if _live(stream):
        from tqdm import tqdm

        tqdm.write(msg, file=stream)
    else:
        print(msg, file=stream, flush=True)
