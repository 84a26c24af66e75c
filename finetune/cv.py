"""`finetune cv`: a k-fold protocol as a whole. Round F trains into OUT/fold-F with the split
kfold:K:F (fold F test, fold F+1 val), each round resumable and a finished one skipped; then
OUT/cv.json holds each round's row and the summary row in classify's format (classify's own
`fold_rows`: pooled predictions, every image tested once; mean and std across folds). Under
torchrun the rounds run one after another, each on every process."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from featx.errors import FeatxError
from featx.splits import has_rounds, parse_kfold
from finetune import distributed
from finetune.config import RunConfig, check_resumable, read_config
from finetune.recipes import override

CV_FILE = "cv.json"


def fold_dir(out: Path, fold: int) -> Path:
    return Path(out) / f"fold-{fold}"


def check_cv(cfg: RunConfig) -> int:
    """K of the run's kfold:K split; one-line refusals before any training."""
    spec = cfg.recipe.split
    if not has_rounds(spec):
        raise FeatxError(f"--split {spec}: finetune cv runs every round of kfold:K (e.g. "
                         f"kfold:5); one round is `finetune run --split kfold:K:F`")
    k, _ = parse_kfold(spec)
    out = Path(cfg.out)
    if not cfg.resume and any((fold_dir(out, f) / "config.json").exists() for f in range(k)):
        raise FeatxError(f"{out}: holds rounds already; use --resume to continue them (finished "
                         f"rounds are skipped), or another --out")
    return k


def round_config(cfg: RunConfig, k: int, fold: int) -> RunConfig:
    return dataclasses.replace(cfg, recipe=override(cfg.recipe, split=f"kfold:{k}:{fold}"),
                               out=fold_dir(cfg.out, fold))


def _finished(trainer) -> bool:
    """Whether the round's folder holds the finished run of these very settings."""
    out = Path(trainer.out)
    if not (out / "predictions.json").exists():
        return False
    check_resumable(read_config(out), trainer.config, out)
    return True


def run_cv(cfg: RunConfig, log=print) -> dict | None:
    """Every round, then cv.json; returns its rows document on rank 0."""
    from classify.rows import rows_document
    from finetune.files import write_json
    from finetune.rows import cv_results
    from finetune.train import Trainer

    k = check_cv(cfg)
    ctx = distributed.setup(cfg.device)
    try:
        for f in range(k):
            rcfg = round_config(cfg, k, f)
            trainer = Trainer(rcfg, ctx)
            done = distributed.broadcast(_finished(trainer) if ctx.is_main else None, ctx)
            if done:
                if ctx.is_main and not cfg.quiet:
                    log(f"fold {f}/{k}: finished already ({rcfg.out}), skipped")
                continue
            if ctx.is_main and not cfg.quiet:
                log(f"fold {f}/{k} -> {rcfg.out}")
            trainer.run()
            del trainer
        distributed.barrier(ctx)
        if not ctx.is_main:
            return None
        dirs = [fold_dir(cfg.out, f) for f in range(k)]
        doc = rows_document(cv_results(dirs, [read_config(d) for d in dirs]))
        write_json(doc, Path(cfg.out) / CV_FILE)
        return doc
    finally:
        distributed.teardown(ctx)
