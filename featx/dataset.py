"""Image collections: a dataset (read by featx.datasets) -> sorted paths, labels, a split,
label conflicts resolved."""

from __future__ import annotations

import errno
import hashlib
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featx.datasets.base import ReadOptions
from featx.errors import FeatxError
from featx.pathnames import to_stored
from featx.splits import (SPLIT_NAMES, check_spec, fold_view, is_kfold, kfold_assign, parse_kfold,
                          stratified_split)

DEFAULT_SPLIT = "80/5/15"
CONFLICT_POLICIES = ("keep", "drop", "majority")

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)


@dataclass
class FolderScan:
    """What walking a class-folder tree found: the images, and every other entry with the
    reason it is not used."""

    items: list[tuple[str, str]] = field(default_factory=list)  # (relative path, class)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    links_out: int = 0  # folder links leading outside DATA (followed, each folder once)
    links_in: int = 0  # folder links back into DATA (not followed: walked where they lie)


@dataclass
class Collection:
    """An image collection in canonical order (sorted relative paths) with its split."""

    root: Path
    paths: list[str]
    labels: np.ndarray  # int16, index into classes
    classes: list[str]
    split: np.ndarray  # uint8, index into SPLIT_NAMES
    split_spec: str
    seed: int
    duplicates: list[list[str]] = field(default_factory=list)
    fold: np.ndarray | None = None  # int8 fold per image under kfold:K
    label_dist: np.ndarray | None = None  # [N, C] float32
    extras: dict[str, list] = field(default_factory=dict)
    dataset_format: str = "folder"
    conflicts: list[dict] = field(default_factory=list)  # {"paths": [...], "labels": [...]}
    conflict_policy: str = "keep"
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> images left out
    notes: list[str] = field(default_factory=list)
    scan: FolderScan | None = None  # a folder's entries that are not used, and its links
    # under a --task that maps the classes: the labels the split was stratified on, and the map
    source_labels: np.ndarray | None = None
    source_classes: list[str] | None = None
    task_map: dict[str, str] | None = None
    members: list | None = None  # images inside other files (featx.datasets.members), per path
    source: str = ""  # where the images come from, when not files under root (featx info)

    def __len__(self) -> int:
        return len(self.paths)

    def abspath(self, i: int) -> Path:
        return self.root / self.paths[i]

    def image(self, i: int):
        """What the decoder reads for image i: its file, or its member inside a shard/table."""
        return self.members[i] if self.members is not None else self.root / self.paths[i]

    def indices(self, split_name: str) -> np.ndarray:
        return np.flatnonzero(self.split == SPLIT_NAMES.index(split_name))


def is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


_LINK_IN = "link back into DATA (its folder is used where it lies)"
_LINK_UP = "link to a folder that holds DATA (a loop)"
_WALKED = "folder already walked (a second link to it, or a link cycle)"


def walk_folder(root: Path, class_folders: bool = True) -> FolderScan:
    """Every entry under root/<class>/... (or anywhere under root, class "", without
    `class_folders`): each real folder is walked once, by (device, inode), so links can neither
    loop nor repeat rows; folder links back into root or to a folder holding it are not
    followed."""
    scan = FolderScan()
    real_root = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()

    def within(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    def is_dir(entry: os.DirEntry) -> bool:
        try:
            return entry.is_dir()
        except OSError:  # e.g. a link to itself: not a folder, a file that fails to decode
            return False

    def walk(path: str, rel: str, label: str | None) -> None:
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) in seen:
                scan.skipped.append((rel, _WALKED))
                return
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as e:
            scan.skipped.append((rel or ".", f"unreadable folder ({e.strerror or e})"))
            return
        for entry in entries:
            r = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.name.startswith("."):
                    scan.skipped.append((r, "hidden"))
                elif is_dir(entry):
                    if entry.is_symlink():
                        target = os.path.realpath(entry.path)
                        if within(target, real_root) or within(real_root, target):
                            scan.links_in += 1
                            scan.skipped.append((r, _LINK_IN if within(target, real_root)
                                                 else _LINK_UP))
                            continue
                        scan.links_out += 1
                    walk(entry.path, r,
                         to_stored(entry.name.lower()) if label is None else label)
                elif label is None:
                    scan.skipped.append((r, "not in a class folder"))
                elif entry.is_symlink() and _link_loop(entry.path):
                    scan.skipped.append((r, "link loop"))
                elif is_image(entry.name):  # a row even if unreadable: the decoder says why
                    scan.items.append((r, label))
                elif entry.is_file():
                    ext = os.path.splitext(entry.name)[1]
                    scan.skipped.append((r, f"not an image by its extension ({ext or 'none'})"))
                elif entry.is_symlink():
                    scan.skipped.append((r, "broken link"))
                else:
                    scan.skipped.append((r, "not a regular file"))
            except OSError as e:
                scan.skipped.append((r, f"unreadable ({e.strerror or e})"))

    walk(os.fspath(root), "", None if class_folders else "")
    scan.items.sort()
    return scan


def _link_loop(path: str) -> bool:
    """Whether the link at `path` never reaches a file (ELOOP: it leads back to itself)."""
    try:
        os.stat(path)
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def member_digest(member) -> str:
    return hashlib.blake2b(member.data(), digest_size=16).hexdigest()


def duplicate_groups(root: Path, paths: list[str], sources: list | None = None) -> np.ndarray:
    """Group id per path; identical files (same bytes) share one. Only equal-size files are hashed.
    With `sources` (images inside shards or tables), their bytes are compared instead."""
    by_size: dict[int, list[int]] = defaultdict(list)
    base = str(root)  # os.path.join, not Path: a third of the time on EmoSet's 118k paths
    for i, p in enumerate(paths):
        try:
            by_size[sources[i].size if sources is not None
                    else os.stat(os.path.join(base, p)).st_size].append(i)
        except OSError:
            pass  # unreadable or missing: its own group, reported by the decoder
    groups = np.arange(len(paths), dtype=np.int64)
    for size, members in by_size.items():
        if len(members) < 2 or size <= 0:
            continue  # zero-byte files are all "identical" but are simply broken, not duplicates
        by_hash: dict[str, list[int]] = defaultdict(list)
        for i in members:
            try:
                by_hash[member_digest(sources[i]) if sources is not None
                        else file_digest(root / paths[i])].append(i)
            except (OSError, ValueError):
                pass
        for same in by_hash.values():
            groups[same] = same[0]
    return groups


def load_collection(data: str | os.PathLike, split: str | None = None, seed: int = 0,
                    format: str | None = None, conflicts: str = "keep",
                    options: ReadOptions | None = None) -> Collection:
    """Read DATA with the reader of `format` (default: detected), apply the label-conflict
    policy, and split: the dataset's official split where it has one (unless kfold), a
    ratio split, `kfold:K` (a fold per image, /split all train) or `kfold:K:F` (fold F as test,
    the next as val)."""
    from featx.datasets import read_dataset

    from featx.datasets.wds import is_pattern

    data = Path(data)
    if not data.exists() and not is_pattern(data):
        raise FeatxError(f"{data}: no such file or folder")
    if conflicts not in CONFLICT_POLICIES:
        raise FeatxError(f"--conflicts {conflicts!r}: use {', '.join(CONFLICT_POLICIES)}")
    fmt, it = read_dataset(data, format, options)
    if not it.paths:
        raise FeatxError(f"{data}: no images found (expected DATA/<class>/.../<image> or a CSV "
                         f"with path,label)" + (f"; read as --format {fmt}" if format else ""))
    order = sorted(range(len(it.paths)), key=lambda i: (it.paths[i], it.labels[i]))
    paths = [it.paths[i] for i in order]
    if len(set(paths)) != len(paths):
        raise FeatxError(f"{data}: a path is listed twice")
    names = [it.labels[i] for i in order]
    root = it.root
    members = [it.members[i] for i in order] if it.members is not None else None
    groups = duplicate_groups(root, paths, members)
    found, keep, names = resolve_conflicts(paths, names, groups, conflicts)
    sel = np.flatnonzero(keep)
    paths, names, groups = [paths[i] for i in sel], [names[i] for i in sel], groups[sel]
    if members is not None:
        members = [members[i] for i in sel]
    classes = sorted(set(it.classes) if it.classes else set(names))
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise FeatxError(f"{data}: label {unknown[0]!r} is not one of the dataset's classes")
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[c] for c in names], dtype=np.int16)
    rows = np.asarray(order, dtype=np.int64)[sel]
    dist = None
    if it.dist is not None:
        src = it.classes or classes
        dist = np.zeros((len(rows), len(classes)), dtype=np.float32)
        dist[:, [index[c] for c in src]] = np.asarray(it.dist, dtype=np.float32)[rows]
    extras = {k: [v[i] for i in rows] for k, v in it.extras.items()}
    official = [it.split[i] for i in rows] if it.split is not None else None
    split_arr, fold, spec = assign_split(labels, groups, split, seed, official,
                                         "csv" if fmt == "csv" else "official")
    dups: dict[int, list[str]] = defaultdict(list)
    for i, g in enumerate(groups):
        dups[int(g)].append(to_stored(paths[i]))
    dup_list = [members for members in dups.values() if len(members) > 1]
    return Collection(root=root, paths=paths, labels=labels, classes=classes, split=split_arr,
                      split_spec=spec, seed=seed, duplicates=dup_list, fold=fold,
                      label_dist=dist, extras=extras, dataset_format=fmt, conflicts=found,
                      conflict_policy=conflicts, dropped=dict(it.dropped), notes=list(it.notes),
                      scan=it.scan, members=members, source=it.source)


def assign_split(labels: np.ndarray, groups: np.ndarray, spec: str | None, seed: int,
                 official: list[str] | None, official_name: str = "official",
                 ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(split per image, fold per image or None, the split_spec to record)."""
    if spec is not None:
        check_spec(spec)
    if is_kfold(spec):
        k, test_fold = parse_kfold(spec)
        fold = kfold_assign(labels, groups, k, seed)
        if test_fold is None:
            return np.zeros(len(labels), dtype=np.uint8), fold, f"kfold:{k}"
        return fold_view(fold, k, test_fold), fold, spec
    # as before kfold existed: a dataset's own split (a CSV's split column, EmoSet's lists)
    # wins over ratios; `classify --split` re-splits a cache's images when another is wanted
    if official is not None:
        return (np.array([SPLIT_NAMES.index(s) for s in official], dtype=np.uint8), None,
                official_name)
    if spec == "official":
        raise FeatxError("--split official: this dataset has no official split")
    spec = spec or DEFAULT_SPLIT
    return stratified_split(labels, groups, spec, seed), None, spec


def resolve_conflicts(paths: list[str], names: list[str], groups: np.ndarray, policy: str
                      ) -> tuple[list[dict], np.ndarray, list[str]]:
    """Identical files (one group) with different labels: the conflicts found, which images to
    keep and their labels after `policy` (keep: as they are; drop: every copy; majority: each
    copy gets the group's most common label, a tie drops the group)."""
    ids, counts = np.unique(groups, return_counts=True)
    shared = np.isin(groups, ids[counts > 1])  # only identical files can conflict
    by_group: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(shared).tolist():
        by_group[int(groups[i])].append(i)
    keep = np.ones(len(paths), dtype=bool)
    names = list(names)
    found = []
    for members in by_group.values():
        labs = [names[i] for i in members]
        if len(set(labs)) < 2:  # one label: no conflict
            continue
        counts = Counter(labs).most_common()
        found.append({"paths": [paths[i] for i in members], "labels": labs})
        if policy == "drop" or (policy == "majority" and counts[0][1] == counts[1][1]):
            keep[members] = False
        elif policy == "majority":
            for i in members:
                names[i] = counts[0][0]
    return found, keep, names


def describe_conflicts(conflicts: list[dict], policy: str, limit: int = 3) -> list[str]:
    """Lines for a report: how many, what was done, a few examples."""
    if not conflicts:
        return []
    n_files = sum(len(c["paths"]) for c in conflicts)
    done = {"keep": "kept with their labels", "drop": "dropped",
            "majority": "relabelled to the majority (ties dropped)"}[policy]
    lines = [f"{len(conflicts)} label conflicts (identical files with different labels, "
             f"{n_files} files): {done} (--conflicts {policy})"]
    for c in conflicts[:limit]:
        lines.append("  " + ", ".join(f"{p} [{lab}]" for p, lab in zip(c["paths"][:4],
                                                                        c["labels"][:4])))
    if len(conflicts) > limit:
        lines.append(f"  ... and {len(conflicts) - limit} more")
    return lines
