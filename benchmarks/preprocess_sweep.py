"""Preprocessing conformance sweep: for every timm pretrained config, every open_clip pretrained
tag and featx's torchvision backbones, featx's model input (`featx preview`'s tensor) against
the library's own eval transform on skimage's sample photos (JPEG and PNG, square and not),
configs only (no weights). Counts exact (max difference <= 1/255 before normalisation),
different (must be 0) and refused (with the reasons); the differing ones are listed.

python benchmarks/preprocess_sweep.py [--source timm|open_clip|torchvision ...]
    [--start I] [--stop J] [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featx.pixels.conformance import SOURCES, check, photos  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", nargs="+", choices=list(SOURCES), default=list(SOURCES))
    ap.add_argument("--start", type=int, default=0, help="first config of each source (chunks)")
    ap.add_argument("--stop", type=int, default=None, help="config after the last")
    ap.add_argument("--json", type=Path, default=None, help="write every result here")
    args = ap.parse_args()
    rows, different = [], []
    with tempfile.TemporaryDirectory() as tmp:
        paths = photos(Path(tmp))
        for source in args.source:
            t0 = time.perf_counter()
            cases = itertools.islice(SOURCES[source](), args.start, args.stop)
            results = list(check(cases, paths))
            seconds = time.perf_counter() - t0
            counts = Counter(r.status for r in results)
            diffs = [r.max_diff for r in results if r.max_diff is not None]
            reasons = Counter(r.detail.split("(", 1)[-1].split(",")[0].rstrip(")")
                              for r in results if r.status == "refused")
            print(f"{source}: {len(results)} configs, exact {counts['exact']}, different "
                  f"{counts['different']}, refused {counts['refused']} "
                  f"{dict(reasons) if reasons else ''}; largest difference "
                  f"{max(diffs, default=0):.2g} (x255 = {255 * max(diffs, default=0):.2g} grey "
                  f"levels); {seconds:.0f} s", flush=True)
            different += [r for r in results if r.status == "different"]
            rows += [r.__dict__ for r in results]
    for r in different:
        print(f"  DIFFERENT {r.source} {r.name}: {r.max_diff:.4g} ({r.detail})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
