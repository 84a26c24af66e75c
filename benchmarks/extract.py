"""Extraction speed, in one run on the same images: featx extract vs the bare model forward on
ready tensors (the compute limit; torchvision's model, channels_last, inference mode) vs a plain
baseline (ImageFolder + DataLoader + torchvision create_feature_extractor + numpy pooling +
np.save). Also featx's own forward on ready tensors (BN folded), so that the pipeline's overhead
is visible apart from the model speed-up. Prints JSON.

    python benchmarks/extract.py                      # resnet50, 300 JPEGs of 500x375, 224 px
    python benchmarks/extract.py --backbone resnet101
    python benchmarks/extract.py --quick              # a smoke run of a few seconds
    python benchmarks/extract.py --modern             # timm ViT-B/16, ConvNeXt-T, CLIP ViT-B/32
                                                      # vs their bare forward; ViT L0-L2 vs L0-L4
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


def _timed_batches(step, n: int, batch_size: int, device: torch.device) -> float:
    """Seconds for `step(b)` over n images in batches of at most batch_size (device synced)."""
    _sync(device)
    t = time.perf_counter()
    done = 0
    while done < n:
        b = min(batch_size, n - done)
        step(b)
        done += b
    _sync(device)
    return time.perf_counter() - t


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
        dt = _timed_batches(lambda b: model(x[:b]), n, batch_size, device)
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
    dt = _timed_batches(lambda b: engine(x[:b], valid[:b]), n, batch_size, device)
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


MODERN = ("timm/vit_base_patch16_224", "timm/convnext_tiny", "clip/ViT-B-32:openai")


def tower_forward(backbone: str, n: int, batch_size: int, device: torch.device,
                  repeats: int = 1) -> list[float]:
    """images/s of the model's own forward (timm: model(x); torchvision: model(x); CLIP:
    encode_image) on ready tensors at its input size, channels_last, inference mode; one figure
    per repeat. Like featx extract's loop, the first repeat starts on a freshly built model (no
    warm-up: oneDNN builds its kernels on the first batch of each shape)."""
    from featx.backbones import get_backbone
    from featx.engine import autocast
    from featx.weights import build_model

    bb = get_backbone(backbone)
    model = build_model(bb, "none")[0].eval().to(device, memory_format=torch.channels_last)
    fwd = model.encode_image if bb.source == "open_clip" else model
    size = bb.preprocess().input_size
    x = torch.randn(batch_size, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last)
    out = []
    with torch.inference_mode(), autocast(device):
        for _ in range(repeats):
            out.append(n / _timed_batches(lambda b: fwd(x[:b]), n, batch_size, device))
    return out


def extract_rate(data: Path, out: Path, backbone: str, layers: str | None, batch_size: int,
                 workers: int | None, device: torch.device) -> float:
    """images/s of featx extract's loop (decoding JPEGs, forward, pooling, writing chunks; model
    building excluded) at the model's own preprocessing."""
    from featx.extract import ExtractConfig, run_extract

    cfg = ExtractConfig(data=data, backbone=backbone, weights="none", layers=layers,
                        batch_size=batch_size, workers=workers, device=str(device), out=out,
                        quiet=True)
    result = run_extract(cfg)
    return result.n / result.loop_seconds


def modern(data: Path, tmp: Path, n: int, batch_size: int, workers: int | None,
           device: torch.device, repeats: int, models: tuple[str, ...] = MODERN) -> dict:
    """Each backbone's extract rate against its bare forward, measured alternately `repeats`
    times (the machine is shared: interleaving keeps both under the same load); then a ViT's
    L0-L2 against L0-L4 the same way."""
    import math
    import statistics

    res: dict = {}
    k = 0
    for bb in models:
        bare, fx = [], []
        for _ in range(repeats):
            bare += tower_forward(bb, n, batch_size, device)
            k += 1
            fx.append(extract_rate(data, tmp / f"m{k}.h5", bb, None, batch_size, workers,
                                   device))
        # medians, and the best of each (on a shared machine the least disturbed run of each)
        res[bb] = {"bare_forward_img_s": bare, "featx_extract_img_s": fx,
                   "ratios": [f / b for f, b in zip(fx, bare)],
                   "featx_vs_bare_forward": statistics.median(fx) / statistics.median(bare),
                   "featx_vs_bare_forward_best": max(fx) / max(bare)}
    from featx.backbones import get_backbone

    vits = [m for m in models if get_backbone(m).token_levels]
    if not vits:
        return res
    vit = vits[0]
    shallow, full = [], []
    for _ in range(repeats):
        k += 1
        shallow.append(extract_rate(data, tmp / f"m{k}.h5", vit, "L0-L2", batch_size, workers,
                                    device))
        k += 1
        full.append(extract_rate(data, tmp / f"m{k}.h5", vit, "L0-L4", batch_size, workers,
                                 device))
    depth = _depth(vit)
    res[f"{vit} L0-L2 vs L0-L4"] = {
        "L0-L2_img_s": shallow, "L0-L4_img_s": full,
        "time_ratio": statistics.median(full) / statistics.median(shallow),
        "time_ratio_best": max(full) / max(shallow),
        "blocks_ratio": math.ceil(3 * depth / 5) / depth}
    return res


def _depth(backbone: str) -> int:
    """Number of transformer blocks of a token backbone (from its L3 tap's index rule)."""
    import math

    from featx.backbones import get_backbone

    l3 = get_backbone(backbone).taps["L3"].module  # blocks ceil(4D/5): D = the last block + 1
    last = int(l3.rsplit(".", 1)[-1].rsplit("_", 1)[-1]) + 1
    return next(d for d in range(1, 200) if math.ceil(4 * d / 5) == last)


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
@click.option("--modern", "modern_run", is_flag=True,
              help="timm vit_base_patch16_224, convnext_tiny and clip/ViT-B-32 (random weights) "
                   "against their bare forward, and a ViT's L0-L2 vs L0-L4")
@click.option("--repeats", default=3, show_default=True, help="alternations (--modern)")
@click.option("--models", default=",".join(MODERN), show_default=True,
              help="backbones for --modern (comma-separated)")
def main(backbone, n, image_size, batch_size, workers, baseline_workers, jpeg_size, device,
         quick, modern_run, repeats, models):
    from featx.engine import resolve_device
    from featx.loader import default_workers

    if modern_run:
        device = resolve_device(device)
        w, h = (int(v) for v in jpeg_size.split("x"))
        with tempfile.TemporaryDirectory(prefix="featx-bench-") as tmp:
            tmp = Path(tmp)
            data = make_images(tmp / "images", n, w, h)
            res = modern(data, tmp, n, batch_size, workers, device, repeats,
                         tuple(m for m in models.split(",") if m))
        print(json.dumps({"images": n, "jpeg_size": jpeg_size, "batch_size": batch_size,
                          "device": str(device), "repeats": repeats,
                          "gpu": torch.cuda.get_device_name(device)
                          if device.type == "cuda" else None,
                          "workers": workers if workers is not None
                          else default_workers(device.type),
                          "torch_threads": torch.get_num_threads(), "cores": os.cpu_count(),
                          **res}, indent=1))
        return

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
