"""Extraction speed, in one run on the same images: featx extract vs the bare model forward on
ready tensors (the compute limit; torchvision's model, channels_last, inference mode) vs a plain
baseline (ImageFolder + DataLoader + torchvision create_feature_extractor + numpy pooling +
np.save). Also featx's own forward on ready tensors (BN folded), so that the pipeline's overhead
is visible apart from the model speed-up. Prints JSON.

    python benchmarks/extract.py                      # resnet50, 300 JPEGs of 500x375, 224 px
    python benchmarks/extract.py --backbone resnet101
    python benchmarks/extract.py --quick              # a smoke run of a few seconds
    python benchmarks/extract.py --backbone resnet101 --images 5000 --batch-size 256 \
        --workers 16                                  # on a GPU (device auto = cuda)

On CUDA all three run there: the bare forward and the baseline in the autocast dtype featx uses
(bf16, or fp16 without bf16 support), the baseline bringing its full feature maps to the host.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch

LEVEL_NODES = {"resnet": {"maxpool": "L0", "layer1": "L1", "layer2": "L2", "layer3": "L3",
                          "layer4": "L4"}}


def make_images(folder: Path, n: int, width: int, height: int) -> Path:
    """n real-size JPEGs (quality 90) in the 8 class folders, made by featx's generator."""
    from featx.synthetic import EMOTIONS, render

    rng = np.random.default_rng(0)
    for i in range(n):
        label = EMOTIONS[i % len(EMOTIONS)]
        (folder / label).mkdir(parents=True, exist_ok=True)
        img = render(label, max(width, height), rng).crop((0, 0, width, height))
        img.save(folder / label / f"{i:05d}.jpg", quality=90)
    return folder


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_forward(backbone: str, n: int, image_size: int, batch_size: int,
                 device: torch.device) -> dict:
    """The torchvision model's own forward (channels_last, inference mode, featx's autocast
    dtype on CUDA) on ready tensors on the device."""
    from featx.backbones import get_backbone
    from featx.engine import autocast
    from featx.weights import build_model

    torch.backends.cudnn.benchmark = True
    model = build_model(get_backbone(backbone), "none")[0].eval()
    model = model.to(device, memory_format=torch.channels_last)
    x = torch.randn(batch_size, 3, image_size, image_size, device=device).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(device):
        for _ in range(3 if device.type == "cuda" else 1):  # warm-up (cudnn picks kernels)
            model(x)
        _sync(device)
        t = time.perf_counter()
        done = 0
        while done < n:
            b = min(batch_size, n - done)
            model(x[:b])
            done += b
        _sync(device)
        dt = time.perf_counter() - t
    return {"images_per_s": n / dt, "seconds": dt}


def featx_forward(backbone: str, n: int, image_size: int, batch_size: int,
                  device: torch.device) -> dict:
    """featx's own model path (BN folded, normalisation on the device, pooled taps) on ready
    uint8 tensors: what extract would reach if decoding and writing cost nothing."""
    import numpy as np

    from featx.engine import Engine, default_dtype

    engine = Engine(backbone, "none", ["L0", "L1", "L2", "L3", "L4"], "gap", device,
                    default_dtype(device))
    x = torch.randint(0, 256, (batch_size, 3, image_size, image_size), dtype=torch.uint8)
    valid = np.ones(batch_size, dtype=bool)
    engine(x, valid)  # warm-up
    t = time.perf_counter()
    done = 0
    while done < n:
        b = min(batch_size, n - done)
        engine(x[:b], valid[:b])
        done += b
    dt = time.perf_counter() - t
    return {"images_per_s": n / dt, "seconds": dt}


def featx_extract(data: Path, out: Path, backbone: str, image_size: int, batch_size: int,
                  workers: int | None, device: torch.device) -> dict:
    from featx.extract import ExtractConfig, run_extract

    cfg = ExtractConfig(data=data, backbone=backbone, weights="none", layers="L0-L4",
                        pool="gap", image_size=image_size, batch_size=batch_size,
                        workers=workers, device=str(device), out=out, quiet=True)
    t = time.perf_counter()
    result = run_extract(cfg)
    dt = time.perf_counter() - t
    return {"images_per_s": result.n / dt, "seconds": dt,
            "images_per_s_loop": result.n / result.loop_seconds,
            "n_failed": result.n_failed}


def baseline(data: Path, out_dir: Path, backbone: str, image_size: int, batch_size: int,
             workers: int, device: torch.device) -> dict:
    """What one writes without featx: float tensors from the workers, full feature maps
    returned to the host, pooled in numpy, saved with np.save."""
    import torchvision.transforms as T
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder
    from torchvision.models.feature_extraction import create_feature_extractor

    from featx.backbones import get_backbone
    from featx.engine import autocast
    from featx.weights import build_model

    t = time.perf_counter()
    bb = get_backbone(backbone)
    model = build_model(bb, "none")[0].eval().to(device)
    fx = create_feature_extractor(model, return_nodes=LEVEL_NODES[bb.family])
    tf = T.Compose([T.Resize(image_size), T.CenterCrop(image_size), T.ToTensor(),
                    T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    loader = DataLoader(ImageFolder(str(data), transform=tf), batch_size=batch_size,
                        num_workers=workers, shuffle=False)
    feats: dict[str, list[np.ndarray]] = {}
    n = 0
    with torch.no_grad(), autocast(device):
        for x, _ in loader:
            for level, fmap in fx(x.to(device)).items():
                feats.setdefault(level, []).append(
                    fmap.float().cpu().numpy().mean(axis=(2, 3)))
            n += len(x)
    for level, blocks in feats.items():
        np.save(out_dir / f"baseline-{level}.npy", np.concatenate(blocks))
    dt = time.perf_counter() - t
    return {"images_per_s": n / dt, "seconds": dt}


@click.command()
@click.option("--backbone", default="resnet50", show_default=True)
@click.option("--images", "n", default=300, show_default=True)
@click.option("--image-size", default=224, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--workers", default=None, type=int, help="featx's (default: featx's default)")
@click.option("--baseline-workers", default=None, type=int,
              help="the baseline's DataLoader workers (default: as many as featx uses)")
@click.option("--jpeg-size", default="500x375", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:i]")
@click.option("--quick", is_flag=True, help="resnet18, 48 images: a smoke run")
def main(backbone, n, image_size, batch_size, workers, baseline_workers, jpeg_size, device,
         quick):
    from featx.engine import resolve_device
    from featx.loader import default_workers

    if quick:
        backbone, n, batch_size = "resnet18", 48, 16
    w, h = (int(v) for v in jpeg_size.split("x"))
    device = resolve_device(device)
    used_workers = workers if workers is not None else default_workers(device.type)
    with tempfile.TemporaryDirectory(prefix="featx-bench-") as tmp:
        tmp = Path(tmp)
        data = make_images(tmp / "images", n, w, h)
        # the three measured on the same files, the file cache warm for all of them
        res = {
            "bare_forward": bare_forward(backbone, n, image_size, batch_size, device),
            "featx_forward": featx_forward(backbone, n, image_size, batch_size, device),
            "featx_extract": featx_extract(data, tmp / "featx.h5", backbone, image_size,
                                           batch_size, workers, device),
            "baseline": baseline(data, tmp, backbone, image_size, batch_size,
                                 baseline_workers if baseline_workers is not None
                                 else used_workers, device),
        }
    fx, bare, base = (res[k]["images_per_s"] for k in ("featx_extract", "bare_forward",
                                                        "baseline"))
    print(json.dumps({
        "backbone": backbone, "images": n, "jpeg_size": jpeg_size, "image_size": image_size,
        "batch_size": batch_size, "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "workers": used_workers,
        "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(), **res,
        "featx_vs_bare_forward": fx / bare, "featx_vs_baseline": fx / base,
        "featx_vs_featx_forward": fx / res["featx_forward"]["images_per_s"],
    }, indent=1))


if __name__ == "__main__":
    main()
