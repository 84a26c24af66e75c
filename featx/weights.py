"""Resolve `--weights imagenet|none|PATH` into a built backbone and a recorded weights identity."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from featx.backbones import Backbone
from featx.errors import FeatxError


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
    """Whether torch's hub cache already holds the backbone's ImageNet weights (no network)."""
    url = backbone.weights.DEFAULT.url
    return (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)).is_file()


_HINT = ("use --weights PATH with a state_dict file you have, or --weights none for random "
         "initialisation")


def check_weights(backbone: Backbone, weights: str) -> None:
    """Fail at once, before any long preparation, when the weights cannot be had."""
    if weights == "imagenet":
        url = backbone.weights.DEFAULT.url
        if not imagenet_cached(backbone) and not _reachable(url):
            raise FeatxError(f"cannot download ImageNet weights for {backbone.name} from {url} "
                             f"(no network?): {_HINT}")
    elif weights != "none":
        _weights_file(weights)


def _weights_file(weights: str) -> Path:
    path = Path(weights)
    if not path.is_file():
        raise FeatxError(f"--weights {weights!r}: not 'imagenet', 'none' or an existing file")
    return path


def _imagenet(backbone: Backbone, progress: bool) -> nn.Module:
    w = backbone.weights.DEFAULT
    check_weights(backbone, "imagenet")
    try:
        return backbone.build(weights=w, progress=progress)
    except Exception as e:  # the hub raises URLError, HTTPError, RuntimeError on a bad file
        raise FeatxError(f"could not load ImageNet weights for {backbone.name} ({e}): {_HINT}") \
            from None


def load_state_dict_file(path: Path) -> dict:
    """A state_dict from a file (weights_only), unwrapping {'state_dict': ...} and 'module.'."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FeatxError(f"{path}: not a loadable state_dict file ({type(e).__name__})") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise FeatxError(f"{path}: does not hold a state_dict")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def weights_identity(backbone: Backbone, weights: str, seed: int = 0) -> str:
    """What `build_model` records for these weights, without building anything (cheap: lets a
    run recognise a finished cache before loading a model)."""
    if weights == "imagenet":
        return f"imagenet:{backbone.weights.DEFAULT}"
    if weights == "none":
        return f"none:seed={seed}"
    path = _weights_file(weights)
    return f"file:{path.name}:sha256={_file_sha256(path)}"


def build_model(backbone: Backbone, weights: str, seed: int = 0,
                progress: bool = True) -> tuple[nn.Module, str]:
    """The backbone with its weights, and the identity to record ('imagenet:<enum>',
    'none:seed=<seed>' or 'file:<name>:sha256=<hex>')."""
    if weights == "imagenet":
        model = _imagenet(backbone, progress)
        return model, weights_identity(backbone, weights)
    if weights == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = backbone.build(weights=None)
        return model, weights_identity(backbone, weights, seed)
    path = _weights_file(weights)
    model = backbone.build(weights=None)
    sd = load_state_dict_file(path)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise FeatxError(f"{path}: does not fit {backbone.name} "
                         f"({first[1].strip() if len(first) > 1 else first[0]})") from None
    return model, weights_identity(backbone, weights)
