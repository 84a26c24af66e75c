"""`finetune list | plan | run | eval`: the papers' recipes and the modern ones (any backbone)
trained end to end."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from featx.datasets.options import DataOptions, data_options
from featx.errors import one_line_errors
from finetune.recipes import RECIPES, Recipe, get_recipe, override



def _int_list(ctx, param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give comma-separated integers, e.g. 10,10,5") \
            from None


def _split(value: str | None) -> str | None:
    """featx's split forms; k-fold trains one model, so the fold is named (kfold:K:F)."""
    if value is None:
        return None
    from featx.errors import FeatxError
    from featx.splits import check_spec, has_rounds

    try:
        check_spec(value)
    except FeatxError as e:
        raise click.BadParameter(str(e)) from None
    if has_rounds(value):
        raise click.BadParameter(f"{value}: a run trains one model; name its test fold, e.g. "
                                 f"{value}:0 (or `finetune cv` for all K rounds)")
    return value


def _cv_split(ctx, param, value: str) -> str:
    from featx.errors import FeatxError
    from featx.splits import check_spec, has_rounds

    try:
        check_spec(value)
    except FeatxError as e:
        raise click.BadParameter(str(e)) from None
    if not has_rounds(value):
        raise click.BadParameter(f"{value}: finetune cv runs every round of kfold:K (e.g. "
                                 f"kfold:5); one round is `finetune run --split kfold:K:F`")
    return value


# hyperparameter overrides shared by `plan` and `run` (None = the recipe's paper value)
_OVERRIDES = [
    click.option("--backbone", help="Backbone (default: the recipe's). Paper recipes: "
                 "resnet18..152, vgg16/19; modern recipes: any featx backbone (torchvision "
                 "name, timm/<model>, clip/<arch>:<tag>)."),
    click.option("--epochs", type=click.IntRange(min=0), help="Epochs of every stage."),
    click.option("--stage-epochs", callback=_int_list, metavar="N,N,...",
                 help="Epochs per stage, one number per stage."),
    click.option("--lr", type=click.FloatRange(min=0), help="Learning rate of every stage's base "
                 "parameter group. The heads/combiner group of resnet_ensemble, partial and "
                 "multilevel keeps its own rate (the papers' fixed 1e-3, not scaled with "
                 "--lr): set it with --head-lr; `finetune plan` shows both."),
    click.option("--head-lr", type=click.FloatRange(min=0),
                 help="Learning rate of the heads/combiner group (resnet_ensemble, partial, "
                      "multilevel)."),
    click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw"]), help="Optimiser."),
    click.option("--momentum", type=click.FloatRange(min=0), help="SGD momentum."),
    click.option("--nesterov/--no-nesterov", default=None, help="SGD Nesterov momentum."),
    click.option("--weight-decay", type=click.FloatRange(min=0), help="Weight decay."),
    click.option("--layer-decay", type=click.FloatRange(0, 1, min_open=True),
                 help="Layer-wise learning-rate decay per depth group (block / stage) towards "
                      "the input; 1 = off (full: 0.75)."),
    click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True),
                 help="Label smoothing of the cross-entropy (modern recipes: 0.1)."),
    click.option("--batch-size", type=click.IntRange(min=1), help="Batch size per process "
                 "(paper: 32)."),
    click.option("--image-size", type=click.IntRange(min=16), help="Crop size (papers: 224; "
                 "modern recipes: the backbone's own)."),
    click.option("--sampler", type=click.Choice(["weighted", "shuffle"]),
                 help="weighted: class-balanced random sampling (paper 1); shuffle: plain."),
    click.option("--augment", type=click.Choice(["resnet", "vgg", "rrc_flip", "none"]),
                 help="Training augmentation (default: the recipe's)."),
    click.option("--scheduler", type=click.Choice(["none", "cosine", "warmup_cosine"]),
                 help="Learning-rate schedule within each stage (papers: none; modern recipes: "
                      "warmup_cosine, stepped every optimiser step)."),
    click.option("--warmup-epochs", type=click.FloatRange(min=0),
                 help="Linear warm-up of warmup_cosine, in epochs (modern recipes: 1)."),
    click.option("--dropout", type=click.FloatRange(0, 1), help="Dropout probability of the "
                 "recipes that have a dropout layer."),
    click.option("--split", callback=lambda ctx, param, v: _split(v),
                 help="Train/val/test split, e.g. 80/5/15 (default: the recipe's), or "
                      "kfold:K:F (fold F of K as test, the next as val)."),
]


def _overrides(fn: Callable) -> Callable:
    for opt in reversed(_OVERRIDES):
        fn = opt(fn)
    return fn


def _recipe(name: str, kw: dict) -> Recipe:
    """The recipe with the command line's overrides (popped from kw)."""
    keys = ("backbone", "epochs", "stage_epochs", "lr", "head_lr", "optimizer", "momentum",
            "nesterov", "weight_decay", "layer_decay", "label_smoothing", "batch_size",
            "image_size", "sampler", "augment", "scheduler", "warmup_epochs", "dropout", "split")
    return override(get_recipe(name), **{k: kw.pop(k) for k in keys})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Fine-tune end to end: the reference papers' ResNet / VGG recipes, and the modern
    recipes (probe, partial, full, multilevel) for any backbone.

    Reference: docs/finetune.md in the featx repository (recipes, run folders)."""


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the recipes as JSON.")
def list_cmd(as_json: bool) -> None:
    """The recipes with their defaults (the papers' hyperparameters for theirs)."""
    from finetune.recipes import recipe_to_dict

    if as_json:
        click.echo(json.dumps({n: recipe_to_dict(r) for n, r in RECIPES.items()}, indent=2))
        return
    for r in RECIPES.values():
        size = f"{r.image_size} px" if r.image_size else "the backbone's own size"
        warm = (f" (warm-up {r.warmup_epochs:g} epoch{'' if r.warmup_epochs == 1 else 's'})"
                if r.warmup_epochs else "")
        sched = f", {r.scheduler}{warm}" if r.scheduler != "none" else ""
        click.echo(f"{r.name}  ({r.backbone}, batch {r.batch_size}, {size}, "
                   f"sampler {r.sampler}, augment {r.augment}, split {r.split}{sched})")
        click.echo(f"    {r.description}")
        for st in r.stages:
            o = st.optimizer
            extra = (f", momentum {o.momentum}{' nesterov' if o.nesterov else ''}"
                     if o.name == "sgd" else "")
            groups = "".join(f", {'/'.join(p)} lr {lr:g}" for p, lr in o.group_lrs)
            decay = f", layer decay {o.layer_decay:g}" if o.layer_decay != 1.0 else ""
            smooth = f" (label smoothing {st.label_smoothing:g})" if st.label_smoothing else ""
            click.echo(f"    stage {st.name}: {st.epochs} epochs, {o.name} lr {o.lr:g}{extra}, "
                       f"wd {o.weight_decay:g}{groups}{decay}; loss {st.loss}{smooth}")
        click.echo(f"    [{r.paper}]")


@main.command()
@click.argument("recipe")
@_overrides
@click.option("--classes", "n_classes", type=click.IntRange(min=2), default=8, show_default=True,
              help="Number of classes the model is built for.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@one_line_errors
def plan(recipe: str, n_classes: int, as_json: bool, **kw) -> None:
    """What RECIPE trains, stage by stage, without training."""
    from finetune import models
    from finetune.plan import recipe_plan

    rec = _recipe(recipe, kw)
    model, _ = models.build(rec, n_classes, "none", progress=False)
    p = recipe_plan(model, rec)
    if as_json:
        click.echo(json.dumps(p, indent=2))
        return
    click.echo(f"{p['recipe']} on {p['backbone']}")
    for st in p["stages"]:
        groups = ", ".join(f"{g.get('name', '') + ' ' if 'name' in g else ''}{g['n']:,} at lr "
                           f"{g['lr']:.3g} wd {g['weight_decay']:.3g}"
                           + (f" ({g['n_no_decay']:,} not decayed)" if g["n_no_decay"] else "")
                           for g in st["param_groups"])
        click.echo(f"  {st['name']}: {st['epochs']} epochs, {st['optimizer']['name']}, "
                   f"{len(st['trainable'])} tensors / {st['n_trainable']:,} parameters "
                   f"({groups})")


@main.command()
@click.argument("recipe")
@click.option("--data", required=True, help="DATA as featx extract reads it: class folders, a "
              "CSV, or a published dataset (--format).")
@_overrides
@data_options()
@click.option("--target", type=click.Choice(["label", "distribution"]), default="label",
              show_default=True, help="distribution: train on the dataset's label "
              "distributions (Emotion6, Abstract, a CSV's p_<class> columns) with a KL loss, "
              "best epoch by val KL, the six LDL measures in test.json.")
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet, none (random, seeded) or PATH to a backbone state_dict.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: runs/RECIPE).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Image loading processes per process (default: featx extract's: on a "
                   "GPU the spare cores shared among the local ranks, on a CPU few).")
@click.option("--steps-per-epoch", type=click.IntRange(min=1),
              help="Cap on optimiser steps per epoch (quick runs).")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also write last.pt every N steps (0: at the end of each epoch only).")
@click.option("--amp", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
              help="Mixed precision on CUDA (bf16 where supported, else fp16).")
@click.option("--ema", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Also keep an exponential moving average of the weights with this decay "
                   "(e.g. 0.999), evaluated and checkpointed beside them (best_ema.pt, "
                   "test_ema.json).")
@click.option("--tta", type=click.Choice(["none", "flip"]), default="none", show_default=True,
              help="Test-time augmentation at evaluation: flip averages an image's and its "
                   "mirror image's class probabilities.")
@click.option("--track", metavar="tensorboard[:DIR]|mlflow[:URI]", multiple=True,
              help="(repeatable) Also log per-step loss and lr, per-epoch val metrics and the test metrics "
                   "to TensorBoard (default DIR: --out) or MLflow (default: an sqlite store in "
                   "./mlruns; the config as params, test.json, confusion.png, best.pt as "
                   "artifacts); --resume continues the same run.")
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
@one_line_errors
def run(recipe: str, data: str, weights: str, device: str, out: Path | None, resume: bool,
        seed: int, workers: int | None, steps_per_epoch: int | None, checkpoint_every: int,
        amp: str, ema: float | None, tta: str, quiet: bool, track: tuple[str, ...], **kw) -> None:
    """Train RECIPE on DATA; writes config.json, metrics.jsonl, best.pt, last.pt, test.json and
    confusion.png into --out. Start with torchrun for several GPUs or nodes."""
    from featx import distributed
    from featx.lock import OutputLock
    from finetune.config import RunConfig
    from finetune.train import run as train_run

    options = DataOptions.from_kwargs(kw)
    target = kw.pop("target")
    rec = _recipe(recipe, kw)
    out = out or Path("runs") / rec.name
    cfg = RunConfig(recipe=rec, data=data, out=out, weights=weights, seed=seed, device=device,
                    workers=workers,
                    quiet=quiet, resume=resume, steps_per_epoch=steps_per_epoch,
                    checkpoint_every=checkpoint_every, amp=amp, ema=ema, tta=tta,
                    track=list(track), options=options, target=target)
    if track:
        from featx.ecosystem.tracking import parse_track

        for spec in track:
            parse_track(spec)  # a bad --track fails before any training
    if kw.pop("_cv", False):
        return _cv(cfg)
    if distributed.from_env().is_main:  # one run per --out; rank 0 holds it for the job
        with OutputLock(out):
            test = train_run(cfg)
    else:
        test = train_run(cfg)
    if test is not None:
        kl = f", KL {test['ldl']['kl']:.4f}" if "ldl" in test else ""
        click.echo(f"{rec.name} ({rec.backbone}): test accuracy {100 * test['accuracy']:.2f}%, "
                   f"macro recall {100 * test['macro_recall']:.2f}%{kl} (n={test['n']}) -> {out}")


def _cv(cfg) -> None:
    from featx import distributed
    from featx.lock import OutputLock
    from finetune.cv import check_cv, run_cv

    check_cv(cfg)
    if distributed.from_env().is_main:  # one job per --out; rank 0 holds it for the rounds
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        with OutputLock(cfg.out):
            doc = run_cv(cfg, log=lambda m: click.echo(m, err=True))
    else:
        doc = run_cv(cfg)
    if doc is not None:
        for row in doc["rows"]:
            _echo_row(row)
        click.echo(f"-> {Path(cfg.out) / 'cv.json'}")


def _echo_row(row: dict) -> None:
    for split in ("val", "test"):
        m = row[split]
        if m is None:
            continue
        ldl = m.get("ldl")
        text = (f"accuracy {100 * m['accuracy']:.2f}%, macro recall {100 * m['macro_recall']:.2f}%"
                f", macro F1 {100 * m['macro_f1']:.2f}%" + (f", KL {ldl['kl']:.4f}" if ldl else "")
                + f" (n={m['n']})")
        click.echo(f"{row['name']} {split}: {text}")
    cross = row.get("cross_dataset")
    if cross and cross["unmatched"]:
        click.echo(f"{row['name']}: images of unmatched classes left out: " + ", ".join(
            f"{c} {n}" for c, n in cross["unmatched"].items()))


@main.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", required=True, help="The run's DATA (its val and test images), or "
              "another dataset (every image whose class matches: a row RUN -> OTHER).")
@data_options(defaults=False)
@click.option("--split", help="The run's split, checked (default: the run's).")
@click.option("--class-map", type=click.Path(dir_okay=False),
              help="Another dataset's classes onto the run's: other_class,run_class per line.")
@click.option("--checkpoint", "which",
              type=click.Choice(["best", "last", "best_ema", "last_ema"]), default="best",
              show_default=True, help="best/last: the raw weights; *_ema: their moving average.")
@click.option("--tta", type=click.Choice(["none", "flip"]),
              help="Test-time augmentation (default: the run's).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write classify's rows JSON here.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write classify's report here: confusion and recall PNGs, an HTML page and "
                   "the error-analysis gallery of the test images (with each image's human "
                   "votes where DATA has them).")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--quiet", is_flag=True)
@one_line_errors
def eval_cmd(run_dir: Path, data: str, which: str, tta: str | None, json_path: Path | None,
             report_dir: Path | None, device: str, batch_size: int | None, workers: int,
             quiet: bool, split: str | None, class_map: str | None, **given) -> None:
    """Evaluate RUN_DIR's checkpoint on DATA: the run's own val and test images, or every
    image of another dataset whose class matches the run's (by name or --class-map)."""
    from finetune.evaluate import evaluate_run
    from finetune.files import write_json

    if report_dir:
        from classify.atomic import check_writable

        check_writable(report_dir, "--report", folder=True)
    report = evaluate_run(run_dir, data, which, device=device, workers=workers,
                          batch_size=batch_size, quiet=quiet, tta=tta, given=given, split=split,
                          class_map=class_map, report_dir=report_dir)
    for row in report["rows"]:
        _echo_row(row)
    if json_path:
        write_json(report, json_path)
    if report_dir:
        click.echo(f"report: {report_dir / 'index.html'}, gallery: "
                   f"{report_dir / 'gallery.html'}", err=True)


# `finetune cv`: `run`'s options with --split kfold:K, every round then cv.json
cv = click.Command(
    "cv", callback=lambda **kw: run.callback(**kw, _cv=True),
    params=[p for p in run.params if p.name != "split"] + [click.Option(
        ["--split"], required=True, callback=_cv_split,
        help="kfold:K: K rounds, round F testing on fold F and choosing the epoch on F+1.")],
    help="Run RECIPE on every round of a k-fold protocol into OUT/fold-F (resumable: finished "
         "rounds are skipped with --resume), then write OUT/cv.json: each round's row and the "
         "summary row (every image tested once; mean and std across folds) in classify's "
         "format. Under torchrun the rounds run one after another on every process.")
main.add_command(cv)


if __name__ == "__main__":
    sys.exit(main())
