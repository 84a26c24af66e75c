"""The --report error-analysis gallery on a small real cache: its confusions match the
confusion matrix, every image named is a misclassified test image, every thumbnail exists, and
a browser renders the page without a missing image."""

import csv
import html
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from PIL import Image

from featx.synthetic import generate_images
from .classify_helpers import read_json, run

FAST = ["--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--device", "cpu",
        "--workers", "0", "--quiet"]


class _Page(HTMLParser):
    """Sections (true, pred, count), figures (path, true, pred, section), img srcs, links."""

    def __init__(self):
        super().__init__()
        self.sections, self.figures, self.imgs, self.links = [], [], [], []
        self.where = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.where = a.get("class")
            if self.where == "confusion":
                self.sections.append((a["data-true"], a["data-pred"], int(a["data-count"])))
        elif tag == "figure":
            self.figures.append((a["data-path"], a["data-true"], a["data-pred"], self.where,
                                 len(self.sections)))
        elif tag == "img":
            self.imgs.append(a["src"])
        elif tag == "a" and not a["href"].startswith("#"):
            self.links.append(a["href"])


@pytest.fixture(scope="module")
def gallery_run(tmp_path_factory):
    """A cache of 96 generated images (24 made grayscale, one with a non-UTF-8 name, 24 in the
    wrong class folder), and `classify fit --report` on it."""
    from featx.cli import main as featx
    from click.testing import CliRunner

    base = tmp_path_factory.mktemp("gallery")
    data = generate_images(base / "data", n_per_class=12, size=48)
    files = sorted(data.rglob("*.jpg"))
    gray = set(files[::4])
    for f in gray:
        Image.open(f).convert("L").save(f)
    os.rename(files[1], os.fsencode(files[1].parent) + b"/na\xefve.jpg")
    classes = sorted(p.name for p in data.iterdir())
    for i, c in enumerate(classes):  # mislabelled images: confusions for sure
        for f in sorted((data / c).iterdir())[-3:]:
            f.rename(data / classes[(i + 1) % 8] / f"from_{f.name}")
    cache = base / "c.h5"
    res = CliRunner().invoke(featx, ["extract", str(data), *FAST, "--layers", "L0", "--split",
                                     "50/0/50", "--out", str(cache)])
    assert res.exit_code == 0, res.output
    rep = base / "rep"
    run("fit", cache, "--levels", "L0", "--cv", "2", "--report", rep, "--json",
        base / "r.json", "--out", base / "m.npz", "--quiet")
    run("predict", base / "m.npz", cache, "--out", base / "p.csv")
    with open(base / "p.csv", newline="") as f:
        preds = {r["path"]: r for r in csv.DictReader(f)}
    gray_names = {os.path.relpath(f, data).replace(os.sep, "/") for f in gray}
    return base, rep, read_json(base / "r.json")["rows"][0], preds, gray_names


def _parse(page: Path) -> _Page:
    p = _Page()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def test_gallery_matches_the_confusion_matrix(gallery_run):
    base, rep, row, preds, gray_names = gallery_run
    page = _parse(rep / "gallery.html")
    classes = list(row["test"]["per_class_recall"])
    cm = row["test"]["confusion"]
    off = sorted(((cm[t][p], t, p) for t in range(8) for p in range(8) if t != p and cm[t][p]),
                 key=lambda c: (-c[0], c[1], c[2]))
    assert off, "the fixture should give confusions"
    assert [(classes.index(t), classes.index(p), n) for t, p, n in page.sections] == [
        (t, p, n) for n, t, p in off[:8]]
    wrong_test = {path for path, r in preds.items()
                  if r["split"] == "test" and r["predicted"] and r["predicted"] != r["label"]}
    assert page.figures
    for path, true, pred, where, section in page.figures:
        assert path in wrong_test, path
        assert (preds[path]["label"], preds[path]["predicted"]) == (true, pred)
        if where == "confusion":
            assert page.sections[section - 1][:2] == (true, pred)
            shown = sum(1 for f in page.figures if f[3] == "confusion" and f[4] == section)
            assert shown == min(12, page.sections[section - 1][2])
    # the test set's grayscale share, counted independently
    test = [p for p, r in preds.items() if r["split"] == "test"]
    share = round(100 * sum(p in gray_names for p in test) / len(test))
    assert f"grayscale (test set {share}%)" in (rep / "gallery.html").read_text()
    assert 'href="gallery.html"' in (rep / "index.html").read_text()


def test_thumbnails_and_links_exist(gallery_run):
    base, rep, row, preds, gray_names = gallery_run
    page = _parse(rep / "gallery.html")
    assert page.imgs and len(page.imgs) == len(page.figures)
    for src in page.imgs:
        assert not src.startswith(("/", "file:")) and re.fullmatch(r"gallery/\d{4}\.jpg", src)
        with Image.open(rep / src) as im:
            assert max(im.size) <= 160
    for href in page.links:  # each thumbnail links to its image, relatively
        target = os.path.join(os.fsencode(rep), unquote_to_bytes(href))
        assert not href.startswith("/") and os.path.isfile(target), href


def test_predict_report_on_the_cache_and_a_folder(gallery_run):
    base, rep, row, preds, gray_names = gallery_run
    run("predict", base / "m.npz", base / "c.h5", "--out", base / "p2.csv", "--report",
        base / "rep2")
    assert _parse(base / "rep2" / "gallery.html").sections == _parse(
        rep / "gallery.html").sections
    res = run("predict", base / "m.npz", base / "data", "--out", base / "p3.csv", "--report",
              base / "rep3", "--device", "cpu", "--quiet")
    assert (base / "rep3" / "gallery.html").is_file(), res.output


def test_missing_images_are_an_error_or_a_note(gallery_run, tmp_path):
    from .classify_helpers import copy_cache

    base = gallery_run[0]
    res = run("fit", base / "c.h5", "--levels", "L0", "--cv", "2", "--report", tmp_path / "r",
              "--data", tmp_path / "nothing", "--quiet", ok=False)
    assert res.exit_code == 2 and "--data" in res.output  # click: no such path
    moved = copy_cache(base / "c.h5", tmp_path / "moved.h5",
                       lambda f: f.attrs.__setitem__("data_root", str(tmp_path / "gone")))
    res = run("fit", moved, "--levels", "L0", "--cv", "2", "--report", tmp_path / "r2",
              "--quiet")
    assert "note: no error-analysis gallery" in res.output and "pass --data" in res.output
    assert (tmp_path / "r2" / "index.html").is_file()
    assert not (tmp_path / "r2" / "gallery.html").exists()
    run("fit", moved, "--levels", "L0", "--cv", "2", "--report", tmp_path / "r3", "--data",
        base / "data", "--quiet")
    assert (tmp_path / "r3" / "gallery.html").is_file()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium to render with")
def test_chromium_renders_every_image(gallery_run, tmp_path):
    rep = gallery_run[1]
    harness = rep / "check.html"
    harness.write_text(
        '<!doctype html><iframe id="f" src="gallery.html"></iframe><script>'
        'document.getElementById("f").onload = function () {'
        ' var im = this.contentDocument.images, bad = 0;'
        ' for (var i = 0; i < im.length; i++) if (!im[i].complete || !im[i].naturalWidth) bad++;'
        ' document.body.setAttribute("data-result", im.length + " images, " + bad + " broken");'
        '};</script>')
    try:
        out = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                              "--allow-file-access-from-files", "--virtual-time-budget=5000",
                              f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                              harness.as_uri()], capture_output=True, text=True, timeout=90)
    finally:
        harness.unlink()
    n = len(_parse(rep / "gallery.html").imgs)
    assert f'data-result="{n} images, 0 broken"' in out.stdout, out.stdout[-2000:]


def test_cross_dataset_row_has_its_own_gallery_and_unmatched_counts(gallery_run, tmp_path):
    import json

    import numpy as np

    from featx.cache import Cache
    from .classify_helpers import copy_cache

    base = gallery_run[0]
    with Cache(base / "c.h5") as c:
        # the other set is a copy (same paths): by the row rule only the rows this model
        # never trained or selected on (the test split) are evaluated
        classes, labels, valid = list(c.classes), c.labels, c.valid & (c.split == 2)
    renamed = [f"x{n}" if i < 2 else n for i, n in enumerate(classes)]
    other = copy_cache(base / "c.h5", tmp_path / "other set.h5",
                       lambda f: f.attrs.__setitem__("classes", json.dumps(renamed)))
    rep = tmp_path / "rep"
    res = run("fit", base / "c.h5", "--levels", "L0", "--cv", "2", "--eval", other,
              "--report", rep, "--json", tmp_path / "x.json", "--quiet")
    own, cross = read_json(tmp_path / "x.json")["rows"]
    counts = {renamed[k]: int(((labels == k) & valid).sum()) for k in (0, 1)}
    assert cross["cross_dataset"]["unmatched"] == counts
    line = next(x for x in res.stdout.splitlines() if x.startswith(cross["name"]))
    assert line.endswith(f"{sum(counts.values())} ({renamed[0]} {counts[renamed[0]]}, "
                         f"{renamed[1]} {counts[renamed[1]]})")
    page = _parse(rep / "gallery_other_set.html")
    cm = np.array(cross["test"]["confusion"])
    off = sorted(((cm[t, p], t, p) for t in range(8) for p in range(8) if t != p and cm[t, p]),
                 key=lambda c: (-c[0], c[1], c[2]))
    assert [(classes.index(t), classes.index(p), n) for t, p, n in page.sections] == [
        (t, p, n) for n, t, p in off[:8]]
    assert page.figures and not {f[1] for f in page.figures} & set(classes[:2])
    assert all(re.fullmatch(r"gallery_other_set/\d{4}\.jpg", s) for s in page.imgs)
    index = (rep / "index.html").read_text()
    assert 'href="gallery_other_set.html"' in index and 'href="gallery.html"' in index
    assert f"{renamed[0]} {counts[renamed[0]]}" in index


def test_gallery_shows_each_image_s_human_votes(gallery_run, tmp_path):
    import numpy as np

    from featx.cache import Cache
    from .classify_helpers import copy_cache

    base = gallery_run[0]
    with Cache(base / "c.h5") as c:
        n, classes, paths = len(c), list(c.classes), c.paths
    dist = np.random.default_rng(0).dirichlet(np.ones(len(classes)), size=n).astype(np.float32)
    voted = copy_cache(base / "c.h5", tmp_path / "voted.h5",
                       lambda f: f.create_dataset("label_dist", data=dist))
    run("fit", voted, "--levels", "L0", "--cv", "2", "--report", tmp_path / "rep", "--quiet")
    for path, text in _votes_shown(tmp_path / "rep" / "gallery.html"):
        row = dist[paths.index(path)]
        top = np.argsort(-row, kind="stable")[:3]
        assert text == ", ".join(f"{classes[c]} {row[c]:.2f}" for c in top)
    # classify predict MODEL CACHE --report: the same votes beside its predictions
    run("fit", voted, "--levels", "L0", "--cv", "2", "--out", tmp_path / "m.npz", "--quiet")
    run("predict", tmp_path / "m.npz", voted, "--out", tmp_path / "p.csv", "--report",
        tmp_path / "prep")
    for path, text in _votes_shown(tmp_path / "prep" / "gallery.html"):
        row = dist[paths.index(path)]
        assert text.split(", ")[0] == f"{classes[int(np.argmax(row))]} {row.max():.2f}"
    plain = (gallery_run[1] / "gallery.html").read_text()  # a cache without votes
    assert "votes:" not in plain


def _votes_shown(page_path) -> list[tuple[str, str]]:
    """(image path, its votes text) of every figure of a gallery; each figure has votes."""
    page = page_path.read_text()
    shown = re.findall(r'<figure data-path="([^"]+)".*?<span class=votes>votes: (.*?)</span>',
                       page)
    assert shown and len(shown) == page.count("<figure ")
    return [(html.unescape(p), text) for p, text in shown]
