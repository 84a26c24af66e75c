"""A larger sweep of the model-file fuzz test: N mutated model files of every kind through
`classify predict`, each in a forked child under an address-space limit (JSON summary).

python benchmarks/model_fuzz.py [--n 5000] [--seed 1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classify.synthetic import write_distribution_cache, write_synthetic_cache  # noqa: E402
from tests.classify.model_files import write_every_kind  # noqa: E402
from tests.classify.model_fuzz import evaluate, mutations  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = write_synthetic_cache(tmp / "c.h5", n=240, dims={"L3": 12, "L4": 16},
                                      invalid=2)
        ldl = write_distribution_cache(tmp / "ldl.h5", n=200, votes=20, dims={"L4": 8})
        files = write_every_kind(cache, ldl, tmp)
        data = {k: Path(v["model"]).read_bytes() for k, v in files.items()}
        cases = [(k, d, files[k.split("/")[0]]["cache"])
                 for k, d in mutations(data, args.n, args.seed)]
        t0 = time.monotonic()
        res = evaluate(cases, jobs=args.jobs)
        wall = time.monotonic() - t0
    verdicts = Counter(r["verdict"] for r in res)
    by_way = Counter((r["kind"].split("/")[1], r["verdict"]) for r in res)
    bad = [r for r in res if r["verdict"] not in ("ok", "error")]
    print(json.dumps({"mutations": len(res), "verdicts": dict(verdicts),
                      "by_way": {f"{w} {v}": n for (w, v), n in sorted(by_way.items())},
                      "wall_s": round(wall, 1), "max_case_s": max(r["s"] for r in res),
                      "bad_examples": bad[:5]}, indent=2))


if __name__ == "__main__":
    main()
