"""Image collections: a class-folder tree or a CSV manifest -> sorted paths, labels and a split."""

from __future__ import annotations

import csv
import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featx.errors import FeatxError
from featx.pathnames import to_stored
from featx.splits import SPLIT_NAMES, stratified_split

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
    scan: FolderScan | None = None  # a folder's entries that are not used, and its links

    def __len__(self) -> int:
        return len(self.paths)

    def abspath(self, i: int) -> Path:
        return self.root / self.paths[i]

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


def scan_folder(root: Path) -> list[tuple[str, str]]:
    """(relative posix path, class) for every image under root/<class>/..., sorted by path."""
    return walk_folder(root).items


def read_manifest(csv_path: Path) -> tuple[list[tuple[str, str]], list[str] | None]:
    """Rows (path, label) of a CSV with header path,label[,split], and its split column if any."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        try:
            reader = csv.DictReader(f)
            fields = [c.strip().lower() for c in (reader.fieldnames or [])]
            if "path" not in fields or "label" not in fields:
                raise FeatxError(f"{csv_path}: the CSV needs a header with columns "
                                 f"path,label[,split]")
            rows = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k}
                    for r in reader]
        except UnicodeDecodeError as e:
            raise FeatxError(f"{to_stored(str(csv_path))}: not UTF-8 text (byte {e.start}); "
                             f"save the CSV as UTF-8") from None
    has_split = "split" in fields
    items, splits = [], []
    for lineno, r in enumerate(rows, start=2):
        if not r["path"] or not r["label"]:
            raise FeatxError(f"{csv_path}:{lineno}: empty path or label")
        items.append((Path(r["path"]).as_posix(), r["label"].lower()))
        if has_split:
            s = r["split"].lower()
            if s not in SPLIT_NAMES:
                raise FeatxError(f"{csv_path}:{lineno}: split {r['split']!r} is not one of "
                                 f"{'/'.join(SPLIT_NAMES)}")
            splits.append(s)
    order = sorted(range(len(items)), key=lambda i: items[i])
    items = [items[i] for i in order]
    return items, ([splits[i] for i in order] if has_split else None)


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def duplicate_groups(root: Path, paths: list[str]) -> np.ndarray:
    """Group id per path; identical files (same bytes) share one. Only equal-size files are hashed."""
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        try:
            by_size[os.stat(root / p).st_size].append(i)
        except OSError:
            pass  # unreadable or missing: its own group, reported by the decoder
    groups = np.arange(len(paths), dtype=np.int64)
    for size, members in by_size.items():
        if len(members) < 2 or size == 0:
            continue  # zero-byte files are all "identical" but are simply broken, not duplicates
        by_hash: dict[str, list[int]] = defaultdict(list)
        for i in members:
            try:
                by_hash[file_digest(root / paths[i])].append(i)
            except OSError:
                pass
        for same in by_hash.values():
            groups[same] = same[0]
    return groups


def load_collection(data: str | os.PathLike, split: str = "80/5/15", seed: int = 0) -> Collection:
    """Find the images of DATA (a class-folder tree or a CSV manifest) and split them."""
    data = Path(data)
    if not data.exists():
        raise FeatxError(f"{data}: no such file or folder")
    csv_splits, scan = None, None
    if data.is_dir():
        root = data
        scan = walk_folder(root)
        items = scan.items
    else:
        root = data.parent
        items, csv_splits = read_manifest(data)
    if not items:
        raise FeatxError(f"{data}: no images found (expected DATA/<class>/.../<image> or a CSV "
                         f"with path,label)")
    paths = [p for p, _ in items]
    if len(set(paths)) != len(paths):
        raise FeatxError(f"{data}: a path is listed twice")
    classes = sorted({c for _, c in items})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[c] for _, c in items], dtype=np.int16)
    groups = duplicate_groups(root, paths)
    if csv_splits is not None:
        split_arr = np.array([SPLIT_NAMES.index(s) for s in csv_splits], dtype=np.uint8)
        spec = "csv"
    else:
        split_arr = stratified_split(labels, groups, split, seed)
        spec = split
    dups: dict[int, list[str]] = defaultdict(list)
    for i, g in enumerate(groups):
        dups[int(g)].append(to_stored(paths[i]))
    dup_list = [members for members in dups.values() if len(members) > 1]
    return Collection(root=root, paths=paths, labels=labels, classes=classes, split=split_arr,
                      split_spec=spec, seed=seed, duplicates=dup_list, scan=scan)
