"""The training loop: a recipe's stages in order, validation every epoch, best/last checkpoints,
metrics.jsonl, resume from last.pt, DDP, AMP and channels_last on CUDA."""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from featx.backbones import get_backbone
from featx.errors import FeatxError
from featx.loader import default_workers
from featx import progress
from featx.progress import Progress
from featx.weights import check_weights
from finetune import checkpoint, distributed, freeze, models
from finetune.config import RunConfig, check_resumable, config_json, read_config
from finetune.curves import write_curves
from finetune.data import Batch, ImageSet, make_loader, normalizer
from finetune.ema import EMA
from finetune.evaluate import plot_confusion, predict_proba
from finetune.files import write_json, write_lines
from finetune.losses import stage_loss
from finetune.optim import build_optimizer, build_scheduler, per_step_schedule
from finetune.plan import stage_plan
from finetune.predictions import Predictions, check_target, collect, write_predictions
from finetune.sampler import EpochSampler


@dataclass
class Position:
    """Where training stands: `epoch` epochs of stage `stage` done, plus `step` steps of the
    next one."""

    stage: int = 0
    epoch: int = 0
    step: int = 0


@dataclass
class Device:
    """How tensors are put on the device and run there."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    normalize: Callable[[torch.Tensor], torch.Tensor]  # uint8 batch -> normalised float

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalize(batch.images.to(self.device, non_blocking=True))
        return self.prepare(x), batch.labels.to(self.device, non_blocking=True)


def device_setup(device: torch.device, amp: str, inputs: models.Inputs) -> Device:
    cuda = device.type == "cuda"
    dtype = None
    if cuda and amp == "auto":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Device(device, dtype, channels_last=cuda,
                  normalize=normalizer(inputs.mean, inputs.std))


@dataclass
class EpochStats:
    loss_sum: float = 0.0
    n: int = 0  # images trained on
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               loss_fn: Callable, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, dev: Device) -> torch.Tensor:
    """One optimiser step; returns the batch's loss (detached)."""
    optimizer.zero_grad(set_to_none=True)
    with dev.autocast():
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """Hash of a state_dict's every parameter and buffer (DDP ranks must agree on it)."""
    h = hashlib.sha256()
    for name, t in state.items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _prepare_folder(out: Path, resume: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if not resume and ((out / "last.pt").exists() or (out / "metrics.jsonl").exists()):
        raise FeatxError(f"{out}: holds a run already; use --resume to continue it, or another "
                         f"--out")


def _kept_metrics(out: Path, pos: Position) -> list[str]:
    """metrics.jsonl lines of the epochs completed before `pos` (a killed run may have logged
    an epoch whose last.pt it did not write)."""
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut short by the kill
        if (rec["stage_index"], rec["epoch"]) <= (pos.stage, pos.epoch):
            kept.append(line)
    return kept


class Trainer:
    def __init__(self, cfg: RunConfig, ctx: distributed.Context):
        self.cfg, self.ctx = cfg, ctx
        self.recipe = cfg.recipe
        self.out = Path(cfg.out)
        self.quiet = cfg.quiet or not ctx.is_main
        check_weights(get_backbone(self.recipe.backbone), cfg.weights)
        coll = cfg.options.collection(cfg.data, self.recipe.split, cfg.seed)
        check_target(cfg.target, coll, cfg.data)
        self.coll = coll
        self.soft = cfg.target == "distribution"
        self.idx = {s: coll.indices(s) for s in ("train", "val", "test")}
        if not len(self.idx["train"]):
            raise FeatxError(f"{cfg.data}: no training images with --split {self.recipe.split}")
        if not ctx.is_main:
            distributed.barrier(ctx)  # rank 0 alone fills torch's cache with ImageNet weights
        self.model, identity = models.build(self.recipe, len(coll.classes), cfg.weights,
                                            seed=cfg.seed, progress=not self.quiet)
        if ctx.is_main:
            distributed.barrier(ctx)
        self.config = config_json(cfg, coll, identity, ctx.world_size)
        self.inputs = models.inputs_of(self.recipe)
        self.dev = device_setup(ctx.device, cfg.amp, self.inputs)
        size, bs = self.inputs.size, self.recipe.batch_size
        self.train_set = ImageSet(coll, self.idx["train"], size, augment=self.recipe.augment,
                                  pre=self.inputs.pre, soft=self.soft)
        self.sampler = EpochSampler(self.train_set.labels, self.recipe.sampler, cfg.seed,
                                    ctx.rank, ctx.world_size)
        self.drop_last = self.sampler.per_rank >= bs  # no 1-image batch for batch norm
        full = self.sampler.per_rank // bs if self.drop_last else math.ceil(
            self.sampler.per_rank / bs)
        self.steps = min(full, cfg.steps_per_epoch) if cfg.steps_per_epoch else full
        self.pin = self.dev.device.type == "cuda"
        self.workers = cfg.workers if cfg.workers is not None else default_workers(
            self.dev.device.type)
        self.reported: set[str] = set()
        self.train_loader = None
        self.best = -math.inf
        self.best_ema = -math.inf
        self.ema: EMA | None = None
        self.tracker = None  # finetune.tracking.RunTracker on rank 0 with --track

    # -- files (rank 0) ----------------------------------------------------------------------
    def _log(self, msg: str) -> None:
        if self.ctx.is_main and not self.cfg.quiet:
            progress.write(msg)

    def _eval_loader(self, split: str):
        ds = ImageSet(self.coll, self.idx[split], self.inputs.size, pre=self.inputs.pre)
        return make_loader(ds, self.recipe.batch_size, self.workers, pin_memory=self.pin)

    def _predict(self, split: str, model: nn.Module | None = None) -> Predictions | None:
        if not len(self.idx[split]):
            return None
        model = self.model if model is None else model
        y, proba, failed = predict_proba(model, self._eval_loader(split), self.dev.device,
                                         prepare=self.dev.prepare, autocast=self.dev.autocast,
                                         quiet=self.quiet, desc=split,
                                         normalize=self.dev.normalize, tta=self.cfg.tta)
        self._report(failed)
        return collect(self.coll, self.idx[split], y, proba, failed, self.soft)

    def _evaluate(self, split: str, model: nn.Module | None = None) -> dict | None:
        pred = self._predict(split, model)
        return None if pred is None else pred.metrics(self.coll.classes, seed=self.cfg.seed)

    def _score(self, val: dict) -> float:
        """What the best epoch maximises: val macro recall, or minus val KL for distributions."""
        return -val["ldl"]["kl"] if self.soft else val["macro_recall"]

    def _report(self, failed) -> None:
        """A line on stderr, even with --quiet, the first time an image cannot be decoded."""
        for f in failed:
            if f.path not in self.reported:
                self.reported.add(f.path)
                if self.ctx.is_main:
                    progress.write(f"warning: skipped {f.path}: {f.reason}")

    # -- checkpoints -------------------------------------------------------------------------
    def _save_last(self, pos: Position, opt, sched, scaler, stats: EpochStats | None) -> None:
        rngs = distributed.gather(checkpoint.rng_state(), self.ctx)  # a collective: all ranks
        if not self.ctx.is_main:
            return
        if self.tracker is not None:  # what a resume will not redo is on disk before it
            self.tracker.flush()
        checkpoint.atomic_save({
            "model": self.model.state_dict(),
            "optimizer": opt.state_dict() if opt is not None else None,
            "scheduler": sched.state_dict() if sched is not None else None,
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
            "position": [pos.stage, pos.epoch, pos.step],
            "epoch_stats": [stats.loss_sum, stats.n, stats.seconds] if stats else None,
            "best": self.best,
            "best_ema": self.best_ema,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rngs,
            "sampler": {"kind": self.sampler.kind, "seed": self.sampler.seed},
        }, self.out / "last.pt")

    def _save_best(self, stage_index: int, epoch: int, val: dict | None,
                   model: nn.Module | None = None, name: str = "best.pt") -> None:
        checkpoint.atomic_save({
            "model": (self.model if model is None else model).state_dict(),
            "recipe": self.recipe.name,
            "classes": self.coll.classes,
            "stage_index": stage_index,
            "stage": self.recipe.stages[stage_index].name,
            "epoch": epoch,
            "val_accuracy": val["accuracy"] if val else None,
            "val_macro_recall": val["macro_recall"] if val else None,
            "val_kl": val["ldl"]["kl"] if val and self.soft else None,
        }, self.out / name)

    def _resume(self) -> tuple[Position, dict | None]:
        saved = read_config(self.out)
        check_resumable(saved, self.config, self.out)
        if not (self.out / "last.pt").exists():
            self._log(f"{self.out}: no last.pt yet, starting from the beginning")
            return Position(), None
        state = checkpoint.load(self.out / "last.pt")
        self.model.load_state_dict(state["model"])
        self.best = float(state["best"])
        self.best_ema = float(state.get("best_ema", -math.inf))
        return Position(*state["position"]), state

    # -- the loop ----------------------------------------------------------------------------
    def start(self) -> tuple[Position, dict | None]:
        """Prepare the run folder, load last.pt when resuming, put the model on the device."""
        ctx, cfg = self.ctx, self.cfg
        _seed_everything(cfg.seed * 1000 + ctx.rank)
        resuming = cfg.resume and (self.out / "config.json").exists()
        if ctx.is_main:
            _prepare_folder(self.out, resuming)
        distributed.barrier(ctx)
        pos, state = self._resume() if resuming else (Position(), None)
        if ctx.is_main:
            write_json(self.config, self.out / "config.json")
            write_lines(_kept_metrics(self.out, pos), self.out / "metrics.jsonl")
            if cfg.track:
                from finetune.tracking import RunTracker

                self.tracker = RunTracker(cfg.track, self.out, self.config, self._global_step(
                    pos.stage, pos.epoch, pos.step) if resuming else None)
        self.model.to(self.dev.device)
        if self.dev.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.dev.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if cfg.ema is not None:
            fresh, _ = models.build(self.recipe, len(self.coll.classes), "none", seed=cfg.seed,
                                    progress=False)
            fresh.to(self.dev.device)
            if self.dev.channels_last:
                fresh.to(memory_format=torch.channels_last)
            self.ema = EMA(self.model, cfg.ema, module=fresh)
            if state is not None and state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
        if state is not None:
            rngs = state["rng"]
            if len(rngs) == ctx.world_size:
                checkpoint.set_rng_state(rngs[ctx.rank])
        return pos, state

    def run(self) -> dict | None:
        pos, state = self.start()
        ok = False
        try:
            offsets = np.concatenate([[0], np.cumsum([s.epochs for s in self.recipe.stages])])
            for si in range(pos.stage, len(self.recipe.stages)):
                self.run_stage(si, int(offsets[si]), pos, state if si == pos.stage else None)
            distributed.barrier(self.ctx)
            test = self.finish() if self.ctx.is_main else None
            ok = True
            return test
        finally:
            if self.tracker is not None:
                self.tracker.close(ok)

    def _global_step(self, si: int, e: int, step: int) -> int:
        """Optimiser steps of the whole run before step `step` of epoch `e` of stage `si`: the
        one x axis of every tracked curve (a resumed TensorBoard run drops what lies past it)."""
        return (sum(s.epochs for s in self.recipe.stages[:si]) + e) * self.steps + step

    def run_stage(self, si: int, offset: int = 0, pos: Position | None = None,
                  state: dict | None = None) -> None:
        """Stage `si`'s epochs; `offset` = epochs of the stages before it (for the sampler),
        `pos`/`state` where a resumed run takes up."""
        stage = self.recipe.stages[si]
        pos = pos or Position(si)
        sp = stage_plan(self.model, stage)
        freeze.apply(self.model, sp.trainable)
        opt = build_optimizer(self.model, sp.groups, stage.optimizer)
        sched = build_scheduler(self.recipe.scheduler, opt, stage.epochs, self.steps,
                                self.recipe.warmup_epochs)
        scaler = torch.amp.GradScaler(self.dev.device.type,
                                      enabled=self.dev.amp_dtype == torch.float16)
        first = 0
        if state is not None and state["optimizer"] is not None:
            try:
                opt.load_state_dict(state["optimizer"])
            except ValueError as e:  # e.g. a run saved before the weight-decay groups
                raise FeatxError(f"the checkpoint's optimiser state does not fit this version's "
                                 f"parameter groups ({e}): start the run afresh") from None
            if sched is not None and state["scheduler"] is not None:
                sched.load_state_dict(state["scheduler"])
            if state["scaler"] is not None:
                scaler.load_state_dict(state["scaler"])
            first = pos.epoch
        net = distributed.wrap(self.model, self.ctx)
        loss_fn = stage_loss(stage.loss, stage.label_smoothing)
        for e in range(first, stage.epochs):
            resume_here = state is not None and e == pos.epoch and pos.step > 0
            stats = EpochStats(*state["epoch_stats"]) if resume_here else EpochStats()
            start_step = pos.step if resume_here else 0
            self._train_epoch(net, si, stage, e, offset + e, start_step, stats, opt, sched, scaler,
                              loss_fn)
            self._end_epoch(si, stage, e, stats, opt)
            if sched is not None and not per_step_schedule(self.recipe.scheduler):
                sched.step()
            done = Position(si, e + 1) if e + 1 < stage.epochs else Position(si + 1, 0)
            # a finished stage's optimiser is not carried into the next one
            keep = e + 1 < stage.epochs
            self._save_last(done, opt if keep else None, sched if keep else None,
                            scaler if keep else None, None)

    def _train_epoch(self, net: nn.Module, si: int, stage, e: int, global_epoch: int,
                     start_step: int, stats: EpochStats, opt, sched, scaler, loss_fn) -> None:
        bs = self.recipe.batch_size
        self.sampler.set_epoch(global_epoch, skip=start_step * bs)
        if self.train_loader is None:
            # workers forked once, while this process is still small: a worker forked anew each
            # epoch shares the grown heap (activations, gradients, optimiser state) copy-on-
            # write, and the next steps copy it page by page (measured on 2 CPU cores: the
            # first step of every epoch took 4x as long, resnet50 224 px)
            self.train_loader = make_loader(self.train_set, bs, self.workers,
                                            sampler=self.sampler, drop_last=self.drop_last,
                                            pin_memory=self.pin, persistent=True)
        loader = self.train_loader
        freeze.train_mode(self.model)
        per_step = per_step_schedule(self.recipe.scheduler)
        bar = Progress(self.steps * bs * self.ctx.world_size, initial=start_step * bs,
                       desc=f"{stage.name} {e + 1}/{stage.epochs}", unit="img",
                       quiet=self.quiet)
        losses = []
        t0 = time.perf_counter()
        for step, batch in enumerate(loader, start=start_step):
            if step >= self.steps:
                break
            self._report(batch.failed)
            stats.failed += [f.path for f in batch.failed]
            if len(batch):
                x, y = self.dev.inputs(batch)
                loss = train_step(net, x, y, loss_fn, opt, scaler, self.dev)
                losses.append(loss * len(batch))
                if self.tracker is not None:
                    self.tracker.step(self._global_step(si, e, step), loss,
                                      [g["lr"] for g in opt.param_groups])
                stats.n += len(batch)
                if self.ema is not None:
                    self.ema.update(self.model)
            if sched is not None and per_step:
                sched.step()
            bar.update(bs * self.ctx.world_size)
            # sync with the device only now and then, at fixed steps so that a resumed run
            # adds up the same losses in the same order
            if (step + 1) % 20 == 0 and losses:
                stats.loss_sum += float(torch.stack(losses).sum())
                losses = []
                bar.set_postfix(loss=f"{stats.loss_sum / max(stats.n, 1):.4f}")
            every = self.cfg.checkpoint_every
            if every and (step + 1) % every == 0 and step + 1 < self.steps:
                stats.loss_sum += float(torch.stack(losses).sum()) if losses else 0.0
                losses = []
                stats.seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                self._save_last(Position(si, e, step + 1), opt, sched, scaler, stats)
        if losses:
            stats.loss_sum += float(torch.stack(losses).sum())
        bar.close()
        stats.seconds += time.perf_counter() - t0

    def _end_epoch(self, si: int, stage, e: int, stats: EpochStats, opt) -> None:
        t0 = time.perf_counter()
        totals = distributed.gather([stats.loss_sum, stats.n], self.ctx)
        distributed.sync_buffers(self.model, self.ctx)
        digests = distributed.gather(state_digest(self.model.state_dict()), self.ctx) \
            if self.ctx.distributed else None
        if self.ctx.is_main:
            loss_sum = sum(t[0] for t in totals)
            n = sum(t[1] for t in totals)
            val = self._evaluate("val")
            if val is None or self._score(val) > self.best:
                self.best = self._score(val) if val else self.best
                self._save_best(si, e + 1, val)
            val_ema = None
            if self.ema is not None:
                val_ema = self._evaluate("val", self.ema.module)
                if val_ema is None or self._score(val_ema) > self.best_ema:
                    self.best_ema = self._score(val_ema) if val_ema else self.best_ema
                    self._save_best(si, e + 1, val_ema, self.ema.module, "best_ema.pt")
            rec = {
                "stage": stage.name, "stage_index": si, "epoch": e + 1,
                "train_loss": loss_sum / n if n else None,
                "val_accuracy": val["accuracy"] if val else None,
                "val_macro_recall": val["macro_recall"] if val else None,
                "seconds": round(stats.seconds + time.perf_counter() - t0, 3),
                "train_seconds": round(stats.seconds, 3),
                "train_minutes": round(stats.seconds / 60, 4),
                "images_per_s": round(n / stats.seconds, 1) if stats.seconds else None,
                "lr": [g["lr"] for g in opt.param_groups],
                "skipped_images": len(stats.failed),
            }
            if self.soft:
                rec["val_kl"] = val["ldl"]["kl"] if val else None
            if self.ema is not None:
                rec["val_ema_accuracy"] = val_ema["accuracy"] if val_ema else None
                rec["val_ema_macro_recall"] = val_ema["macro_recall"] if val_ema else None
            if digests is not None:
                rec["rank_digests"] = digests
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            write_curves(self.out)  # redrawn every epoch: a killed run keeps its curves
            if self.tracker is not None:
                self.tracker.epoch(self._global_step(si, e + 1, 0), rec)
            self._log(f"{stage.name} epoch {e + 1}/{stage.epochs}: loss "
                      f"{rec['train_loss'] if n else float('nan'):.4f}, val accuracy "
                      f"{_pct(rec['val_accuracy'])}, macro recall {_pct(rec['val_macro_recall'])}"
                      f", {rec['train_minutes']:.2f} min")
        distributed.barrier(self.ctx)

    def finish(self) -> dict | None:
        """Test metrics of the best checkpoint -> test.json, confusion.png (and of the best EMA
        weights -> test_ema.json, confusion_ema.png)."""
        if self.ema is not None:
            self._test(self.ema.module, "best_ema.pt", "_ema", " EMA")
        return self._test(self.model, "best.pt", "", "")

    def _test(self, model: nn.Module, best_name: str, suffix: str, label: str) -> dict | None:
        best = self.out / best_name
        if best.exists():
            model.load_state_dict(checkpoint.load(best)["model"])
        pred = self._predict("test", model)
        if pred is None:
            self._log(f"no test images: test{suffix}.json not written")
            return None
        test = pred.metrics(self.coll.classes, seed=self.cfg.seed)
        write_json(test, self.out / f"test{suffix}.json")
        val = self._predict("val", model)
        write_predictions(self.out / f"predictions{suffix}.json", self.coll.classes,
                          {"test": pred, **({"val": val} if val is not None else {})})
        plot_confusion(test["confusion"], self.coll.classes, self.out / f"confusion{suffix}.png",
                       f"{self.recipe.name} ({self.recipe.backbone}){label}: test accuracy "
                       f"{_pct(test['accuracy'])}, macro recall {_pct(test['macro_recall'])}")
        if self.tracker is not None:
            self.tracker.test(test, suffix, self._global_step(len(self.recipe.stages), 0, 0),
                              [self.out / f for f in (f"test{suffix}.json",
                                                      f"confusion{suffix}.png", best_name)])
        return test


def _pct(v: float | None) -> str:
    return "-" if v is None or v != v else f"{100 * v:.2f}%"


def run(cfg: RunConfig) -> dict | None:
    """Train `cfg.recipe` end to end; returns the test metrics on rank 0."""
    ctx = distributed.setup(cfg.device)
    try:
        return Trainer(cfg, ctx).run()
    finally:
        distributed.teardown(ctx)
