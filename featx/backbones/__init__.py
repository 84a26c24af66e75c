"""Backbones: the registry (`get_backbone`, `list_backbones`), the sources (torchvision, timm,
open_clip), the level taps (`tapped`) and the papers' ResNet/VGG stages."""

from featx.backbones.registry import (Backbone, Preprocess, Tap, get_backbone, list_backbones,
                                      register)
from featx.backbones.stages import STAGES, stages
from featx.backbones.taps import tapped

__all__ = ["Backbone", "Preprocess", "Tap", "get_backbone", "list_backbones", "register",
           "STAGES", "stages", "tapped"]
