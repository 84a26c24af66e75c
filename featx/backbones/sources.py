"""What each source (torchvision, timm, open_clip) provides: building a model with or without its
pretrained weights, whether those weights are on disk, their recorded identity, the image tower."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from featx.backbones.registry import Backbone


def _whole(model: nn.Module) -> nn.Module:
    return model


@dataclass(frozen=True)
class Source:
    name: str
    # (backbone, pretrained, image_size or None, progress) -> model
    build: Callable[[Backbone, bool, int | None, bool], nn.Module]
    cached: Callable[[Backbone], bool]  # pretrained weights on disk already (no network)
    identity: Callable[[Backbone], str]  # recorded for the pretrained weights
    host: Callable[[Backbone], str]  # the URL whose host must be reachable to download them
    tower: Callable[[nn.Module], nn.Module] = _whole  # the part that sees images
    # (backbone, state_dict file, image_size) -> model, through the library's own loader (which
    # adapts e.g. position embeddings to another image size); None: build + load_state_dict
    from_file: Callable[[Backbone, str, int | None], nn.Module] | None = None


SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    SOURCES[source.name] = source
    return source


def source_of(backbone: Backbone) -> Source:
    from featx.backbones.registry import _load_sources
    _load_sources()
    return SOURCES[backbone.source]


def hub_checkpoint(url: str) -> Path:
    """Where torch.hub keeps the download of `url`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def image_tower(backbone: Backbone, model: nn.Module) -> nn.Module:
    return source_of(backbone).tower(model)
