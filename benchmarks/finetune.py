"""Step time of `finetune run` training against the bare model on ready tensors on the device:
what data loading, augmentation and bookkeeping (parameter groups, schedule, EMA) cost. Prints
JSON. Rounds interleave the run and the baselines (a shared CPU drifts), medians are reported.

Every recipe: `run_step_ms` (a training epoch of `finetune run`, per step) against
- `bare_step_ms`: train_step (forward, loss, backward, the recipe's optimiser step) on one batch;
- `fwd_bwd_ms`: forward + backward of the same model;
- `plain_fwd_bwd_ms` (modern recipes): forward + backward of the backbone's plain model as its
  source builds it (timm / torchvision, own classifier, no hooks).
`probe`: an epoch's cost per image against one forward of the trunk (no_grad, eval) per image.

    python benchmarks/finetune.py --quick              # resnet18, 64 px, CPU-friendly
    python benchmarks/finetune.py --recipe full --backbone timm/vit_small_patch16_224 \
        --image-size 224 --batch-size 8 --steps 4 --rounds 3 --workers 1
    python benchmarks/finetune.py --recipe probe --backbone timm/convnext_tiny --batch-size 8
    python benchmarks/finetune.py --recipe resnet --backbone resnet101 --image-size 224 \
        --batch-size 32 --steps 50 --workers 8         # the paper's setting (GPU)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and its name would hide the
# finetune package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import click  # noqa: E402


def _batch(trainer):
    import torch

    from finetune.data import Batch

    rec, dev = trainer.recipe, trainer.dev
    size = trainer.inputs.size
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (rec.batch_size, 3, size, size), dtype=torch.uint8,
                           generator=g)
    labels = torch.randint(0, len(trainer.coll.classes), (rec.batch_size,), generator=g)
    return dev.inputs(Batch(images, labels, []))


def _sync(dev):
    import torch

    return torch.cuda.synchronize if dev.device.type == "cuda" else (lambda: None)


def _timed(fn, steps: int, sync) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return (time.perf_counter() - t0) / steps


class Baselines:
    """The bare measurements on one pre-made batch already on the device."""

    def __init__(self, trainer):
        import torch

        from finetune import freeze
        from finetune.losses import stage_loss
        from finetune.optim import build_optimizer
        from finetune.plan import stage_plan

        self.trainer, self.dev, self.model = trainer, trainer.dev, trainer.model
        stage = trainer.recipe.stages[0]
        self.sp = stage_plan(self.model, stage)
        self.stage = stage
        self.loss_fn = stage_loss(stage.loss, stage.label_smoothing)
        self.x, self.y = _batch(trainer)
        self.sync = _sync(self.dev)
        self.scaler = torch.amp.GradScaler(self.dev.device.type,
                                           enabled=self.dev.amp_dtype == torch.float16)
        self._freeze = freeze
        self._build_optimizer = build_optimizer
        self.plain = self._plain_model() if hasattr(self.model, "bb") else None

    def _prepare(self):
        self._freeze.apply(self.model, self.sp.trainable)
        self._freeze.train_mode(self.model)

    def _plain_model(self):
        import torch

        from featx.backbones.sources import image_tower
        from featx.weights import build_model

        bb = self.model.bb
        model, _ = build_model(bb, "none", image_size=self.trainer.recipe.image_size or None,
                               progress=False)
        tower = image_tower(bb, model).to(self.dev.device).train()
        if self.dev.channels_last:
            tower.to(memory_format=torch.channels_last)
        return tower

    def bare_step(self, steps: int) -> float:
        """train_step with the recipe's optimiser (its parameter groups)."""
        from finetune.train import train_step

        self._prepare()
        opt = self._build_optimizer(self.model, self.sp.groups, self.stage.optimizer)
        return _timed(lambda: train_step(self.model, self.x, self.y, self.loss_fn, opt,
                                         self.scaler, self.dev), steps, self.sync)

    def fwd_bwd(self, steps: int) -> float:
        self._prepare()

        def step():
            self.model.zero_grad(set_to_none=True)
            with self.dev.autocast():
                loss = self.loss_fn(self.model(self.x), self.y)
            loss.backward()
        return _timed(step, steps, self.sync)

    def plain_fwd_bwd(self, steps: int) -> float:
        def step():
            self.plain.zero_grad(set_to_none=True)
            with self.dev.autocast():
                out = self.plain(self.x)
            out.float().square().mean().backward()
        return _timed(step, steps, self.sync)

    def trunk_forward(self, steps: int) -> float:
        """One forward of the trunk to its taps, no gradients, eval mode."""
        import torch

        self._prepare()
        taps = self.model._taps[0]
        was = self.model.trunk.training
        self.model.trunk.eval()

        def step():
            with torch.no_grad(), self.dev.autocast():
                taps(self.x)
        try:
            return _timed(step, steps, self.sync)
        finally:
            self.model.trunk.train(was)


@click.command()
@click.option("--recipe", default="resnet", show_default=True)
@click.option("--backbone", default="resnet101", show_default=True)
@click.option("--data", help="Image folder (default: generated images).")
@click.option("--image-size", type=int, default=224, show_default=True,
              help="0: the backbone's own.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--steps", type=int, default=30, show_default=True, help="Steps per measurement.")
@click.option("--rounds", type=int, default=1, show_default=True,
              help="Interleaved rounds of run and baselines (after one warm-up round).")
@click.option("--workers", type=int, default=8, show_default=True)
@click.option("--ema", type=float, help="Run with this EMA decay.")
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, help="torch threads (default: torch's).")
@click.option("--quick", is_flag=True, help="resnet18, 64 px, batch 8, 10 steps, 1 worker.")
def main(recipe: str, backbone: str, data: str | None, image_size: int, batch_size: int,
         steps: int, rounds: int, workers: int, ema: float | None, device: str,
         threads: int | None, quick: bool) -> None:
    import torch

    from featx.synthetic import generate_images
    from finetune import distributed
    from finetune.config import RunConfig
    from finetune.recipes import get_recipe, override
    from finetune.train import Trainer

    if threads:
        torch.set_num_threads(threads)
    if quick:
        backbone, image_size, batch_size, steps, workers = "resnet18", 64, 8, 10, 1
    probe = recipe == "probe"
    with tempfile.TemporaryDirectory() as tmp:
        rec = override(get_recipe(recipe), backbone=backbone, image_size=image_size,
                       batch_size=batch_size, epochs=1, split="90/5/5")
        if data is None:
            size = image_size or 224
            n = steps * batch_size // 8 + 2  # per class: enough train images for `steps` steps
            data = str(generate_images(Path(tmp) / "images", n_per_class=int(n / 0.9) + 2,
                                       size=max(96, size + size // 4)))
        cfg = RunConfig(recipe=rec, data=data, out=Path(tmp) / "run", weights="none",
                        device=device, workers=workers, quiet=True, steps_per_epoch=steps,
                        ema=ema)
        ctx = distributed.setup(device)
        trainer = Trainer(cfg, ctx)
        trainer.start()
        base = Baselines(trainer)
        runs, bare, fb, plain, trunk = [], [], [], [], []
        for r in range(rounds + 1):  # round 0 warms up (workers, allocator, autotuning)
            trainer.run_stage(0)
            line = json.loads((cfg.out / "metrics.jsonl").read_text().splitlines()[-1])
            run_step = line["train_seconds"] / trainer.steps
            if probe:
                t = base.trunk_forward(steps)
            else:
                b, f = base.bare_step(steps), base.fwd_bwd(steps)
                p = base.plain_fwd_bwd(steps) if base.plain is not None else None
            if r == 0:
                continue
            runs.append(run_step)
            if probe:
                trunk.append(t)
            else:
                bare.append(b)
                fb.append(f)
                if p is not None:
                    plain.append(p)
        n_img = rec.batch_size
        out = {
            "recipe": rec.name, "backbone": backbone, "image_size": trainer.inputs.size,
            "batch_size": batch_size, "device": str(ctx.device),
            "amp": str(trainer.dev.amp_dtype).replace("torch.", "") if trainer.dev.amp_dtype
            else None, "ema": ema,
            "workers": workers, "torch_threads": torch.get_num_threads(), "steps": trainer.steps,
            "rounds": rounds,
            "run_step_ms": [round(x * 1000, 1) for x in runs],
            "run_images_per_s": round(n_img / statistics.median(runs), 2),
        }
        if probe:
            out.update({
                "trunk_forward_ms": [round(x * 1000, 1) for x in trunk],
                "run_ms_per_image": round(1000 * statistics.median(runs) / n_img, 2),
                "trunk_forward_ms_per_image": round(1000 * statistics.median(trunk) / n_img, 2),
                "run_over_trunk_forward": round(statistics.median([a / b for a, b in zip(runs, trunk)]), 3),
            })
        else:
            out.update({
                "bare_step_ms": [round(x * 1000, 1) for x in bare],
                "fwd_bwd_ms": [round(x * 1000, 1) for x in fb],
                "overhead_vs_bare_step_pct": round(
                    100 * (statistics.median([a / b for a, b in zip(runs, bare)]) - 1), 1),
                "overhead_vs_fwd_bwd_pct": round(
                    100 * (statistics.median([a / b for a, b in zip(runs, fb)]) - 1), 1),
            })
            if plain:
                out["plain_fwd_bwd_ms"] = [round(x * 1000, 1) for x in plain]
                out["overhead_vs_plain_fwd_bwd_pct"] = round(
                    100 * (statistics.median([a / b for a, b in zip(runs, plain)]) - 1), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
