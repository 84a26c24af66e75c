"""`featx info`: a cache's settings, levels, counts per class and split, failures, duplicates."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from featx.cache import Cache
from featx.pathnames import printable


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
        lines.append(f"  {len(ps)} {r}: e.g. {', '.join(map(printable, ps[:limit]))}")
    return lines


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
        if "feature_fingerprint" in a:  # what `classify --eval` and `predict` compare
            lines.append(f"features     {a['feature_fingerprint']} (feature_fingerprint: "
                         f"backbone, weights, levels, pool, preprocessing; not the files)")
        if "preprocess" in a:  # the model's recipe as featx applies it, and the decoding
            lines.insert(7, f"preprocess   {a['preprocess']}")
            lines.insert(8, f"decoding     {a.get('decoding', a['preprocessing'].split(';')[0])}")
        elif "resize_size" in a:  # the model's own preprocessing (featx >= the backbones issue)
            mean, std = json.loads(a["mean"]), json.loads(a["std"])
            lines.insert(7, f"preprocess   resize shorter side to {a['resize_size']} "
                            f"({a['interpolation']}), centre crop {a['input_size']} (crop_pct "
                            f"{float(a['crop_pct']):g}), mean {', '.join(f'{m:.4g}' for m in mean)}"
                            f", std {', '.join(f'{s:.4g}' for s in std)}")
            lines.insert(8, f"decoding     {a['preprocessing'].split(';')[0]}")
        elif "preprocessing" in a:
            lines.insert(7, f"preprocess   {a['preprocessing']}")
        tokens = json.loads(a["token_levels"]) if "token_levels" in a else []
        if tokens:
            lines.insert(8, f"token levels {', '.join(tokens)} (pooled by {a['pool']})")
        if "backbone_source" in a:
            lines[2] += f"  ({a['backbone_source']}, {a['backbone_family']})"
        if "dataset_format" in a:
            lines.insert(1, f"dataset      {a['dataset_format']}"
                         + (f", task {a['task']}" if a.get("task", "emotion") != "emotion"
                            else ""))
        if "data_source" in a:  # images read from inside shards or tables
            kind, _, about = str(a["data_source"]).partition(" ")
            lines.insert(2, f"source       {kind} " + ", ".join(
                f"{k} {v}" for k, v in json.loads(about).items() if v is not None))
        if "zeroshot" in c.f:
            t, _, scale = c.zeroshot()
            lines.append(f"zero-shot    {len(t)} prompt templates (e.g. {t[0]!r}), "
                         f"logit scale {scale:.4g}")
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
        lines += [f"  {printable(paths[i])}: {printable(errors[i])}" for i in bad[:max_failures]]
        if len(bad) > max_failures:
            lines.append(f"  ... and {len(bad) - max_failures} more")
        lines += _dataset_lines(c, a, labels)
        groups = json.loads(a["duplicate_groups"]) if "duplicate_groups" in a else None
        dups = len(groups) if groups is not None else a.get("duplicates")
        if dups is not None:
            lines.append(f"duplicates   {dups} groups of identical files"
                         + (f", e.g. {', '.join(groups[0][:3])}" if groups else ""))
        lines += describe_scan(c.skipped, int(a.get("links_out", 0)), int(a.get("links_in", 0)))
    return "\n".join(lines)


def _dataset_lines(c: Cache, a: dict, labels: np.ndarray) -> list[str]:
    """Folds, label distributions, extra columns, images left out, label conflicts."""
    from featx.dataset import describe_conflicts

    lines = []
    fold = c.fold
    if fold is not None:
        counts = np.bincount(fold, minlength=int(fold.max()) + 1)
        lines.append("folds        " + ", ".join(f"{i}: {n}" for i, n in enumerate(counts)))
    if "label_dist" in c.f:
        lines.append(f"label dist   /label_dist {tuple(c.f['label_dist'].shape)}")
    if c.extra_names:
        lines.append(f"extra        {', '.join(c.extra_names)}")
    for why, n in json.loads(a.get("dropped", "{}") or "{}").items():
        lines.append(f"left out     {n} images: {why}")
    conflicts = json.loads(a["label_conflicts"]) if "label_conflicts" in a else []
    n = int(a.get("n_label_conflicts", len(conflicts)))
    if n:
        text = describe_conflicts(conflicts, str(a.get("conflict_policy", "keep")))
        text[0] = text[0].replace(f"{len(conflicts)} label conflicts", f"{n} label conflicts", 1)
        lines.append("conflicts    " + text[0])
        lines += text[1:]
    elif "conflict_policy" in a:
        lines.append("conflicts    none (identical files all carry one label)")
    return lines
