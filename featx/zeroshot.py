"""CLIP zero-shot prompts: class names through templates through CLIP's text tower, stored in the
cache (/zeroshot) so that `classify zeroshot` needs no torch.

Each class embedding is the normalised mean of its normalised template embeddings (the recipe
of CLIP's ImageNet zero-shot evaluation).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featx.errors import FeatxError

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo that makes people feel {}.",
    "an image that evokes {}.",
    "a picture that makes you feel {}.",
    "a photo of something that causes {}.",
    "{}",
)
FILE = "zeroshot.npz"  # in the work folder, so a resumed run does not recompute it


@dataclass
class Prompts:
    templates: list[str]
    class_embeddings: np.ndarray  # [C, D] float32, unit rows, in class order
    logit_scale: float


def read_templates(path: str | Path | None) -> list[str]:
    """Templates from a text file (one per line, each with `{}` for the class name; blank lines
    and lines starting with '#' skipped), or the defaults."""
    if path is None:
        return list(DEFAULT_TEMPLATES)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise FeatxError(f"--prompts {path}: cannot read it ({e})") from None
    out = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    bad = [t for t in out if "{}" not in t]
    if bad or not out:
        raise FeatxError(f"--prompts {path}: every line needs {{}} where the class name goes"
                         + (f" (not in {bad[0]!r})" if bad else " (the file has no template)"))
    return out


def class_words(name: str) -> str:
    return name.replace("_", " ").replace("-", " ")


def compute(model, arch: str, classes: Sequence[str], templates: Sequence[str],
            device) -> Prompts:
    """Class embeddings from an open_clip model's text tower (float32, no autocast)."""
    import open_clip
    import torch
    import torch.nn.functional as F

    try:
        tokenizer = open_clip.get_tokenizer(arch)
    except Exception as e:  # a Hugging Face tokenizer that is not on disk, offline
        raise FeatxError(f"cannot load the text tokenizer of {arch} ({e})") from None
    # the text tower too: featx's engine moves only the image tower to the device
    model.to(device)
    rows = []
    with torch.no_grad():
        for c in classes:
            tokens = tokenizer([t.format(class_words(c)) for t in templates]).to(device)
            e = F.normalize(model.encode_text(tokens).float(), dim=-1)
            rows.append(F.normalize(e.mean(0), dim=-1))
        scale = float(model.logit_scale.exp().item())
    return Prompts(list(templates), torch.stack(rows).cpu().numpy().astype(np.float32), scale)


def save(path: Path, prompts: Prompts) -> None:
    from featx.parts import atomic_write

    buf = io.BytesIO()
    np.savez(buf, templates=np.array(prompts.templates, dtype=str),
             class_embeddings=prompts.class_embeddings,
             logit_scale=np.float64(prompts.logit_scale))
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def load(path: Path) -> Prompts | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return Prompts([str(t) for t in z["templates"]],
                           z["class_embeddings"].astype(np.float32), float(z["logit_scale"]))
    except (OSError, ValueError, KeyError):
        return None  # missing or unreadable: computed again
