"""Resolve `--weights imagenet|none|PATH` into a built backbone and a recorded weights identity.

`imagenet` (or its synonym `pretrained`) means the source's own pretrained weights: torchvision's
weights API, or the Hugging Face hub cache for timm and open_clip. Weights already on disk are
used without any network call; when they are not and the host cannot be reached, the command
fails at once.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from featx.backbones import Backbone
from featx.backbones.sources import source_of
from featx.errors import FeatxError

PRETRAINED = ("imagenet", "pretrained")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _reachable(url: str, timeout: float = 3.0) -> bool:
    host = urlparse(url).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def imagenet_cached(backbone: Backbone) -> bool:
    """Whether the backbone's pretrained weights are on disk already (no network)."""
    return source_of(backbone).cached(backbone)


_HINT = ("use --weights PATH with a state_dict file you have, or --weights none for random "
         "initialisation")


def check_weights(backbone: Backbone, weights: str) -> None:
    """Fail at once, before any long preparation, when the weights cannot be had."""
    if weights in PRETRAINED:
        url = source_of(backbone).host(backbone)
        if not url:
            raise FeatxError(f"{backbone.name} names no pretrained weights (e.g. a clip/ "
                             f"architecture without ':<tag>'): {_HINT}")
        if not imagenet_cached(backbone) and not _reachable(url):
            raise FeatxError(f"cannot download the pretrained weights of {backbone.name} from "
                             f"{url} (no network?): {_HINT}")
    elif weights != "none":
        _weights_file(weights)


def _weights_file(weights: str) -> Path:
    path = Path(weights)
    if not path.is_file():
        raise FeatxError(f"--weights {weights!r}: not 'imagenet', 'none' or an existing file")
    return path


def _pretrained(backbone: Backbone, progress: bool, image_size: int | None) -> nn.Module:
    check_weights(backbone, "imagenet")
    try:
        return source_of(backbone).build(backbone, True, image_size, progress)
    except FeatxError:
        raise
    except Exception as e:  # the hubs raise URLError, HTTPError, OSError, RuntimeError
        raise FeatxError(f"could not load the pretrained weights of {backbone.name} ({e}): "
                         f"{_HINT}") from None


def load_state_dict_file(path: Path) -> dict:
    """A state_dict from a file (`.safetensors`, or `.pt`/`.pth` loaded with weights_only),
    unwrapping {'state_dict': ...} / {'model': ...} and 'module.' prefixes."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            sd = load_file(str(path), device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FeatxError(f"{path}: not a loadable state_dict file ({type(e).__name__})") from None
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise FeatxError(f"{path}: does not hold a state_dict")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def weights_identity(backbone: Backbone, weights: str, seed: int = 0) -> str:
    """What `build_model` records for these weights, without building anything (cheap: lets a
    run recognise a finished cache before loading a model)."""
    if weights in PRETRAINED:
        return source_of(backbone).identity(backbone)
    if weights == "none":
        return f"none:seed={seed}"
    path = _weights_file(weights)
    return f"file:{path.name}:sha256={_file_sha256(path)}"


def build_model(backbone: Backbone, weights: str, seed: int = 0, progress: bool = True,
                image_size: int | None = None) -> tuple[nn.Module, str]:
    """The backbone with its weights (built for `image_size` where the model's size is fixed,
    e.g. ViT position embeddings), and the identity to record ('imagenet:<enum>',
    'timm:<name>:<hub>', 'open_clip:<arch>:<tag>:<hub>', 'none:seed=<seed>' or
    'file:<name>:sha256=<hex>')."""
    src = source_of(backbone)
    if weights in PRETRAINED:
        model = _pretrained(backbone, progress, image_size)
        return model, weights_identity(backbone, weights)
    if weights == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = src.build(backbone, False, image_size, progress)
        return model, weights_identity(backbone, weights, seed)
    path = _weights_file(weights)
    if src.from_file is not None:
        try:
            model = src.from_file(backbone, str(path), image_size)
        except Exception as e:  # the libraries raise RuntimeError, KeyError, ValueError ...
            first = str(e).strip().splitlines() or [type(e).__name__]
            why = first[1].strip() if len(first) > 1 else first[0]
            raise FeatxError(f"{path}: does not fit {backbone.name} "
                             f"({why[:300] + ' ...' if len(why) > 300 else why})") from None
        return model, weights_identity(backbone, weights)
    model = src.build(backbone, False, image_size, progress)
    sd = load_state_dict_file(path)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        why = key_mismatch(model.state_dict(), sd) or str(e).strip().splitlines()[0][:300]
        raise FeatxError(f"{path}: does not fit {backbone.name} ({why})") from None
    return model, weights_identity(backbone, weights)


def key_mismatch(expected: dict, got: dict, show: int = 3) -> str:
    """One short line on how state dict `got` differs from `expected`: counts of missing and
    unexpected keys and of shape mismatches, each with its first few names."""
    def part(what: str, names: list[str]) -> str | None:
        if not names:
            return None
        more = f", ... {len(names) - show} more" if len(names) > show else ""
        return f"{len(names)} {what}: {', '.join(names[:show])}{more}"

    shapes = [f"{k} {tuple(got[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in got and hasattr(got[k], "shape") and tuple(got[k].shape) != tuple(v.shape)]
    parts = [part("missing keys", [k for k in expected if k not in got]),
             part("unexpected keys", [k for k in got if k not in expected]),
             part("shape mismatches", shapes)]
    return "; ".join(p for p in parts if p)
