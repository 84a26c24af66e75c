"""Step time of `finetune run` training against the bare forward + backward of the same model on
ready tensors on the device: what data loading, augmentation and bookkeeping cost. Prints JSON.

    python benchmarks/finetune.py --quick              # resnet18, 64 px, CPU-friendly
    python benchmarks/finetune.py --recipe resnet --backbone resnet101 --image-size 224 \
        --batch-size 32 --steps 50 --workers 8         # the paper's setting (GPU)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and its name would hide the
# finetune package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import click  # noqa: E402


def bare_step_seconds(trainer, steps: int, warmup: int) -> float:
    """Seconds per train_step on one pre-made uint8 batch already on the device."""
    import torch

    from finetune import freeze
    from finetune.losses import LOSSES
    from finetune.optim import build_optimizer
    from finetune.plan import stage_plan
    from finetune.train import train_step

    rec, dev, model = trainer.recipe, trainer.dev, trainer.model
    stage = rec.stages[0]
    sp = stage_plan(model, stage)
    freeze.apply(model, sp.trainable)
    opt = build_optimizer(model, sp.groups, stage.optimizer)
    scaler = torch.amp.GradScaler(dev.device.type, enabled=dev.amp_dtype == torch.float16)
    freeze.train_mode(model)
    n_classes = len(trainer.coll.classes)
    images = torch.randint(0, 256, (rec.batch_size, 3, rec.image_size, rec.image_size),
                           dtype=torch.uint8)
    labels = torch.randint(0, n_classes, (rec.batch_size,))
    from finetune.data import Batch

    x, y = dev.inputs(Batch(images, labels, []))
    sync = torch.cuda.synchronize if dev.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        train_step(model, x, y, LOSSES[stage.loss], opt, scaler, dev)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = train_step(model, x, y, LOSSES[stage.loss], opt, scaler, dev)
    float(loss)
    sync()
    return (time.perf_counter() - t0) / steps


@click.command()
@click.option("--recipe", default="resnet", show_default=True)
@click.option("--backbone", default="resnet101", show_default=True)
@click.option("--data", help="Image folder (default: generated images).")
@click.option("--image-size", type=int, default=224, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--steps", type=int, default=30, show_default=True)
@click.option("--workers", type=int, default=8, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--quick", is_flag=True, help="resnet18, 64 px, batch 8, 10 steps, 1 worker.")
def main(recipe: str, backbone: str, data: str | None, image_size: int, batch_size: int,
         steps: int, workers: int, device: str, quick: bool) -> None:
    import torch

    from featx.synthetic import generate_images
    from finetune import distributed
    from finetune.config import RunConfig
    from finetune.recipes import get_recipe, override
    from finetune.train import Trainer

    if quick:
        backbone, image_size, batch_size, steps, workers = "resnet18", 64, 8, 10, 1
    with tempfile.TemporaryDirectory() as tmp:
        if data is None:
            n = max(4, -(-steps * batch_size // 8) + 2)  # enough train images for `steps` steps
            data = str(generate_images(Path(tmp) / "images", n_per_class=int(n / 0.8) + 1,
                                       size=max(96, image_size + image_size // 4)))
        rec = override(get_recipe(recipe), backbone=backbone, image_size=image_size,
                       batch_size=batch_size, epochs=2)
        cfg = RunConfig(recipe=rec, data=data, out=Path(tmp) / "run", weights="none",
                        device=device, workers=workers, quiet=True, steps_per_epoch=steps)
        ctx = distributed.setup(device)
        trainer = Trainer(cfg, ctx)
        trainer.start()
        # the first epoch warms up (worker start, allocator, cudnn autotuning); time the second
        trainer.run_stage(0)
        lines = [json.loads(x) for x in (cfg.out / "metrics.jsonl").read_text().splitlines()]
        run_step = lines[-1]["train_seconds"] / trainer.steps
        bare = bare_step_seconds(trainer, steps, warmup=3)
    print(json.dumps({
        "recipe": rec.name, "backbone": backbone, "image_size": image_size,
        "batch_size": batch_size, "device": str(ctx.device),
        "amp": str(trainer.dev.amp_dtype).replace("torch.", "") if trainer.dev.amp_dtype else None,
        "workers": workers, "torch_threads": torch.get_num_threads(), "steps": trainer.steps,
        "run_step_ms": round(run_step * 1000, 2), "bare_step_ms": round(bare * 1000, 2),
        "run_images_per_s": round(batch_size / run_step, 1),
        "bare_images_per_s": round(batch_size / bare, 1),
        "overhead_pct": round(100 * (run_step / bare - 1), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
