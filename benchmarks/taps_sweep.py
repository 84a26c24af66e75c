"""Taps conformance sweep: every timm architecture and every open_clip architecture, random
weights, the smallest input size each accepts, CPU; every featx level against an independent
reference (featx.backbones.conformance). Each model ends exact / refused / wrong / skipped, one
JSON line in --results; a rerun skips what is there (chunks, resumable).

    python benchmarks/taps_sweep.py --sample 600 --chunk 50    # continues taps_sweep.jsonl
    python benchmarks/taps_sweep.py --summary
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import time
import warnings
from collections import Counter
from pathlib import Path


def catalogue() -> list[str]:
    """Every timm architecture (timm/<name>) and open_clip architecture (clip/<arch>)."""
    import open_clip
    import timm

    return [f"timm/{n}" for n in timm.list_models()] + [f"clip/{a}" for a in
                                                          open_clip.list_models()]


def sample(names: list[str], k: int | None, seed: str) -> list[str]:
    """A deterministic order (hash of seed + name); the first k when k is given."""
    order = sorted(names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    return order[:k] if k else order


def too_large(name: str, max_params: float) -> int | None:
    """The parameter count (meta device) where it exceeds max_params (millions), else None."""
    import torch

    from featx.backbones import get_backbone

    try:
        bb = get_backbone(name)
    except Exception:  # noqa: BLE001 -- refusals are classified by the check itself
        return None
    from featx.backbones.sources import image_tower
    try:
        with torch.device("meta"):
            if bb.source == "open_clip":
                import open_clip
                model = open_clip.create_model(bb.ref[0], pretrained=None, device="meta")
            else:
                from featx.backbones.sources import source_of
                model = source_of(bb).build(bb, False, None, False)
        n = sum(p.numel() for p in image_tower(bb, model).parameters())
    except Exception:  # noqa: BLE001
        return None
    return n if n > max_params * 1e6 else None


def reason_group(reason: str) -> str:
    """A refusal's reason without the model's own names, to count them by kind."""
    r = re.sub(r"--backbone \S+: ", "", reason)
    r = re.sub(r"featx cannot tap \w+: ", "", r)
    r = re.sub(r"'[\w.]+'|\([^)]*\)|\d+", "_", r)
    return r[:110]


def run(args) -> None:
    from featx.backbones.conformance import check

    done = set()
    if args.results.exists():
        done = {json.loads(line)["name"] for line in args.results.read_text().splitlines()
                if line.strip()}
    todo = [n for n in sample(catalogue(), args.sample, args.seed)
            if n not in done and n.startswith(args.only)]
    todo = todo[: args.chunk] if args.chunk else todo
    print(f"{len(done)} done, {len(todo)} in this chunk")
    with args.results.open("a") as f:
        for i, name in enumerate(todo, 1):
            t0 = time.perf_counter()
            big = too_large(name, args.max_params)
            if big:
                row = {"name": name, "status": "skipped",
                       "reason": f"{big / 1e6:.0f} M parameters > --max-params {args.max_params}"}
            else:
                v = check(name)
                row = {"name": name, "status": v.status, "reason": v.reason, "size": v.size,
                       "checked": v.checked}
            row["seconds"] = round(time.perf_counter() - t0, 2)
            f.write(json.dumps(row) + "\n")
            f.flush()
            if not args.quiet:
                print(f"[{i}/{len(todo)}] {name}: {row['status']} {row['reason'][:100]}",
                      flush=True)


def summary(path: Path) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    status = Counter(r["status"] for r in rows)
    refused = Counter(reason_group(r["reason"]) for r in rows if r["status"] == "refused")
    skipped = Counter(reason_group(r["reason"]) for r in rows if r["status"] == "skipped")
    partial = sum(1 for r in rows if r["status"] == "exact" and r["reason"])
    return {"models": len(rows), "status": dict(status), "exact_with_unreferenced_levels": partial,
            "wrong": [r["name"] for r in rows if r["status"] == "wrong"],
            "refused_by_reason": dict(refused.most_common()),
            "skipped_by_reason": dict(skipped.most_common()),
            "seconds": round(sum(r.get("seconds", 0) for r in rows), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # the results so far live beside this script: a run continues them
    p.add_argument("--results", type=Path, default=Path(__file__).with_suffix(".jsonl"))
    p.add_argument("--sample", type=int, default=None, help="the first K of the seeded order")
    p.add_argument("--seed", default="featx-taps")
    p.add_argument("--chunk", type=int, default=50, help="models in this run (0: all left)")
    p.add_argument("--max-params", type=float, default=60.0,
                   help="skip (and count) models above this many million parameters")
    p.add_argument("--only", default="", help="names starting with this (timm/ or clip/)")
    p.add_argument("--summary", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    if args.summary:
        print(json.dumps(summary(args.results), indent=1))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore")
    run(args)


if __name__ == "__main__":
    main()
