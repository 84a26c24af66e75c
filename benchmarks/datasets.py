"""Benchmark: dataset metadata reading and the k-fold protocol. Prints JSON.

    python benchmarks/datasets.py emoset [--n 118102]
        EmoSet-118K-sized metadata (train/val/test.json + one annotation JSON per image,
        generated; image files are not written: the reader never opens them), read by
        `featx.datasets` (the emoset reader) and by `load_collection` (reader + sorting +
        duplicate check), against a plain sequential loop over the same files.
    python benchmarks/datasets.py ablate [--n 1980] [--k 5] [--jobs 2]
        `classify ablate CACHE --grid default --split kfold:K` on an Emotion6-sized synthetic
        cache (1,980 images, six classes, resnet101's five levels 64..2048, float16), every row
        computed, next to the same grid on one 80/5/15 split; wall and CPU seconds (the machine
        may be shared: CPU seconds / cores is what an idle machine would take).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

MIKELS = ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness"]


def make_emoset(root: Path, n: int) -> None:
    splits = {"train": int(n * 0.8), "val": int(n * 0.05)}
    splits["test"] = n - splits["train"] - splits["val"]
    k = 0
    for emotion in MIKELS:
        (root / "annotation" / emotion).mkdir(parents=True, exist_ok=True)
    for split, m in splits.items():
        entries = []
        for _ in range(m):
            emotion = MIKELS[k % 8]
            stem = f"{emotion}_{k:06d}"
            ann = f"annotation/{emotion}/{stem}.json"
            (root / ann).write_text(json.dumps({
                "image_id": stem, "emotion": emotion, "brightness": round(0.1 * (k % 11), 1),
                "colorfulness": round(0.1 * (k % 7), 1), "scene": f"scene_{k % 254}",
                "object": [f"object_{k % 409}", f"object_{(k * 7) % 409}"],
                "facial_expression": ["happy", "sad", "neutral"][k % 3],
                "human_action": f"action_{k % 264}"}))
            entries.append([emotion, stem, f"image/{emotion}/{stem}.jpg", ann])
            k += 1
        (root / f"{split}.json").write_text(json.dumps(entries))


def plain_loop(root: Path) -> int:
    """What a training script does: json.load every split file and every annotation file."""
    n = 0
    for split in ("train", "val", "test"):
        with open(root / f"{split}.json") as f:
            for emotion, _id, _img, ann in json.load(f):
                with open(root / ann) as g:
                    json.load(g)
                n += 1
    return n


def bench_emoset(args) -> dict:
    from featx.dataset import load_collection
    from featx.datasets import read_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "EmoSet-118K"
        t0 = time.perf_counter()
        make_emoset(root, args.n)
        gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_plain = plain_loop(root)
        plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        fmt, items = read_dataset(root, None)
        reader = time.perf_counter() - t0
        t0 = time.perf_counter()
        coll = load_collection(root)
        full = time.perf_counter() - t0
        assert fmt == "emoset" and len(items.paths) == n_plain == len(coll) == args.n
    return {"benchmark": "emoset metadata", "entries": args.n, "generate_s": round(gen, 2),
            "plain_loop_s": round(plain, 2), "reader_s": round(reader, 2),
            "load_collection_s": round(full, 2), "reader_vs_plain": round(plain / reader, 2),
            "extras": sorted(coll.extras), "cpus": os.cpu_count(),
            "loadavg_1min": os.getloadavg()[0]}


def tree_cpu_seconds(root: int) -> float:
    """user+sys CPU seconds of process `root` and all its descendants (living ones from
    /proc/<pid>/stat, finished ones through their parents' cutime/cstime)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after the command name: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
            stats[int(d)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in stats.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    return sum(stats[p][1] for p in members if p in stats) / tick


def _grid(cache: str, out: str, jobs: int, split: str | None) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of this process tree, rows)."""
    from classify.ablate import run_grid
    from classify.rows import rows_document

    cpu0, t0 = tree_cpu_seconds(os.getpid()), time.perf_counter()
    run = run_grid([cache], "default", out, jobs=jobs, quiet=True, split=split)
    wall = time.perf_counter() - t0
    return wall, tree_cpu_seconds(os.getpid()) - cpu0, rows_document(run.results)


def bench_ablate(args) -> dict:
    from classify.synthetic import RESNET101_DIMS, write_synthetic_cache

    classes = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    with tempfile.TemporaryDirectory() as tmp:
        cache = write_synthetic_cache(Path(tmp) / "emotion6-size.h5", n=args.n,
                                      dims=RESNET101_DIMS, classes=classes, split_spec="80/5/15",
                                      strong=0.6, faint=0.25)
        load0 = os.getloadavg()[0]
        kfold_s, kfold_cpu, doc = _grid(cache, str(Path(tmp) / "k"), args.jobs,
                                        f"kfold:{args.k}")
        single_s, single_cpu, _ = _grid(cache, str(Path(tmp) / "s"), args.jobs, None)
        rows = [r for r in doc["rows"] if r["fold"] == "all"]
    return {"benchmark": f"classify ablate --grid default --split kfold:{args.k}",
            "images": args.n, "dims": RESNET101_DIMS, "jobs": args.jobs,
            "grid_rows": len(rows), "kfold_s": round(kfold_s, 1),
            "single_split_s": round(single_s, 1), "kfold_vs_single": round(kfold_s / single_s, 2),
            # CPU seconds used: on an idle machine the wall time is about cpu / min(jobs, cores)
            "kfold_cpu_s": round(kfold_cpu, 1), "single_split_cpu_s": round(single_cpu, 1),
            "rows": {r["name"]: {"acc": round(r["kfold"]["test"]["mean"]["accuracy"], 4),
                                 "acc_std": round(r["kfold"]["test"]["std"]["accuracy"], 4),
                                 "mrec": round(r["kfold"]["test"]["mean"]["macro_recall"], 4),
                                 "mrec_p": r.get("macro_recall_p")} for r in rows},
            "cpus": os.cpu_count(), "loadavg_1min_before": load0,
            "loadavg_1min_after": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    e = sub.add_parser("emoset")
    e.add_argument("--n", type=int, default=118_102)
    a = sub.add_parser("ablate")
    a.add_argument("--n", type=int, default=1980)
    a.add_argument("--k", type=int, default=5)
    a.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    out = bench_emoset(args) if args.what == "emoset" else bench_ablate(args)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
