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
