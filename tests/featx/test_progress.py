"""Progress: a live bar on a terminal, plain lines in a log (no carriage returns), silence with
--quiet."""

import io
import re
import subprocess
import sys

from featx.progress import Progress
from .featx_helpers import FAST, subprocess_env

LINE = re.compile(r"^extract: (\d+)/40 img \(\d+%\), [\d.e+]+ (img/s|s/img), "
                  r"(ETA|\d+:\d\d:\d\d elapsed)", re.M)


def _extract(small_set, out, quiet: bool, log):
    env = {**subprocess_env(), "FEATX_PROGRESS_SECONDS": "0"}  # a line per batch
    args = [a for a in FAST if a != "--quiet"] + (["--quiet"] if quiet else [])
    with open(log, "w") as err:
        subprocess.run([sys.executable, "-m", "featx", "extract", str(small_set), *args,
                        "--batch-size", "8", "--out", str(out)], stderr=err, check=True,
                       env=env, stdout=subprocess.DEVNULL)
    return open(log, newline="").read()


def test_log_file_gets_plain_lines(small_set, tmp_path):
    log = _extract(small_set, tmp_path / "c.h5", False, tmp_path / "log")
    assert "\r" not in log and "\x1b" not in log
    done = [int(m.group(1)) for m in LINE.finditer(log)]
    assert done and done == sorted(done) and done[-1] == 40, log
    classify_log = tmp_path / "classify.log"
    with open(classify_log, "w") as err:
        subprocess.run([sys.executable, "-m", "classify", "fit", str(tmp_path / "c.h5"),
                        "--cv", "2"], stderr=err, stdout=subprocess.DEVNULL, check=True,
                       env={**subprocess_env(), "FEATX_PROGRESS_SECONDS": "0"})
    text = open(classify_log, newline="").read()
    assert "\r" not in text and re.search(r"fits?\b.*: \d+/\d+ fit", text), text


def test_quiet_is_silent(small_set, tmp_path):
    assert _extract(small_set, tmp_path / "c.h5", True, tmp_path / "log") == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_terminal_gets_a_live_bar():
    term, log = _Terminal(), io.StringIO()
    for stream in (term, log):
        with Progress(5, "x", "img", stream=stream, interval=0) as bar:
            for _ in range(5):
                bar.update()
    assert "\r" in term.getvalue() and "\r" not in log.getvalue()
    assert log.getvalue().splitlines()[-1].startswith("x: 5/5 img (100%), ")


def test_warmup_items_do_not_count_in_the_rate(monkeypatch):
    """A start-up paid by the first item (60 s, then 1 s an item): the ETA says "estimating"
    until an item after it has finished, then counts from its end (1 img/s)."""
    import featx.progress as progress

    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    log = io.StringIO()
    bar = Progress(10, "x", "img", stream=log, interval=0, warmup=1)
    for k in range(1, 11):
        clock[0] = 60.0 + (k - 1)
        bar.update()
    lines = log.getvalue().splitlines()
    assert lines[0] == "x: 1/10 img (10%), ETA estimating"
    for k, line in enumerate(lines[1:-1], start=2):
        assert line == f"x: {k}/10 img ({10 * k}%), 1 img/s, ETA 0:00:{10 - k:02d}"
    assert lines[-1] == "x: 10/10 img (100%), 1 img/s, 0:01:09 elapsed"
    plain = io.StringIO()  # without warm-up: the start-up inflates the ETA
    clock[0] = 0.0
    bar = Progress(10, "x", "img", stream=plain, interval=0)
    clock[0] = 60.0
    bar.update()
    assert plain.getvalue().splitlines()[0].endswith("ETA 0:09:00")
    term = _Terminal()
    with Progress(10, "x", "img", stream=term, warmup=1) as live:
        for _ in range(10):
            live.update()
    assert "10/10" in term.getvalue().split("\r")[-1]
