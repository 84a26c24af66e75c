"""Backbones: the registry (`get_backbone`, `list_backbones`), the sources (torchvision, timm,
open_clip), the level taps (`tapped`) and the papers' ResNet/VGG stages.

Names are imported on first use, so `featx.backbones.known` (the default listing) runs without
importing torch."""

from importlib import import_module

_WHERE = {"Backbone": "registry", "Preprocess": "registry", "Tap": "registry",
          "get_backbone": "registry", "list_backbones": "registry", "register": "registry",
          "STAGES": "stages", "stages": "stages", "tapped": "taps"}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'featx.backbones' has no attribute {name!r}")
    module = import_module(f"featx.backbones.{_WHERE[name]}")
    # bind every name of that module here: loading featx.backbones.stages set the attribute
    # `stages` to the submodule, and the function must win (as an eager import made it)
    for n, where in _WHERE.items():
        if where == _WHERE[name]:
            globals()[n] = getattr(module, n)
    return globals()[name]
