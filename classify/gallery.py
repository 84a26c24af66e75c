"""The error-analysis gallery: one HTML page (`gallery.html`, thumbnails in `gallery/` beside
it, relative links, no server) with the most frequent confusions on test -- thumbnails of the
misclassified images with true and predicted class and the predicted probabilities, and the
share of grayscale images in each confusion against the test set's -- and the most confidently
wrong images. Needs the images: `--data DATA`, or the folder recorded in the cache."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from classify.atomic import write_atomic, write_text
from classify.metrics import confusion
from featx.errors import FeatxError
from featx.pathnames import from_stored, os_bytes, show

PAGE = "gallery.html"
THUMBS = "gallery"
THUMB_PX = 160


@dataclass
class Evaluated:
    """Images with true classes and predicted probabilities: what a gallery shows."""

    classes: list[str]
    y_true: np.ndarray  # [n] class index
    proba: np.ndarray  # [n, n_classes]
    paths: list[str]  # as stored in the cache (featx.pathnames), relative to `root`
    root: Path
    escaped: bool = True  # paths use featx.pathnames' escapes (caches from 2026-11-25 on)
    dist: np.ndarray | None = None  # [n, n_classes] human votes (/label_dist), where known

    def file(self, i: int) -> str:
        return os.path.join(self.root, from_stored(self.paths[i]) if self.escaped
                            else self.paths[i])


def data_root(attrs: dict, data: str | os.PathLike | None, cache: str) -> Path:
    """The folder a cache's paths are relative to: `--data` (a folder, or a CSV whose folder
    it is), else the cache's recorded `data_root`; one-line errors name what is missing."""
    if data is not None:
        data = Path(data)
        if not data.exists():
            raise FeatxError(f"--data {show(data)}: no such folder or file")
        return data if data.is_dir() else data.parent
    recorded = attrs.get("data_root")
    if not recorded:
        raise FeatxError(f"{cache}: the cache does not record its image folder (made before "
                         f"featx recorded it): pass --data DATA for the gallery")
    root = Path(from_stored(str(recorded)))
    if not root.is_dir():
        raise FeatxError(f"{cache}: its image folder {recorded} is not there any more: pass "
                         f"--data DATA for the gallery")
    return root


def is_grayscale(rgb: np.ndarray) -> bool:
    """No colour worth the name: the channels of (almost) every pixel agree, JPEG's chroma
    noise allowed."""
    x = rgb.astype(np.int16)
    spread = x.max(axis=2) - x.min(axis=2)
    return float(spread.mean()) < 4.0 and float(np.percentile(spread, 99)) <= 16


def _look(path: str, thumb: str | None) -> bool | None:
    """Grayscale or not (None: unreadable); writes a JPEG thumbnail to `thumb` if given."""
    from featx.decode import DecodeError, load_image

    try:
        img = load_image(path, draft_size=THUMB_PX)
    except DecodeError:
        return None
    img.thumbnail((THUMB_PX, THUMB_PX))
    if thumb:
        write_atomic(thumb, lambda tmp: img.save(tmp, format="JPEG", quality=85))
    small = img.copy()
    small.thumbnail((64, 64))
    return is_grayscale(np.asarray(small))


def _link(page_dir: Path, target: str) -> str:
    """A relative href from the page to a file, bytes percent-encoded (any file name works)."""
    try:
        rel = os.path.relpath(target, page_dir)
    except ValueError:  # another drive (Windows): an absolute file: URL then
        return "file://" + quote(os_bytes(os.path.abspath(target)))
    return quote(os_bytes(rel.replace(os.sep, "/")))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _share(flags: Sequence[bool | None]) -> float | None:
    known = [f for f in flags if f is not None]
    return (sum(known) / len(known)) if known else None


def write_gallery(folder: str | os.PathLike, ev: Evaluated, title: str = "error analysis",
                  n_confusions: int = 8, per_confusion: int = 12, n_confident: int = 24,
                  quiet: bool = True, name: str = THUMBS) -> Path:
    """NAME.html (default gallery.html) and its thumbnails in `folder`/NAME; returns the
    page's path."""
    from featx.progress import Progress

    folder = Path(folder)
    thumbs = name
    (folder / thumbs).mkdir(parents=True, exist_ok=True)
    k = len(ev.classes)
    y_pred = ev.proba.argmax(axis=1)
    cm = confusion(ev.y_true, y_pred, k)
    wrong = np.flatnonzero(ev.y_true != y_pred)
    p_pred = ev.proba[np.arange(len(y_pred)), y_pred]
    pairs = sorted(((int(cm[t, p]), t, p) for t in range(k) for p in range(k)
                    if t != p and cm[t, p] > 0), key=lambda c: (-c[0], c[1], c[2]))
    pairs = pairs[:n_confusions]
    shown: dict[int, str] = {}  # image -> its thumbnail's name
    groups = []
    for count, t, p in pairs:
        members = wrong[(ev.y_true[wrong] == t) & (y_pred[wrong] == p)]
        members = members[np.argsort(-p_pred[members], kind="stable")]
        groups.append((count, t, p, members))
        for i in members[:per_confusion]:
            shown.setdefault(int(i), f"{len(shown):04d}.jpg")
    confident = wrong[np.argsort(-p_pred[wrong], kind="stable")][:n_confident]
    for i in confident:
        shown.setdefault(int(i), f"{len(shown):04d}.jpg")
    gray: dict[int, bool | None] = {}
    with Progress(len(ev.y_true), "gallery", "img", quiet=quiet) as bar:
        for i in range(len(ev.y_true)):  # every test image: the test set's grayscale share
            thumb = shown.get(i)
            gray[i] = _look(ev.file(i), str(folder / thumbs / thumb) if thumb else None)
            bar.update()
    missing = {i for i in shown if gray[i] is None}
    test_gray = _share(list(gray.values()))

    def figure(i: int) -> str:
        t, p = int(ev.y_true[i]), int(y_pred[i])
        name = ev.paths[i]
        top = np.argsort(-ev.proba[i], kind="stable")[:3]
        caption = (f"{html.escape(name)}<br>true <b>{html.escape(ev.classes[t])}</b> "
                   f"({ev.proba[i, t]:.2f})<br>predicted <b>{html.escape(ev.classes[p])}</b> "
                   f"({ev.proba[i, p]:.2f})<br><span class=top>top 3: "
                   + ", ".join(f"{html.escape(ev.classes[c])} {ev.proba[i, c]:.2f}" for c in top)
                   + "</span>" + _votes(ev, i))
        attrs = (f'data-path="{html.escape(name)}" data-true="{html.escape(ev.classes[t])}" '
                 f'data-pred="{html.escape(ev.classes[p])}"')
        if i in missing:
            img = '<div class="missing">image unreadable</div>'
        else:
            img = (f'<a href="{_link(folder, ev.file(i))}"><img src="{thumbs}/{shown[i]}" '
                   f'alt="{html.escape(name)}" loading="lazy"></a>')
        return f"<figure {attrs}>{img}<figcaption>{caption}</figcaption></figure>"

    sections, summary = [], []
    support = cm.sum(axis=1)
    for n, (count, t, p, members) in enumerate(groups):
        share = _share([gray[int(i)] for i in members])
        pair = f"{html.escape(ev.classes[t])} → {html.escape(ev.classes[p])}"
        head = (f"{pair}: {count} image{'s' if count > 1 else ''} "
                f"({_pct(count / support[t])} of {html.escape(ev.classes[t])}); grayscale "
                f"{_pct(share)} (test set {_pct(test_gray)})")
        summary.append(f'<tr><td><a href="#c{n}">{pair}</a></td><td>{count}</td>'
                       f"<td>{_pct(count / support[t])}</td><td>{_pct(share)}</td></tr>")
        more = (f"<p>{count - per_confusion} more not shown.</p>" if count > per_confusion
                else "")
        sections.append(
            f'<section class="confusion" id="c{n}" data-true="{html.escape(ev.classes[t])}" '
            f'data-pred="{html.escape(ev.classes[p])}" data-count="{count}">'
            f'<h3>{head}</h3><div class="grid">'
            + "".join(figure(int(i)) for i in members[:per_confusion]) + f"</div>{more}</section>")
    acc = float(np.mean(ev.y_true == y_pred)) if len(y_pred) else float("nan")
    unreadable = sum(1 for v in gray.values() if v is None)
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>{len(ev.y_true)} test images, accuracy {_pct(acc)}, {len(wrong)} misclassified; "
            f"{_pct(test_gray)} of the test images are grayscale. Images from "
            f"<code>{html.escape(show(ev.root))}</code>"
            + (f"; {unreadable} could not be read" if unreadable else "") + ".</p>",
            "<p>Each thumbnail links to its image; numbers are predicted probabilities.</p>",
            f"<h2>Most frequent confusions (true → predicted)</h2>"
            + (f"<table><tr><th>confusion</th><th>images</th><th>of the true class</th>"
               f"<th>grayscale (test set {_pct(test_gray)})</th></tr>{''.join(summary)}</table>"
               if summary else "")
            + ("".join(sections) or "<p>No misclassified test image.</p>"),
            '<section class="confident"><h2>Most confidently wrong</h2><div class="grid">'
            + "".join(figure(int(i)) for i in confident) + "</div></section>"]
    page = folder / f"{name}.html"
    write_text(page, _page(title, "\n".join(body)))
    return page


def _votes(ev: Evaluated, i: int) -> str:
    """The image's human vote distribution (its three largest shares), beside the prediction."""
    if ev.dist is None:
        return ""
    top = [c for c in np.argsort(-ev.dist[i], kind="stable")[:3] if ev.dist[i, c] > 0]
    return ("<br><span class=votes>votes: "
            + ", ".join(f"{html.escape(ev.classes[c])} {ev.dist[i, c]:.2f}" for c in top)
            + "</span>")


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}
.grid{{display:flex;flex-wrap:wrap;gap:10px}}
figure{{margin:0;width:{THUMB_PX + 10}px;font-size:11px;overflow-wrap:anywhere}}
figure img{{max-width:{THUMB_PX}px;max-height:{THUMB_PX}px;min-width:96px;display:block}}
.missing{{width:{THUMB_PX}px;height:80px;background:#eee;color:#a00;display:flex;
align-items:center;justify-content:center}}
h3{{font-size:15px;margin:1.4em 0 .4em}} .top{{color:#666}} .votes{{color:#063}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 8px}}</style>
</head><body>
{body}
</body></html>
"""


def evaluated_from_trained(trained, data: str | os.PathLike | None) -> Evaluated:
    """The test images of a fit / stack run, with the model's probabilities; under k-fold every
    fold's test images (each image once, by the model that did not train on it)."""
    t = trained.tested
    if not t:  # a run that kept no round's probabilities (few-shot): its last model's
        from classify.training import Tested, _proba

        te = trained.data["test"]
        t = [Tested(te.paths, te.y, _proba(trained.estimator, te.X, len(trained.data.classes)),
                    te.dist)]
    attrs = trained.data.attrs
    dists = [x.dist for x in t]
    return Evaluated(list(trained.data.classes), np.concatenate([x.y for x in t]),
                     np.concatenate([x.proba for x in t]), [p for x in t for p in x.paths],
                     data_root(attrs, data, trained.data.cache),
                     escaped=bool(attrs.get("path_escapes")),
                     dist=None if any(d is None for d in dists) else np.concatenate(dists))


def evaluated_cross(trained, other: str, class_map: dict[str, str],
                    task: str | None) -> Evaluated:
    """The images of another cache a fit's cross-dataset row was evaluated on, with the
    model's probabilities; the images are found in the folder that cache records."""
    from threadpoolctl import threadpool_limits

    from classify.training import cross_images
    from featx.cache import Cache

    part, _, _ = cross_images(trained.data, other, class_map, task)
    with threadpool_limits(limits=1, user_api="blas"):
        proba = trained.estimator.predict_proba(part.X)
    with Cache(other) as c:
        attrs = dict(c.attrs)
    return Evaluated(list(trained.data.classes), np.asarray(part.y), np.asarray(proba),
                     list(part.paths), data_root(attrs, None, other),
                     escaped=bool(attrs.get("path_escapes")))


def evaluated_from_predictions(preds, classes: Sequence[str], rows: np.ndarray,
                               y: np.ndarray, root: Path, escaped: bool = True) -> Evaluated:
    """The scored images of `classify predict` (classify.predict.scored: `rows`, their true
    classes `y`)."""
    dist = getattr(preds, "dist", None)
    return Evaluated(list(classes), np.asarray(y), preds.proba[rows],
                     [preds.paths[i] for i in rows], root, escaped=escaped,
                     dist=None if dist is None else dist[rows])
