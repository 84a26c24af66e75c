"""`featx info`: a cache's settings, levels, counts per class and split, failures, duplicates."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from featx.cache import Cache


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))) for r in rows]


def describe_scan(skipped: Sequence[tuple[str, str]], links_out: int, links_in: int,
                  limit: int = 3) -> list[str]:
    """Lines about the entries of DATA that are not used (counts per reason, examples; paths as
    shown, featx.pathnames) and its folder links."""
    lines = []
    if links_out:
        lines.append(f"{links_out} folder links lead outside DATA (followed; each folder "
                     f"walked once)")
    if links_in:
        lines.append(f"{links_in} folder links lead back into DATA or to a folder holding it "
                     f"(not followed: no image is read twice)")
    by_reason: dict[str, list[str]] = {}
    for p, r in skipped:
        by_reason.setdefault(r, []).append(p)
    if skipped:
        lines.append(f"{len(skipped)} entries under DATA not used (recorded in /skipped):")
    for r, ps in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"  {len(ps)} {r}: e.g. {', '.join(ps[:limit])}")
    return lines


def _strings(ds) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else v for v in ds[:]]


def summary(path: str | os.PathLike, max_failures: int = 5) -> str:
    """The text `featx info` prints (the cache may be incomplete)."""
    with Cache(path, require_complete=False) as c:
        a = c.attrs
        labels, split, valid, n = c.labels, c.split, c.valid, len(c)
        errors = c.errors if not valid.all() else []
        paths = c.paths if errors else []
        lines = [
            f"cache        {c.path}",
            f"complete     {'yes' if a.get('complete') else 'NO (extraction did not finish)'}",
            f"backbone     {a['backbone']}",
            f"weights      {a['weights']}"
            + (f"  (from {a['weights_source']})" if "weights_source" in a else ""),
            f"image size   {a['image_size']} px",
            f"pool         {a['pool']}",
            f"dtype        {a['dtype']}",
            "levels       " + ", ".join(f"{lv} {d}" for lv, d in c.dims.items())
            + f"  (total {sum(c.dims.values())})",
            f"split        {a['split_spec']} (seed {a['seed']})",
            f"fingerprint  {c.fingerprint}",
        ]
        if "preprocessing" in a:
            lines.insert(7, f"preprocess   {a['preprocessing']}")
        lines.append(f"images       {n} ({int(valid.sum())} usable)")
        header = ["class"] + c.split_names + ["total"]
        rows = [header]
        for ci, name in enumerate(c.classes):
            counts = [int(((labels == ci) & (split == si)).sum())
                      for si in range(len(c.split_names))]
            rows.append([name] + [str(x) for x in counts] + [str(sum(counts))])
        totals = [int((split == si).sum()) for si in range(len(c.split_names))]
        rows.append(["all"] + [str(x) for x in totals] + [str(n)])
        lines += _table(rows)
        bad = np.flatnonzero(~valid)
        lines.append(f"failures     {len(bad)}")
        lines += [f"  {paths[i]}: {errors[i]}" for i in bad[:max_failures]]
        if len(bad) > max_failures:
            lines.append(f"  ... and {len(bad) - max_failures} more")
        groups = json.loads(a["duplicate_groups"]) if "duplicate_groups" in a else None
        dups = len(groups) if groups is not None else a.get("duplicates")
        if dups is not None:
            lines.append(f"duplicates   {dups} groups of identical files"
                         + (f", e.g. {', '.join(groups[0][:3])}" if groups else ""))
        if "skipped" in c.f:
            skipped = list(zip(_strings(c.f["skipped/path"]), _strings(c.f["skipped/reason"])))
        else:
            skipped = []
        lines += describe_scan(skipped, int(a.get("links_out", 0)), int(a.get("links_in", 0)))
    return "\n".join(lines)
