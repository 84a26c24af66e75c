"""`featx demo`: the main job offline on a generated 8-class image set, then what to run next."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from featx.extract import ExtractConfig, ExtractResult, Log, _stderr, run_extract

DEMO_BACKBONE = "resnet18"
MODERN_BACKBONES = ("timm/convnext_tiny.in12k_ft_in1k", "timm/vit_base_patch14_dinov2.lvd142m",
                    "clip/ViT-B-32:openai")
# the papers' lr 1e-4 assumes ImageNet weights; from random weights only the whole network with a
# larger step learns in a few epochs (93 % test accuracy on the demo images in 10 epochs)
FINETUNE_NEXT = {
    "imagenet": "resnet_fc --epochs 5 --lr 0.01",
    "none": "resnet --epochs 10 --lr 0.01 --batch-size 16 --image-size 64",
}


def demo_weights() -> str:
    """ImageNet weights when torch already has them on disk; never touches the network."""
    from featx.backbones import get_backbone
    from featx.weights import imagenet_cached
    return "imagenet" if imagenet_cached(get_backbone(DEMO_BACKBONE)) else "none"


def run_demo(folder: str | os.PathLike = "cache/demo", per_class: int = 60, size: int = 112,
             quiet: bool = False, log: Log = _stderr) -> tuple[ExtractResult, list[str]]:
    """Generate (or reuse) the images, extract (or reuse) their cache; returns the result and the
    suggested next commands."""
    from featx.synthetic import generate_images

    folder = Path(folder)
    images = generate_images(folder / "images", n_per_class=per_class, size=size, seed=0)
    weights = demo_weights()
    if weights == "none" and not quiet:
        log(f"note: no ImageNet weights for {DEMO_BACKBONE} in torch's cache (offline): using "
            f"--weights none (random, seeded); features will be weaker")
    out = folder / f"demo-{DEMO_BACKBONE}-{weights}-{size}px.h5"
    cfg = ExtractConfig(data=images, backbone=DEMO_BACKBONE, weights=weights, layers="L0-L4",
                        pool="gap", image_size=size, batch_size=32, device="cpu", out=out,
                        quiet=quiet)
    result = run_extract(cfg, log=log)
    q = shlex.quote
    runs = folder / "runs"
    recipe_args = FINETUNE_NEXT[weights]
    nxt = [
        f"featx info {q(str(out))}",
        f"classify fit {q(str(out))} --levels L4 --model logreg --weighted",
        f"classify stack {q(str(out))} --levels L0-L4 --base logreg --meta weighted --weighted",
        f"classify ablate {q(str(out))} --out {q(str(folder / 'ablation'))}",
        f"finetune run {recipe_args} --data {q(str(images))} --backbone {DEMO_BACKBONE} "
        f"--weights {weights} --out {q(str(runs / recipe_args.split()[0]))}",
        "featx backbones",
    ]
    # today's backbones: pretrained weights are downloaded once (offline: --weights none)
    for name in MODERN_BACKBONES:
        cache = folder / f"demo-{name.replace('/', '-').replace(':', '-')}.h5"
        nxt.append(f"featx extract {q(str(images))} --backbone {name} --out {q(str(cache))}")
        if name.startswith("clip/"):
            nxt.append(f"classify zeroshot {q(str(cache))}")
    return result, nxt
