"""Peak resident memory of `featx extract` against the number of images (it should not grow).

Runs the real command in a fresh process per size (resnet18, small images, so that even the
largest size is quick) and prints JSON: peak RSS per image count, and the growth from the
smallest to the largest run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
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


def peak_rss_mb(data: Path, out: Path, image_size: int) -> tuple[float, float]:
    """Peak RSS (MB) of one `featx extract` process and of its largest loader worker."""
    cmd = [sys.executable, "-c", _CHILD, "extract", str(data), "--backbone", "resnet18",
           "--weights", "none", "--image-size", str(image_size), "--batch-size", "32",
           "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    own, worker = next(map(int, line.split()[1:]) for line in proc.stderr.splitlines()
                       if line.startswith("MAXRSS_KB"))
    return round(own / 1024, 1), round(worker / 1024, 1)


@click.command()
@click.option("--sizes", default="256,1024,4096", show_default=True,
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
            main_mb, worker_mb = peak_rss_mb(data, Path(tmp) / f"c{n}.h5", image_size)
            rows.append({"images": n, "peak_rss_mb": main_mb, "worker_peak_rss_mb": worker_mb})
    print(json.dumps({"backbone": "resnet18", "image_size": image_size, "runs": rows,
                      "growth_mb": round(rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"], 1),
                      "images_ratio": counts[-1] / counts[0]}, indent=1))


if __name__ == "__main__":
    main()
