"""Peak resident memory of `featx extract` against the number of images (it should not grow).

Runs the real command in a fresh process per size (resnet18, small images, so that even the
largest size is quick) and prints JSON: peak RSS per image count, and the growth from the
smallest to the largest run; and, within each run, the resident memory sampled over its course
(at 25/50/75/95 % of its time), to show that it plateaus rather than climbs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

_CHILD = """
import resource, sys
from featx.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
"""


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None


def run_extract(data: Path, out: Path, image_size: int) -> dict:
    """One `featx extract` process: its peak RSS, its largest loader worker's, and its RSS over
    time (MB)."""
    cmd = [sys.executable, "-c", _CHILD, "extract", str(data), "--backbone", "resnet18",
           "--weights", "none", "--image-size", str(image_size), "--batch-size", "32",
           "--out", str(out), "--quiet"]
    # stderr to a file, not a pipe nobody reads while it runs
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        samples, t0 = [], time.perf_counter()
        while proc.poll() is None:
            if (kb := _rss_kb(proc.pid)) is not None:
                samples.append((time.perf_counter() - t0, kb))
            time.sleep(0.05)
        err.seek(0)
        stderr = err.read()
    if proc.returncode:
        raise SystemExit(stderr)
    own, worker = next(map(int, line.split()[1:]) for line in stderr.splitlines()
                       if line.startswith("MAXRSS_KB"))
    end = samples[-1][0]
    over_time = {f"{q}%": round(next(kb for t, kb in samples if t >= end * q / 100) / 1024, 1)
                 for q in (25, 50, 75, 95)}
    return {"peak_rss_mb": round(own / 1024, 1), "worker_peak_rss_mb": round(worker / 1024, 1),
            "rss_mb_over_time": over_time, "seconds": round(end, 1)}


@click.command()
@click.option("--sizes", default="512,2048,8192", show_default=True,
              help="image counts to compare")
@click.option("--image-size", default=64, show_default=True)
def main(sizes: str, image_size: int) -> None:
    from featx.synthetic import generate_images

    counts = [int(s) for s in sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            data = generate_images(Path(tmp) / f"images{n}", n_per_class=max(1, n // 8),
                                   size=image_size, seed=1)
            rows.append({"images": n, **run_extract(data, Path(tmp) / f"c{n}.h5", image_size)})
    print(json.dumps({"backbone": "resnet18", "image_size": image_size, "runs": rows,
                      "growth_mb": round(rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"], 1),
                      "images_ratio": counts[-1] / counts[0]}, indent=1))


if __name__ == "__main__":
    main()
